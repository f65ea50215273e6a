"""Incident timers end to end: events in through the writer and processor, timers run by the
engine on a fake clock, and a timer made stale by a later change does nothing."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tests.conftest import Org
from tocsin.clock import FakeClock
from tocsin.engine.models import Job
from tocsin.incidents.models import Incident, TimelineEntry
from tocsin.incidents.service import ACK_TIMEOUT_JOB, AUTO_RESOLVE_JOB
from tocsin.ingest.writer import AcceptedEvent
from tocsin.orgs.models import Integration, Service
from tocsin.runtime import Runtime


def send(rt: Runtime, org: Org, action: str, dedup_key: str = "db-1") -> None:
    with rt.factory() as s:
        integ = s.scalars(sa.select(Integration).where(Integration.key == org.pd_key)).one()
    payload: dict[str, Any] = {"summary": f"disk full on {dedup_key}", "severity": "critical"}
    rt.writer.submit_sync([AcceptedEvent(integ.id, org.service_id, action, dedup_key, payload)])
    rt.processor.drain()


def configure(rt: Runtime, org: Org, **timers: int) -> None:
    with rt.factory() as s, s.begin():
        service = s.get_one(Service, org.service_id)
        for name, seconds in timers.items():
            setattr(service, name, seconds)


def the_incident(rt: Runtime) -> Incident:
    with rt.factory() as s:
        return s.scalars(sa.select(Incident)).one()


def timeline(rt: Runtime) -> list[tuple[str, str]]:
    with rt.factory() as s:
        entries = s.scalars(sa.select(TimelineEntry).order_by(TimelineEntry.id)).all()
    return [(e.kind, e.actor) for e in entries]


def run_jobs(rt: Runtime) -> None:
    while rt.worker.run_once():
        pass


def test_untouched_incident_resolves_itself(runtime: Runtime, org: Org, clock: FakeClock) -> None:
    configure(runtime, org, auto_resolve_seconds=300)
    send(runtime, org, "trigger")
    clock.advance(299)
    run_jobs(runtime)
    assert the_incident(runtime).status == "triggered"

    clock.advance(1)
    run_jobs(runtime)
    incident = the_incident(runtime)
    assert (incident.status, incident.resolved_by) == ("resolved", "system:engine")
    assert timeline(runtime)[-1] == ("incident.resolved", "system:engine")
    with runtime.factory() as s:
        entry = s.scalars(sa.select(TimelineEntry).order_by(TimelineEntry.id.desc())).first()
    assert entry is not None and "auto-resolved after 300 s" in entry.message


def test_auto_resolve_timer_made_stale_by_acknowledgement_does_nothing(
    runtime: Runtime, org: Org, clock: FakeClock
) -> None:
    configure(runtime, org, auto_resolve_seconds=300)
    send(runtime, org, "trigger")  # timer for generation 1, due at +300
    clock.advance(200)
    send(runtime, org, "acknowledge")  # generation 2: a fresh timer, due at +500
    clock.advance(101)
    run_jobs(runtime)
    assert the_incident(runtime).status == "acknowledged"
    with runtime.factory() as s:
        states = s.scalars(
            sa.select(Job.state).where(Job.kind == AUTO_RESOLVE_JOB).order_by(Job.id)
        ).all()
    assert states == ["done", "pending"]  # the stale timer ran and did nothing

    clock.advance(200)
    run_jobs(runtime)
    assert the_incident(runtime).status == "resolved"


def test_acknowledgement_times_out_and_the_incident_triggers_again(
    runtime: Runtime, org: Org, clock: FakeClock
) -> None:
    configure(runtime, org, ack_timeout_seconds=600)
    send(runtime, org, "trigger")
    send(runtime, org, "acknowledge")
    clock.advance(599)
    run_jobs(runtime)
    assert the_incident(runtime).status == "acknowledged"

    clock.advance(1)
    run_jobs(runtime)
    incident = the_incident(runtime)
    assert (incident.status, incident.acknowledged_by) == ("triggered", None)
    assert timeline(runtime)[-1] == ("incident.retriggered", "system:engine")


def test_ack_timeout_after_resolve_does_nothing(
    runtime: Runtime, org: Org, clock: FakeClock
) -> None:
    configure(runtime, org, ack_timeout_seconds=600)
    send(runtime, org, "trigger")
    send(runtime, org, "acknowledge")
    clock.advance(300)
    send(runtime, org, "resolve")
    clock.advance(301)
    run_jobs(runtime)
    assert the_incident(runtime).status == "resolved"
    assert ("incident.retriggered", "system:engine") not in timeline(runtime)
    with runtime.factory() as s:
        [state] = s.scalars(sa.select(Job.state).where(Job.kind == ACK_TIMEOUT_JOB)).all()
    assert state == "done"


def test_malformed_timer_fails_at_once(runtime: Runtime, org: Org) -> None:
    from tests.engine.conftest import add_job, get_job

    job_id = add_job(runtime, AUTO_RESOLVE_JOB, payload={"incident": "nope"})
    run_jobs(runtime)
    job = get_job(runtime, job_id)
    assert (job.state, job.attempts) == ("failed", 1)
    assert "malformed incident timer payload" in (job.last_error or "")
