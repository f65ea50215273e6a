"""/api/v1 actions that page people: escalate an incident now, mobilise more responders into
it, and page a team with a new incident. Responders and admins may do all three."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import Body, Depends
from sqlalchemy.orm import Session

from tocsin.api.deps import Db, Responder, get_runtime
from tocsin.api.routing import IdPath, api_router
from tocsin.auth.service import Principal
from tocsin.errors import ApiError
from tocsin.incidents.models import Incident
from tocsin.incidents.routes import incident_by_id, incidents_out
from tocsin.oncall import escalation
from tocsin.oncall.models import EscalationLevel, EscalationPolicy
from tocsin.oncall.schemas import EscalateIn, EscalationOut, MobiliseIn, MobiliseOut, PageIn
from tocsin.oncall.store import TargetRef, UnknownName, resolve_targets
from tocsin.orgs import service as orgs
from tocsin.orgs.models import Service
from tocsin.runtime import Runtime

router = api_router(tags=["incidents"], errors=(403, 404, 409))


def escalation_out(session: Session, incident: Incident) -> EscalationOut:
    [shown] = incidents_out(session, [incident])
    policy = (
        session.get(EscalationPolicy, incident.escalation_policy_id)
        if incident.escalation_policy_id is not None
        else None
    )
    return EscalationOut(
        **shown.model_dump(),
        escalation_policy=policy.slug if policy is not None else None,
        escalation_level=incident.escalation_level + 1,
        escalation_loop=incident.escalation_loop,
    )


def _level_count(session: Session, incident: Incident) -> int | None:
    """How many levels the incident escalates through, when it has a policy."""
    policy_id = incident.escalation_policy_id
    if policy_id is None:
        service = session.get(Service, incident.service_id)
        if service is not None and service.escalation_policy:
            policy_id = session.scalar(
                sa.select(EscalationPolicy.id).where(
                    EscalationPolicy.slug == service.escalation_policy
                )
            )
    if policy_id is None:
        return None
    count = session.scalar(
        sa.select(sa.func.count())
        .select_from(EscalationLevel)
        .where(EscalationLevel.policy_id == policy_id)
    )
    return int(count or 0)


@router.post("/incidents/{incident_id}/escalate", response_model=EscalationOut)
def escalate(
    incident_id: IdPath,
    body: EscalateIn | None = Body(None),
    principal: Principal = Responder,
    session: Session = Db,
    runtime: Runtime = Depends(get_runtime),
) -> Any:
    """Page the next level of the incident's escalation policy now (or the level given)."""
    incident = incident_by_id(session, incident_id, lock=True)
    if incident.status == "resolved":
        raise ApiError(409, f"incident {incident.id} is resolved; there is nobody to escalate to")
    level = body.level if body is not None else None
    count = _level_count(session, incident)
    if level is not None and count is not None and level > count:
        raise ApiError(422, f"level {level} does not exist: the escalation policy has {count}")
    try:
        escalation.escalate_now(
            session,
            incident,
            now=runtime.clock.now(),
            actor=principal.actor,
            level=level - 1 if level is not None else None,
        )
    except ValueError as exc:
        raise ApiError(409, f"incident {incident.id}: {exc}") from exc
    session.flush()
    return escalation_out(session, incident)


@router.post("/incidents/{incident_id}/mobilise", response_model=MobiliseOut)
def mobilise(
    incident_id: IdPath,
    body: MobiliseIn,
    principal: Principal = Responder,
    session: Session = Db,
    runtime: Runtime = Depends(get_runtime),
) -> Any:
    """Page more people into an incident: users, whoever is on call in schedules, and every
    member of teams."""
    incident = incident_by_id(session, incident_id, lock=True)
    if incident.status == "resolved":
        raise ApiError(409, f"incident {incident.id} is resolved; reopen it with a new alert")
    refs = [
        *(TargetRef("user", u) for u in body.users),
        *(TargetRef("schedule", s) for s in body.schedules),
        *(TargetRef("team", t) for t in body.teams),
    ]
    try:
        ids = resolve_targets(session, refs)
    except UnknownName as exc:
        raise ApiError(404, str(exc)) from exc
    try:
        paged = escalation.mobilise(
            session,
            incident,
            now=runtime.clock.now(),
            actor=principal.actor,
            user_ids=[ids[r] for r in refs if r.type == "user"],
            schedule_ids=[ids[r] for r in refs if r.type == "schedule"],
            team_ids=[ids[r] for r in refs if r.type == "team"],
            message=body.message,
        )
    except ValueError as exc:
        raise ApiError(409, f"incident {incident.id}: {exc}") from exc
    session.flush()
    names = orgs.usernames_by_id(session, paged)
    return MobiliseOut(incident=incident.id, paged=sorted(names[u] for u in paged if u in names))


@router.post("/page", response_model=EscalationOut, status_code=201)
def page_team(
    body: PageIn,
    principal: Principal = Responder,
    session: Session = Db,
    runtime: Runtime = Depends(get_runtime),
) -> Any:
    """Open an incident for a team and page it through the team's escalation policy."""
    team = orgs.team_by_slug(session, body.team)
    try:
        incident = escalation.page_team(
            session,
            team,
            message=body.message,
            now=runtime.clock.now(),
            actor=principal.actor,
            urgency=body.urgency,
        )
    except ValueError as exc:
        raise ApiError(409, f"cannot page team {team.slug}: {exc}") from exc
    session.flush()
    return escalation_out(session, incident)
