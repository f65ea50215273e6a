"""/api/v1 schedules, overrides and escalation policies, and who is on call.

Anyone with a token reads. Admins define schedules and policies. Responders add and remove
overrides for themselves (taking a shift), admins for anyone."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, Query, Response
from sqlalchemy.orm import Session

from tocsin.api.deps import Admin, Db, DbRead, Reader, Responder, get_runtime
from tocsin.api.pagination import Page, PageParams, fetch_page
from tocsin.api.routing import IdPath, Pages, SlugPath, api_router
from tocsin.auth.service import Principal
from tocsin.errors import ApiError
from tocsin.oncall import lookups
from tocsin.oncall import service as oncall
from tocsin.oncall.definitions import check_layers, restriction_in
from tocsin.oncall.lookups import policy_by_slug, schedule_by_slug, user_briefs
from tocsin.oncall.models import EscalationPolicy, Schedule, ScheduleOverride
from tocsin.oncall.schemas import (
    GapsOut,
    LayerOut,
    LevelOnCallOut,
    LevelOut,
    OnCallNow,
    OverrideCreate,
    OverrideOut,
    Period,
    PolicyCreate,
    PolicyOnCall,
    PolicyOnCallOut,
    PolicyOut,
    PolicyUpdate,
    ScheduleCreate,
    ScheduleOut,
    ScheduleUpdate,
    ServiceGaps,
    ServiceOnCallOut,
    ShiftOut,
    ShiftsOut,
    TargetOut,
    TeamOnCallOut,
)
from tocsin.oncall.store import (
    LevelDef,
    TargetRef,
    UnknownName,
    layer_views,
    level_defs,
    policies_targeting,
    set_layers,
    set_levels,
)
from tocsin.orgs import service as orgs
from tocsin.orgs.models import Service, Team, User
from tocsin.orgs.schemas import error_responses
from tocsin.runtime import Runtime

router = api_router(errors=(403,))
At = Annotated[
    datetime | None,
    Query(description="An instant (ISO 8601; UTC without an offset); now when absent."),
]
_404_409 = error_responses(404, 409)
DEFAULT_SHIFTS_WINDOW = timedelta(days=7)
MAX_GAP_DAYS = 90


def _now(runtime: Runtime) -> datetime:
    return runtime.clock.now()


def _unknown(exc: UnknownName) -> ApiError:
    return ApiError(404, str(exc))


# ---- presentation --------------------------------------------------------------------------


def schedules_out(session: Session, rows: Sequence[Schedule]) -> list[ScheduleOut]:
    teams = orgs.slugs_by_id(session, Team, [s.team_id for s in rows])
    layers = layer_views(session, rows)
    return [
        ScheduleOut(
            id=s.id,
            slug=s.slug,
            name=s.name,
            description=s.description,
            time_zone=s.time_zone,
            team=teams.get(s.team_id) if s.team_id is not None else None,
            layers=[
                LayerOut(
                    position=position,
                    name=layer.name,
                    members=layer.members,
                    start=layer.start,
                    rotation={"length": layer.rotation_length, "unit": layer.rotation_unit},
                    restrictions=[restriction_in(r).model_dump() for r in layer.restrictions],
                    end=layer.end,
                )
                for position, layer in enumerate(layers[s.id])
            ],
            created_at=s.created_at,
        )
        for s in rows
    ]


def _services_by_policy(session: Session, slugs: Sequence[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {slug: [] for slug in slugs}
    if slugs:
        rows = session.execute(
            sa.select(Service.escalation_policy, Service.slug)
            .where(Service.escalation_policy.in_(slugs))
            .order_by(Service.slug)
        )
        for policy, service in rows:
            out[str(policy)].append(service)
    return out


def policies_out(session: Session, rows: Sequence[EscalationPolicy]) -> list[PolicyOut]:
    teams = orgs.slugs_by_id(session, Team, [p.team_id for p in rows])
    levels = level_defs(session, rows)
    services = _services_by_policy(session, [p.slug for p in rows])
    return [
        PolicyOut(
            id=p.id,
            slug=p.slug,
            name=p.name,
            description=p.description,
            team=teams.get(p.team_id) if p.team_id is not None else None,
            repeat=p.repeat,
            levels=[
                LevelOut(
                    level=number,
                    delay_minutes=level.delay_minutes,
                    targets=[_target_out(t) for t in level.targets],
                )
                for number, level in enumerate(levels[p.id], start=1)
            ],
            services=services[p.slug],
            created_at=p.created_at,
        )
        for p in rows
    ]


def _target_out(target: TargetRef) -> TargetOut:
    if target.type == "user":
        return TargetOut(type="user", username=target.name)
    return TargetOut(type=target.type, slug=target.name)


def overrides_out(
    session: Session, schedule: Schedule, rows: Sequence[ScheduleOverride]
) -> list[OverrideOut]:
    names = orgs.usernames_by_id(session, [o.user_id for o in rows])
    return [
        OverrideOut(
            id=o.id,
            schedule=schedule.slug,
            user=names.get(o.user_id),
            start=o.start_at,
            end=o.end_at,
            created_at=o.created_at,
            created_by=o.created_by,
        )
        for o in rows
    ]


# ---- schedules -----------------------------------------------------------------------------


@router.get("/schedules", response_model=Page[ScheduleOut], tags=["schedules"])
def list_schedules(
    _: Principal = Reader, session: Session = DbRead, page: PageParams = Pages
) -> Any:
    rows, cursor = fetch_page(session, sa.select(Schedule), [Schedule.id], page, descending=False)
    return Page[ScheduleOut](items=schedules_out(session, rows), next_cursor=cursor)


@router.get("/schedules/{slug}", response_model=ScheduleOut, tags=["schedules"], responses=_404_409)
def get_schedule(slug: SlugPath, _: Principal = Reader, session: Session = DbRead) -> Any:
    return schedules_out(session, [schedule_by_slug(session, slug)])[0]


@router.post(
    "/schedules",
    response_model=ScheduleOut,
    status_code=201,
    tags=["schedules"],
    responses=_404_409,
)
def create_schedule(
    body: ScheduleCreate,
    _: Principal = Admin,
    session: Session = Db,
    runtime: Runtime = Depends(get_runtime),
) -> Any:
    orgs.ensure_unique(session, Schedule.slug, body.slug, "schedule slug")
    schedule = Schedule(
        slug=body.slug,
        name=body.name,
        description=body.description,
        time_zone=body.time_zone,
        team_id=orgs.team_id(session, body.team),
        created_at=_now(runtime),
    )
    session.add(schedule)
    orgs.flush_or_conflict(session, f"schedule slug {body.slug!r} is already taken")
    try:
        set_layers(session, schedule, body.layers)
    except UnknownName as exc:
        raise _unknown(exc) from exc
    return schedules_out(session, [schedule])[0]


@router.patch(
    "/schedules/{slug}", response_model=ScheduleOut, tags=["schedules"], responses=_404_409
)
def update_schedule(
    slug: SlugPath, body: ScheduleUpdate, _: Principal = Admin, session: Session = Db
) -> Any:
    schedule = schedule_by_slug(session, slug)
    changes = body.changes()
    if "slug" in changes:
        orgs.ensure_unique(
            session, Schedule.slug, changes["slug"], "schedule slug", exclude_id=schedule.id
        )
    new_layers = changes.pop("layers", None)
    if new_layers is not None:
        try:
            check_layers(changes.get("time_zone", schedule.time_zone), new_layers)
        except ValueError as exc:
            raise ApiError(422, f"layers: {exc}") from exc
    if "team" in changes:
        schedule.team_id = orgs.team_id(session, changes.pop("team"))
    for name, value in changes.items():
        setattr(schedule, name, value)
    orgs.flush_or_conflict(session, "the schedule's new slug is already taken")
    if new_layers is not None:
        try:
            set_layers(session, schedule, new_layers)
        except UnknownName as exc:
            raise _unknown(exc) from exc
    return schedules_out(session, [schedule])[0]


@router.delete("/schedules/{slug}", status_code=204, tags=["schedules"], responses=_404_409)
def delete_schedule(slug: SlugPath, _: Principal = Admin, session: Session = Db) -> Response:
    schedule = schedule_by_slug(session, slug)
    policies = policies_targeting(session, "schedule", schedule.id)
    if policies:
        raise ApiError(
            409,
            f"escalation policies {', '.join(policies)} page schedule {schedule.slug}: "
            "take it out of their levels first",
        )
    session.delete(schedule)
    session.flush()
    return Response(status_code=204)


# ---- overrides -----------------------------------------------------------------------------


@router.get(
    "/schedules/{slug}/overrides",
    response_model=Page[OverrideOut],
    tags=["schedules"],
    responses=_404_409,
)
def list_overrides(
    slug: SlugPath,
    _: Principal = Reader,
    session: Session = DbRead,
    page: PageParams = Pages,
    runtime: Runtime = Depends(get_runtime),
    since: datetime | None = Query(
        None, description="Only overrides still running at or after this instant (default now)."
    ),
    until: datetime | None = Query(None, description="Only overrides starting before this."),
) -> Any:
    """Oldest start first."""
    schedule = schedule_by_slug(session, slug)
    lo = lookups.instant(since, _now(runtime))
    stmt = sa.select(ScheduleOverride).where(
        ScheduleOverride.schedule_id == schedule.id, ScheduleOverride.end_at > lo
    )
    if until is not None:
        stmt = stmt.where(ScheduleOverride.start_at < lookups.instant(until, lo))
    rows, cursor = fetch_page(
        session, stmt, [ScheduleOverride.start_at, ScheduleOverride.id], page, descending=False
    )
    return Page[OverrideOut](items=overrides_out(session, schedule, rows), next_cursor=cursor)


def _override_user(session: Session, principal: Principal, username: str | None) -> User:
    if username is None:
        if principal.user_id is None:
            raise ApiError(422, "user: this token belongs to no user, so name one")
        user = session.get(User, principal.user_id)
        assert user is not None  # the token was just authenticated
    else:
        user = orgs.user_by_username(session, username)
    if user.id != principal.user_id and not principal.has_role("admin"):
        raise ApiError(403, "only an admin may add overrides for someone else")
    if not user.active:
        raise ApiError(409, f"{user.username} is deactivated and cannot be on call")
    return user


@router.post(
    "/schedules/{slug}/overrides",
    response_model=OverrideOut,
    status_code=201,
    tags=["schedules"],
    responses=_404_409,
)
def create_override(
    slug: SlugPath,
    body: OverrideCreate,
    principal: Principal = Responder,
    session: Session = Db,
    runtime: Runtime = Depends(get_runtime),
) -> Any:
    """Put someone on call over every layer from start to end (the latest override wins)."""
    schedule = schedule_by_slug(session, slug)
    user = _override_user(session, principal, body.user)
    now = _now(runtime)
    start, end = lookups.instant(body.start, now), lookups.instant(body.end, now)
    if end <= start:
        raise ApiError(422, "end must be later than start")
    if end <= now:
        raise ApiError(422, "the override ends in the past")
    if end - start > timedelta(days=366):
        raise ApiError(422, "an override lasts at most 366 days")
    override = ScheduleOverride(
        schedule_id=schedule.id,
        user_id=user.id,
        start_at=start,
        end_at=end,
        created_at=now,
        created_by=principal.actor,
    )
    session.add(override)
    session.flush()
    return overrides_out(session, schedule, [override])[0]


@router.delete(
    "/schedules/{slug}/overrides/{override_id}",
    status_code=204,
    tags=["schedules"],
    responses=_404_409,
)
def delete_override(
    slug: SlugPath, override_id: IdPath, principal: Principal = Responder, session: Session = Db
) -> Response:
    schedule = schedule_by_slug(session, slug)
    override = session.get(ScheduleOverride, override_id)
    if override is None or override.schedule_id != schedule.id:
        raise ApiError(404, f"schedule {schedule.slug} has no override with id {override_id}")
    if override.user_id != principal.user_id and not principal.has_role("admin"):
        raise ApiError(403, "only an admin may remove someone else's override")
    session.delete(override)
    session.flush()
    return Response(status_code=204)


# ---- who is on call in a schedule ----------------------------------------------------------


@router.get("/oncall", response_model=Page[OnCallNow], tags=["on-call"])
def oncall_everywhere(
    at: At = None,
    _: Principal = Reader,
    session: Session = DbRead,
    page: PageParams = Pages,
    runtime: Runtime = Depends(get_runtime),
) -> Any:
    """Who is on call in every schedule."""
    when = lookups.instant(at, _now(runtime))
    rows, cursor = fetch_page(session, sa.select(Schedule), [Schedule.id], page, descending=False)
    who = oncall.schedules_on_call(session, rows, when)
    users = user_briefs(session, who.values())
    items = [
        OnCallNow(
            schedule=s.slug,
            name=s.name,
            time_zone=s.time_zone,
            at=when,
            user=None if (user_id := who[s.id]) is None else users.get(user_id),
        )
        for s in rows
    ]
    return Page[OnCallNow](items=items, next_cursor=cursor)


@router.get(
    "/schedules/{slug}/oncall", response_model=OnCallNow, tags=["on-call"], responses=_404_409
)
def schedule_oncall(
    slug: SlugPath,
    at: At = None,
    _: Principal = Reader,
    session: Session = DbRead,
    runtime: Runtime = Depends(get_runtime),
) -> Any:
    schedule = schedule_by_slug(session, slug)
    when = lookups.instant(at, _now(runtime))
    user_id = oncall.schedule_on_call(session, schedule, when)
    users = user_briefs(session, [user_id])
    return OnCallNow(
        schedule=schedule.slug,
        name=schedule.name,
        time_zone=schedule.time_zone,
        at=when,
        user=users.get(user_id) if user_id is not None else None,
    )


@router.get(
    "/schedules/{slug}/shifts", response_model=ShiftsOut, tags=["on-call"], responses=_404_409
)
def schedule_shifts(
    slug: SlugPath,
    start: datetime | None = Query(None, description="Default: now."),
    end: datetime | None = Query(None, description="Default: start + 7 days; at most 90 days."),
    _: Principal = Reader,
    session: Session = DbRead,
    runtime: Runtime = Depends(get_runtime),
) -> Any:
    """The final schedule: overrides over layers, sorted, clipped to [start, end)."""
    schedule = schedule_by_slug(session, slug)
    lo, hi = lookups.window(start, end, _now(runtime), DEFAULT_SHIFTS_WINDOW)
    shifts = oncall.schedule_shifts(session, schedule, lo, hi)
    users = user_briefs(session, (s.user for s in shifts))
    return ShiftsOut(
        schedule=schedule.slug,
        time_zone=schedule.time_zone,
        start=lo,
        end=hi,
        shifts=[
            ShiftOut(user=users.get(int(s.user)), start=s.start, end=s.end, source=s.source)
            for s in shifts
        ],
    )


# ---- escalation policies -------------------------------------------------------------------


def _level_defs(body: PolicyCreate | PolicyUpdate) -> list[LevelDef]:
    assert body.levels is not None
    return [
        LevelDef(
            level.delay_minutes,
            [TargetRef(t.type, t.username if t.type == "user" else t.slug) for t in level.targets],
        )
        for level in body.levels
    ]


@router.get("/escalation-policies", response_model=Page[PolicyOut], tags=["escalation policies"])
def list_policies(
    _: Principal = Reader, session: Session = DbRead, page: PageParams = Pages
) -> Any:
    rows, cursor = fetch_page(
        session, sa.select(EscalationPolicy), [EscalationPolicy.id], page, descending=False
    )
    return Page[PolicyOut](items=policies_out(session, rows), next_cursor=cursor)


@router.get(
    "/escalation-policies/{slug}",
    response_model=PolicyOut,
    tags=["escalation policies"],
    responses=_404_409,
)
def get_policy(slug: SlugPath, _: Principal = Reader, session: Session = DbRead) -> Any:
    return policies_out(session, [policy_by_slug(session, slug)])[0]


@router.post(
    "/escalation-policies",
    response_model=PolicyOut,
    status_code=201,
    tags=["escalation policies"],
    responses=_404_409,
)
def create_policy(
    body: PolicyCreate,
    _: Principal = Admin,
    session: Session = Db,
    runtime: Runtime = Depends(get_runtime),
) -> Any:
    orgs.ensure_unique(session, EscalationPolicy.slug, body.slug, "escalation policy slug")
    policy = EscalationPolicy(
        slug=body.slug,
        name=body.name,
        description=body.description,
        team_id=orgs.team_id(session, body.team),
        repeat=body.repeat,
        created_at=_now(runtime),
    )
    session.add(policy)
    orgs.flush_or_conflict(session, f"escalation policy slug {body.slug!r} is already taken")
    try:
        set_levels(session, policy, _level_defs(body))
    except UnknownName as exc:
        raise _unknown(exc) from exc
    return policies_out(session, [policy])[0]


@router.patch(
    "/escalation-policies/{slug}",
    response_model=PolicyOut,
    tags=["escalation policies"],
    responses=_404_409,
)
def update_policy(
    slug: SlugPath, body: PolicyUpdate, _: Principal = Admin, session: Session = Db
) -> Any:
    policy = policy_by_slug(session, slug)
    changes = body.changes()
    old_slug = policy.slug
    if "slug" in changes:
        orgs.ensure_unique(
            session,
            EscalationPolicy.slug,
            changes["slug"],
            "escalation policy slug",
            exclude_id=policy.id,
        )
    if "team" in changes:
        policy.team_id = orgs.team_id(session, changes.pop("team"))
    if changes.pop("levels", None) is not None:
        try:
            set_levels(session, policy, _level_defs(body))
        except UnknownName as exc:
            raise _unknown(exc) from exc
    for name, value in changes.items():
        setattr(policy, name, value)
    orgs.flush_or_conflict(session, "the escalation policy's new slug is already taken")
    if policy.slug != old_slug:
        # Services name their policy by slug: they follow the rename.
        session.execute(
            sa.update(Service)
            .where(Service.escalation_policy == old_slug)
            .values(escalation_policy=policy.slug)
        )
    return policies_out(session, [policy])[0]


@router.delete(
    "/escalation-policies/{slug}",
    status_code=204,
    tags=["escalation policies"],
    responses=_404_409,
)
def delete_policy(slug: SlugPath, _: Principal = Admin, session: Session = Db) -> Response:
    policy = policy_by_slug(session, slug)
    services = _services_by_policy(session, [policy.slug])[policy.slug]
    if services:
        raise ApiError(
            409,
            f"services {', '.join(services)} use escalation policy {policy.slug}: "
            "give them another policy first",
        )
    session.delete(policy)
    session.flush()
    return Response(status_code=204)


# ---- who is on call for a policy, a service, a team ----------------------------------------


def levels_out(session: Session, levels: Sequence[Any]) -> list[LevelOnCallOut]:
    """tocsin.oncall.service's LevelOnCall (position, delay_minutes, user_ids) as the API
    shows it: level numbers from 1 and user names."""
    users = user_briefs(session, (u for level in levels for u in level.user_ids))
    return [
        LevelOnCallOut(
            level=level.position + 1,
            delay_minutes=level.delay_minutes,
            users=[users[u] for u in level.user_ids if u in users],
        )
        for level in levels
    ]


@router.get(
    "/escalation-policies/{slug}/oncall",
    response_model=PolicyOnCallOut,
    tags=["on-call"],
    responses=_404_409,
)
def policy_oncall(
    slug: SlugPath,
    at: At = None,
    _: Principal = Reader,
    session: Session = DbRead,
    runtime: Runtime = Depends(get_runtime),
) -> Any:
    """Who each level of the policy would page."""
    policy = policy_by_slug(session, slug)
    when = lookups.instant(at, _now(runtime))
    levels = oncall.policy_on_call(session, policy, when)
    return PolicyOnCallOut(policy=policy.slug, at=when, levels=levels_out(session, levels))


@router.get(
    "/services/{slug}/oncall",
    response_model=ServiceOnCallOut,
    tags=["on-call"],
    responses=_404_409,
)
def service_oncall(
    slug: SlugPath,
    at: At = None,
    _: Principal = Reader,
    session: Session = DbRead,
    runtime: Runtime = Depends(get_runtime),
) -> Any:
    """Who the service's escalation policy would page, level by level."""
    service = orgs.service_by_slug(session, slug)
    when = lookups.instant(at, _now(runtime))
    levels = oncall.service_on_call(session, service, when)
    return ServiceOnCallOut(
        service=service.slug,
        policy=service.escalation_policy,
        at=when,
        levels=levels_out(session, levels),
    )


@router.get(
    "/teams/{slug}/oncall", response_model=TeamOnCallOut, tags=["on-call"], responses=_404_409
)
def team_oncall(
    slug: SlugPath,
    at: At = None,
    _: Principal = Reader,
    session: Session = DbRead,
    runtime: Runtime = Depends(get_runtime),
) -> Any:
    """Who each of the team's escalation policies would page."""
    team = orgs.team_by_slug(session, slug)
    when = lookups.instant(at, _now(runtime))
    by_policy = oncall.team_on_call(session, team, when)
    return TeamOnCallOut(
        team=team.slug,
        at=when,
        policies=[
            PolicyOnCall(policy=policy, levels=levels_out(session, levels))
            for policy, levels in sorted(by_policy.items())
        ],
    )


@router.get("/oncall/gaps", response_model=GapsOut, tags=["on-call"])
def coverage_gaps(
    days: int = Query(14, ge=1, le=MAX_GAP_DAYS, description="How far ahead to look."),
    _: Principal = Reader,
    session: Session = DbRead,
    runtime: Runtime = Depends(get_runtime),
) -> Any:
    """Every high-urgency service with the periods in the next ``days`` in which its
    escalation policy would reach nobody at any level (a service without a policy reaches
    nobody at all)."""
    start = _now(runtime)
    end = start + timedelta(days=days)
    rows = session.scalars(
        sa.select(Service)
        .where(Service.urgency == "high", Service.internal.is_(False))
        .order_by(Service.slug)
    ).all()
    return GapsOut(
        start=start,
        end=end,
        services=[
            ServiceGaps(
                service=s.slug,
                policy=s.escalation_policy,
                gaps=[
                    Period(start=a, end=b) for a, b in oncall.service_gaps(session, s, start, end)
                ],
            )
            for s in rows
        ],
    )
