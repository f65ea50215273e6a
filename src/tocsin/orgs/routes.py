"""/api/v1 teams, users, services and integrations. Anyone with a token reads; admins write;
users may edit their own profile."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from fastapi import Depends, Request, Response
from sqlalchemy.orm import Session

from tocsin.api.deps import Admin, Db, DbRead, Reader, get_runtime
from tocsin.api.pagination import Page, PageParams, fetch_page
from tocsin.api.routing import IdPath, Pages, SlugPath, UsernamePath, api_router
from tocsin.auth.service import Principal, hash_password, verify_password
from tocsin.errors import ApiError
from tocsin.ingest.routes import invalidate_integration
from tocsin.oncall.definitions import SupportHours
from tocsin.oncall.lookups import policy_by_slug
from tocsin.orgs import service as orgs
from tocsin.orgs.models import Integration, Service, Team, TeamMember, User
from tocsin.orgs.schemas import (
    GroupingOut,
    IntegrationCreate,
    IntegrationOut,
    MemberAdd,
    MemberOut,
    MeOut,
    ServiceCreate,
    ServiceOut,
    ServiceUpdate,
    TeamCreate,
    TeamOut,
    TeamUpdate,
    UserCreate,
    UserOut,
    UserUpdate,
    error_responses,
)
from tocsin.runtime import Runtime

router = api_router(errors=(403,))
_404_409 = error_responses(404, 409)


# ---- presentation ------------------------------------------------------------------------


def teams_out(session: Session, teams: Sequence[Team]) -> list[TeamOut]:
    members: dict[int, list[MemberOut]] = {t.id: [] for t in teams}
    if members:
        rows = session.execute(
            sa.select(TeamMember.team_id, User.username, User.name, TeamMember.role)
            .join(TeamMember, TeamMember.user_id == User.id)
            .where(TeamMember.team_id.in_(members))
            .order_by(User.username)
        )
        for r in rows:
            members[r.team_id].append(MemberOut(username=r.username, name=r.name, role=r.role))
    return [
        TeamOut(
            id=t.id,
            slug=t.slug,
            name=t.name,
            description=t.description,
            created_at=t.created_at,
            members=members[t.id],
        )
        for t in teams
    ]


def team_out(session: Session, team: Team) -> TeamOut:
    return teams_out(session, [team])[0]


def users_out(session: Session, users: Sequence[User]) -> list[UserOut]:
    teams = orgs.team_slugs_of_users(session, [u.id for u in users])
    return [
        UserOut(
            id=u.id,
            username=u.username,
            name=u.name,
            email=u.email,
            role=u.role,
            time_zone=u.time_zone,
            active=u.active,
            has_password=u.password_hash is not None,
            teams=teams[u.id],
            created_at=u.created_at,
        )
        for u in users
    ]


def services_out(session: Session, services: Sequence[Service]) -> list[ServiceOut]:
    teams = orgs.slugs_by_id(session, Team, [s.team_id for s in services])
    return [
        ServiceOut(
            id=s.id,
            slug=s.slug,
            name=s.name,
            description=s.description,
            team=teams.get(s.team_id) if s.team_id is not None else None,
            escalation_policy=s.escalation_policy,
            urgency=s.urgency,
            auto_resolve_seconds=s.auto_resolve_seconds,
            ack_timeout_seconds=s.ack_timeout_seconds,
            grouping=GroupingOut.model_validate(s.grouping or {"type": "none"}),
            support_hours=(
                SupportHours.model_validate(s.support_hours) if s.support_hours else None
            ),
            internal=s.internal,
            created_at=s.created_at,
        )
        for s in services
    ]


def integration_out(
    integration: Integration, service_slug: str, *, show_key: bool
) -> IntegrationOut:
    return IntegrationOut(
        id=integration.id,
        service=service_slug,
        name=integration.name,
        type=integration.type,
        key=integration.key if show_key else None,
        key_prefix=integration.key[:4],
        options=orgs.public_options(integration.options or {}),
        created_at=integration.created_at,
    )


# ---- teams -------------------------------------------------------------------------------


@router.get("/teams", response_model=Page[TeamOut], tags=["teams"])
def list_teams(_: Principal = Reader, session: Session = DbRead, page: PageParams = Pages) -> Any:
    teams, cursor = fetch_page(session, sa.select(Team), [Team.id], page, descending=False)
    return Page[TeamOut](items=teams_out(session, teams), next_cursor=cursor)


@router.get("/teams/{slug}", response_model=TeamOut, tags=["teams"], responses=_404_409)
def get_team(slug: SlugPath, _: Principal = Reader, session: Session = DbRead) -> Any:
    return team_out(session, orgs.team_by_slug(session, slug))


@router.post("/teams", response_model=TeamOut, status_code=201, tags=["teams"], responses=_404_409)
def create_team(
    body: TeamCreate,
    _: Principal = Admin,
    session: Session = Db,
    runtime: Runtime = Depends(get_runtime),
) -> Any:
    orgs.ensure_unique(session, Team.slug, body.slug, "team slug")
    team = Team(
        slug=body.slug, name=body.name, description=body.description, created_at=runtime.clock.now()
    )
    session.add(team)
    orgs.flush_or_conflict(session, f"team slug {body.slug!r} is already taken")
    return team_out(session, team)


@router.patch("/teams/{slug}", response_model=TeamOut, tags=["teams"], responses=_404_409)
def update_team(
    slug: SlugPath, body: TeamUpdate, _: Principal = Admin, session: Session = Db
) -> Any:
    team = orgs.team_by_slug(session, slug)
    changes = body.changes()
    if "slug" in changes:
        orgs.ensure_unique(session, Team.slug, changes["slug"], "team slug", exclude_id=team.id)
    for name, value in changes.items():
        setattr(team, name, value)
    orgs.flush_or_conflict(session, "the team's new slug is already taken")
    return team_out(session, team)


@router.delete("/teams/{slug}", status_code=204, tags=["teams"], responses=_404_409)
def delete_team(slug: SlugPath, _: Principal = Admin, session: Session = Db) -> Response:
    session.delete(orgs.team_by_slug(session, slug))
    session.flush()
    return Response(status_code=204)


@router.post(
    "/teams/{slug}/members",
    response_model=TeamOut,
    status_code=201,
    tags=["teams"],
    responses=_404_409,
)
def add_member(slug: SlugPath, body: MemberAdd, _: Principal = Admin, session: Session = Db) -> Any:
    team = orgs.team_by_slug(session, slug)
    user = orgs.user_by_username(session, body.user)
    if session.get(TeamMember, (team.id, user.id)) is not None:
        raise ApiError(409, f"{user.username} is already a member of {team.slug}")
    session.add(TeamMember(team_id=team.id, user_id=user.id, role=body.role))
    orgs.flush_or_conflict(session, f"{user.username} is already a member of {team.slug}")
    return team_out(session, team)


@router.delete(
    "/teams/{slug}/members/{username}", status_code=204, tags=["teams"], responses=_404_409
)
def remove_member(
    slug: SlugPath, username: UsernamePath, _: Principal = Admin, session: Session = Db
) -> Response:
    team = orgs.team_by_slug(session, slug)
    user = orgs.user_by_username(session, username)
    member = session.get(TeamMember, (team.id, user.id))
    if member is None:
        raise ApiError(404, f"{user.username} is not a member of {team.slug}")
    session.delete(member)
    session.flush()
    return Response(status_code=204)


# ---- users -------------------------------------------------------------------------------


@router.get("/users", response_model=Page[UserOut], tags=["users"])
def list_users(_: Principal = Reader, session: Session = DbRead, page: PageParams = Pages) -> Any:
    users, cursor = fetch_page(session, sa.select(User), [User.id], page, descending=False)
    return Page[UserOut](items=users_out(session, users), next_cursor=cursor)


@router.get("/users/{username}", response_model=UserOut, tags=["users"], responses=_404_409)
def get_user(username: UsernamePath, _: Principal = Reader, session: Session = DbRead) -> Any:
    return users_out(session, [orgs.user_by_username(session, username)])[0]


@router.post("/users", response_model=UserOut, status_code=201, tags=["users"], responses=_404_409)
def create_user(
    body: UserCreate,
    _: Principal = Admin,
    session: Session = Db,
    runtime: Runtime = Depends(get_runtime),
) -> Any:
    orgs.ensure_unique(session, User.username, body.username, "username")
    orgs.ensure_unique(session, User.email, body.email, "email")
    user = User(
        username=body.username,
        name=body.name,
        email=body.email,
        role=body.role,
        time_zone=body.time_zone,
        password_hash=hash_password(body.password) if body.password else None,
        active=True,
        created_at=runtime.clock.now(),
    )
    session.add(user)
    orgs.flush_or_conflict(session, "the username or email is already taken")
    return users_out(session, [user])[0]


def _check_user_update(principal: Principal, user: User, body: UserUpdate) -> None:
    changes = body.changes()
    is_self = principal.user_id == user.id
    if principal.has_role("admin"):
        if is_self and ("role" in changes or changes.get("active") is False):
            raise ApiError(409, "you cannot change your own role or deactivate yourself")
        return
    if not is_self:
        raise ApiError(403, "only an admin may change another user")
    admin_only = sorted({"role", "active"} & changes.keys())
    if admin_only:
        raise ApiError(403, f"only an admin may change {', '.join(admin_only)}")
    if "password" in changes:
        if changes["password"] is None:
            raise ApiError(403, "only an admin may remove a password")
        if user.password_hash and not verify_password(
            user.password_hash, body.current_password or ""
        ):
            raise ApiError(403, "current_password does not match your password")


@router.patch("/users/{username}", response_model=UserOut, tags=["users"], responses=_404_409)
def update_user(
    username: UsernamePath, body: UserUpdate, principal: Principal = Reader, session: Session = Db
) -> Any:
    user = orgs.user_by_username(session, username)
    _check_user_update(principal, user, body)
    changes = body.changes()
    changes.pop("current_password", None)
    if "email" in changes:
        orgs.ensure_unique(session, User.email, changes["email"], "email", exclude_id=user.id)
    if "password" in changes:
        password = changes.pop("password")
        user.password_hash = hash_password(password) if password else None
    for name, value in changes.items():
        setattr(user, name, value)
    orgs.flush_or_conflict(session, "the email is already taken")
    return users_out(session, [user])[0]


@router.delete("/users/{username}", status_code=204, tags=["users"], responses=_404_409)
def delete_user(
    username: UsernamePath, principal: Principal = Admin, session: Session = Db
) -> Response:
    user = orgs.user_by_username(session, username)
    if user.id == principal.user_id:
        raise ApiError(409, "you cannot delete your own user")
    session.delete(user)
    session.flush()
    return Response(status_code=204)


@router.get("/me", response_model=MeOut, tags=["users"])
def me(principal: Principal = Reader, session: Session = DbRead) -> Any:
    user = session.get(User, principal.user_id) if principal.user_id is not None else None
    return MeOut(
        actor=principal.actor,
        role=principal.role,
        token_id=principal.token_id,
        user=users_out(session, [user])[0] if user is not None else None,
    )


# ---- services ----------------------------------------------------------------------------


def _policy_slug(session: Session, slug: str | None) -> str | None:
    """The slug of an existing escalation policy (a 404 otherwise), or None."""
    return policy_by_slug(session, slug).slug if slug is not None else None


def _stored_hours(hours: SupportHours | None) -> dict[str, Any] | None:
    return hours.stored() if hours is not None else None


@router.get("/services", response_model=Page[ServiceOut], tags=["services"])
def list_services(
    _: Principal = Reader, session: Session = DbRead, page: PageParams = Pages
) -> Any:
    services, cursor = fetch_page(session, sa.select(Service), [Service.id], page, descending=False)
    return Page[ServiceOut](items=services_out(session, services), next_cursor=cursor)


@router.get("/services/{slug}", response_model=ServiceOut, tags=["services"], responses=_404_409)
def get_service(slug: SlugPath, _: Principal = Reader, session: Session = DbRead) -> Any:
    return services_out(session, [orgs.service_by_slug(session, slug)])[0]


@router.post(
    "/services",
    response_model=ServiceOut,
    status_code=201,
    tags=["services"],
    responses=_404_409,
)
def create_service(
    body: ServiceCreate,
    _: Principal = Admin,
    session: Session = Db,
    runtime: Runtime = Depends(get_runtime),
) -> Any:
    orgs.ensure_unique(session, Service.slug, body.slug, "service slug")
    service = Service(
        slug=body.slug,
        name=body.name,
        description=body.description,
        team_id=orgs.team_id(session, body.team),
        escalation_policy=_policy_slug(session, body.escalation_policy),
        urgency=body.urgency,
        auto_resolve_seconds=body.auto_resolve_seconds,
        ack_timeout_seconds=body.ack_timeout_seconds,
        grouping=body.grouping.model_dump(exclude_none=True),
        support_hours=_stored_hours(body.support_hours),
        internal=False,
        created_at=runtime.clock.now(),
    )
    session.add(service)
    orgs.flush_or_conflict(session, f"service slug {body.slug!r} is already taken")
    return services_out(session, [service])[0]


@router.patch("/services/{slug}", response_model=ServiceOut, tags=["services"], responses=_404_409)
def update_service(
    slug: SlugPath, body: ServiceUpdate, _: Principal = Admin, session: Session = Db
) -> Any:
    service = orgs.service_by_slug(session, slug)
    changes = body.changes()
    if "slug" in changes:
        orgs.ensure_unique(
            session, Service.slug, changes["slug"], "service slug", exclude_id=service.id
        )
    if "team" in changes:
        service.team_id = orgs.team_id(session, changes.pop("team"))
    if "escalation_policy" in changes:
        service.escalation_policy = _policy_slug(session, changes.pop("escalation_policy"))
    if "grouping" in changes:
        service.grouping = changes.pop("grouping").model_dump(exclude_none=True)
    if "support_hours" in changes:
        service.support_hours = _stored_hours(changes.pop("support_hours"))
    for name, value in changes.items():
        setattr(service, name, value)
    orgs.flush_or_conflict(session, "the service's new slug is already taken")
    return services_out(session, [service])[0]


@router.delete("/services/{slug}", status_code=204, tags=["services"], responses=_404_409)
def delete_service(
    slug: SlugPath, request: Request, _: Principal = Admin, session: Session = Db
) -> Response:
    service = orgs.service_by_slug(session, slug)
    if service.internal:
        raise ApiError(409, f"{service.slug} is Tocsin's internal service and cannot be deleted")
    keys = [i.key for i in service.integrations]
    session.delete(service)
    session.flush()
    _forget_keys(request, session, keys)
    return Response(status_code=204)


# ---- integrations ------------------------------------------------------------------------


def _forget_keys(request: Request, session: Session, keys: Sequence[str]) -> None:
    """Deleted keys stop working on this node as soon as the deletion commits, rather than
    after the ingestion key cache expires (other nodes forget them within its short TTL).
    Forgetting earlier would let a request in between cache the old key again."""

    def forget(_session: Session) -> None:
        for key in keys:
            invalidate_integration(request.app, key)

    sa.event.listen(session, "after_commit", forget, once=True)


@router.get(
    "/services/{slug}/integrations",
    response_model=Page[IntegrationOut],
    tags=["integrations"],
    responses=_404_409,
)
def list_integrations(
    slug: SlugPath,
    principal: Principal = Reader,
    session: Session = DbRead,
    page: PageParams = Pages,
) -> Any:
    service = orgs.service_by_slug(session, slug)
    stmt = sa.select(Integration).where(Integration.service_id == service.id)
    rows, cursor = fetch_page(session, stmt, [Integration.id], page, descending=False)
    show_key = principal.has_role("admin")
    return Page[IntegrationOut](
        items=[integration_out(i, service.slug, show_key=show_key) for i in rows],
        next_cursor=cursor,
    )


@router.post(
    "/services/{slug}/integrations",
    response_model=IntegrationOut,
    status_code=201,
    tags=["integrations"],
    responses=_404_409,
)
def create_integration(
    slug: SlugPath,
    body: IntegrationCreate,
    _: Principal = Admin,
    session: Session = Db,
    runtime: Runtime = Depends(get_runtime),
) -> Any:
    service = orgs.service_by_slug(session, slug)
    taken = session.scalars(
        sa.select(Integration.id).where(
            Integration.service_id == service.id, Integration.name == body.name
        )
    ).first()
    if taken is not None:
        raise ApiError(409, f"{service.slug} already has an integration named {body.name!r}")
    integration = Integration(
        service_id=service.id,
        name=body.name,
        type=body.type,
        key=orgs.new_integration_key(),
        options=orgs.stored_options(body.type, body.options),
        created_at=runtime.clock.now(),
    )
    session.add(integration)
    orgs.flush_or_conflict(
        session, f"{service.slug} already has an integration named {body.name!r}"
    )
    return integration_out(integration, service.slug, show_key=True)


@router.delete(
    "/integrations/{integration_id}", status_code=204, tags=["integrations"], responses=_404_409
)
def delete_integration(
    integration_id: IdPath, request: Request, _: Principal = Admin, session: Session = Db
) -> Response:
    integration = orgs.integration_by_id(session, integration_id)
    if integration.type == "internal":
        raise ApiError(409, "internal integrations are managed by Tocsin and cannot be deleted")
    session.delete(integration)
    session.flush()
    _forget_keys(request, session, [integration.key])
    return Response(status_code=204)
