"""The engine's periodic housekeeping: schedules per settings, and the cleanups keep only what
is still useful."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from tests.conftest import Org
from tests.engine.conftest import node
from tocsin.alerts.models import ChangeEvent, InboundEvent
from tocsin.clock import FakeClock
from tocsin.engine.auditor import AUDIT_JOB
from tocsin.engine.effects import claim_effect
from tocsin.engine.maintenance import CLEANUP_JOB, JOBS_CLEANUP_JOB, periodic_jobs
from tocsin.engine.models import Effect, Job
from tocsin.oncall.handoff import HANDOFF_JOB
from tocsin.orgs.models import Integration
from tocsin.runtime import Runtime
from tocsin.settings import Settings


def test_runtime_schedules_audit_and_cleanups(runtime: Runtime, clock: FakeClock) -> None:
    runtime.worker.run_once()
    with runtime.factory() as s:
        due = dict(s.execute(sa.select(Job.kind, Job.due_at).where(Job.state == "pending")).all())
    start = clock.now()  # 2026-01-05 09:00 UTC
    assert due == {
        AUDIT_JOB: start + timedelta(seconds=60),
        JOBS_CLEANUP_JOB: start + timedelta(hours=1),
        CLEANUP_JOB: datetime(2026, 1, 6, tzinfo=start.tzinfo),
        HANDOFF_JOB: start + timedelta(minutes=5),
    }


def test_periodic_payload_follows_settings() -> None:
    settings = Settings(
        auditor_interval_seconds=30, auditor_overdue_seconds=45, change_event_retention_days=14
    )
    jobs = {p.kind: p for p in periodic_jobs(settings)}
    assert jobs[AUDIT_JOB].interval_seconds == 30
    assert jobs[AUDIT_JOB].payload == {"overdue_seconds": 45}
    assert jobs[CLEANUP_JOB].payload["change_event_retention_days"] == 14


def _run(rt: Runtime, kind: str, payload: dict[str, int]) -> None:
    from tests.engine.conftest import add_job

    add_job(rt, kind, payload=payload)
    assert node(rt, "cleaner").run_once() == 1


def test_cleanup_deletes_old_change_events_and_handled_inbound_events(
    runtime: Runtime, org: Org, clock: FakeClock
) -> None:
    now = clock.now()
    with runtime.factory() as s, s.begin():
        integ = s.scalars(sa.select(Integration).where(Integration.key == org.pd_key)).one()

        def change(age_days: int) -> ChangeEvent:
            at = now - timedelta(days=age_days)
            return ChangeEvent(
                service_id=org.service_id, summary=f"{age_days}d", occurred_at=at, received_at=at
            )

        def event(age_days: int, status: str) -> InboundEvent:
            at = now - timedelta(days=age_days)
            return InboundEvent(
                received_at=at,
                integration_id=integ.id,
                service_id=org.service_id,
                action="trigger",
                dedup_key=f"{status}-{age_days}",
                payload={},
                status=status,
                processed_at=None if status == "pending" else at,
            )

        s.add_all([change(91), change(89)])
        s.add_all(
            [
                event(8, "processed"),
                event(8, "dropped"),
                event(8, "failed"),  # kept for inspection
                event(8, "pending"),  # never deleted unprocessed
                event(6, "processed"),
            ]
        )
        claim_effect(s, "old-effect", now=now - timedelta(days=31))
        claim_effect(s, "recent-effect", now=now - timedelta(days=29))

    _run(
        runtime,
        CLEANUP_JOB,
        {
            "change_event_retention_days": 90,
            "inbound_event_retention_days": 7,
            "effect_retention_days": 30,
        },
    )
    with runtime.factory() as s:
        assert s.scalars(sa.select(ChangeEvent.summary)).all() == ["89d"]
        kept = set(s.scalars(sa.select(InboundEvent.dedup_key)).all())
        assert kept == {"failed-8", "pending-8", "processed-6"}
        assert s.scalars(sa.select(Effect.key)).all() == ["recent-effect"]


def test_jobs_cleanup_keeps_recent_history_and_live_jobs(
    runtime: Runtime, clock: FakeClock
) -> None:
    now = clock.now()

    def job(key: str, state: str, age_days: float) -> Job:
        at = now - timedelta(days=age_days)
        ended = at if state in ("done", "failed") else None
        return Job(
            kind="test.history",
            unique_key=key,
            payload={},
            due_at=at,
            state=state,
            created_at=at,
            finished_at=ended,
        )

    with runtime.factory() as s, s.begin():
        s.add_all(
            [
                job("done-8", "done", 8),
                job("done-6", "done", 6),
                job("cancelled-8", "cancelled", 8),
                job("failed-8", "failed", 8),
                job("failed-31", "failed", 31),
                job("pending-future", "pending", -1),
            ]
        )
    _run(runtime, JOBS_CLEANUP_JOB, {"finished_retention_days": 7, "failed_retention_days": 30})
    with runtime.factory() as s:
        kept = set(s.scalars(sa.select(Job.unique_key).where(Job.kind == "test.history")).all())
    assert kept == {"done-6", "failed-8", "pending-future"}


def test_claim_effect_acts_once(runtime: Runtime, clock: FakeClock) -> None:
    with runtime.factory() as s, s.begin():
        assert claim_effect(s, "notify:incident-1:alice", now=clock.now(), data={"via": "sms"})
        assert not claim_effect(s, "notify:incident-1:alice", now=clock.now())
    with runtime.factory() as s, s.begin():
        assert not claim_effect(s, "notify:incident-1:alice", now=clock.now())
        [effect] = s.scalars(sa.select(Effect)).all()
    assert effect.data == {"via": "sms"}
