"""Properties over random schedules near DST changes: shifts and gaps tile the window exactly,
and every way of asking (render, render_layer, on_call_at, a brute-force model) agrees."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tocsin.oncall import (
    OVERRIDE,
    LayerSpec,
    Override,
    Restriction,
    RotationUnit,
    ScheduleSpec,
    Shift,
    UserId,
    gaps,
    on_call_at,
    render,
    render_layer,
    resolve_local,
)

# Each zone with days on which its clocks change (or, for zones without DST, ordinary days).
ZONE_DAYS = {
    "UTC": [date(2026, 3, 29), date(2026, 11, 1)],
    "Asia/Kolkata": [date(2026, 3, 8), date(2026, 10, 25)],  # fixed +05:30
    "Europe/Berlin": [date(2026, 3, 29), date(2026, 10, 25)],
    "America/New_York": [date(2026, 3, 8), date(2026, 11, 1)],
    "Australia/Lord_Howe": [date(2026, 4, 5), date(2026, 10, 4)],  # 30-minute changes
    "America/Santiago": [date(2026, 4, 4), date(2026, 9, 6)],  # changes at midnight
}
# Where each change starts, local time: the first skipped or repeated wall-clock minute.
CHANGES = [
    ("Europe/Berlin", datetime(2026, 3, 29, 2, 0)),
    ("Europe/Berlin", datetime(2026, 10, 25, 2, 0)),
    ("America/New_York", datetime(2026, 3, 8, 2, 0)),
    ("America/New_York", datetime(2026, 11, 1, 1, 0)),
    ("Australia/Lord_Howe", datetime(2026, 4, 5, 1, 30)),
    ("Australia/Lord_Howe", datetime(2026, 10, 4, 2, 0)),
    ("America/Santiago", datetime(2026, 4, 4, 23, 0)),
    ("America/Santiago", datetime(2026, 9, 6, 0, 0)),
]
USERS: list[UserId] = ["ana", "ben", "cho", 1, 2]
QUARTER = timedelta(minutes=15)

PROPERTY_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# Half of the times fall between 00:00 and 04:00, where most DST changes happen.
quarter_times = st.one_of(st.integers(0, 95), st.integers(0, 15)).map(
    lambda q: time(q // 4, q % 4 * 15)
)
weekdays = st.integers(0, 6)


@st.composite
def restrictions(draw: st.DrawFn) -> Restriction:
    start, end = draw(quarter_times), draw(quarter_times)
    if draw(st.booleans()):
        if start == end:
            end = time((start.hour + 8) % 24, start.minute)
        return Restriction("daily", start, end)
    start_day, end_day = draw(weekdays), draw(weekdays)
    if (start_day, start) == (end_day, end):
        end_day = (end_day + 1) % 7
    return Restriction("weekly", start, end, start_day, end_day)


@st.composite
def layers(draw: st.DrawFn, name: str, around: datetime) -> LayerSpec:
    unit: RotationUnit = draw(st.sampled_from(["hours", "days", "weeks"]))
    length = draw(st.integers(1, 36 if unit == "hours" else 3))
    # Started up to 90 days before the window, or a few days into it.
    start = datetime.combine(around.date(), draw(quarter_times))
    start += timedelta(days=draw(st.integers(-90, 5)))
    end = None
    if draw(st.booleans()):
        end = start + QUARTER * draw(st.integers(1, 100 * 96))
    return LayerSpec(
        name,
        draw(st.lists(st.sampled_from(USERS), min_size=1, max_size=4)),
        start,
        length,
        unit,
        draw(st.lists(restrictions(), max_size=2)),
        end,
    )


@st.composite
def cases(draw: st.DrawFn) -> tuple[ScheduleSpec, datetime, datetime]:
    zone = draw(st.sampled_from(sorted(ZONE_DAYS)))
    around = datetime.combine(draw(st.sampled_from(ZONE_DAYS[zone])), time())
    count = draw(st.integers(1, 3))
    stack = [draw(layers(f"L{i}", around)) for i in range(count)]
    around_utc = around.replace(tzinfo=UTC)
    overrides = []
    for _ in range(draw(st.integers(0, 3))):
        begin = around_utc + QUARTER * draw(st.integers(-4 * 96, 4 * 96))
        overrides.append(
            Override(
                draw(st.sampled_from(USERS)), begin, begin + QUARTER * draw(st.integers(1, 300))
            )
        )
    schedule = ScheduleSpec("Random", zone, stack, overrides)
    lo = around_utc + QUARTER * draw(st.integers(-3 * 96, 3 * 96))
    hi = lo + QUARTER * draw(st.integers(1, 8 * 96))
    return schedule, lo, hi


# A model written for clarity, not speed: walk the hand-offs from the start, and look for a
# restriction window by trying every day of the past week.


def model_on_call(schedule: ScheduleSpec, instant: datetime) -> UserId | None:
    for override in reversed(schedule.overrides):
        if override.start <= instant < override.end:
            return override.user
    for layer in reversed(schedule.layers):
        user = model_layer(layer, schedule, instant)
        if user is not None:
            return user
    return None


def model_layer(layer: LayerSpec, schedule: ScheduleSpec, instant: datetime) -> UserId | None:
    zone = schedule.zone
    begin = resolve_local(layer.start, zone)
    if instant < begin or (layer.end is not None and instant >= resolve_local(layer.end, zone)):
        return None
    if layer.restrictions and not any(
        model_in_window(r, schedule, instant) for r in layer.restrictions
    ):
        return None
    if layer.rotation_unit == "hours":
        turn = (instant - begin) // timedelta(hours=layer.rotation_length)
    else:
        days = layer.rotation_length * (7 if layer.rotation_unit == "weeks" else 1)
        turn = 0
        while resolve_local(layer.start + timedelta(days=days * (turn + 1)), zone) <= instant:
            turn += 1
    return layer.users[turn % len(layer.users)]


def model_in_window(r: Restriction, schedule: ScheduleSpec, instant: datetime) -> bool:
    today = instant.astimezone(schedule.zone).date()
    for back in range(-1, 9):
        day = today - timedelta(days=back)
        if r.kind == "weekly" and day.weekday() != r.start_weekday:
            continue
        opens = datetime.combine(day, r.start)
        if r.kind == "daily":
            closes = datetime.combine(day, r.end)
        else:
            assert r.start_weekday is not None and r.end_weekday is not None
            ahead = (r.end_weekday - r.start_weekday) % 7
            closes = datetime.combine(day + timedelta(days=ahead), r.end)
        if closes <= opens:
            closes += timedelta(days=1 if r.kind == "daily" else 7)
        if resolve_local(opens, schedule.zone) <= instant < resolve_local(closes, schedule.zone):
            return True
    return False


def covering(shifts: list[Shift], instant: datetime) -> UserId | None:
    found = [s.user for s in shifts if s.start <= instant < s.end]
    assert len(found) <= 1
    return found[0] if found else None


def probes(
    shifts: list[Shift], lo: datetime, hi: datetime, fractions: list[float]
) -> set[datetime]:
    """Instants worth asking about: every boundary, just before it, shortly after it (where
    clocks that went back read earlier than the boundary), and random points."""
    points = {lo, hi - timedelta(microseconds=1)}
    for shift in shifts:
        points |= {shift.start, shift.end, shift.end - timedelta(microseconds=1)}
        points |= {edge + QUARTER * n for edge in (shift.start, shift.end) for n in (1, 2, 3)}
    points |= {lo + (hi - lo) * f for f in fractions}
    return {p for p in points if lo <= p < hi}


def merged(shifts: list[Shift]) -> list[Shift]:
    result: list[Shift] = []
    for s in shifts:
        if result and (result[-1].end, result[-1].user, result[-1].source) == (
            s.start,
            s.user,
            s.source,
        ):
            result[-1] = Shift(s.user, result[-1].start, s.end, s.source)
        else:
            result.append(s)
    return result


@PROPERTY_SETTINGS
@given(cases())
def test_shifts_and_gaps_tile_the_window(case: tuple[ScheduleSpec, datetime, datetime]) -> None:
    schedule, lo, hi = case
    shifts = render(schedule, lo, hi)
    sources = {layer.name for layer in schedule.layers} | {OVERRIDE}
    for shift in shifts:
        assert shift.start.utcoffset() == timedelta(0) and shift.end.utcoffset() == timedelta(0)
        assert lo <= shift.start < shift.end <= hi
        assert shift.source in sources
    for before, after in itertools.pairwise(shifts):
        assert before.end <= after.start, "shifts overlap or are unsorted"
        if before.end == after.start:
            assert (before.user, before.source) != (after.user, after.source), "not merged"
    pieces: list[tuple[datetime, datetime]] = sorted(
        [(s.start, s.end) for s in shifts] + gaps(schedule, lo, hi)
    )
    cursor = lo
    for start, end in pieces:
        assert start == cursor, "an unexplained gap or an overlap with a gap"
        assert start < end
        cursor = end
    assert cursor == hi


@PROPERTY_SETTINGS
@given(cases(), st.lists(st.floats(0, 1), max_size=8))
def test_on_call_at_agrees_with_render_and_the_model(
    case: tuple[ScheduleSpec, datetime, datetime], fractions: list[float]
) -> None:
    schedule, lo, hi = case
    shifts = render(schedule, lo, hi)
    for instant in probes(shifts, lo, hi, fractions):
        expected = model_on_call(schedule, instant)
        assert covering(shifts, instant) == expected, instant
        assert on_call_at(schedule, instant) == expected, instant


@PROPERTY_SETTINGS
@given(cases(), st.lists(st.floats(0, 1), max_size=8))
def test_each_layer_view_agrees_with_the_model(
    case: tuple[ScheduleSpec, datetime, datetime], fractions: list[float]
) -> None:
    schedule, lo, hi = case
    for layer in schedule.layers:
        shifts = render_layer(schedule, layer.name, lo, hi)
        assert all(s.source == layer.name for s in shifts)
        for instant in probes(shifts, lo, hi, fractions):
            assert covering(shifts, instant) == model_layer(layer, schedule, instant), instant


@PROPERTY_SETTINGS
@given(cases(), st.floats(0, 1))
def test_rendering_in_two_pieces_gives_the_same_schedule(
    case: tuple[ScheduleSpec, datetime, datetime], fraction: float
) -> None:
    schedule, lo, hi = case
    middle = lo + (hi - lo) * fraction
    pieces: list[Any] = render(schedule, lo, middle) + render(schedule, middle, hi)
    assert merged(pieces) == render(schedule, lo, hi)


@st.composite
def hand_offs_near_a_change(draw: st.DrawFn) -> tuple[ScheduleSpec, datetime]:
    """A day or week rotation that hands off within two hours of a DST change, perhaps with a
    daily window whose edges are near it too."""
    zone, change = draw(st.sampled_from(CHANGES))
    near = st.integers(-8, 8).map(lambda n: change + QUARTER * n)
    turn_days = draw(st.sampled_from([1, 2, 7, 14]))
    unit: RotationUnit = "weeks" if turn_days % 7 == 0 else "days"
    start = draw(near) - timedelta(days=turn_days * draw(st.integers(0, 3)))
    windows = []
    if draw(st.booleans()):
        opens, closes = draw(near).time(), draw(near).time()
        if opens != closes:
            windows.append(Restriction("daily", opens, closes))
    layer = LayerSpec("L", ["ana", "ben", "cho"], start, turn_days // 7 or turn_days, unit, windows)
    return ScheduleSpec("Near a change", zone, [layer]), change


@PROPERTY_SETTINGS
@given(hand_offs_near_a_change())
def test_every_quarter_hour_around_a_change_agrees_with_the_model(
    case: tuple[ScheduleSpec, datetime],
) -> None:
    schedule, change = case
    lo = resolve_local(change - timedelta(hours=3), schedule.zone)
    instants = [lo + QUARTER * n for n in range(33)]
    shifts = render(schedule, lo, instants[-1] + QUARTER)
    for instant in instants:
        expected = model_on_call(schedule, instant)
        assert on_call_at(schedule, instant) == expected, instant
        assert covering(shifts, instant) == expected, instant
