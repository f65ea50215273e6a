"""Turns accepted events into alerts and incidents.

Events are processed in arrival order by one processor at a time across the cluster (a
PostgreSQL advisory lock; on SQLite the single writer), so deduplication never races.

A batch is applied as a whole, with what it needs loaded up front (its services,
integrations and open alerts in three queries) and its inserts and status updates written in
bulk at the end: commits and round trips, not rows, are what bound the rate. If anything in the
batch fails, the batch is rolled back and replayed one event at a time, each in a savepoint, so
a bad event is marked failed without holding up the rest.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from tocsin.alerts.grouping import group_target
from tocsin.alerts.models import Alert, ChangeEvent, InboundEvent
from tocsin.clock import Clock
from tocsin.db.engine import transaction
from tocsin.incidents import service as incidents
from tocsin.incidents import timeline
from tocsin.incidents.models import Incident
from tocsin.orgs.models import Integration, Service

log = logging.getLogger(__name__)

PROCESSOR_LOCK_ID = 0x70C5110  # any constant shared by every node
SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2, "critical": 3}
# SQLite has one writer: a processing transaction gives the write lock back to the
# group-commit writer after this long, so accepting events never waits long for processing.
SQLITE_BUDGET_SECONDS = 0.02

_EVENT_COLUMNS = (
    InboundEvent.id,
    InboundEvent.received_at,
    InboundEvent.integration_id,
    InboundEvent.service_id,
    InboundEvent.action,
    InboundEvent.dedup_key,
    InboundEvent.payload,
)


@dataclass(frozen=True)
class PendingEvent:
    id: int
    received_at: datetime
    integration_id: int
    service_id: int
    action: str
    dedup_key: str | None
    payload: dict[str, Any]


@dataclass
class _Outcome:
    """What became of one event; the text is rendered after the flush, when ids exist."""

    event_id: int
    status: str
    template: str
    alert: Alert | None = None

    def text(self) -> str:
        alert = self.alert
        if alert is None:
            return self.template
        return self.template.format(alert=alert.id, incident=alert.incident_id)


@dataclass
class _Batch:
    session: Session
    now: datetime
    services: dict[int, Service] = field(default_factory=dict)
    integrations: dict[int, Integration] = field(default_factory=dict)
    open_alerts: dict[tuple[int, str], Alert] = field(default_factory=dict)
    # Opened in this batch and not yet written: inserted together by settle().
    new_incidents: list[tuple[Incident, Service, str]] = field(default_factory=list)
    new_alerts: list[tuple[Alert, Incident, int, str]] = field(default_factory=list)

    def load(self, events: Sequence[PendingEvent]) -> None:
        session = self.session
        service_ids = {e.service_id for e in events}
        integration_ids = {e.integration_id for e in events}
        keys = {e.dedup_key for e in events if e.dedup_key is not None}
        self.services = {
            s.id: s for s in session.scalars(sa.select(Service).where(Service.id.in_(service_ids)))
        }
        self.integrations = {
            i.id: i
            for i in session.scalars(
                sa.select(Integration).where(Integration.id.in_(integration_ids))
            )
        }
        if keys:
            for alert in session.scalars(
                sa.select(Alert).where(
                    Alert.status != "resolved",
                    Alert.service_id.in_(service_ids),
                    Alert.dedup_key.in_(keys),
                )
            ):
                self.open_alerts[(alert.service_id, alert.dedup_key)] = alert

    def settle(self) -> None:
        """Write what the batch opened: incidents first (alerts and the timeline need their
        ids), announce them (timers, escalation), then alerts and their timeline entries."""
        if not self.new_alerts and not self.new_incidents:
            return
        session = self.session
        session.flush()
        for incident, service, actor in self.new_incidents:
            incidents.announce(session, incident, service=service, now=self.now, actor=actor)
        for alert, incident, _event_id, _actor in self.new_alerts:
            alert.incident_id = incident.id
            session.add(alert)
        session.flush()
        for alert, incident, event_id, actor in self.new_alerts:
            timeline.append(
                session,
                incident_id=incident.id,
                at=alert.created_at,
                kind="alert.triggered",
                actor=actor,
                message=f"Alert {alert.summary[:200]} ({alert.severity})",
                data={"alert_id": alert.id, "dedup_key": alert.dedup_key, "event_id": event_id},
            )
        self.new_incidents.clear()
        self.new_alerts.clear()

    def open_alert(self, service_id: int, dedup_key: str | None) -> Alert | None:
        alert = self.open_alerts.get((service_id, dedup_key or ""))
        # An incident resolved earlier in this batch resolves its alerts in bulk.
        return alert if alert is not None and alert.status != "resolved" else None


def process_pending(factory: sessionmaker[Session], clock: Clock, *, limit: int = 500) -> int:
    """Process up to ``limit`` pending events in one transaction. Returns how many."""
    return process_batch(factory, clock, limit=limit).count


@dataclass(frozen=True)
class BatchResult:
    count: int
    # When the last event processed was accepted: how far behind intake processing is.
    newest_received_at: datetime | None = None


def process_batch(factory: sessionmaker[Session], clock: Clock, *, limit: int = 500) -> BatchResult:
    with transaction(factory) as session:
        budget = None
        if session.get_bind().dialect.name == "sqlite":
            budget = SQLITE_BUDGET_SECONDS
            limit = min(limit, 128)
        else:
            got = session.execute(
                sa.select(sa.func.pg_try_advisory_xact_lock(PROCESSOR_LOCK_ID))
            ).scalar_one()
            if not got:
                return BatchResult(0)
        events = [
            PendingEvent(*row)
            for row in session.execute(
                sa.select(*_EVENT_COLUMNS)
                .where(InboundEvent.status == "pending")
                .order_by(InboundEvent.id)
                .limit(limit)
            )
        ]
        if not events:
            return BatchResult(0)
        now = clock.now()
        try:
            with session.begin_nested():
                outcomes = _apply_all(session, events, now, budget)
        except Exception:
            log.warning("a batch of %d events failed; replaying one by one", len(events))
            outcomes = [_apply_alone(session, event, now) for event in events]
        inbox = InboundEvent.__table__
        # Core executemany: one statement for the whole batch's outcomes.
        session.connection().execute(
            sa.update(inbox)  # type: ignore[arg-type]
            .where(inbox.c.id == sa.bindparam("event_id"))
            .values(
                status=sa.bindparam("new_status"),
                outcome=sa.bindparam("new_outcome"),
                processed_at=now,
            ),
            [
                {"event_id": o.event_id, "new_status": o.status, "new_outcome": o.text()[:2000]}
                for o in outcomes
            ],
        )
        return BatchResult(len(outcomes), events[len(outcomes) - 1].received_at)


def _apply_all(
    session: Session, events: Sequence[PendingEvent], now: datetime, budget: float | None = None
) -> list[_Outcome]:
    """Apply events in order; with a time budget, stop early and leave the rest pending."""
    batch = _Batch(session, now)
    batch.load(events)
    deadline = time.monotonic() + budget if budget is not None else None
    outcomes = []
    for event in events:
        outcomes.append(apply_event(batch, event))
        if deadline is not None and time.monotonic() > deadline:
            break
    batch.settle()
    session.flush()
    return outcomes


def _apply_alone(session: Session, event: PendingEvent, now: datetime) -> _Outcome:
    try:
        with session.begin_nested():
            return _apply_all(session, [event], now)[0]
    except Exception as exc:  # one bad event must not block the queue behind it
        log.exception("event %s failed", event.id)
        return _Outcome(event.id, "failed", f"{type(exc).__name__}: {exc}")


def apply_event(batch: _Batch, event: PendingEvent) -> _Outcome:
    service = batch.services.get(event.service_id)
    integration = batch.integrations.get(event.integration_id)
    if service is None or integration is None:
        return _Outcome(event.id, "dropped", "dropped: the service or integration no longer exists")
    if event.action == "change":
        return _record_change(batch, event)
    actor = f"integration:{service.slug}/{integration.name}"
    open_alert = batch.open_alert(service.id, event.dedup_key)
    if event.action == "trigger":
        if open_alert is not None:
            open_alert.event_count += 1
            open_alert.last_event_at = event.received_at
            return _Outcome(event.id, "processed", "deduplicated into alert {alert}", open_alert)
        alert = _open_alert(batch, event, service, actor)
        return _Outcome(event.id, "processed", "opened alert {alert} in incident {incident}", alert)
    if open_alert is None:
        return _Outcome(
            event.id, "dropped", f"dropped: no open alert with dedup key {event.dedup_key!r}"
        )
    if event.action == "acknowledge":
        return _acknowledge_alert(batch, event, open_alert, actor)
    if event.action == "resolve":
        return _resolve_alert(batch, event, open_alert, actor)
    return _Outcome(event.id, "dropped", f"dropped: unknown action {event.action!r}")


def _open_alert(batch: _Batch, event: PendingEvent, service: Service, actor: str) -> Alert:
    payload = event.payload
    summary = str(payload.get("summary") or event.dedup_key or "alert")
    severity = str(payload.get("severity") or "critical")
    incident = _incident_for(batch, service, payload, summary, severity, actor)
    alert = Alert(
        service_id=service.id,
        integration_id=event.integration_id,
        dedup_key=event.dedup_key or "",
        status="triggered",
        summary=summary[:1024],
        severity=severity,
        source=str(payload.get("source") or "")[:255],
        details=_alert_details(payload),
        created_at=event.received_at,
        last_event_at=event.received_at,
        event_count=1,
    )
    batch.open_alerts[(service.id, alert.dedup_key)] = alert
    batch.new_alerts.append((alert, incident, event.id, actor))
    incident.alert_count += 1
    incident.last_alert_at = event.received_at
    if SEVERITY_RANK.get(severity, 3) > SEVERITY_RANK.get(incident.severity, 3):
        incident.severity = severity
    return alert


def _incident_for(
    batch: _Batch,
    service: Service,
    payload: dict[str, Any],
    summary: str,
    severity: str,
    actor: str,
) -> Incident:
    target = group_target(service.grouping or {}, payload)
    if target.key is not None:
        query = (
            sa.select(Incident)
            .where(
                Incident.service_id == service.id,
                Incident.group_key == target.key,
                Incident.status != "resolved",
            )
            .order_by(Incident.id.desc())
            .limit(1)
        )
        if target.window_seconds:
            since = batch.now - timedelta(seconds=target.window_seconds)
            query = query.where(Incident.created_at >= since)
        existing = batch.session.scalars(query).first()
        if existing is not None:
            return existing
    incident = incidents.new_incident(
        batch.session,
        service=service,
        title=summary,
        severity=severity,
        now=batch.now,
        group_key=target.key,
    )
    batch.new_incidents.append((incident, service, actor))
    return incident


def _acknowledge_alert(batch: _Batch, event: PendingEvent, alert: Alert, actor: str) -> _Outcome:
    if alert.status == "acknowledged":
        return _Outcome(event.id, "processed", "alert {alert} was already acknowledged", alert)
    batch.settle()
    alert.status = "acknowledged"
    alert.acknowledged_at = batch.now
    incident = batch.session.get(Incident, alert.incident_id) if alert.incident_id else None
    if incident is not None and not _has_alerts_in(batch.session, incident, "triggered"):
        incidents.acknowledge(batch.session, incident, now=batch.now, actor=actor)
    return _Outcome(event.id, "processed", "acknowledged alert {alert}", alert)


def _resolve_alert(batch: _Batch, event: PendingEvent, alert: Alert, actor: str) -> _Outcome:
    session = batch.session
    batch.settle()
    alert.status = "resolved"
    alert.resolved_at = batch.now
    incident = session.get(Incident, alert.incident_id) if alert.incident_id else None
    if incident is not None:
        timeline.append(
            session,
            incident_id=incident.id,
            at=batch.now,
            kind="alert.resolved",
            actor=actor,
            message=f"Alert {alert.summary[:200]} resolved",
            data={"dedup_key": alert.dedup_key},
        )
        if not _has_alerts_in(session, incident, "triggered", "acknowledged"):
            incidents.resolve(
                session, incident, now=batch.now, actor=actor, reason="all alerts resolved"
            )
    return _Outcome(event.id, "processed", "resolved alert {alert}", alert)


def _has_alerts_in(session: Session, incident: Incident, *statuses: str) -> bool:
    return (
        session.scalar(
            sa.select(Alert.id)
            .where(Alert.incident_id == incident.id, Alert.status.in_(statuses))
            .limit(1)
        )
        is not None
    )


def _record_change(batch: _Batch, event: PendingEvent) -> _Outcome:
    payload = event.payload
    occurred = payload.get("timestamp")
    occurred_at = (
        datetime.fromisoformat(occurred) if isinstance(occurred, str) else event.received_at
    )
    batch.session.add(
        ChangeEvent(
            service_id=event.service_id,
            integration_id=event.integration_id,
            summary=str(payload.get("summary") or "")[:1024],
            source=str(payload.get("source") or "")[:255],
            occurred_at=occurred_at,
            received_at=event.received_at,
            details={
                "custom_details": payload.get("custom_details") or {},
                "links": payload.get("links") or [],
            },
        )
    )
    return _Outcome(event.id, "processed", "recorded change event")


def _alert_details(payload: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "component",
        "group",
        "class",
        "custom_details",
        "links",
        "images",
        "client",
        "client_url",
        "timestamp",
    )
    return {k: payload[k] for k in keys if payload.get(k) not in (None, "", [], {})}
