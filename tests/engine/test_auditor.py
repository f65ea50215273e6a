"""The auditor raises Tocsin's own alert about stuck work, and resolves it once all is clear."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tests.conftest import Org
from tests.engine.conftest import FAIL, add_job, node
from tocsin.alerts.models import Alert, InboundEvent
from tocsin.clock import FakeClock
from tocsin.db.engine import transaction
from tocsin.engine.auditor import (
    AUDIT_JOB,
    AUDITOR_DEDUP_KEY,
    SELF_SERVICE_SLUG,
    Findings,
    audit,
)
from tocsin.engine.models import Job
from tocsin.incidents.models import Incident
from tocsin.ingest.writer import AcceptedEvent
from tocsin.orgs.models import Integration, Service
from tocsin.runtime import Runtime

OVERDUE = 120


def run_audit(rt: Runtime) -> Findings:
    with transaction(rt.factory) as s:
        findings = audit(s, rt.clock.now(), OVERDUE)
    rt.processor.drain()
    return findings


def self_incidents(rt: Runtime) -> list[Incident]:
    with rt.factory() as s:
        return list(
            s.scalars(
                sa.select(Incident)
                .join(Service, Service.id == Incident.service_id)
                .where(Service.slug == SELF_SERVICE_SLUG)
                .order_by(Incident.id)
            ).all()
        )


def auditor_events(rt: Runtime) -> list[str]:
    with rt.factory() as s:
        return list(
            s.scalars(
                sa.select(InboundEvent.action)
                .where(InboundEvent.dedup_key == AUDITOR_DEDUP_KEY)
                .order_by(InboundEvent.id)
            ).all()
        )


def test_overdue_job_raises_the_internal_alert_and_clearing_resolves_it(
    runtime: Runtime, clock: FakeClock
) -> None:
    add_job(runtime)
    clock.advance(OVERDUE)
    assert run_audit(runtime).clear  # late, but not yet by more than the allowed lag
    assert self_incidents(runtime) == []

    clock.advance(1)
    findings = run_audit(runtime)
    assert findings.overdue_jobs == 1
    [incident] = self_incidents(runtime)
    assert incident.status == "triggered"
    assert incident.title == "Tocsin has stuck work: 1 job overdue"
    assert incident.severity == "critical"
    with runtime.factory() as s:
        service = s.scalars(sa.select(Service).where(Service.slug == SELF_SERVICE_SLUG)).one()
        [integration] = s.scalars(
            sa.select(Integration).where(Integration.service_id == service.id)
        ).all()
        [alert] = s.scalars(sa.select(Alert).where(Alert.service_id == service.id)).all()
    assert service.internal
    assert integration.type == "internal"
    assert alert.dedup_key == AUDITOR_DEDUP_KEY
    assert alert.details["custom_details"]["overdue_jobs"] == 1

    # Still stuck: the next audit joins the same alert rather than opening another.
    clock.advance(60)
    run_audit(runtime)
    assert len(self_incidents(runtime)) == 1

    node(runtime, "node-a").run_once()  # the work gets done
    assert run_audit(runtime).clear
    [incident] = self_incidents(runtime)
    assert incident.status == "resolved"
    # Clear and nothing open: the auditor stays quiet.
    run_audit(runtime)
    assert auditor_events(runtime) == ["trigger", "trigger", "resolve"]


def test_job_whose_node_died_is_reported(runtime: Runtime, clock: FakeClock) -> None:
    add_job(runtime)
    node(runtime, "dead-node", lease_seconds=30).claim()
    clock.advance(30 + OVERDUE + 1)
    findings = run_audit(runtime)
    assert (findings.lapsed_leases, findings.overdue_jobs) == (1, 0)
    assert self_incidents(runtime)[0].title == (
        "Tocsin has stuck work: 1 running job whose node stopped"
    )


def test_unprocessed_events_are_reported(runtime: Runtime, org: Org, clock: FakeClock) -> None:
    with runtime.factory() as s:
        integ = s.scalars(sa.select(Integration).where(Integration.key == org.pd_key)).one()
    payload: dict[str, Any] = {"summary": "x", "severity": "error"}
    runtime.writer.submit_sync([AcceptedEvent(integ.id, org.service_id, "trigger", "k", payload)])
    clock.advance(OVERDUE + 1)
    with transaction(runtime.factory) as s:
        findings = audit(s, clock.now(), OVERDUE)
    assert findings.stuck_events == 1
    assert "1 accepted event not processed" in findings.summary()


def test_permanent_failure_is_reported_once_through_the_periodic_audit(
    runtime: Runtime, clock: FakeClock
) -> None:
    """The whole path: the runtime's worker schedules the auditor, which reports a job that
    failed for good; a minute later, with nothing new, it resolves its alert."""
    add_job(runtime, FAIL, max_attempts=1)
    assert runtime.worker.run_once() == 1  # fails for good

    clock.advance(60)
    runtime.worker.run_once()  # the auditor's slot
    runtime.processor.drain()
    [incident] = self_incidents(runtime)
    assert incident.title == "Tocsin has stuck work: 1 job failed for good (test.fail)"
    assert incident.status == "triggered"

    clock.advance(60)
    runtime.worker.run_once()
    runtime.processor.drain()
    [incident] = self_incidents(runtime)
    assert incident.status == "resolved"
    with runtime.factory() as s:
        audits = s.scalars(sa.select(Job.state).where(Job.kind == AUDIT_JOB)).all()
    assert sorted(audits) == ["done", "done", "pending"]


def test_work_claimed_with_the_audit_is_not_reported(runtime: Runtime, clock: FakeClock) -> None:
    """A node that was paused claims the late work together with the audit: that work is in
    hand (running, under a fresh lease), not stuck."""
    add_job(runtime, due_in=70)
    runtime.worker.run_once()  # schedules the audit slot at +60
    clock.advance(70 + OVERDUE + 60)
    runtime.worker.run_once()
    runtime.processor.drain()
    assert self_incidents(runtime) == []
