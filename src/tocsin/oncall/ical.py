"""iCalendar (RFC 5545) feeds of rendered shifts, for calendar apps to subscribe to.

Each shift becomes one VEVENT in UTC. Its UID is derived from what identifies the shift
(schedule, source, user, start) and not from its end, so a feed fetched again after an
override shortened a shift updates the event in the calendar app instead of duplicating it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from icalendar import Calendar, Event

from tocsin.oncall.rendering import OVERRIDE, Shift, UserId

PRODID = "-//Tocsin//On-call schedules//EN"
# Fixed namespace: the same shift gets the same UID in every feed and on every node.
_UID_NAMESPACE = uuid.UUID("6f1c3d2a-8b7e-5c4d-9a1f-2e3b4c5d6e7f")


@dataclass(frozen=True)
class ScheduleShifts:
    """The rendered shifts of one schedule; `key` identifies the schedule stably (its id)."""

    key: str
    name: str
    shifts: Sequence[Shift]


def shift_uid(schedule_key: str, shift: Shift) -> str:
    """A stable UID for a shift: the same schedule, source, user and start give the same UID."""
    start = shift.start.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    # The user's type is part of the name so that user 7 and user "7" never collide.
    user = f"{type(shift.user).__name__}:{shift.user}"
    name = "\x1f".join((schedule_key, shift.source, user, start))
    return f"{uuid.uuid5(_UID_NAMESPACE, name)}@tocsin"


def schedule_calendar(
    schedule: ScheduleShifts,
    *,
    generated_at: datetime,
    user_names: Mapping[UserId, str] | None = None,
) -> bytes:
    """The feed of everyone's shifts in one schedule."""
    return _calendar(
        f"On call: {schedule.name}",
        [(schedule, shift) for shift in schedule.shifts],
        generated_at=generated_at,
        user_names=user_names or {},
    )


def user_calendar(
    user: UserId,
    schedules: Iterable[ScheduleShifts],
    *,
    generated_at: datetime,
    user_name: str | None = None,
) -> bytes:
    """The feed of one user's shifts across schedules."""
    names = {user: user_name} if user_name else {}
    title = f"On call: {user_name or user}"
    pairs = [(s, shift) for s in schedules for shift in s.shifts if shift.user == user]
    pairs.sort(key=lambda pair: (pair[1].start, pair[0].name))
    return _calendar(title, pairs, generated_at=generated_at, user_names=names)


def _calendar(
    title: str,
    shifts: Sequence[tuple[ScheduleShifts, Shift]],
    *,
    generated_at: datetime,
    user_names: Mapping[UserId, str],
) -> bytes:
    if generated_at.tzinfo is None:
        raise ValueError("generated_at must be timezone-aware")
    stamp = generated_at.astimezone(UTC)
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("name", title)  # RFC 7986
    calendar.add("x-wr-calname", title)  # the same, for apps that predate RFC 7986
    for schedule, shift in shifts:
        calendar.add_component(_event(schedule, shift, stamp, user_names.get(shift.user)))
    feed: bytes = calendar.to_ical()
    return feed


def _event(schedule: ScheduleShifts, shift: Shift, stamp: datetime, user_name: str | None) -> Event:
    event = Event()
    event.add("uid", shift_uid(schedule.key, shift))
    event.add("dtstamp", stamp)
    event.add("dtstart", shift.start.astimezone(UTC))
    event.add("dtend", shift.end.astimezone(UTC))
    summary = f"On call: {schedule.name}"
    if user_name:
        summary += f" ({user_name})"
    event.add("summary", summary)
    reason = "override" if shift.source == OVERRIDE else f"layer {shift.source}"
    event.add(
        "description", f"{user_name or shift.user} is on call for {schedule.name} ({reason})."
    )
    event.add("transp", "TRANSPARENT")  # being on call does not make anyone busy
    return event
