"""From accepted event to alert and incident: dedup, follow-ups, grouping, change events."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tests.conftest import Org
from tocsin.alerts.models import Alert, ChangeEvent, InboundEvent
from tocsin.clock import FakeClock
from tocsin.incidents.models import Incident, TimelineEntry
from tocsin.ingest.writer import AcceptedEvent
from tocsin.orgs.models import Integration, Service
from tocsin.runtime import Runtime


def send(rt: Runtime, org: Org, action: str, dedup_key: str | None, **payload: Any) -> None:
    with rt.factory() as s:
        integ = s.scalars(sa.select(Integration).where(Integration.key == org.pd_key)).one()
    payload.setdefault("summary", f"disk full on {dedup_key}")
    payload.setdefault("severity", "critical")
    rt.writer.submit_sync([AcceptedEvent(integ.id, org.service_id, action, dedup_key, payload)])
    rt.processor.drain()


def rows(rt: Runtime, model: type) -> list[Any]:
    with rt.factory() as s:
        return list(s.scalars(sa.select(model).order_by(model.id)).all())


def test_trigger_opens_alert_and_incident_with_timeline(runtime: Runtime, org: Org) -> None:
    send(runtime, org, "trigger", "db-1", summary="DB down", severity="error")
    [alert] = rows(runtime, Alert)
    [incident] = rows(runtime, Incident)
    assert alert.incident_id == incident.id
    assert (incident.status, incident.title, incident.severity) == ("triggered", "DB down", "error")
    kinds = [e.kind for e in rows(runtime, TimelineEntry)]
    assert kinds == ["incident.triggered", "alert.triggered"]


def test_duplicate_triggers_join_the_open_alert(runtime: Runtime, org: Org) -> None:
    for _ in range(5):
        send(runtime, org, "trigger", "db-1")
    [alert] = rows(runtime, Alert)
    assert alert.event_count == 5
    assert len(rows(runtime, Incident)) == 1


def test_resolve_then_same_key_opens_a_new_alert(runtime: Runtime, org: Org) -> None:
    send(runtime, org, "trigger", "db-1")
    send(runtime, org, "resolve", "db-1")
    [incident] = rows(runtime, Incident)
    assert incident.status == "resolved"
    send(runtime, org, "trigger", "db-1")
    alerts = rows(runtime, Alert)
    assert [a.status for a in alerts] == ["resolved", "triggered"]
    assert len(rows(runtime, Incident)) == 2


def test_acknowledge_and_resolve_without_open_alert_are_dropped(runtime: Runtime, org: Org) -> None:
    send(runtime, org, "acknowledge", "nothing-here")
    send(runtime, org, "resolve", "nothing-here")
    events = rows(runtime, InboundEvent)
    assert [e.status for e in events] == ["dropped", "dropped"]
    assert rows(runtime, Alert) == []


def test_acknowledge_acknowledges_the_incident(runtime: Runtime, org: Org) -> None:
    send(runtime, org, "trigger", "db-1")
    send(runtime, org, "acknowledge", "db-1")
    [incident] = rows(runtime, Incident)
    assert incident.status == "acknowledged"
    assert incident.acknowledged_by == "integration:checkout/events"


def _set_grouping(rt: Runtime, org: Org, grouping: dict[str, Any]) -> None:
    with rt.factory() as s, s.begin():
        s.get_one(Service, org.service_id).grouping = grouping


def test_time_window_grouping(runtime: Runtime, org: Org, clock: FakeClock) -> None:
    _set_grouping(runtime, org, {"type": "time_window", "window_seconds": 300})
    send(runtime, org, "trigger", "a")
    clock.advance(120)
    send(runtime, org, "trigger", "b")
    clock.advance(400)
    send(runtime, org, "trigger", "c")
    incident_ids = [a.incident_id for a in rows(runtime, Alert)]
    assert incident_ids[0] == incident_ids[1] != incident_ids[2]
    assert rows(runtime, Incident)[0].alert_count == 2


def test_field_grouping_like_group_by(runtime: Runtime, org: Org) -> None:
    _set_grouping(runtime, org, {"type": "fields", "fields": ["labels.alertname"]})
    send(runtime, org, "trigger", "1", custom_details={"labels": {"alertname": "HighLatency"}})
    send(runtime, org, "trigger", "2", custom_details={"labels": {"alertname": "HighLatency"}})
    send(runtime, org, "trigger", "3", custom_details={"labels": {"alertname": "DiskFull"}})
    incident_ids = [a.incident_id for a in rows(runtime, Alert)]
    assert incident_ids[0] == incident_ids[1] != incident_ids[2]


def test_incident_resolves_only_when_all_alerts_resolve(runtime: Runtime, org: Org) -> None:
    _set_grouping(runtime, org, {"type": "time_window", "window_seconds": 600})
    send(runtime, org, "trigger", "a")
    send(runtime, org, "trigger", "b")
    send(runtime, org, "resolve", "a")
    assert rows(runtime, Incident)[0].status == "triggered"
    send(runtime, org, "resolve", "b")
    assert rows(runtime, Incident)[0].status == "resolved"


def test_change_event_is_recorded(runtime: Runtime, org: Org) -> None:
    send(
        runtime,
        org,
        "change",
        None,
        summary="deploy v42",
        source="ci",
        timestamp="2026-01-05T08:55:00+00:00",
    )
    [change] = rows(runtime, ChangeEvent)
    assert change.summary == "deploy v42"
    assert change.occurred_at.isoformat() == "2026-01-05T08:55:00+00:00"


def test_events_of_a_deleted_integration_are_dropped_not_failed(runtime: Runtime, org: Org) -> None:
    with runtime.factory() as s:
        integ = s.scalars(sa.select(Integration).where(Integration.key == org.pd_key)).one()
    with runtime.factory() as s, s.begin():
        s.delete(s.get_one(Integration, integ.id))
    # Accepted while the integration still existed, processed after it was deleted.
    runtime.writer.submit_sync(
        [
            AcceptedEvent(integ.id, org.service_id, "trigger", "k", {"summary": "x"}),
            AcceptedEvent(integ.id, org.service_id, "change", None, {"summary": "deploy"}),
        ]
    )
    runtime.processor.drain()
    assert [e.status for e in rows(runtime, InboundEvent)] == ["dropped", "dropped"]
    assert rows(runtime, Alert) == [] and rows(runtime, ChangeEvent) == []
