"""Hand-off notices: each user hears about a shift before it starts.

A periodic job (every HANDOFF_INTERVAL_SECONDS, on whichever node claims it) renders every
schedule from a little before now to the longest notice any active user asked for, and tells
each user whose shift starts within their own `handoff_notice_minutes`. The outbox key
`handoff:<schedule>:<user>:<shift start>` makes a notice once per shift, however many scans and
nodes see it. A shift that merely continues the user's previous one (same person, next layer or
an override) is not a new hand-off and gets no notice.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from tocsin.notify import pages
from tocsin.oncall.models import Schedule
from tocsin.oncall.rendering import Shift
from tocsin.oncall.service import schedules_shifts
from tocsin.oncall.support_hours import local_label
from tocsin.orgs.models import User

log = logging.getLogger(__name__)

HANDOFF_JOB = "oncall.handoff_notices"
HANDOFF_INTERVAL_SECONDS = 300
# Looking back two scans catches shifts that started while a scan was late (a notice of 0
# minutes is then sent at most one scan after the start), without re-announcing old shifts.
LOOKBACK_SECONDS = 2 * HANDOFF_INTERVAL_SECONDS
# Notices further ahead than this are not looked for (bounds the rendering per scan).
MAX_NOTICE_MINUTES = 7 * 24 * 60
# How far past a shift's start to look for its end, for the notice's text.
_END_SEARCH = timedelta(days=31)


def send_notice(
    session: Session,
    *,
    user_id: int,
    unique_key: str,
    subject: str,
    text: str,
    now: datetime,
) -> int:
    """Hand one hand-off notice to the notification outbox, once per unique key."""
    return pages.notify_user(
        session,
        user_id=user_id,
        purpose="handoff",
        unique_key=unique_key,
        subject=subject,
        text=text,
        now=now,
        urgency="low",
    )


def notice_key(schedule_id: int, user_id: int, start: datetime) -> str:
    return f"handoff:{schedule_id}:{user_id}:{start.isoformat()}"


def send_handoff_notices(
    session: Session, now: datetime, *, lookback_seconds: float = LOOKBACK_SECONDS
) -> int:
    """One scan, in the caller's transaction. Returns the number of notices handed over
    (a notice already handed over by an earlier scan is not counted again)."""
    longest = session.scalar(
        sa.select(sa.func.max(User.handoff_notice_minutes)).where(User.active.is_(True))
    )
    if longest is None or longest < 0:
        return 0
    lo = now - timedelta(seconds=lookback_seconds)
    # Inclusive of a shift that starts exactly `longest` minutes from now.
    hi = now + timedelta(minutes=min(int(longest), MAX_NOTICE_MINUTES), microseconds=1)
    schedules = list(session.scalars(sa.select(Schedule).order_by(Schedule.id)))
    rendered = schedules_shifts(session, schedules, lo, hi)
    starting = {sid: _new_shifts(shifts, lo) for sid, shifts in rendered.items()}
    user_ids = {int(x.user) for shifts in starting.values() for x in shifts}
    users = {u.id: u for u in session.scalars(sa.select(User).where(User.id.in_(user_ids)))}
    sent = 0
    for schedule in schedules:
        for shift in starting.get(schedule.id, []):
            user = users.get(int(shift.user))
            if user is None or user.handoff_notice_minutes is None:
                continue
            if shift.start > now + timedelta(minutes=user.handoff_notice_minutes):
                continue
            sent += _notify(session, schedule, user, shift, now)
    return sent


def _new_shifts(shifts: list[Shift], lo: datetime) -> list[Shift]:
    """Shifts that start inside the window (not clipped at its start) and are a hand-off, not
    the same person carrying on."""
    found = []
    for previous, shift in zip([None, *shifts], shifts, strict=False):
        if shift.start <= lo:
            continue
        if previous is not None and previous.end == shift.start and previous.user == shift.user:
            continue
        found.append(shift)
    return found


def _notify(session: Session, schedule: Schedule, user: User, shift: Shift, now: datetime) -> int:
    start_label = local_label(shift.start, user.time_zone)
    end = _shift_end(session, schedule, shift)
    until = f" until {local_label(end, user.time_zone)}" if end is not None else ""
    source = "an override" if shift.source == "override" else f"the {shift.source} layer"
    return send_notice(
        session,
        user_id=user.id,
        unique_key=notice_key(schedule.id, user.id, shift.start),
        subject=f"You are on call for {schedule.name} from {start_label}",
        text=(f"Your on-call shift for {schedule.name} starts {start_label}{until} ({source})."),
        now=now,
    )


def _shift_end(session: Session, schedule: Schedule, shift: Shift) -> datetime | None:
    """Where the user's time on call that begins with `shift` ends (None: not within a month)."""
    horizon = shift.start + _END_SEARCH
    shifts = schedules_shifts(session, [schedule], shift.start, horizon)[schedule.id]
    end = shift.start
    for later in shifts:
        if later.start != end or later.user != shift.user:
            break
        end = later.end
    return end if end < horizon else None
