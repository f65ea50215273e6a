"""iCalendar feeds: they parse back, carry one UTC event per shift, and keep UIDs stable."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from icalendar import Calendar

from tests.oncall.helpers import utc
from tocsin.oncall import LayerSpec, Override, Restriction, ScheduleSpec, Shift, render
from tocsin.oncall.ical import ScheduleShifts, schedule_calendar, shift_uid, user_calendar

GENERATED_AT = utc(2026, 1, 1, 12)


def payments(overrides: list[Override] | None = None, nights: bool = False) -> ScheduleSpec:
    layers = [LayerSpec("Primary", ["alice", "bob"], datetime(2026, 1, 5, 9), 1, "weeks")]
    if nights:
        night = Restriction.daily("22:00", "06:00")
        layers.append(LayerSpec("Nights", [42], datetime(2026, 1, 5), 1, "weeks", [night]))
    return ScheduleSpec("Payments", "Europe/Berlin", layers, overrides or [])


def feed_for(schedule: ScheduleSpec) -> tuple[list[Shift], Calendar]:
    shifts = render(schedule, utc(2026, 1, 5), utc(2026, 1, 19))
    raw = schedule_calendar(
        ScheduleShifts("sched-1", schedule.name, shifts),
        generated_at=GENERATED_AT,
        user_names={"alice": "Alice Liddell"},
    )
    return shifts, Calendar.from_ical(raw)


def test_schedule_feed_parses_back_with_one_utc_event_per_shift() -> None:
    shifts, calendar = feed_for(payments(nights=True))
    assert str(calendar["VERSION"]) == "2.0"
    assert "Tocsin" in str(calendar["PRODID"])
    events = calendar.walk("VEVENT")
    assert len(shifts) > 20  # two weeks of nights around the day layer
    assert len(events) == len(shifts)
    for event, shift in zip(events, shifts, strict=True):
        start, end = event.decoded("DTSTART"), event.decoded("DTEND")
        assert (start, end) == (shift.start, shift.end)
        assert start.utcoffset() == timedelta(0) and end.utcoffset() == timedelta(0)
        assert event.decoded("DTSTAMP") == GENERATED_AT
        if shift.user == "alice":
            assert str(event["SUMMARY"]) == "On call: Payments (Alice Liddell)"
        else:
            assert str(event["SUMMARY"]) == "On call: Payments"
    assert len({str(e["UID"]) for e in events}) == len(events)


def test_times_are_written_in_utc_form() -> None:
    shifts = [Shift("alice", utc(2026, 1, 5, 8), utc(2026, 1, 12, 8), "Primary")]
    raw = schedule_calendar(
        ScheduleShifts("sched-1", "Payments", shifts), generated_at=GENERATED_AT
    ).decode()
    lines = raw.splitlines()
    assert "DTSTART:20260105T080000Z" in lines
    assert "DTEND:20260112T080000Z" in lines
    assert raw.endswith("\r\n")  # content lines end with CRLF


def test_uids_survive_rerendering_and_an_override_that_shortens_a_shift() -> None:
    before, calendar = feed_for(payments())
    _, again = feed_for(payments())
    assert [str(e["UID"]) for e in calendar.walk("VEVENT")] == [
        str(e["UID"]) for e in again.walk("VEVENT")
    ]
    # Bob takes over Alice's first Wednesday afternoon: her shift now ends there.
    override = Override("bob", utc(2026, 1, 7, 12), utc(2026, 1, 7, 18))
    after, changed = feed_for(payments([override]))
    alice_before = next(s for s in before if s.user == "alice")
    alice_after = next(s for s in after if s.user == "alice")
    assert alice_after.start == alice_before.start and alice_after.end < alice_before.end
    assert shift_uid("sched-1", alice_before) == shift_uid("sched-1", alice_after)
    uids = [str(e["UID"]) for e in changed.walk("VEVENT")]
    assert len(set(uids)) == len(uids)


def test_uids_tell_apart_schedules_sources_and_user_types() -> None:
    shift = Shift(7, utc(2026, 1, 5), utc(2026, 1, 6), "Primary")
    uids = {
        shift_uid("sched-1", shift),
        shift_uid("sched-2", shift),
        shift_uid("sched-1", Shift(7, shift.start, shift.end, "override")),
        shift_uid("sched-1", Shift("7", shift.start, shift.end, "Primary")),
    }
    assert len(uids) == 4


def test_user_feed_holds_only_that_users_shifts_across_schedules() -> None:
    window = (utc(2026, 1, 5), utc(2026, 1, 19))
    schedules = [
        ScheduleShifts("sched-1", "Payments", render(payments(), *window)),
        ScheduleShifts(
            "sched-2",
            "Checkout",
            render(
                ScheduleSpec(
                    "Checkout",
                    "UTC",
                    [LayerSpec("Primary", ["carol", "alice"], datetime(2026, 1, 5), 1, "weeks")],
                ),
                *window,
            ),
        ),
    ]
    raw = user_calendar("alice", schedules, generated_at=GENERATED_AT, user_name="Alice Liddell")
    calendar = Calendar.from_ical(raw)
    assert str(calendar["X-WR-CALNAME"]) == "On call: Alice Liddell"
    events = calendar.walk("VEVENT")
    assert sorted(str(e["SUMMARY"]) for e in events) == [
        "On call: Checkout (Alice Liddell)",
        "On call: Payments (Alice Liddell)",
    ]
    starts = [e.decoded("DTSTART") for e in events]
    assert starts == sorted(starts) == [utc(2026, 1, 5, 8), utc(2026, 1, 12)]


def test_feed_needs_an_aware_generation_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        schedule_calendar(ScheduleShifts("s", "S", []), generated_at=datetime(2026, 1, 1))
