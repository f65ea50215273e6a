"""The auditor: notices work that is stuck and says so through Tocsin's own alerting path.

It runs as a periodic job. It counts pending jobs overdue by more than the allowed lag, running
jobs whose lease lapsed that long ago (their node died and no node has taken them over), jobs
that failed for good since the last report, and accepted events still unprocessed after that
long. Anything found raises one internal alert, by writing an accepted event for the built-in
"tocsin-self" service exactly as an integration would; the processor turns it into an incident,
and whatever pages people for incidents pages them for this one. Once all is clear again, the
auditor resolves that alert.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tocsin.alerts.models import Alert, InboundEvent
from tocsin.engine.effects import claim_effect
from tocsin.engine.models import Effect, Job
from tocsin.engine.worker import JobContext, handler
from tocsin.orgs.models import Integration, Service

AUDIT_JOB = "engine.audit"
AUDITOR_DEDUP_KEY = "tocsin.auditor.stuck-work"
SELF_SERVICE_SLUG = "tocsin-self"
SELF_INTEGRATION_NAME = "auditor"
# An Effect row per failed job marks it as reported, so each failure is announced once.
FAILED_REPORTED_PREFIX = "auditor.failed-job:"
_FAILED_LISTED = 20


@dataclass(frozen=True)
class Findings:
    overdue_jobs: int = 0
    lapsed_leases: int = 0
    stuck_events: int = 0
    newly_failed: list[tuple[int, str]] = field(default_factory=list)

    @property
    def clear(self) -> bool:
        return not (
            self.overdue_jobs or self.lapsed_leases or self.stuck_events or self.newly_failed
        )

    def summary(self) -> str:
        parts = []
        if self.overdue_jobs:
            parts.append(_plural(self.overdue_jobs, "job") + " overdue")
        if self.lapsed_leases:
            parts.append(_plural(self.lapsed_leases, "running job") + " whose node stopped")
        if self.newly_failed:
            kinds = sorted({kind for _, kind in self.newly_failed})
            parts.append(
                _plural(len(self.newly_failed), "job") + f" failed for good ({', '.join(kinds)})"
            )
        if self.stuck_events:
            parts.append(_plural(self.stuck_events, "accepted event") + " not processed")
        return "Tocsin has stuck work: " + "; ".join(parts)


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def find_stuck_work(session: Session, now: datetime, overdue_seconds: float) -> Findings:
    cutoff = now - timedelta(seconds=overdue_seconds)

    def count(query: sa.Select[int]) -> int:
        return int(session.scalar(query) or 0)

    overdue = count(
        sa.select(sa.func.count())
        .select_from(Job)
        .where(Job.state == "pending", Job.due_at < cutoff)
    )
    lapsed = count(
        sa.select(sa.func.count())
        .select_from(Job)
        .where(Job.state == "running", Job.lease_expires_at < cutoff)
    )
    stuck = count(
        sa.select(sa.func.count())
        .select_from(InboundEvent)
        .where(InboundEvent.status == "pending", InboundEvent.received_at < cutoff)
    )
    marker = sa.literal(FAILED_REPORTED_PREFIX) + sa.cast(Job.id, sa.String)
    failed = session.execute(
        sa.select(Job.id, Job.kind)
        .where(Job.state == "failed", ~sa.exists().where(Effect.key == marker))
        .order_by(Job.id)
        .limit(500)
    ).all()
    return Findings(overdue, lapsed, stuck, [(r.id, r.kind) for r in failed])


def audit(session: Session, now: datetime, overdue_seconds: float) -> Findings:
    """One audit, in the caller's transaction: raise or resolve the internal alert."""
    findings = find_stuck_work(session, now, overdue_seconds)
    if not findings.clear:
        service, integration = ensure_self_service(session, now)
        _send(session, service, integration, "trigger", now, _alert_payload(findings))
        for job_id, _ in findings.newly_failed:
            claim_effect(session, f"{FAILED_REPORTED_PREFIX}{job_id}", now=now, job_id=job_id)
        return findings
    existing = session.scalars(sa.select(Service).where(Service.slug == SELF_SERVICE_SLUG)).first()
    if existing is not None and _alert_is_open(session, existing):
        self_integration = _self_integration(session, existing)
        if self_integration is not None:
            payload = {"summary": "Tocsin has no stuck work", "source": "tocsin.auditor"}
            _send(session, existing, self_integration, "resolve", now, payload)
    return findings


@handler(AUDIT_JOB)
def run_audit(ctx: JobContext) -> None:
    overdue = float(ctx.job.payload.get("overdue_seconds", 120))
    audit(ctx.session, ctx.clock.now(), overdue)


def ensure_self_service(session: Session, now: datetime) -> tuple[Service, Integration]:
    """The built-in service the auditor reports on, created on first use."""
    service = session.scalars(sa.select(Service).where(Service.slug == SELF_SERVICE_SLUG)).first()
    if service is None:
        try:
            with session.begin_nested():
                service = Service(
                    slug=SELF_SERVICE_SLUG,
                    name="Tocsin self-monitoring",
                    description="Alerts Tocsin raises about itself: stuck or failing work.",
                    urgency="high",
                    grouping={"type": "none"},
                    internal=True,
                    created_at=now,
                )
                session.add(service)
        except IntegrityError:  # another node created it a moment ago
            service = session.scalars(
                sa.select(Service).where(Service.slug == SELF_SERVICE_SLUG)
            ).one()
    integration = _self_integration(session, service)
    if integration is None:
        integration = Integration(
            service_id=service.id,
            name=SELF_INTEGRATION_NAME,
            type="internal",
            # Never handed out; random so that it cannot be guessed and used for ingestion.
            key=secrets.token_hex(16),
            options={},
            created_at=now,
        )
        session.add(integration)
        session.flush()
    return service, integration


def _self_integration(session: Session, service: Service) -> Integration | None:
    return session.scalars(
        sa.select(Integration).where(
            Integration.service_id == service.id, Integration.type == "internal"
        )
    ).first()


def _alert_is_open(session: Session, service: Service) -> bool:
    return (
        session.scalar(
            sa.select(Alert.id)
            .where(
                Alert.service_id == service.id,
                Alert.dedup_key == AUDITOR_DEDUP_KEY,
                Alert.status != "resolved",
            )
            .limit(1)
        )
        is not None
    )


def _alert_payload(findings: Findings) -> dict[str, Any]:
    return {
        "summary": findings.summary(),
        "severity": "critical",
        "source": "tocsin.auditor",
        "component": "engine",
        "custom_details": {
            "overdue_jobs": findings.overdue_jobs,
            "lapsed_leases": findings.lapsed_leases,
            "stuck_events": findings.stuck_events,
            "failed_jobs": [{"id": job_id, "kind": kind} for job_id, kind in findings.newly_failed][
                :_FAILED_LISTED
            ],
            "failed_job_count": len(findings.newly_failed),
        },
    }


def _send(
    session: Session,
    service: Service,
    integration: Integration,
    action: str,
    now: datetime,
    payload: dict[str, Any],
) -> None:
    session.add(
        InboundEvent(
            received_at=now,
            integration_id=integration.id,
            service_id=service.id,
            action=action,
            dedup_key=AUDITOR_DEDUP_KEY,
            payload=payload,
            status="pending",
        )
    )
