"""iCalendar feeds of on-call shifts, for calendar apps to subscribe to.

Calendar apps cannot send an Authorization header, so the feeds are deliberately public routes
whose only credential is an unguessable per-user token in the URL:

  GET /calendar/users/{token}.ics             the token holder's shifts in every schedule
  GET /calendar/schedules/{slug}.ics?token=   everyone's shifts in one schedule

Only the token's SHA-256 is stored (User.calendar_token_hash); issuing a new one revokes the
old. A wrong token and an unknown schedule get the same 404, so a guess reveals nothing.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from tocsin.api.deps import Db, DbRead, Reader, get_runtime
from tocsin.api.routing import UsernamePath, api_router
from tocsin.auth.service import Principal
from tocsin.errors import ApiError
from tocsin.oncall import service as oncall
from tocsin.oncall.ical import ScheduleShifts, schedule_calendar, user_calendar
from tocsin.oncall.models import Schedule
from tocsin.oncall.rendering import UserId
from tocsin.oncall.store import schedules_of_user
from tocsin.orgs import service as orgs
from tocsin.orgs.models import User
from tocsin.orgs.schemas import error_responses
from tocsin.runtime import Runtime

TOKEN_PREFIX = "tcal_"  # noqa: S105 - a public prefix that makes leaked feed tokens greppable
# Feeds cover a week back and two months ahead, counted from the start of the current UTC day
# so that the window (and the UIDs of clipped first shifts) only moves once a day.
FEED_PAST = timedelta(days=7)
FEED_AHEAD = timedelta(days=60)
CALENDAR_TYPE = "text/calendar; charset=utf-8"
_MAX_TOKEN = 128

router = api_router(tags=["calendar feeds"], errors=(403, 404))
public = APIRouter(prefix="/calendar", tags=["calendar feeds"])


class CalendarTokenOut(BaseModel):
    token: str = Field(description="Shown once; only its hash is stored.")
    user_feed_url: str = Field(description="Your shifts in every schedule.")
    schedule_feed_urls: dict[str, str] = Field(
        description="Each schedule's feed (everyone's shifts), by slug; any valid token reads "
        "any schedule's feed."
    )


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _may_manage(principal: Principal, user: User) -> None:
    if principal.user_id != user.id and not principal.has_role("admin"):
        raise ApiError(403, "only an admin may manage someone else's calendar feed")


@router.post("/users/{username}/calendar-token", response_model=CalendarTokenOut, status_code=201)
def issue_calendar_token(
    username: UsernamePath,
    principal: Principal = Reader,
    session: Session = Db,
    runtime: Runtime = Depends(get_runtime),
) -> Any:
    """Issue a feed token for the user, replacing (and so revoking) any earlier one."""
    user = orgs.user_by_username(session, username)
    _may_manage(principal, user)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    user.calendar_token_hash = token_digest(token)
    session.flush()
    base = runtime.settings.resolved_base_url.rstrip("/")
    slugs = session.scalars(sa.select(Schedule.slug).order_by(Schedule.slug)).all()
    return CalendarTokenOut(
        token=token,
        user_feed_url=f"{base}/calendar/users/{token}.ics",
        schedule_feed_urls={s: f"{base}/calendar/schedules/{s}.ics?token={token}" for s in slugs},
    )


@router.delete("/users/{username}/calendar-token", status_code=204)
def revoke_calendar_token(
    username: UsernamePath, principal: Principal = Reader, session: Session = Db
) -> Response:
    """Stop every feed URL of the user from working."""
    user = orgs.user_by_username(session, username)
    _may_manage(principal, user)
    user.calendar_token_hash = None
    session.flush()
    return Response(status_code=204)


# ---- the feeds -----------------------------------------------------------------------------


def _not_found() -> ApiError:
    return ApiError(404, "no such calendar feed")


def _holder(session: Session, token: str | None) -> User:
    if not token or len(token) > _MAX_TOKEN or not token.startswith(TOKEN_PREFIX):
        raise _not_found()
    user = session.scalars(
        sa.select(User).where(User.calendar_token_hash == token_digest(token))
    ).one_or_none()
    if user is None or not user.active:
        raise _not_found()
    return user


def feed_window(now: datetime) -> tuple[datetime, datetime]:
    day = datetime.combine(now.date(), time(), tzinfo=now.tzinfo)
    return day - FEED_PAST, day + FEED_AHEAD


def _shifts(session: Session, schedules: list[Schedule], now: datetime) -> list[ScheduleShifts]:
    lo, hi = feed_window(now)
    rendered = oncall.schedules_shifts(session, schedules, lo, hi)
    # The id, not the slug: renaming a schedule keeps every event's UID.
    return [ScheduleShifts(f"schedule-{s.id}", s.name, rendered[s.id]) for s in schedules]


def _calendar(body: bytes) -> Response:
    return Response(
        content=body,
        media_type=CALENDAR_TYPE,
        headers={"Cache-Control": "private, max-age=300", "X-Robots-Tag": "noindex"},
    )


@public.get(
    "/users/{token}.ics",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {}}}, **error_responses(404)},
)
def user_feed(
    token: str, session: Session = DbRead, runtime: Runtime = Depends(get_runtime)
) -> Response:
    """The token holder's shifts across every schedule, a week back and 60 days ahead."""
    user = _holder(session, token)
    now = runtime.clock.now()
    feeds = _shifts(session, schedules_of_user(session, user.id), now)
    return _calendar(user_calendar(user.id, feeds, generated_at=now, user_name=user.name))


@public.get(
    "/schedules/{slug}.ics",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {}}}, **error_responses(404)},
)
def schedule_feed(
    slug: str,
    token: str | None = Query(None, description="Any user's calendar feed token."),
    session: Session = DbRead,
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    """Everyone's shifts in one schedule, a week back and 60 days ahead."""
    _holder(session, token)
    schedule = session.scalars(sa.select(Schedule).where(Schedule.slug == slug)).one_or_none()
    if schedule is None:
        raise _not_found()
    now = runtime.clock.now()
    [shifts] = _shifts(session, [schedule], now)
    wanted = {s.user for s in shifts.shifts}
    names: dict[UserId, str] = {
        row.id: row.name
        for row in session.execute(sa.select(User.id, User.name).where(User.id.in_(wanted)))
    }
    return _calendar(schedule_calendar(shifts, generated_at=now, user_names=names))
