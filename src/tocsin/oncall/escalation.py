"""Escalation: who is paged for a triggered incident, and when (docs/escalation.md).

An escalation is a chain of `escalation.step` jobs. Each step pages one level of the policy,
writes the timeline, records where the incident stands (`escalation_level`,
`escalation_loop`) and enqueues the next step, all in one transaction. Two fences keep a
step from acting when something has happened since it was enqueued:

- the incident `generation` (bumped by every state change: acknowledge and resolve stop the
  escalation this way, and a re-trigger or reassignment starts a new one);
- the position the incident stood at when the step was enqueued (`after`): a manual
  escalation moves the position, and the step it supersedes exits.

Loops are numbered over the incident's life: an escalation that starts again (the incident is
re-triggered, reassigned or escalated by hand) starts in the next loop number and then runs
the policy `repeat + 1` times. So every page has its own (incident, level, loop, user), which is
what makes `page_user` idempotent without ever swallowing a page that should be sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tocsin.engine.models import Job
from tocsin.engine.queue import enqueue
from tocsin.engine.worker import PermanentJobError
from tocsin.errors import ApiError
from tocsin.incidents import service as incidents
from tocsin.incidents import timeline
from tocsin.incidents.models import Incident, TimelineEntry
from tocsin.notify import pages
from tocsin.oncall.models import EscalationPolicy, Schedule
from tocsin.oncall.service import policy_by_slug, policy_levels, targets_on_call
from tocsin.oncall.support_hours import local_label, next_opening
from tocsin.orgs.models import URGENCIES, Service, Team, User

STEP_JOB = "escalation.step"
ACTOR = "system:escalation"
# Pages outside the policy (responder requests) use this level; their loop numbers the request.
MOBILISE_LEVEL = -1
# The pause before the policy's next level when an assigned incident has no policy to take it.
DEFAULT_DELAY_MINUTES = 30

LEVEL_KIND = "escalation.level"
WAITING_KIND = "escalation.waiting"
EXHAUSTED_KIND = "escalation.exhausted"
RESPONDERS_KIND = "responders.requested"

# Set while escalate_now re-triggers an acknowledged incident, so the lifecycle hook leaves the
# new escalation to it.
_MANUAL = "tocsin_escalation_manual"


# --------------------------------------------------------------------------------------------
# Delivery (tocsin.notify.pages)
# --------------------------------------------------------------------------------------------


def send_page(
    session: Session,
    *,
    incident: Incident,
    user_id: int,
    level: int,
    loop: int,
    now: datetime,
    reason: str,
) -> int:
    """Hand one page to the notification outbox; returns the outbox rows created. The outbox
    keeps one page per (incident, level, loop, user, contact method)."""
    return pages.page_user(
        session,
        incident=incident,
        user_id=user_id,
        level=level,
        loop=loop,
        now=now,
        reason=reason,
    )


# --------------------------------------------------------------------------------------------
# The levels an incident escalates through
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    policy: EscalationPolicy | None
    # (delay_minutes, targets) per level, first level first.
    levels: list[tuple[int, list[dict[str, Any]]]]
    repeat: int
    assigned: bool

    def describe(self) -> str:
        return f"escalation policy {self.policy.name}" if self.policy else "the assignee"


def plan_for(session: Session, incident: Incident) -> Plan:
    """The incident's policy, read now; an assigned incident's first level is its assignee."""
    policy = (
        session.get(EscalationPolicy, incident.escalation_policy_id)
        if incident.escalation_policy_id is not None
        else None
    )
    levels = (
        [(lv.delay_minutes, list(lv.targets or [])) for lv in policy_levels(session, policy)]
        if policy is not None
        else []
    )
    if incident.assignee_id is not None:
        delay = levels[0][0] if levels else DEFAULT_DELAY_MINUTES
        levels = [(delay, [{"type": "user", "id": incident.assignee_id}]), *levels[1:]]
    return Plan(policy, levels, policy.repeat if policy else 0, incident.assignee_id is not None)


def step_key(incident: Incident, level: int, loop: int) -> str:
    return f"{STEP_JOB}:{incident.id}:{incident.generation}:{level}:{loop}"


# --------------------------------------------------------------------------------------------
# Starting: the lifecycle hook
# --------------------------------------------------------------------------------------------


def on_incident_change(
    session: Session, incident: Incident, previous: str | None, now: datetime
) -> None:
    """Every change into `triggered` (opened, re-triggered, reassigned) starts an escalation.
    Any other change only bumped the generation, which is what stops the running one."""
    if incident.status != "triggered" or session.info.get(_MANUAL) == incident.id:
        return
    first_loop = 0 if previous is None else incident.escalation_loop + 1
    policy = _adopt_service_policy(session, incident)
    incident.escalation_level = 0
    incident.escalation_loop = first_loop
    if policy is None and incident.assignee_id is None:
        return  # nobody to page; `tocsin oncall gaps` shows such services
    _schedule_step(
        session, incident, level=0, loop=first_loop, first_loop=first_loop, due=now, now=now
    )


def _schedule_step(
    session: Session,
    incident: Incident,
    *,
    level: int,
    loop: int,
    first_loop: int,
    due: datetime,
    now: datetime,
) -> None:
    """Enqueue the step that pages (level, loop), held for support hours when it must be."""
    held = _support_hours_hold(session, incident, due, now)
    if held is None:
        return
    enqueue(
        session,
        kind=STEP_JOB,
        due_at=held,
        now=now,
        payload={
            "incident_id": incident.id,
            "generation": incident.generation,
            "level": level,
            "loop": loop,
            "first_loop": first_loop,
            "after": [incident.escalation_level, incident.escalation_loop],
        },
        unique_key=step_key(incident, level, loop),
    )


def _support_hours_hold(
    session: Session, incident: Incident, due: datetime, now: datetime
) -> datetime | None:
    """When a step due at `due` may page: low urgency waits for the service's support hours
    (the wait is written to the timeline); None when they never open."""
    if incident.urgency != "low":
        return due
    service = session.get(Service, incident.service_id)
    hours = service.support_hours if service else None
    opens = next_opening(hours, due)
    if opens is None:
        timeline.append(
            session,
            incident_id=incident.id,
            at=now,
            kind=WAITING_KIND,
            actor=ACTOR,
            message="low urgency: the service's support hours never open, so nobody is paged",
        )
        return None
    if opens > due and hours:
        timeline.append(
            session,
            incident_id=incident.id,
            at=now,
            kind=WAITING_KIND,
            actor=ACTOR,
            message=f"waiting for support hours until {local_label(opens, hours['time_zone'])}",
            data={"until": opens.isoformat()},
        )
    return opens


# --------------------------------------------------------------------------------------------
# One step
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepPayload:
    incident_id: int
    generation: int
    level: int
    loop: int
    first_loop: int
    after: tuple[int, int]

    @classmethod
    def parse(cls, payload: dict[str, Any]) -> StepPayload:
        try:
            after = payload["after"]
            return cls(
                int(payload["incident_id"]),
                int(payload["generation"]),
                int(payload["level"]),
                int(payload["loop"]),
                int(payload["first_loop"]),
                (int(after[0]), int(after[1])),
            )
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise PermanentJobError(f"malformed escalation step payload: {payload!r}") from exc


def run_step(session: Session, payload: dict[str, Any], now: datetime) -> None:
    """The `escalation.step` handler's work, in the job's transaction."""
    step = StepPayload.parse(payload)
    incident = _locked(session, step.incident_id)
    if (
        incident is None
        or incident.generation != step.generation
        or incident.status != "triggered"
        or (incident.escalation_level, incident.escalation_loop) != step.after
    ):
        return  # stale: acknowledged, resolved, started again or escalated by hand since
    plan = plan_for(session, incident)
    if not plan.levels:
        _exhausted(session, incident, now, ACTOR, "the escalation policy has no levels any more")
        return
    if step.level >= len(plan.levels):
        # The policy lost levels while this step waited: carry on with the next loop.
        _continue(session, incident, plan, step.level, step.loop, step.first_loop, now, now)
        return
    page_level(session, incident, plan, step.level, step.loop, step.first_loop, now, ACTOR)


def page_level(
    session: Session,
    incident: Incident,
    plan: Plan,
    level: int,
    loop: int,
    first_loop: int,
    now: datetime,
    actor: str,
) -> list[int]:
    """Page everyone `level` reaches now, record the position, schedule what comes next."""
    delay, targets = plan.levels[level]
    [users] = targets_on_call(session, [targets], now)
    reason = (
        "assigned to you"
        if plan.assigned and level == 0
        else f"escalation level {level} (loop {loop})"
    )
    for user_id in users:
        send_page(
            session,
            incident=incident,
            user_id=user_id,
            level=level,
            loop=loop,
            now=now,
            reason=reason,
        )
    names = usernames(session, users)
    by = "" if actor == ACTOR else f" by {actor}"
    timeline.append(
        session,
        incident_id=incident.id,
        at=now,
        kind=LEVEL_KIND,
        actor=actor,
        message=(
            f"escalated{by} to level {level} (loop {loop}): paged {', '.join(names)}"
            if users
            else f"level {level} reached nobody (loop {loop})"
        ),
        data={"level": level, "loop": loop, "user_ids": users},
    )
    incident.escalation_level = level
    incident.escalation_loop = loop
    # A level that reached nobody hands over at once: waiting would only delay the next one.
    due = now + timedelta(minutes=delay) if users else now
    _continue(session, incident, plan, level, loop, first_loop, due, now)
    return users


def _continue(
    session: Session,
    incident: Incident,
    plan: Plan,
    level: int,
    loop: int,
    first_loop: int,
    due: datetime,
    now: datetime,
) -> None:
    if level + 1 < len(plan.levels):
        nxt = (level + 1, loop)
    elif loop + 1 <= first_loop + plan.repeat:
        nxt = (0, loop + 1)
    else:
        loops = loop - first_loop + 1
        _exhausted(
            session,
            incident,
            now,
            ACTOR,
            f"{plan.describe()} ran {loops} loop{'s' if loops != 1 else ''}; "
            "nobody else will be paged until the incident changes",
        )
        return
    _schedule_step(
        session, incident, level=nxt[0], loop=nxt[1], first_loop=first_loop, due=due, now=now
    )


def _exhausted(session: Session, incident: Incident, now: datetime, actor: str, why: str) -> None:
    timeline.append(
        session,
        incident_id=incident.id,
        at=now,
        kind=EXHAUSTED_KIND,
        actor=actor,
        message=f"escalation exhausted: {why}",
        data={"level": incident.escalation_level, "loop": incident.escalation_loop},
    )


# --------------------------------------------------------------------------------------------
# Manual escalation, responder requests, paging a team
# --------------------------------------------------------------------------------------------


def escalate_now(
    session: Session, incident: Incident, *, now: datetime, actor: str, level: int | None = None
) -> None:
    """Page `level` (default: the level after the last one paged) now and carry on from there.

    This starts a new escalation in the next loop number: the levels after it follow with
    their delays and the policy repeats as configured. An acknowledged incident is triggered
    again (the people paged must be able to acknowledge it).
    """
    _locked(session, incident.id)
    if incident.status == "resolved":
        raise incidents.IncidentStateError("a resolved incident cannot be escalated")
    nothing_paged = incident.escalation_policy_id is None or _first_step_pending(session, incident)
    if incident.escalation_policy_id is None:
        _adopt_service_policy(session, incident)
    plan = plan_for(session, incident)
    if not plan.levels:
        raise incidents.IncidentStateError(
            "its service has no escalation policy and it has no assignee: there is nobody to "
            "escalate to"
        )
    if level is None:
        level = incident.escalation_level + (0 if nothing_paged else 1)
        if level >= len(plan.levels):
            level = 0
    elif not 0 <= level < len(plan.levels):
        raise ApiError(
            422,
            f"level must be between 0 and {len(plan.levels) - 1} "
            f"({plan.describe()} has {len(plan.levels)} levels), got {level}",
        )
    if incident.status == "acknowledged":
        session.info[_MANUAL] = incident.id
        try:
            incidents.retrigger(
                session,
                incident,
                now=now,
                actor=actor,
                reason=f"Escalated by {actor}; the incident is triggered again",
            )
        finally:
            session.info.pop(_MANUAL, None)
    loop = incident.escalation_loop + 1
    page_level(session, incident, plan, level, loop, loop, now, actor)


def _first_step_pending(session: Session, incident: Incident) -> bool:
    """Whether the step for the incident's recorded position has yet to run (the escalation
    is waiting for support hours, or its first step is not due yet)."""
    key = step_key(incident, incident.escalation_level, incident.escalation_loop)
    state = session.scalar(sa.select(Job.state).where(Job.unique_key == key))
    return state in ("pending", "running")


def mobilise(
    session: Session,
    incident: Incident,
    *,
    now: datetime,
    actor: str,
    user_ids: Iterable[int] = (),
    schedule_ids: Iterable[int] = (),
    team_ids: Iterable[int] = (),
    message: str | None = None,
) -> list[int]:
    """Page users, whoever is on call in schedules, and teams into an open incident (a
    responder request). Returns the user ids paged; the request is on the timeline."""
    _locked(session, incident.id)
    if incident.status == "resolved":
        raise incidents.IncidentStateError("a resolved incident cannot request responders")
    targets = _checked_targets(session, list(user_ids), list(schedule_ids), list(team_ids))
    [users] = targets_on_call(session, [targets], now)
    request = int(
        session.scalar(
            sa.select(sa.func.count())
            .select_from(TimelineEntry)
            .where(TimelineEntry.incident_id == incident.id, TimelineEntry.kind == RESPONDERS_KIND)
        )
        or 0
    )
    note = (message or "").strip()
    reason = f"{actor} requests you as a responder" + (f": {note}" if note else "")
    for user_id in users:
        send_page(
            session,
            incident=incident,
            user_id=user_id,
            level=MOBILISE_LEVEL,
            loop=request,
            now=now,
            reason=reason,
        )
    paged = ", ".join(usernames(session, users)) if users else "nobody could be reached"
    timeline.append(
        session,
        incident_id=incident.id,
        at=now,
        kind=RESPONDERS_KIND,
        actor=actor,
        message=f"responders requested: {paged}" + (f" ({note})" if note else ""),
        data={"request": request, "targets": targets, "user_ids": users, "message": note},
    )
    incident.updated_at = now
    return users


def _checked_targets(
    session: Session, user_ids: list[int], schedule_ids: list[int], team_ids: list[int]
) -> list[dict[str, Any]]:
    if not (user_ids or schedule_ids or team_ids):
        raise ApiError(422, "name at least one user, schedule or team to request")
    users = {u.id: u for u in session.scalars(sa.select(User).where(User.id.in_(set(user_ids))))}
    for user_id in user_ids:
        if user_id not in users:
            raise ApiError(404, f"no user with id {user_id}")
        if not users[user_id].active:
            raise ApiError(409, f"{users[user_id].username} is deactivated and cannot be paged")
    for model, ids, what in ((Schedule, schedule_ids, "schedule"), (Team, team_ids, "team")):
        found = set(session.scalars(sa.select(model.id).where(model.id.in_(set(ids)))))
        for ident in ids:
            if ident not in found:
                raise ApiError(404, f"no {what} with id {ident}")
    return (
        [{"type": "user", "id": i} for i in dict.fromkeys(user_ids)]
        + [{"type": "schedule", "id": i} for i in dict.fromkeys(schedule_ids)]
        + [{"type": "team", "id": i} for i in dict.fromkeys(team_ids)]
    )


def page_team(
    session: Session,
    team: Team,
    *,
    message: str,
    now: datetime,
    actor: str,
    urgency: str = "high",
) -> Incident:
    """Open an incident for `team` and page it: through the team's escalation policy (the
    first one it owns), or every active member at once when it owns none."""
    title = message.strip()
    if not title:
        raise ApiError(422, "a page needs a message")
    if urgency not in URGENCIES:
        raise ApiError(422, f"urgency must be one of {', '.join(URGENCIES)}, got {urgency!r}")
    service = mobilisation_service(session, team, now)
    policy = session.scalars(
        sa.select(EscalationPolicy)
        .where(EscalationPolicy.team_id == team.id)
        .order_by(EscalationPolicy.id)
        .limit(1)
    ).first()
    service.escalation_policy = policy.slug if policy else None
    session.flush()
    incident = incidents.open_incident(
        session,
        service=service,
        title=title,
        severity="critical" if urgency == "high" else "warning",
        now=now,
        actor=actor,
        urgency=urgency,
    )
    if policy is None:
        mobilise(session, incident, now=now, actor=actor, team_ids=[team.id])
    return incident


def mobilisation_service(session: Session, team: Team, now: datetime) -> Service:
    """The team's internal service for `page_team` incidents, created on first use."""
    slug = f"mobilisation-{team.id}"
    service = session.scalars(sa.select(Service).where(Service.slug == slug)).one_or_none()
    if service is None:
        try:
            with session.begin_nested():
                service = Service(
                    slug=slug,
                    name=f"{team.name} mobilisation"[:200],
                    description=f"Incidents opened to page the team {team.name}.",
                    team_id=team.id,
                    urgency="high",
                    grouping={"type": "none"},
                    internal=True,
                    created_at=now,
                )
                session.add(service)
        except IntegrityError:  # another request created it a moment ago
            service = session.scalars(sa.select(Service).where(Service.slug == slug)).one()
    if not service.internal or service.team_id != team.id:
        raise ApiError(
            409,
            f"the service slug {slug!r} is taken by another service; rename it to page "
            f"{team.slug} as a team",
        )
    return service


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _adopt_service_policy(session: Session, incident: Incident) -> EscalationPolicy | None:
    """Point the incident at its service's escalation policy as it is now (None without one)."""
    service = session.get(Service, incident.service_id)
    policy = policy_by_slug(session, service.escalation_policy if service else None)
    incident.escalation_policy_id = policy.id if policy else None
    return policy


def _locked(session: Session, incident_id: int) -> Incident | None:
    """The incident, re-read under a row lock (PostgreSQL; SQLite has one writer anyway)."""
    return session.scalars(
        sa.select(Incident)
        .where(Incident.id == incident_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()


def usernames(session: Session, user_ids: Sequence[int]) -> list[str]:
    """Usernames in the order of `user_ids` (ids of deleted users as '#id')."""
    names = dict(
        session.execute(sa.select(User.id, User.username).where(User.id.in_(set(user_ids)))).all()
    )
    return [names.get(u, f"#{u}") for u in user_ids]


if on_incident_change not in incidents.LIFECYCLE_HOOKS:
    incidents.LIFECYCLE_HOOKS.append(on_incident_change)
