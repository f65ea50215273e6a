"""Turns accepted events into alerts and incidents.

Events are processed in arrival order by one processor at a time across the cluster (a
PostgreSQL advisory lock; on SQLite the single writer), so deduplication never races.
Each event runs in a savepoint: a bad one is marked failed without holding up the rest.
"""

from __future__ import annotations

import logging
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


# SQLite has one writer: smaller batches keep the group-commit writer's wait short.
SQLITE_BATCH = 64


def process_pending(factory: sessionmaker[Session], clock: Clock, *, limit: int = 500) -> int:
    """Process up to ``limit`` pending events in one transaction. Returns how many."""
    with transaction(factory) as session:
        if session.get_bind().dialect.name == "sqlite":
            limit = min(limit, SQLITE_BATCH)
        else:
            got = session.execute(
                sa.select(sa.func.pg_try_advisory_xact_lock(PROCESSOR_LOCK_ID))
            ).scalar_one()
            if not got:
                return 0
        events = session.scalars(
            sa.select(InboundEvent)
            .where(InboundEvent.status == "pending")
            .order_by(InboundEvent.id)
            .limit(limit)
        ).all()
        now = clock.now()
        for event in events:
            try:
                with session.begin_nested():
                    outcome = apply_event(session, event, now)
                event.status = "dropped" if outcome.startswith("dropped") else "processed"
                event.outcome = outcome
            except Exception as exc:  # one bad event must not block the queue behind it
                log.exception("event %s failed", event.id)
                event.status = "failed"
                event.outcome = f"{type(exc).__name__}: {exc}"[:2000]
            event.processed_at = now
        return len(events)


def apply_event(session: Session, event: InboundEvent, now: datetime) -> str:
    service = session.get(Service, event.service_id)
    integration = session.get(Integration, event.integration_id)
    if service is None or integration is None:
        return "dropped: the service or integration no longer exists"
    if event.action == "change":
        return _record_change(session, event, now)
    actor = f"integration:{service.slug}/{integration.name}"
    open_alert = session.scalars(
        sa.select(Alert).where(
            Alert.service_id == service.id,
            Alert.dedup_key == event.dedup_key,
            Alert.status != "resolved",
        )
    ).one_or_none()
    if event.action == "trigger":
        if open_alert is not None:
            open_alert.event_count += 1
            open_alert.last_event_at = event.received_at
            return f"deduplicated into alert {open_alert.id}"
        alert = _open_alert(session, event, service, now, actor)
        return f"opened alert {alert.id} in incident {alert.incident_id}"
    if open_alert is None:
        return f"dropped: no open alert with dedup key {event.dedup_key!r}"
    if event.action == "acknowledge":
        return _acknowledge_alert(session, open_alert, now, actor)
    if event.action == "resolve":
        return _resolve_alert(session, open_alert, now, actor)
    return f"dropped: unknown action {event.action!r}"


def _open_alert(
    session: Session, event: InboundEvent, service: Service, now: datetime, actor: str
) -> Alert:
    payload = event.payload
    summary = str(payload.get("summary") or event.dedup_key or "alert")
    severity = str(payload.get("severity") or "critical")
    incident = _incident_for(session, service, payload, summary, severity, now, actor)
    alert = Alert(
        service_id=service.id,
        integration_id=event.integration_id,
        incident_id=incident.id,
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
    session.add(alert)
    session.flush()
    incident.alert_count += 1
    incident.last_alert_at = event.received_at
    if SEVERITY_RANK.get(severity, 3) > SEVERITY_RANK.get(incident.severity, 3):
        incident.severity = severity
    timeline.append(
        session,
        incident_id=incident.id,
        at=event.received_at,
        kind="alert.triggered",
        actor=actor,
        message=f"Alert {summary[:200]} ({severity})",
        data={"alert_id": alert.id, "dedup_key": alert.dedup_key, "event_id": event.id},
    )
    return alert


def _incident_for(
    session: Session,
    service: Service,
    payload: dict[str, Any],
    summary: str,
    severity: str,
    now: datetime,
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
            query = query.where(
                Incident.created_at >= now - timedelta(seconds=target.window_seconds)
            )
        existing = session.scalars(query).first()
        if existing is not None:
            return existing
    return incidents.open_incident(
        session,
        service=service,
        title=summary,
        severity=severity,
        now=now,
        actor=actor,
        group_key=target.key,
    )


def _acknowledge_alert(session: Session, alert: Alert, now: datetime, actor: str) -> str:
    if alert.status == "acknowledged":
        return f"alert {alert.id} was already acknowledged"
    alert.status = "acknowledged"
    alert.acknowledged_at = now
    incident = session.get(Incident, alert.incident_id) if alert.incident_id else None
    if incident is not None and not _has_alerts_in(session, incident, "triggered"):
        incidents.acknowledge(session, incident, now=now, actor=actor)
    return f"acknowledged alert {alert.id}"


def _resolve_alert(session: Session, alert: Alert, now: datetime, actor: str) -> str:
    alert.status = "resolved"
    alert.resolved_at = now
    session.flush()
    incident = session.get(Incident, alert.incident_id) if alert.incident_id else None
    if incident is not None:
        timeline.append(
            session,
            incident_id=incident.id,
            at=now,
            kind="alert.resolved",
            actor=actor,
            message=f"Alert {alert.summary[:200]} resolved",
            data={"alert_id": alert.id, "dedup_key": alert.dedup_key},
        )
        if not _has_alerts_in(session, incident, "triggered", "acknowledged"):
            incidents.resolve(session, incident, now=now, actor=actor, reason="all alerts resolved")
    return f"resolved alert {alert.id}"


def _has_alerts_in(session: Session, incident: Incident, *statuses: str) -> bool:
    return (
        session.scalar(
            sa.select(Alert.id)
            .where(Alert.incident_id == incident.id, Alert.status.in_(statuses))
            .limit(1)
        )
        is not None
    )


def _record_change(session: Session, event: InboundEvent, now: datetime) -> str:
    payload = event.payload
    occurred = payload.get("timestamp")
    occurred_at = (
        datetime.fromisoformat(occurred) if isinstance(occurred, str) else event.received_at
    )
    change = ChangeEvent(
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
    session.add(change)
    session.flush()
    return f"recorded change event {change.id}"


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
