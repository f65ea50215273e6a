"""Incident state changes. Each one bumps the generation, writes the timeline and (re)sets the
timers that depend on the new state, all in the caller's transaction."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from tocsin.alerts.models import Alert
from tocsin.engine.queue import enqueue
from tocsin.incidents import timeline
from tocsin.incidents.models import Incident
from tocsin.orgs.models import Service, User

AUTO_RESOLVE_JOB = "incident.auto_resolve"
ACK_TIMEOUT_JOB = "incident.ack_timeout"

# Called after every state change with (session, incident, previous status, now); later
# domains (escalation, notification, triage) register here to start their own jobs.
LifecycleHook = Callable[[Session, Incident, str | None, datetime], None]
LIFECYCLE_HOOKS: list[LifecycleHook] = []


class IncidentStateError(ValueError):
    """The requested change does not apply to the incident's current state."""


def _changed(
    session: Session, incident: Incident, previous: str | None, now: datetime, *, bump: bool = True
) -> None:
    if bump:
        incident.generation += 1
    incident.updated_at = now
    _schedule_timers(session, incident, now)
    for hook in LIFECYCLE_HOOKS:
        hook(session, incident, previous, now)


def _transition(
    session: Session,
    incident: Incident,
    previous: str | None,
    now: datetime,
    *,
    kind: str,
    actor: str,
    message: str,
    data: dict[str, Any] | None = None,
) -> None:
    """Record a state change on the timeline, then bump the generation and reset timers."""
    timeline.append(
        session,
        incident_id=incident.id,
        at=now,
        kind=kind,
        actor=actor,
        message=message,
        data=data,
    )
    _changed(session, incident, previous, now)


def _schedule_timers(session: Session, incident: Incident, now: datetime) -> None:
    service = session.get(Service, incident.service_id)
    if service is None or incident.status == "resolved":
        return
    payload = {"incident_id": incident.id, "generation": incident.generation}
    if service.auto_resolve_seconds:
        enqueue(
            session,
            kind=AUTO_RESOLVE_JOB,
            due_at=now + timedelta(seconds=service.auto_resolve_seconds),
            now=now,
            payload=payload,
            unique_key=f"{AUTO_RESOLVE_JOB}:{incident.id}:{incident.generation}",
        )
    if incident.status == "acknowledged" and service.ack_timeout_seconds:
        enqueue(
            session,
            kind=ACK_TIMEOUT_JOB,
            due_at=now + timedelta(seconds=service.ack_timeout_seconds),
            now=now,
            payload=payload,
            unique_key=f"{ACK_TIMEOUT_JOB}:{incident.id}:{incident.generation}",
        )


def new_incident(
    session: Session,
    *,
    service: Service,
    title: str,
    severity: str,
    now: datetime,
    group_key: str | None = None,
    urgency: str | None = None,
    priority: str | None = None,
) -> Incident:
    """Add an incident without flushing it, so that many can be inserted together; call
    ``announce`` for it once it has an id (after the next flush)."""
    incident = Incident(
        service_id=service.id,
        title=title[:1024],
        status="triggered",
        urgency=urgency or service.urgency,
        priority=priority,
        severity=severity,
        group_key=group_key,
        alert_count=0,
        created_at=now,
        updated_at=now,
        last_alert_at=now,
        generation=1,
    )
    session.add(incident)
    return incident


def announce(
    session: Session, incident: Incident, *, service: Service, now: datetime, actor: str
) -> None:
    """The opening entry on the timeline, then timers and lifecycle hooks (escalation)."""
    assert incident.id is not None, "announce() needs a flushed incident"
    timeline.append(
        session,
        incident_id=incident.id,
        at=now,
        kind="incident.triggered",
        actor=actor,
        message=f"Incident opened on service {service.name}: {incident.title}",
        data={"urgency": incident.urgency, "severity": incident.severity},
    )
    _changed(session, incident, None, now, bump=False)


def open_incident(
    session: Session,
    *,
    service: Service,
    title: str,
    severity: str,
    now: datetime,
    actor: str,
    group_key: str | None = None,
    urgency: str | None = None,
    priority: str | None = None,
) -> Incident:
    incident = new_incident(
        session,
        service=service,
        title=title,
        severity=severity,
        now=now,
        group_key=group_key,
        urgency=urgency,
        priority=priority,
    )
    session.flush()
    announce(session, incident, service=service, now=now, actor=actor)
    return incident


def acknowledge(session: Session, incident: Incident, *, now: datetime, actor: str) -> bool:
    """Returns False when there was nothing to do (already acknowledged or resolved)."""
    if incident.status != "triggered":
        return False
    incident.status = "acknowledged"
    incident.acknowledged_at = now
    incident.acknowledged_by = actor
    _transition(
        session,
        incident,
        "triggered",
        now,
        kind="incident.acknowledged",
        actor=actor,
        message=f"Acknowledged by {actor}",
    )
    return True


def resolve(
    session: Session, incident: Incident, *, now: datetime, actor: str, reason: str = ""
) -> bool:
    if incident.status == "resolved":
        return False
    previous = incident.status
    incident.status = "resolved"
    incident.resolved_at = now
    incident.resolved_by = actor
    # Resolving an incident resolves its open alerts, so the same dedup key opens a new one.
    session.execute(
        sa.update(Alert)
        .where(Alert.incident_id == incident.id, Alert.status != "resolved")
        .values(status="resolved", resolved_at=now)
    )
    _transition(
        session,
        incident,
        previous,
        now,
        kind="incident.resolved",
        actor=actor,
        message=f"Resolved by {actor}" + (f": {reason}" if reason else ""),
    )
    return True


def retrigger(
    session: Session, incident: Incident, *, now: datetime, actor: str, reason: str
) -> bool:
    """Back to triggered (for example when an acknowledgement timed out)."""
    if incident.status != "acknowledged":
        return False
    incident.status = "triggered"
    incident.acknowledged_at = None
    incident.acknowledged_by = None
    _transition(
        session,
        incident,
        "acknowledged",
        now,
        kind="incident.retriggered",
        actor=actor,
        message=reason,
    )
    return True


def reassign(
    session: Session, incident: Incident, *, user: User, now: datetime, actor: str
) -> bool:
    if incident.status == "resolved":
        raise IncidentStateError("a resolved incident cannot be reassigned")
    previous = incident.status
    incident.assignee_id = user.id
    # A reassigned incident must be acknowledged again by its new owner.
    incident.status = "triggered"
    incident.acknowledged_at = None
    incident.acknowledged_by = None
    _transition(
        session,
        incident,
        previous,
        now,
        kind="incident.reassigned",
        actor=actor,
        message=f"Reassigned to {user.username}",
        data={"user_id": user.id},
    )
    return True


def add_note(session: Session, incident: Incident, *, text: str, now: datetime, actor: str) -> None:
    timeline.append(
        session, incident_id=incident.id, at=now, kind="note", actor=actor, message=text
    )
    incident.updated_at = now
