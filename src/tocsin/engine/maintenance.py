"""The engine's own periodic work: the auditor and the cleanups that keep tables bounded."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from tocsin.alerts.models import ChangeEvent, InboundEvent
from tocsin.engine.auditor import AUDIT_JOB
from tocsin.engine.models import Effect, Job
from tocsin.engine.periodic import PeriodicJob
from tocsin.engine.worker import JobContext, handler
from tocsin.oncall.handoff import HANDOFF_INTERVAL_SECONDS, HANDOFF_JOB, LOOKBACK_SECONDS
from tocsin.settings import Settings

CLEANUP_JOB = "engine.cleanup"
JOBS_CLEANUP_JOB = "engine.cleanup_jobs"

DAY = 86_400
HOUR = 3_600
# Processed or dropped events are only needed for a short look back; failed ones are kept.
INBOUND_EVENT_RETENTION_DAYS = 7
# Done and cancelled jobs are history; failed ones stay longer for inspection.
FINISHED_JOB_RETENTION_DAYS = 7
FAILED_JOB_RETENTION_DAYS = 30
# Far longer than any job keeps retrying, so no retry can find its effect key gone.
EFFECT_RETENTION_DAYS = 30


def periodic_jobs(settings: Settings) -> list[PeriodicJob]:
    return [
        PeriodicJob(
            AUDIT_JOB,
            settings.auditor_interval_seconds,
            {"overdue_seconds": settings.auditor_overdue_seconds},
        ),
        PeriodicJob(
            CLEANUP_JOB,
            DAY,
            {
                "change_event_retention_days": settings.change_event_retention_days,
                "inbound_event_retention_days": INBOUND_EVENT_RETENTION_DAYS,
                "effect_retention_days": EFFECT_RETENTION_DAYS,
            },
        ),
        PeriodicJob(
            JOBS_CLEANUP_JOB,
            HOUR,
            {
                "finished_retention_days": FINISHED_JOB_RETENTION_DAYS,
                "failed_retention_days": FAILED_JOB_RETENTION_DAYS,
            },
        ),
        # Hand-off notices: tell users before their on-call shifts start.
        PeriodicJob(HANDOFF_JOB, HANDOFF_INTERVAL_SECONDS, {"lookback_seconds": LOOKBACK_SECONDS}),
    ]


@handler(CLEANUP_JOB)
def cleanup_old_records(ctx: JobContext) -> None:
    now = ctx.clock.now()
    payload = ctx.job.payload

    def days_ago(key: str, default: int) -> datetime:
        return now - timedelta(days=int(payload.get(key, default)))

    session = ctx.session
    session.execute(
        sa.delete(ChangeEvent).where(
            ChangeEvent.received_at < days_ago("change_event_retention_days", 90)
        )
    )
    session.execute(
        sa.delete(InboundEvent).where(
            InboundEvent.status.in_(("processed", "dropped")),
            InboundEvent.processed_at < days_ago("inbound_event_retention_days", 7),
        )
    )
    session.execute(
        sa.delete(Effect).where(Effect.created_at < days_ago("effect_retention_days", 30))
    )


@handler(JOBS_CLEANUP_JOB)
def cleanup_finished_jobs(ctx: JobContext) -> None:
    now = ctx.clock.now()
    payload = ctx.job.payload
    finished = now - timedelta(days=int(payload.get("finished_retention_days", 7)))
    failed = now - timedelta(days=int(payload.get("failed_retention_days", 30)))
    # Cancelled jobs never finished: their due time stands in for the end.
    ended = sa.func.coalesce(Job.finished_at, Job.due_at)
    ctx.session.execute(
        sa.delete(Job).where(
            sa.or_(
                sa.and_(Job.state.in_(("done", "cancelled")), ended < finished),
                sa.and_(Job.state == "failed", Job.finished_at < failed),
            )
        )
    )
