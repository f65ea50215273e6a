"""Daylight-saving changes: wall-clock hand-offs and windows, skipped and repeated local times.

2026 changes (expected instants below are worked out by hand, not with zoneinfo):
- Europe/Berlin: 29 March 02:00 CET (UTC+1) -> 03:00 CEST (UTC+2);
  25 October 03:00 CEST -> 02:00 CET.
- America/New_York: 8 March 02:00 EST (UTC-5) -> 03:00 EDT (UTC-4);
  1 November 02:00 EDT -> 01:00 EST.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.oncall.helpers import spans, utc
from tocsin.oncall import (
    LayerSpec,
    Restriction,
    ScheduleSpec,
    gaps,
    on_call_at,
    render,
    resolve_local,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def one_layer(zone: str, layer: LayerSpec) -> ScheduleSpec:
    return ScheduleSpec("DST", zone, [layer])


@pytest.mark.parametrize(
    ("wall", "zone", "expected"),
    [
        # Ordinary times on the days of the change.
        (datetime(2026, 3, 29, 1, 59), BERLIN, utc(2026, 3, 29, 0, 59)),
        (datetime(2026, 3, 29, 3, 0), BERLIN, utc(2026, 3, 29, 1, 0)),
        # Skipped: happens when the clocks jump.
        (datetime(2026, 3, 29, 2, 0), BERLIN, utc(2026, 3, 29, 1, 0)),
        (datetime(2026, 3, 29, 2, 30), BERLIN, utc(2026, 3, 29, 1, 0)),
        (datetime(2026, 3, 8, 2, 30), NEW_YORK, utc(2026, 3, 8, 7, 0)),
        # Repeated: the first occurrence, still on summer time.
        (datetime(2026, 10, 25, 2, 30), BERLIN, utc(2026, 10, 25, 0, 30)),
        (datetime(2026, 11, 1, 1, 30), NEW_YORK, utc(2026, 11, 1, 5, 30)),
        (datetime(2026, 11, 1, 2, 0), NEW_YORK, utc(2026, 11, 1, 7, 0)),
    ],
)
def test_resolve_local(wall: datetime, zone: ZoneInfo, expected: datetime) -> None:
    assert resolve_local(wall, zone) == expected


def test_resolving_a_skipped_time_in_a_half_hour_zone() -> None:
    # Lord Howe Island moves its clocks by 30 minutes: 02:00 -> 02:30 on 4 October 2026.
    zone = ZoneInfo("Australia/Lord_Howe")
    jump = resolve_local(datetime(2026, 10, 4, 2, 15), zone)
    assert jump == resolve_local(datetime(2026, 10, 4, 2, 30), zone)
    assert jump - resolve_local(datetime(2026, 10, 4, 1, 59), zone) == timedelta(minutes=1)


# Daily rotations keep their local hand-off time: the day of the change is 23 or 25 hours.


@pytest.mark.parametrize(
    ("zone", "first_day", "expected"),
    [
        (
            "Europe/Berlin",
            datetime(2026, 3, 28, 9),
            [utc(2026, 3, 28, 8), utc(2026, 3, 29, 7), utc(2026, 3, 30, 7)],
        ),
        (
            "Europe/Berlin",
            datetime(2026, 10, 24, 9),
            [utc(2026, 10, 24, 7), utc(2026, 10, 25, 8), utc(2026, 10, 26, 8)],
        ),
        (
            "America/New_York",
            datetime(2026, 3, 7, 9),
            [utc(2026, 3, 7, 14), utc(2026, 3, 8, 13), utc(2026, 3, 9, 13)],
        ),
        (
            "America/New_York",
            datetime(2026, 10, 31, 9),
            [utc(2026, 10, 31, 13), utc(2026, 11, 1, 14), utc(2026, 11, 2, 14)],
        ),
    ],
)
def test_daily_hand_off_stays_at_nine_local_across_the_change(
    zone: str, first_day: datetime, expected: list[datetime]
) -> None:
    layer = LayerSpec("Daily", ["a", "b"], first_day, 1, "days")
    shifts = render(one_layer(zone, layer), expected[0], expected[2])
    assert spans(shifts) == [
        ("a", expected[0], expected[1], "Daily"),
        ("b", expected[1], expected[2], "Daily"),
    ]


@pytest.mark.parametrize(
    ("zone", "first_monday", "expected", "hours"),
    [
        (
            "Europe/Berlin",
            datetime(2026, 3, 23, 9),
            [utc(2026, 3, 23, 8), utc(2026, 3, 30, 7)],
            167,
        ),
        (
            "Europe/Berlin",
            datetime(2026, 10, 19, 9),
            [utc(2026, 10, 19, 7), utc(2026, 10, 26, 8)],
            169,
        ),
        (
            "America/New_York",
            datetime(2026, 3, 2, 9),
            [utc(2026, 3, 2, 14), utc(2026, 3, 9, 13)],
            167,
        ),
        (
            "America/New_York",
            datetime(2026, 10, 26, 9),
            [utc(2026, 10, 26, 13), utc(2026, 11, 2, 14)],
            169,
        ),
    ],
)
def test_weekly_hand_off_stays_at_monday_nine_local_across_the_change(
    zone: str, first_monday: datetime, expected: list[datetime], hours: int
) -> None:
    layer = LayerSpec("Weekly", ["a", "b"], first_monday, 1, "weeks")
    schedule = one_layer(zone, layer)
    [week] = render(schedule, expected[0], expected[1])
    assert (week.user, week.start, week.end) == ("a", expected[0], expected[1])
    assert week.end - week.start == timedelta(hours=hours)
    assert on_call_at(schedule, expected[1] - timedelta(seconds=1)) == "a"
    assert on_call_at(schedule, expected[1]) == "b"


def test_hour_rotation_advances_in_absolute_time_across_the_change() -> None:
    # 12-hour turns from Saturday 20:00 CET: after the change they fall at 09:00/21:00 CEST.
    layer = LayerSpec("Twelve", ["a", "b"], datetime(2026, 3, 28, 20), 12, "hours")
    shifts = render(one_layer("Europe/Berlin", layer), utc(2026, 3, 28, 19), utc(2026, 3, 29, 19))
    assert spans(shifts) == [
        ("a", utc(2026, 3, 28, 19), utc(2026, 3, 29, 7), "Twelve"),
        ("b", utc(2026, 3, 29, 7), utc(2026, 3, 29, 19), "Twelve"),
    ]
    assert all(s.end - s.start == timedelta(hours=12) for s in shifts)


def test_skipped_hand_off_time_happens_when_the_clocks_jump() -> None:
    layer = LayerSpec("Small hours", ["a", "b", "c"], datetime(2026, 3, 28, 2, 30), 1, "days")
    shifts = render(
        one_layer("Europe/Berlin", layer), utc(2026, 3, 28, 1, 30), utc(2026, 3, 30, 0, 30)
    )
    assert spans(shifts) == [
        # 02:30 CET -> (02:30 does not exist on the 29th) 03:00 CEST -> 02:30 CEST
        ("a", utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 0), "Small hours"),
        ("b", utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30), "Small hours"),
    ]


def test_skipped_hand_off_in_new_york() -> None:
    layer = LayerSpec("Small hours", ["a", "b"], datetime(2026, 3, 1, 2, 30), 1, "weeks")
    schedule = one_layer("America/New_York", layer)
    assert on_call_at(schedule, utc(2026, 3, 8, 6, 59)) == "a"  # 01:59 EST
    assert on_call_at(schedule, utc(2026, 3, 8, 7, 0)) == "b"  # 03:00 EDT, the jump


def test_repeated_hand_off_time_takes_the_first_occurrence() -> None:
    layer = LayerSpec("Small hours", ["a", "b", "c"], datetime(2026, 10, 24, 2, 30), 1, "days")
    shifts = render(
        one_layer("Europe/Berlin", layer), utc(2026, 10, 24, 0, 30), utc(2026, 10, 26, 1, 30)
    )
    assert spans(shifts) == [
        # 02:30 CEST -> 02:30 CEST (first of the two 02:30s) -> 02:30 CET: 24 h, then 25 h
        ("a", utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), "Small hours"),
        ("b", utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30), "Small hours"),
    ]


def test_repeated_hand_off_in_new_york() -> None:
    layer = LayerSpec("Small hours", ["a", "b"], datetime(2026, 10, 31, 1, 30), 1, "days")
    schedule = one_layer("America/New_York", layer)
    assert on_call_at(schedule, utc(2026, 11, 1, 5, 29)) == "a"  # 01:29 EDT
    assert on_call_at(schedule, utc(2026, 11, 1, 5, 30)) == "b"  # the first 01:30 (EDT)
    assert on_call_at(schedule, utc(2026, 11, 1, 6, 30)) == "b"  # the second 01:30 (EST)
    # The second 01:15 reads earlier than the hand-off, which has happened all the same.
    assert on_call_at(schedule, utc(2026, 11, 1, 6, 15)) == "b"


# Restrictions: windows are local times too.


@pytest.mark.parametrize(
    ("night_of", "expected", "hours"),
    [
        (datetime(2026, 3, 28), (utc(2026, 3, 28, 21), utc(2026, 3, 29, 4)), 7),
        (datetime(2026, 10, 24), (utc(2026, 10, 24, 20), utc(2026, 10, 25, 5)), 9),
    ],
)
def test_overnight_window_is_shorter_or_longer_on_the_night_of_the_change(
    night_of: datetime, expected: tuple[datetime, datetime], hours: int
) -> None:
    layer = LayerSpec("Nights", ["a"], night_of, 1, "weeks", [Restriction.daily("22:00", "06:00")])
    schedule = one_layer("Europe/Berlin", layer)
    [night] = render(schedule, expected[0] - timedelta(hours=6), expected[1] + timedelta(hours=6))
    assert (night.start, night.end) == expected
    assert night.end - night.start == timedelta(hours=hours)


def test_business_hours_on_the_days_of_the_change_in_new_york() -> None:
    layer = LayerSpec(
        "Office", ["a"], datetime(2026, 3, 6), 1, "days", [Restriction.daily("09:00", "17:00")]
    )
    schedule = one_layer("America/New_York", layer)
    assert [(s.start, s.end) for s in render(schedule, utc(2026, 3, 6), utc(2026, 3, 10))] == [
        (utc(2026, 3, 6, 14), utc(2026, 3, 6, 22)),
        (utc(2026, 3, 7, 14), utc(2026, 3, 7, 22)),
        (utc(2026, 3, 8, 13), utc(2026, 3, 8, 21)),
        (utc(2026, 3, 9, 13), utc(2026, 3, 9, 21)),
    ]
    layer = LayerSpec(
        "Office", ["a"], datetime(2026, 10, 30), 1, "days", [Restriction.daily("09:00", "17:00")]
    )
    schedule = one_layer("America/New_York", layer)
    assert [(s.start, s.end) for s in render(schedule, utc(2026, 10, 31), utc(2026, 11, 2))] == [
        (utc(2026, 10, 31, 13), utc(2026, 10, 31, 21)),
        (utc(2026, 11, 1, 14), utc(2026, 11, 1, 22)),
    ]


def test_weekend_window_across_the_change() -> None:
    weekend = [Restriction.weekly("fri", "18:00", "mon", "08:00")]
    berlin = one_layer(
        "Europe/Berlin", LayerSpec("W", ["a"], datetime(2026, 3, 2), 1, "weeks", weekend)
    )
    [spring] = render(berlin, utc(2026, 3, 27), utc(2026, 3, 31))
    assert (spring.start, spring.end) == (utc(2026, 3, 27, 17), utc(2026, 3, 30, 6))  # 61 h
    new_york = one_layer(
        "America/New_York", LayerSpec("W", ["a"], datetime(2026, 10, 5), 1, "weeks", weekend)
    )
    [autumn] = render(new_york, utc(2026, 10, 30), utc(2026, 11, 3))
    assert (autumn.start, autumn.end) == (utc(2026, 10, 30, 22), utc(2026, 11, 2, 13))  # 63 h


def test_window_edge_in_the_skipped_hour_ends_when_the_clocks_jump() -> None:
    layer = LayerSpec(
        "Edge", ["a"], datetime(2026, 3, 1), 1, "weeks", [Restriction.daily("01:30", "02:30")]
    )
    schedule = one_layer("Europe/Berlin", layer)
    [window] = render(schedule, utc(2026, 3, 29), utc(2026, 3, 29, 12))
    assert (window.start, window.end) == (utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 1, 0))


def test_window_entirely_in_the_skipped_hour_is_empty_that_day() -> None:
    layer = LayerSpec(
        "Edge", ["a"], datetime(2026, 3, 1), 1, "weeks", [Restriction.daily("02:10", "02:50")]
    )
    schedule = one_layer("Europe/Berlin", layer)
    assert render(schedule, utc(2026, 3, 28, 12), utc(2026, 3, 29, 12)) == []
    assert gaps(schedule, utc(2026, 3, 28, 12), utc(2026, 3, 29, 12)) == [
        (utc(2026, 3, 28, 12), utc(2026, 3, 29, 12))
    ]


def test_window_in_the_repeated_hour_covers_its_first_occurrence_only() -> None:
    layer = LayerSpec(
        "Edge", ["a"], datetime(2026, 10, 1), 1, "weeks", [Restriction.daily("02:00", "02:30")]
    )
    schedule = one_layer("Europe/Berlin", layer)
    [window] = render(schedule, utc(2026, 10, 24, 12), utc(2026, 10, 25, 12))
    assert (window.start, window.end) == (utc(2026, 10, 25, 0, 0), utc(2026, 10, 25, 0, 30))
    assert on_call_at(schedule, utc(2026, 10, 25, 0, 15)) == "a"  # 02:15 CEST
    assert on_call_at(schedule, utc(2026, 10, 25, 1, 15)) is None  # 02:15 CET, the second time
