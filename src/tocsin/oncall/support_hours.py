"""A service's support hours: when its low-urgency incidents may page anyone.

Stored as {"time_zone": "Europe/Berlin", "days": [0, 1, 2, 3, 4], "start": "09:00",
"end": "17:00"} (weekdays from Monday = 0). The window is wall-clock time in that zone on each
listed day, resolved to instants by the schedules' rule (`rendering.resolve_local`): a start
skipped by a spring-forward change happens at the jump, a repeated one at its first pass. So
09:00-17:00 stays 09:00-17:00 local across daylight-saving changes.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from tocsin.oncall.rendering import load_zone, parse_time, resolve_local

log = logging.getLogger(__name__)


def next_opening(support_hours: dict[str, Any] | None, instant: datetime) -> datetime | None:
    """`instant` itself when it lies within support hours (or the service has none), else the
    instant at which they next open; None when they never open (no days listed).

    Support hours that cannot be read count as always open: paging too much beats never
    paging.
    """
    if not support_hours:
        return instant
    try:
        zone = load_zone(str(support_hours["time_zone"]))
        days = {int(d) for d in support_hours["days"]}
        start = parse_time(support_hours["start"])
        end = parse_time(support_hours["end"])
    except (KeyError, TypeError, ValueError):
        log.warning("unreadable support hours %r: treated as always open", support_hours)
        return instant
    today = instant.astimezone(zone).date()
    # From the day before (a window may run past midnight) to a week ahead.
    for offset in range(-1, 9):
        day = today + timedelta(days=offset)
        if day.weekday() not in days:
            continue
        opens = resolve_local(datetime.combine(day, start), zone)
        end_day = day if end > start else day + timedelta(days=1)
        closes = resolve_local(datetime.combine(end_day, end), zone)
        if instant < opens:
            return opens
        if instant < closes:
            return instant
    return None


def local_label(instant: datetime, zone_name: str) -> str:
    """'Tue 6 Jan 2026 09:00 CET': how a person in `zone_name` reads the instant."""
    try:
        zone: tzinfo = load_zone(zone_name)
    except ValueError:
        zone = UTC
    local = instant.astimezone(zone)
    return f"{local:%a} {local.day} {local:%b %Y %H:%M} {local.tzname()}"
