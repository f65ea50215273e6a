"""Rotations that started years ago: the right person today, found by arithmetic."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.oncall.helpers import utc
from tocsin.clock import FakeClock
from tocsin.oncall import LayerSpec, Restriction, ScheduleSpec, on_call_at, render, rendering

TEAM = ["ana", "ben", "cho", "dev", "eli"]


def eleven_year_rotation() -> ScheduleSpec:
    # Monday 2015-01-05 09:00 Berlin: hundreds of hand-offs and 22 DST changes ago.
    layer = LayerSpec("Primary", TEAM, datetime(2015, 1, 5, 9), 1, "weeks")
    return ScheduleSpec("Payments", "Europe/Berlin", [layer])


def test_rotation_started_years_ago_renders_the_right_person_today() -> None:
    today = FakeClock(utc(2026, 3, 11, 12)).now()
    weeks = (date(2026, 3, 9) - date(2015, 1, 5)).days // 7  # the Monday of this week
    expected = TEAM[weeks % len(TEAM)]
    schedule = eleven_year_rotation()
    assert on_call_at(schedule, today) == expected
    [this_week] = render(schedule, today - timedelta(days=1), today + timedelta(days=1))
    assert this_week.user == expected
    # Still handing off at 09:00 local: 08:00 UTC in winter.
    [_, next_week] = render(schedule, today, utc(2026, 3, 17))
    assert next_week.start == utc(2026, 3, 16, 8)
    assert next_week.user == TEAM[(weeks + 1) % len(TEAM)]


def test_hour_rotation_from_decades_ago() -> None:
    layer = LayerSpec("Hourly", TEAM, datetime(1990, 1, 1), 1, "hours")
    schedule = ScheduleSpec("Lab", "UTC", [layer])
    now = utc(2026, 3, 11, 12, 30)
    hours = (now - datetime(1990, 1, 1, tzinfo=UTC)) // timedelta(hours=1)
    assert on_call_at(schedule, now) == TEAM[hours % len(TEAM)]


@pytest.mark.parametrize("unit", ["hours", "days", "weeks"])
def test_on_call_at_does_not_walk_the_history(
    monkeypatch: pytest.MonkeyPatch, unit: rendering.RotationUnit
) -> None:
    layer = LayerSpec(
        "Old", TEAM, datetime(1995, 6, 1, 9), 1, unit, [Restriction.daily("08:00", "20:00")]
    )
    schedule = ScheduleSpec("Old", "America/New_York", [layer])
    calls = 0
    real = rendering.resolve_local

    def counting(wall: datetime, zone: ZoneInfo) -> datetime:
        nonlocal calls
        calls += 1
        return real(wall, zone)

    monkeypatch.setattr(rendering, "resolve_local", counting)
    assert on_call_at(schedule, utc(2026, 7, 1, 15)) in TEAM
    # A few resolutions for the hand-offs and windows around the instant, not one per turn.
    assert calls < 20
