"""/api/v1/incidents: list and read (any token), act on them (responders and admins).

Every action goes through incidents.service under a row lock, so two responders acting at once
see each other's change (the second acknowledgement is a 409, not a duplicate)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa
from fastapi import Body, Depends, Query
from sqlalchemy.orm import Session

from tocsin.alerts.models import Alert
from tocsin.api.deps import Db, DbRead, Reader, Responder, get_runtime
from tocsin.api.fields import SLUG_PATTERN, USERNAME_PATTERN
from tocsin.api.pagination import Page, PageParams, fetch_page
from tocsin.api.routing import IdPath, Pages, api_router
from tocsin.auth.service import Principal
from tocsin.errors import ApiError
from tocsin.incidents import service as incidents
from tocsin.incidents.models import Incident, TimelineEntry
from tocsin.incidents.schemas import (
    AlertBrief,
    AlertsSummary,
    IncidentDetail,
    IncidentOut,
    NoteIn,
    ReassignIn,
    ResolveIn,
    TimelineEntryOut,
)
from tocsin.orgs import service as orgs
from tocsin.orgs.models import Service
from tocsin.orgs.schemas import error_responses
from tocsin.runtime import Runtime

router = api_router("/incidents", tags=["incidents"], errors=(403, 404))
RECENT_ALERTS = 20


def incidents_out(session: Session, rows: Sequence[Incident]) -> list[IncidentOut]:
    services = orgs.slugs_by_id(session, Service, [i.service_id for i in rows])
    users = orgs.usernames_by_id(session, [i.assignee_id for i in rows])
    return [
        IncidentOut(
            id=i.id,
            service=services.get(i.service_id, ""),
            title=i.title,
            status=i.status,
            urgency=i.urgency,
            priority=i.priority,
            severity=i.severity,
            assignee=users.get(i.assignee_id) if i.assignee_id is not None else None,
            alert_count=i.alert_count,
            created_at=i.created_at,
            updated_at=i.updated_at,
            last_alert_at=i.last_alert_at,
            acknowledged_at=i.acknowledged_at,
            acknowledged_by=i.acknowledged_by,
            resolved_at=i.resolved_at,
            resolved_by=i.resolved_by,
        )
        for i in rows
    ]


def _utc(instant: datetime | None) -> datetime | None:
    if instant is None or instant.tzinfo is not None:
        return instant
    return instant.replace(tzinfo=UTC)  # a time without an offset is read as UTC


def incident_by_id(session: Session, incident_id: int, *, lock: bool = False) -> Incident:
    """The incident (under a row lock when it is to change), or a 404."""
    incident = session.get(Incident, incident_id, with_for_update=lock)
    if incident is None:
        raise ApiError(404, f"no incident with id {incident_id}")
    return incident


@router.get("", response_model=Page[IncidentOut])
def list_incidents(
    _: Principal = Reader,
    session: Session = DbRead,
    page: PageParams = Pages,
    status: list[Literal["triggered", "acknowledged", "resolved"]] | None = Query(
        None, description="Repeat to match any of several statuses."
    ),
    service: str | None = Query(None, pattern=SLUG_PATTERN, description="A service slug."),
    urgency: Literal["high", "low"] | None = None,
    assignee: str | None = Query(None, pattern=USERNAME_PATTERN, description="A username."),
    since: datetime | None = Query(None, description="Created at or after (ISO 8601)."),
    until: datetime | None = Query(None, description="Created before (ISO 8601)."),
) -> Any:
    """Newest first."""
    since, until = _utc(since), _utc(until)
    if since is not None and until is not None and since >= until:
        raise ApiError(422, "since must be earlier than until")
    stmt = sa.select(Incident)
    if status:
        stmt = stmt.where(Incident.status.in_(status))
    if service is not None:
        stmt = stmt.where(Incident.service_id == orgs.service_by_slug(session, service).id)
    if urgency is not None:
        stmt = stmt.where(Incident.urgency == urgency)
    if assignee is not None:
        stmt = stmt.where(Incident.assignee_id == orgs.user_by_username(session, assignee).id)
    if since is not None:
        stmt = stmt.where(Incident.created_at >= since)
    if until is not None:
        stmt = stmt.where(Incident.created_at < until)
    rows, cursor = fetch_page(
        session, stmt, [Incident.created_at, Incident.id], page, descending=True
    )
    return Page[IncidentOut](items=incidents_out(session, rows), next_cursor=cursor)


def _alerts_summary(session: Session, incident_id: int) -> AlertsSummary:
    rows = session.execute(
        sa.select(Alert.status, sa.func.count())
        .where(Alert.incident_id == incident_id)
        .group_by(Alert.status)
    )
    counts: dict[str, int] = {status: count for status, count in rows}
    recent = session.scalars(
        sa.select(Alert)
        .where(Alert.incident_id == incident_id)
        .order_by(Alert.created_at.desc(), Alert.id.desc())
        .limit(RECENT_ALERTS)
    ).all()
    return AlertsSummary(
        total=sum(counts.values()),
        by_status={s: counts.get(s, 0) for s in ("triggered", "acknowledged", "resolved")},
        recent=[
            AlertBrief(
                id=a.id,
                status=a.status,
                summary=a.summary,
                severity=a.severity,
                source=a.source,
                dedup_key=a.dedup_key,
                event_count=a.event_count,
                created_at=a.created_at,
                last_event_at=a.last_event_at,
            )
            for a in recent
        ],
    )


@router.get("/{incident_id}", response_model=IncidentDetail)
def get_incident(incident_id: IdPath, _: Principal = Reader, session: Session = DbRead) -> Any:
    incident = incident_by_id(session, incident_id)
    [shown] = incidents_out(session, [incident])
    return IncidentDetail(**shown.model_dump(), alerts=_alerts_summary(session, incident.id))


@router.post(
    "/{incident_id}/acknowledge", response_model=IncidentOut, responses=error_responses(409)
)
def acknowledge(
    incident_id: IdPath,
    principal: Principal = Responder,
    session: Session = Db,
    runtime: Runtime = Depends(get_runtime),
) -> Any:
    incident = incident_by_id(session, incident_id, lock=True)
    if incident.status == "acknowledged":
        raise ApiError(
            409, f"incident {incident.id} is already acknowledged by {incident.acknowledged_by}"
        )
    if incident.status == "resolved":
        raise ApiError(409, f"incident {incident.id} is resolved; there is nothing to acknowledge")
    incidents.acknowledge(session, incident, now=runtime.clock.now(), actor=principal.actor)
    session.flush()
    return incidents_out(session, [incident])[0]


@router.post("/{incident_id}/resolve", response_model=IncidentOut, responses=error_responses(409))
def resolve(
    incident_id: IdPath,
    body: ResolveIn | None = Body(None),
    principal: Principal = Responder,
    session: Session = Db,
    runtime: Runtime = Depends(get_runtime),
) -> Any:
    incident = incident_by_id(session, incident_id, lock=True)
    if incident.status == "resolved":
        raise ApiError(409, f"incident {incident.id} is already resolved by {incident.resolved_by}")
    reason = body.reason if body is not None else ""
    incidents.resolve(
        session, incident, now=runtime.clock.now(), actor=principal.actor, reason=reason
    )
    session.flush()
    return incidents_out(session, [incident])[0]


@router.post("/{incident_id}/reassign", response_model=IncidentOut, responses=error_responses(409))
def reassign(
    incident_id: IdPath,
    body: ReassignIn,
    principal: Principal = Responder,
    session: Session = Db,
    runtime: Runtime = Depends(get_runtime),
) -> Any:
    incident = incident_by_id(session, incident_id, lock=True)
    user = orgs.user_by_username(session, body.user)
    if not user.active:
        raise ApiError(409, f"{user.username} is deactivated and cannot be assigned incidents")
    try:
        incidents.reassign(
            session, incident, user=user, now=runtime.clock.now(), actor=principal.actor
        )
    except incidents.IncidentStateError as exc:
        raise ApiError(409, f"incident {incident.id}: {exc}") from exc
    session.flush()
    return incidents_out(session, [incident])[0]


@router.post("/{incident_id}/notes", response_model=TimelineEntryOut, status_code=201)
def add_note(
    incident_id: IdPath,
    body: NoteIn,
    principal: Principal = Responder,
    session: Session = Db,
    runtime: Runtime = Depends(get_runtime),
) -> Any:
    incident = incident_by_id(session, incident_id, lock=True)
    incidents.add_note(
        session, incident, text=body.text, now=runtime.clock.now(), actor=principal.actor
    )
    session.flush()
    # The incident's row lock keeps other notes out, so the newest note is this one.
    entry = session.scalars(
        sa.select(TimelineEntry)
        .where(TimelineEntry.incident_id == incident.id, TimelineEntry.kind == "note")
        .order_by(TimelineEntry.id.desc())
        .limit(1)
    ).one()
    return TimelineEntryOut.model_validate(entry, from_attributes=True)


@router.get("/{incident_id}/timeline", response_model=Page[TimelineEntryOut])
def get_timeline(
    incident_id: IdPath,
    _: Principal = Reader,
    session: Session = DbRead,
    page: PageParams = Pages,
) -> Any:
    """Oldest first."""
    incident = incident_by_id(session, incident_id)
    stmt = sa.select(TimelineEntry).where(TimelineEntry.incident_id == incident.id)
    rows, cursor = fetch_page(
        session, stmt, [TimelineEntry.at, TimelineEntry.id], page, descending=False
    )
    return Page[TimelineEntryOut](
        items=[TimelineEntryOut.model_validate(e, from_attributes=True) for e in rows],
        next_cursor=cursor,
    )
