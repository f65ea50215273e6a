"""Lookups the on-call routes share: 404s in the API's error shape, time parameters and user
names for ids."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from tocsin.errors import ApiError
from tocsin.oncall.models import EscalationPolicy, Schedule
from tocsin.oncall.schemas import UserBrief
from tocsin.orgs.models import User

# Rendering is cheap per hand-off, but a window must stay bounded for one request.
MAX_WINDOW = timedelta(days=90)


def schedule_by_slug(session: Session, slug: str) -> Schedule:
    schedule = session.scalars(sa.select(Schedule).where(Schedule.slug == slug)).one_or_none()
    if schedule is None:
        raise ApiError(404, f"no schedule with slug {slug!r}")
    return schedule


def policy_by_slug(session: Session, slug: str) -> EscalationPolicy:
    policy = session.scalars(
        sa.select(EscalationPolicy).where(EscalationPolicy.slug == slug)
    ).one_or_none()
    if policy is None:
        raise ApiError(404, f"no escalation policy with slug {slug!r}")
    return policy


def utc(instant: datetime | None) -> datetime | None:
    """A time without an offset is read as UTC, as everywhere in the API."""
    if instant is None or instant.tzinfo is not None:
        return instant
    return instant.replace(tzinfo=UTC)


def instant(at: datetime | None, now: datetime) -> datetime:
    value = utc(at) or now
    if not 1900 <= value.year <= 9000:
        raise ApiError(422, "at must be between the years 1900 and 9000")
    return value.astimezone(UTC)


def window(
    start: datetime | None, end: datetime | None, now: datetime, default: timedelta
) -> tuple[datetime, datetime]:
    """[start, end): start defaults to now, end to start + ``default``; at most MAX_WINDOW."""
    lo = instant(start, now)
    hi = instant(end, lo + default) if end is not None else lo + default
    if hi <= lo:
        raise ApiError(422, "end must be later than start")
    if hi - lo > MAX_WINDOW:
        raise ApiError(422, f"the window is at most {MAX_WINDOW.days} days long")
    return lo, hi


def user_briefs(session: Session, ids: Iterable[int | str | None]) -> dict[int, UserBrief]:
    wanted = {int(i) for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.execute(sa.select(User.id, User.username, User.name).where(User.id.in_(wanted)))
    return {r.id: UserBrief(username=r.username, name=r.name) for r in rows}
