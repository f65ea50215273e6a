"""Worked examples of the schedule shapes SREs build: rotations, restrictions, layers, overrides."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from tests.oncall.helpers import spans, utc
from tocsin.oncall import (
    OVERRIDE,
    LayerSpec,
    Override,
    Restriction,
    ScheduleSpec,
    gaps,
    on_call_at,
    render,
    render_layer,
)

NEW_YORK = ZoneInfo("America/New_York")


def weekly_berlin() -> ScheduleSpec:
    # Monday 2026-01-05 09:00 CET is 08:00 UTC.
    layer = LayerSpec("Primary", ["alice", "bob", "carol"], datetime(2026, 1, 5, 9), 1, "weeks")
    return ScheduleSpec("Payments", "Europe/Berlin", [layer])


def test_weekly_rotation_hands_off_on_monday_at_nine() -> None:
    schedule = weekly_berlin()
    shifts = render(schedule, utc(2026, 1, 1), utc(2026, 1, 26))
    assert spans(shifts) == [
        ("alice", utc(2026, 1, 5, 8), utc(2026, 1, 12, 8), "Primary"),
        ("bob", utc(2026, 1, 12, 8), utc(2026, 1, 19, 8), "Primary"),
        ("carol", utc(2026, 1, 19, 8), utc(2026, 1, 26), "Primary"),
    ]
    assert all(s.start.tzinfo is UTC and s.end.tzinfo is UTC for s in shifts)
    # Before the rotation's first hand-off nobody is on call.
    assert gaps(schedule, utc(2026, 1, 1), utc(2026, 1, 26)) == [
        (utc(2026, 1, 1), utc(2026, 1, 5, 8))
    ]


def test_on_call_at_hand_off_boundaries_and_wrap_around() -> None:
    schedule = weekly_berlin()
    assert on_call_at(schedule, utc(2026, 1, 5, 7, 59)) is None
    assert on_call_at(schedule, utc(2026, 1, 5, 8)) == "alice"
    assert on_call_at(schedule, utc(2026, 1, 12, 7, 59)) == "alice"
    assert on_call_at(schedule, utc(2026, 1, 12, 8)) == "bob"
    assert on_call_at(schedule, utc(2026, 1, 26, 8)) == "alice"
    # Any time zone is accepted for the instant asked about.
    assert on_call_at(schedule, datetime(2026, 1, 12, 3, 0, tzinfo=NEW_YORK)) == "bob"


def test_window_given_in_another_zone_renders_clipped_utc_shifts() -> None:
    schedule = weekly_berlin()
    start = datetime(2026, 1, 14, 12, 0, tzinfo=NEW_YORK)  # 17:00 UTC
    shifts = render(schedule, start, start + timedelta(hours=6))
    assert spans(shifts) == [("bob", utc(2026, 1, 14, 17), utc(2026, 1, 14, 23), "Primary")]


def test_daily_rotation_restricted_to_business_hours() -> None:
    layer = LayerSpec(
        "Business hours",
        ["ana", "ben"],
        datetime(2026, 1, 5, 9),  # 09:00 EST = 14:00 UTC
        1,
        "days",
        [Restriction.daily("09:00", "17:00")],
    )
    schedule = ScheduleSpec("Support", "America/New_York", [layer])
    assert spans(render(schedule, utc(2026, 1, 5), utc(2026, 1, 8))) == [
        ("ana", utc(2026, 1, 5, 14), utc(2026, 1, 5, 22), "Business hours"),
        ("ben", utc(2026, 1, 6, 14), utc(2026, 1, 6, 22), "Business hours"),
        ("ana", utc(2026, 1, 7, 14), utc(2026, 1, 7, 22), "Business hours"),
    ]
    assert gaps(schedule, utc(2026, 1, 5, 12), utc(2026, 1, 6, 15)) == [
        (utc(2026, 1, 5, 12), utc(2026, 1, 5, 14)),
        (utc(2026, 1, 5, 22), utc(2026, 1, 6, 14)),
    ]
    assert on_call_at(schedule, utc(2026, 1, 6, 21, 59)) == "ben"
    assert on_call_at(schedule, utc(2026, 1, 6, 22)) is None


def test_weekday_business_hours_leave_the_weekend_empty() -> None:
    workdays = [Restriction.weekly(day, "09:00", day, "17:00") for day in range(5)]
    layer = LayerSpec("Office", ["ana"], datetime(2026, 1, 5, 9), 1, "weeks", workdays)
    schedule = ScheduleSpec("Support", "America/New_York", [layer])
    # Friday 2026-01-09 to Tuesday 2026-01-13: Friday and Monday only.
    assert spans(render(schedule, utc(2026, 1, 9), utc(2026, 1, 13))) == [
        ("ana", utc(2026, 1, 9, 14), utc(2026, 1, 9, 22), "Office"),
        ("ana", utc(2026, 1, 12, 14), utc(2026, 1, 12, 22), "Office"),
    ]


def test_overnight_restriction_crosses_midnight() -> None:
    layer = LayerSpec(
        "Nights",
        ["a", "b"],
        datetime(2026, 1, 5, 18),  # hand-off at 18:00 CET, before the night starts
        1,
        "days",
        [Restriction.daily("22:00", "06:00")],
    )
    schedule = ScheduleSpec("Ops", "Europe/Berlin", [layer])
    # The night of the 4th to the 5th lies before the layer starts at 18:00 on the 5th.
    assert spans(render(schedule, utc(2026, 1, 5), utc(2026, 1, 7, 12))) == [
        ("a", utc(2026, 1, 5, 21), utc(2026, 1, 6, 5), "Nights"),
        ("b", utc(2026, 1, 6, 21), utc(2026, 1, 7, 5), "Nights"),
    ]


def test_hand_off_inside_an_overnight_window_splits_the_night() -> None:
    layer = LayerSpec(
        "Nights",
        ["a", "b"],
        datetime(2026, 1, 5, 2),
        1,
        "days",
        [Restriction.daily("22:00", "06:00")],
    )
    schedule = ScheduleSpec("Ops", "Europe/Berlin", [layer])
    assert spans(render(schedule, utc(2026, 1, 5, 12), utc(2026, 1, 7, 12))) == [
        ("a", utc(2026, 1, 5, 21), utc(2026, 1, 6, 1), "Nights"),
        ("b", utc(2026, 1, 6, 1), utc(2026, 1, 6, 5), "Nights"),
        ("b", utc(2026, 1, 6, 21), utc(2026, 1, 7, 1), "Nights"),
        ("a", utc(2026, 1, 7, 1), utc(2026, 1, 7, 5), "Nights"),
    ]


def test_weekend_window_wraps_from_sunday_into_monday() -> None:
    layer = LayerSpec(
        "Weekend",
        ["x", "y"],
        datetime(2026, 1, 9, 18),  # Friday 18:00 CET
        1,
        "weeks",
        [Restriction.weekly("fri", "18:00", "mon", "08:00")],
    )
    schedule = ScheduleSpec("Ops", "Europe/Berlin", [layer])
    assert spans(render(schedule, utc(2026, 1, 9), utc(2026, 1, 20))) == [
        ("x", utc(2026, 1, 9, 17), utc(2026, 1, 12, 7), "Weekend"),
        ("y", utc(2026, 1, 16, 17), utc(2026, 1, 19, 7), "Weekend"),
    ]


def test_sunday_night_window_wraps_the_week_boundary() -> None:
    layer = LayerSpec(
        "Sunday night",
        ["x"],
        datetime(2026, 1, 5, 12),  # after the night of the 4th to the 5th
        1,
        "weeks",
        [Restriction.weekly("sun", "22:00", "mon", "06:00")],
    )
    schedule = ScheduleSpec("Ops", "Europe/Berlin", [layer])
    assert on_call_at(schedule, utc(2026, 1, 11, 20, 59)) is None  # Sunday 21:59 CET
    assert on_call_at(schedule, utc(2026, 1, 11, 21)) == "x"
    assert on_call_at(schedule, utc(2026, 1, 12, 4, 59)) == "x"  # Monday 05:59 CET
    assert on_call_at(schedule, utc(2026, 1, 12, 5)) is None
    assert spans(render(schedule, utc(2026, 1, 5), utc(2026, 1, 19))) == [
        ("x", utc(2026, 1, 11, 21), utc(2026, 1, 12, 5), "Sunday night"),
        ("x", utc(2026, 1, 18, 21), utc(2026, 1, 19), "Sunday night"),
    ]


def test_weekly_window_ending_before_it_starts_on_the_same_day_wraps_a_whole_week() -> None:
    # Everything except Monday 09:00-17:00.
    layer = LayerSpec(
        "Mostly",
        ["x"],
        datetime(2026, 1, 5),
        1,
        "weeks",
        [Restriction.weekly(0, "17:00", 0, "09:00")],
    )
    schedule = ScheduleSpec("Ops", "UTC", [layer])
    assert gaps(schedule, utc(2026, 1, 5), utc(2026, 1, 19)) == [
        (utc(2026, 1, 5, 9), utc(2026, 1, 5, 17)),
        (utc(2026, 1, 12, 9), utc(2026, 1, 12, 17)),
    ]


def follow_the_sun() -> ScheduleSpec:
    # Americas cover around the clock underneath; Europe covers 08:00-20:00 Berlin on top.
    americas = LayerSpec("Americas", ["ana", "ben"], datetime(2026, 1, 5), 1, "weeks")
    europe = LayerSpec(
        "Europe",
        ["eva", "fritz"],
        datetime(2026, 1, 5, 8),
        1,
        "weeks",
        [Restriction.daily("08:00", "20:00")],
    )
    return ScheduleSpec("Global SRE", "Europe/Berlin", [americas, europe])


def test_follow_the_sun_layers_hand_over_at_berlin_times() -> None:
    schedule = follow_the_sun()
    assert spans(render(schedule, utc(2026, 1, 7), utc(2026, 1, 8))) == [
        ("ana", utc(2026, 1, 7), utc(2026, 1, 7, 7), "Americas"),
        ("eva", utc(2026, 1, 7, 7), utc(2026, 1, 7, 19), "Europe"),
        ("ana", utc(2026, 1, 7, 19), utc(2026, 1, 8), "Americas"),
    ]
    assert gaps(schedule, utc(2026, 1, 1), utc(2026, 2, 1)) == [
        (utc(2026, 1, 1), utc(2026, 1, 4, 23))
    ]


def test_follow_the_sun_seen_from_new_york_while_only_one_side_is_on_summer_time() -> None:
    schedule = follow_the_sun()

    def in_new_york(month: int, day: int, hour: int, minute: int) -> datetime:
        return datetime(2026, month, day, hour, minute, tzinfo=NEW_YORK)

    # January: Europe hands over to the Americas at 14:00 New York time.
    assert on_call_at(schedule, in_new_york(1, 7, 13, 59)) == "eva"
    assert on_call_at(schedule, in_new_york(1, 7, 14, 0)) == "ana"
    # 8-29 March: New York is on summer time, Berlin not yet: the hand-over is at 15:00.
    assert on_call_at(schedule, in_new_york(3, 11, 14, 30)) == "fritz"
    assert on_call_at(schedule, in_new_york(3, 11, 15, 0)) == "ben"
    # April: both on summer time, back to 14:00.
    assert on_call_at(schedule, in_new_york(4, 1, 13, 59)) == "eva"
    assert on_call_at(schedule, in_new_york(4, 1, 14, 0)) == "ana"


def test_each_layer_renders_on_its_own_for_the_schedule_view() -> None:
    schedule = follow_the_sun()
    americas = render_layer(schedule, "Americas", utc(2026, 1, 7), utc(2026, 1, 8))
    assert spans(americas) == [("ana", utc(2026, 1, 7), utc(2026, 1, 8), "Americas")]
    europe = render_layer(schedule, "Europe", utc(2026, 1, 7), utc(2026, 1, 8))
    assert spans(europe) == [("eva", utc(2026, 1, 7, 7), utc(2026, 1, 7, 19), "Europe")]


def test_lower_layer_shows_through_where_the_upper_has_nobody_or_has_ended() -> None:
    base = LayerSpec("Base", ["a"], datetime(2026, 1, 5), 1, "days")
    weekend = LayerSpec(
        "Weekend",
        ["w1", "w2"],
        datetime(2026, 1, 10),
        1,
        "weeks",
        [Restriction.weekly("sat", "00:00", "mon", "00:00")],
        end=datetime(2026, 1, 18, 12),
    )
    schedule = ScheduleSpec("Ops", "UTC", [base, weekend])
    assert spans(render(schedule, utc(2026, 1, 9), utc(2026, 1, 20))) == [
        ("a", utc(2026, 1, 9), utc(2026, 1, 10), "Base"),
        ("w1", utc(2026, 1, 10), utc(2026, 1, 12), "Weekend"),
        ("a", utc(2026, 1, 12), utc(2026, 1, 17), "Base"),
        ("w2", utc(2026, 1, 17), utc(2026, 1, 18, 12), "Weekend"),
        ("a", utc(2026, 1, 18, 12), utc(2026, 1, 20), "Base"),
    ]
    assert on_call_at(schedule, utc(2026, 1, 18, 11, 59)) == "w2"
    assert on_call_at(schedule, utc(2026, 1, 18, 12)) == "a"  # the layer's end is exclusive


def test_override_splits_a_shift() -> None:
    layer = LayerSpec("Primary", ["alice"], datetime(2026, 1, 5, 9), 1, "weeks")
    override = Override("bob", utc(2026, 1, 7, 12), utc(2026, 1, 7, 14))
    schedule = ScheduleSpec("Payments", "Europe/Berlin", [layer], [override])
    assert spans(render(schedule, utc(2026, 1, 5, 8), utc(2026, 1, 12, 8))) == [
        ("alice", utc(2026, 1, 5, 8), utc(2026, 1, 7, 12), "Primary"),
        ("bob", utc(2026, 1, 7, 12), utc(2026, 1, 7, 14), OVERRIDE),
        ("alice", utc(2026, 1, 7, 14), utc(2026, 1, 12, 8), "Primary"),
    ]
    assert on_call_at(schedule, utc(2026, 1, 7, 13)) == "bob"
    assert on_call_at(schedule, utc(2026, 1, 7, 14)) == "alice"


def test_later_override_wins_where_overrides_overlap_and_overrides_fill_gaps() -> None:
    layer = LayerSpec(
        "Day", ["alice"], datetime(2026, 1, 5), 1, "weeks", [Restriction.daily("09:00", "17:00")]
    )
    overrides = [
        Override("bob", utc(2026, 1, 7, 12), utc(2026, 1, 7, 20)),
        Override("carol", utc(2026, 1, 7, 13), utc(2026, 1, 7, 15)),
    ]
    schedule = ScheduleSpec("Ops", "UTC", [layer], overrides)
    assert spans(render(schedule, utc(2026, 1, 7), utc(2026, 1, 8))) == [
        ("alice", utc(2026, 1, 7, 9), utc(2026, 1, 7, 12), "Day"),
        ("bob", utc(2026, 1, 7, 12), utc(2026, 1, 7, 13), OVERRIDE),
        ("carol", utc(2026, 1, 7, 13), utc(2026, 1, 7, 15), OVERRIDE),
        ("bob", utc(2026, 1, 7, 15), utc(2026, 1, 7, 20), OVERRIDE),
    ]
    assert on_call_at(schedule, utc(2026, 1, 7, 19)) == "bob"  # after the layer's window


def test_override_by_the_scheduled_user_is_kept_apart_from_the_layer() -> None:
    layer = LayerSpec("Primary", ["alice"], datetime(2026, 1, 5), 1, "days")
    schedule = ScheduleSpec(
        "Ops", "UTC", [layer], [Override("alice", utc(2026, 1, 6), utc(2026, 1, 7))]
    )
    assert spans(render(schedule, utc(2026, 1, 5), utc(2026, 1, 8))) == [
        ("alice", utc(2026, 1, 5), utc(2026, 1, 6), "Primary"),
        ("alice", utc(2026, 1, 6), utc(2026, 1, 7), OVERRIDE),
        ("alice", utc(2026, 1, 7), utc(2026, 1, 8), "Primary"),
    ]


def test_consecutive_turns_of_the_same_user_merge() -> None:
    layer = LayerSpec("Solo", [7], datetime(2026, 1, 5), 8, "hours")
    schedule = ScheduleSpec("Ops", "UTC", [layer])
    assert spans(render(schedule, utc(2026, 1, 5), utc(2026, 1, 8))) == [
        (7, utc(2026, 1, 5), utc(2026, 1, 8), "Solo")
    ]


def test_empty_window_and_schedule_without_layers() -> None:
    schedule = weekly_berlin()
    assert render(schedule, utc(2026, 1, 6), utc(2026, 1, 6)) == []
    assert gaps(schedule, utc(2026, 1, 6), utc(2026, 1, 6)) == []
    empty = ScheduleSpec("Nobody", "UTC")
    assert render(empty, utc(2026, 1, 1), utc(2026, 1, 2)) == []
    assert gaps(empty, utc(2026, 1, 1), utc(2026, 1, 2)) == [(utc(2026, 1, 1), utc(2026, 1, 2))]
    assert on_call_at(empty, utc(2026, 1, 1)) is None
