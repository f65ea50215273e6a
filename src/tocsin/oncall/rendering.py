"""Render on-call schedules into shifts: rotations, restrictions, layers and overrides.

Pure functions over frozen specs: no database, no clock. The semantics (what a boundary
means across daylight-saving changes, how layers stack) are described in
docs/oncall-schedules.md; the short version:

- Every wall-clock boundary (hand-off, restriction edge, layer start/end) is resolved to an
  instant by one rule, `resolve_local`: a time skipped by a spring-forward change happens
  when the clocks jump past it, a time that occurs twice happens at its first occurrence.
- Day and week rotations hand off at the same local time; hour rotations advance in
  absolute time.
- "Who is on call at t" is arithmetic (a handful of time zone conversions), never a walk
  from the start of the rotation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property, lru_cache
from itertools import pairwise
from typing import Literal, TypeAlias
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

UserId: TypeAlias = str | int
RotationUnit = Literal["hours", "days", "weeks"]
RestrictionKind = Literal["daily", "weekly"]

OVERRIDE = "override"
"""The `Shift.source` of time covered by an override."""

ROTATION_UNITS: tuple[RotationUnit, ...] = ("hours", "days", "weeks")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

# Outside these years time zone arithmetic can overflow datetime's range; no schedule needs them.
_MIN_YEAR, _MAX_YEAR = 1900, 9000
_DAY = timedelta(days=1)
# Restriction occurrences are numbered from this Monday (any Monday would do).
_ANCHOR_MONDAY = date(2001, 1, 1)


# --------------------------------------------------------------------------------------------
# Specs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Restriction:
    """A recurring window in which a layer is on call; outside all its windows it has nobody.

    daily: every day from `start` to `end` local time; `end` before `start` crosses midnight.
    weekly: from `start_weekday` `start` to `end_weekday` `end`; an end at or before the
    start within the week wraps into the next week. Weekdays count from Monday = 0.
    """

    kind: RestrictionKind
    start: time
    end: time
    start_weekday: int | None = None
    end_weekday: int | None = None

    def __post_init__(self) -> None:
        for label, value in (("start", self.start), ("end", self.end)):
            if not isinstance(value, time):
                raise ValueError(f"restriction {label} must be a datetime.time, got {value!r}")
            if value.tzinfo is not None:
                raise ValueError(
                    f"restriction {label} must be a local time without tzinfo "
                    "(it is read in the schedule's time zone)"
                )
        if self.kind == "daily":
            if self.start_weekday is not None or self.end_weekday is not None:
                raise ValueError("a daily restriction takes no weekdays")
            if self.start == self.end:
                raise ValueError(
                    f"daily restriction starts and ends at {self.start.isoformat()}: a window "
                    "needs a length (a layer without restrictions is on call all day)"
                )
        elif self.kind == "weekly":
            for label, day in (("start", self.start_weekday), ("end", self.end_weekday)):
                if isinstance(day, bool) or not isinstance(day, int) or not 0 <= day <= 6:
                    raise ValueError(
                        f"weekly restriction {label}_weekday must be 0 (Monday) to 6 (Sunday), "
                        f"got {day!r}"
                    )
            if self.start_weekday == self.end_weekday and self.start == self.end:
                raise ValueError(
                    "weekly restriction starts and ends at the same weekday and time: a window "
                    "needs a length (a layer without restrictions is on call all week)"
                )
        else:
            raise ValueError(f"restriction kind must be 'daily' or 'weekly', got {self.kind!r}")

    @classmethod
    def daily(cls, start: str | time, end: str | time) -> Restriction:
        """`Restriction.daily("09:00", "17:00")`; `("22:00", "06:00")` crosses midnight."""
        return cls("daily", parse_time(start), parse_time(end))

    @classmethod
    def weekly(
        cls, start_weekday: int | str, start: str | time, end_weekday: int | str, end: str | time
    ) -> Restriction:
        """`Restriction.weekly("fri", "17:00", "mon", "09:00")` wraps over the weekend."""
        return cls(
            "weekly",
            parse_time(start),
            parse_time(end),
            parse_weekday(start_weekday),
            parse_weekday(end_weekday),
        )

    @property
    def period_days(self) -> int:
        return 1 if self.kind == "daily" else 7

    def offsets(self) -> tuple[timedelta, timedelta]:
        """Window start and end as wall-clock offsets from the start of its day or week."""
        start = _time_offset(self.start) + _DAY * (self.start_weekday or 0)
        end = _time_offset(self.end) + _DAY * (self.end_weekday or 0)
        if end <= start:
            end += _DAY * self.period_days
        return start, end


@dataclass(frozen=True)
class LayerSpec:
    """One rotation: `users` take turns of `rotation_length` `rotation_unit`s from `start`.

    `start` (and `end`) are naive wall-clock datetimes in the schedule's time zone; `start`
    is the first hand-off, to `users[0]`. Before `start` and from `end` on the layer has
    nobody on call.
    """

    name: str
    users: Sequence[UserId]
    start: datetime
    rotation_length: int
    rotation_unit: RotationUnit
    restrictions: Sequence[Restriction] = ()
    end: datetime | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError("layer name must be a non-empty string")
        where = f"layer {self.name!r}"
        if isinstance(self.users, str | bytes) or not isinstance(self.users, Sequence):
            raise ValueError(f"{where}: users must be a list of user identifiers")
        object.__setattr__(self, "users", tuple(self.users))
        if not self.users:
            raise ValueError(f"{where}: the rotation needs at least one user")
        for user in self.users:
            _check_user(user, where)
        _check_wall(self.start, f"{where} start")
        if self.end is not None:
            _check_wall(self.end, f"{where} end")
            if self.end <= self.start:
                raise ValueError(f"{where}: end must be after start")
        length = self.rotation_length
        if isinstance(length, bool) or not isinstance(length, int) or length <= 0:
            raise ValueError(f"{where}: rotation_length must be a positive integer, got {length!r}")
        if self.rotation_unit not in ROTATION_UNITS:
            raise ValueError(
                f"{where}: rotation_unit must be one of {', '.join(ROTATION_UNITS)}, "
                f"got {self.rotation_unit!r}"
            )
        if isinstance(self.restrictions, Restriction) or not isinstance(
            self.restrictions, Sequence
        ):
            raise ValueError(f"{where}: restrictions must be a list of Restriction")
        object.__setattr__(self, "restrictions", tuple(self.restrictions))
        for restriction in self.restrictions:
            if not isinstance(restriction, Restriction):
                raise ValueError(f"{where}: restrictions must be Restriction, got {restriction!r}")


@dataclass(frozen=True)
class Override:
    """`user` is on call from `start` to `end` (timezone-aware instants), above all layers."""

    user: UserId
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        _check_user(self.user, "override")
        _check_instant(self.start, "override start")
        _check_instant(self.end, "override end")
        if self.end <= self.start:
            raise ValueError("override end must be after its start")


@dataclass(frozen=True)
class ScheduleSpec:
    """A schedule: an IANA time zone, layers (later ones on top) and overrides (later ones
    win where overrides overlap)."""

    name: str
    time_zone: str
    layers: Sequence[LayerSpec] = ()
    overrides: Sequence[Override] = ()
    zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError("schedule name must be a non-empty string")
        object.__setattr__(self, "zone", load_zone(self.time_zone))
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "overrides", tuple(self.overrides))
        seen: set[str] = set()
        for layer in self.layers:
            if not isinstance(layer, LayerSpec):
                raise ValueError(f"layers must be LayerSpec, got {layer!r}")
            if layer.name == OVERRIDE:
                raise ValueError(f"{OVERRIDE!r} is reserved and cannot name a layer")
            if layer.name in seen:
                raise ValueError(f"two layers are named {layer.name!r}; layer names must differ")
            seen.add(layer.name)
        for override in self.overrides:
            if not isinstance(override, Override):
                raise ValueError(f"overrides must be Override, got {override!r}")

    def layer(self, name: str) -> LayerSpec:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"schedule {self.name!r} has no layer named {name!r}")


@dataclass(frozen=True)
class Shift:
    """`user` on call over [start, end) (UTC), because of `source`: a layer name or
    "override"."""

    user: UserId
    start: datetime
    end: datetime
    source: str


# --------------------------------------------------------------------------------------------
# Parsing and validation helpers
# --------------------------------------------------------------------------------------------


def load_zone(name: str) -> ZoneInfo:
    if not isinstance(name, str) or not name:
        raise ValueError("time_zone must be an IANA time zone name such as 'Europe/Berlin'")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(
            f"unknown time zone {name!r}: use an IANA name such as 'Europe/Berlin'"
        ) from exc


def parse_time(value: str | time) -> time:
    """'09:00' or '09:00:30' (or a datetime.time) to a naive time."""
    if isinstance(value, time):
        return value
    try:
        parsed = time.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"expected a time of day like '09:00', got {value!r}") from exc
    if parsed.tzinfo is not None:
        raise ValueError(f"time of day {value!r} must not carry an offset")
    return parsed


def parse_weekday(value: int | str) -> int:
    """0-6 (Monday = 0) or a weekday name / three-letter abbreviation."""
    if isinstance(value, str):
        key = value.strip().lower()
        for index, name in enumerate(WEEKDAYS):
            if key in (name, name[:3]):
                return index
        raise ValueError(f"unknown weekday {value!r}")
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 6:
        raise ValueError(f"weekday must be 0 (Monday) to 6 (Sunday), got {value!r}")
    return value


def _check_user(user: object, where: str) -> None:
    if isinstance(user, bool) or not isinstance(user, str | int):
        raise ValueError(f"{where}: a user identifier is a string or an integer, got {user!r}")
    if isinstance(user, str) and not user:
        raise ValueError(f"{where}: a user identifier must not be empty")


def _check_wall(value: object, where: str) -> None:
    if not isinstance(value, datetime):
        raise ValueError(f"{where} must be a datetime, got {value!r}")
    if value.tzinfo is not None:
        raise ValueError(
            f"{where} must be a naive wall-clock time in the schedule's time zone (without tzinfo)"
        )
    if not _MIN_YEAR <= value.year <= _MAX_YEAR:
        raise ValueError(f"{where} must be between the years {_MIN_YEAR} and {_MAX_YEAR}")


def _check_instant(value: object, where: str) -> None:
    if not isinstance(value, datetime):
        raise ValueError(f"{where} must be a datetime, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{where} must be timezone-aware")
    if not _MIN_YEAR <= value.year <= _MAX_YEAR:
        raise ValueError(f"{where} must be between the years {_MIN_YEAR} and {_MAX_YEAR}")


def _time_offset(value: time) -> timedelta:
    return timedelta(
        hours=value.hour, minutes=value.minute, seconds=value.second, microseconds=value.microsecond
    )


# --------------------------------------------------------------------------------------------
# Wall clock to instant
# --------------------------------------------------------------------------------------------


def resolve_local(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant at which the clocks in `zone` first read `wall` (naive) or later.

    Ordinary times map one to one. A time that occurs twice (fall back) is its first
    occurrence (fold=0). A time skipped by a spring-forward change resolves to the moment of
    the jump: 02:30 on a day that jumps from 02:00 to 03:00 happens at 03:00. This rule keeps
    order: a later wall time never resolves to an earlier instant, so windows never invert.
    """
    instant = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == wall:
        return instant
    return _moment_of_jump(wall, zone, instant)


def _moment_of_jump(wall: datetime, zone: ZoneInfo, after: datetime) -> datetime:
    # `wall` lies in a gap: fold=1 reads it with the offset after the change (an instant
    # before the jump), fold=0 with the offset before it (an instant after the jump). The jump
    # itself is on a whole second (time zone data has second resolution): bisect for it.
    before = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    low = math.floor(before.timestamp())  # reads earlier than `wall`
    high = math.ceil(after.timestamp())  # reads at or after `wall`
    while high - low > 1:
        middle = (low + high) // 2
        reading = datetime.fromtimestamp(middle, zone).replace(tzinfo=None)
        if reading >= wall:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


# --------------------------------------------------------------------------------------------
# One layer
# --------------------------------------------------------------------------------------------

_Segment: TypeAlias = tuple[datetime, datetime, UserId]
_Interval: TypeAlias = tuple[datetime, datetime]


class _Layer:
    """A layer bound to its schedule's zone.

    Two ways to answer "is this boundary at or before instant t": resolve the boundary and
    compare instants, or compare wall-clock readings. They agree whenever t is not in the
    second pass through a repeated hour (fold=0): no earlier instant then read as late as t
    does, so resolve_local(w) <= t exactly when w <= t's reading. `user_at` takes that short
    cut; rendering and the repeated hour resolve.
    """

    def __init__(self, spec: LayerSpec, zone: ZoneInfo) -> None:
        self.spec = spec
        self.zone = zone
        self.users = tuple(spec.users)
        self.wall_clock = spec.rotation_unit != "hours"
        if spec.rotation_unit == "hours":
            self.turn = timedelta(hours=spec.rotation_length)
        else:
            self.turn = _DAY * spec.rotation_length * (7 if spec.rotation_unit == "weeks" else 1)
        self.windows = [_window_offsets(r) for r in spec.restrictions]

    @cached_property
    def begins(self) -> datetime:
        return resolve_local(self.spec.start, self.zone)

    @cached_property
    def ends(self) -> datetime | None:
        return None if self.spec.end is None else resolve_local(self.spec.end, self.zone)

    # rotation ---------------------------------------------------------------------------

    def handoff(self, k: int) -> datetime:
        """The instant of the k-th hand-off (k = 0 is `start`)."""
        if self.wall_clock:
            return resolve_local(self.spec.start + self.turn * k, self.zone)
        return self.begins + self.turn * k

    def turn_at(self, instant: datetime) -> int:
        """k such that handoff(k) <= instant < handoff(k + 1): arithmetic, not a walk."""
        if not self.wall_clock:
            return (instant - self.begins) // self.turn
        local = instant.astimezone(self.zone)
        k: int = (local.replace(tzinfo=None) - self.spec.start) // self.turn
        if local.fold:
            # In the repeated hour the instant reads earlier than hand-offs that have
            # already happened; the wall-clock count can only fall short.
            while self.handoff(k + 1) <= instant:
                k += 1
        return k

    def active(self, instant: datetime) -> bool:
        return self.begins <= instant and (self.ends is None or instant < self.ends)

    # restrictions -------------------------------------------------------------------------

    def _occurrence(self, period: int, start: timedelta, end: timedelta, n: int) -> _Interval:
        anchor = datetime.combine(_ANCHOR_MONDAY, time()) + _DAY * (period * n)
        return resolve_local(anchor + start, self.zone), resolve_local(anchor + end, self.zone)

    def _occurrence_index(self, instant: datetime, period: int) -> int:
        return (_wall(instant, self.zone).date() - _ANCHOR_MONDAY).days // period

    def in_restrictions(self, instant: datetime) -> bool:
        if not self.windows:
            return True
        for period, start, end in self.windows:
            n = self._occurrence_index(instant, period)
            # A window reaches at most one period past its own start; +1 covers clocks that
            # fall back across midnight.
            for candidate in (n - 1, n, n + 1):
                lo, hi = self._occurrence(period, start, end, candidate)
                if lo <= instant < hi:
                    return True
        return False

    def restriction_windows(self, lo: datetime, hi: datetime) -> list[_Interval]:
        """The union of this layer's restriction windows, clipped to [lo, hi)."""
        found: list[_Interval] = []
        for period, start, end in self.windows:
            first = self._occurrence_index(lo, period) - 2
            last = self._occurrence_index(hi, period) + 1
            for n in range(first, last + 1):
                a, b = self._occurrence(period, start, end, n)
                a, b = max(a, lo), min(b, hi)
                if a < b:
                    found.append((a, b))
        return _union(found)

    # rendering ----------------------------------------------------------------------------

    def user_at(self, instant: datetime, local: datetime) -> UserId | None:
        """Who this layer has on call at `instant`, which reads `local` in the zone."""
        if local.fold:
            if not self.active(instant) or not self.in_restrictions(instant):
                return None
            return self.users[self.turn_at(instant) % len(self.users)]
        wall = local.replace(tzinfo=None)
        if wall < self.spec.start or (self.spec.end is not None and wall >= self.spec.end):
            return None
        if self.windows and not any(_wall_in_window(wall, *w) for w in self.windows):
            return None
        if self.wall_clock:
            k = (wall - self.spec.start) // self.turn
        else:
            k = (instant - self.begins) // self.turn
        return self.users[k % len(self.users)]

    def segments(self, lo: datetime, hi: datetime) -> list[_Segment]:
        """Who this layer has on call over [lo, hi), restrictions applied, sorted."""
        lo = max(lo, self.begins)
        if self.ends is not None:
            hi = min(hi, self.ends)
        if lo >= hi:
            return []
        turns: list[_Segment] = []
        k = self.turn_at(lo)
        begin = self.handoff(k)
        while begin < hi:
            finish = self.handoff(k + 1)
            turns.append((max(begin, lo), min(finish, hi), self.users[k % len(self.users)]))
            k, begin = k + 1, finish
        if not self.windows:
            return turns
        return _intersect(turns, self.restriction_windows(lo, hi))


@lru_cache(maxsize=4096)
def _window_offsets(restriction: Restriction) -> tuple[int, timedelta, timedelta]:
    return (restriction.period_days, *restriction.offsets())


def _wall_in_window(wall: datetime, period: int, start: timedelta, end: timedelta) -> bool:
    """Whether a wall-clock reading falls in a restriction's recurring window."""
    into_period = (wall.date() - _ANCHOR_MONDAY).days % period
    position = wall - datetime.combine(wall.date(), time()) + _DAY * into_period
    # A window may run past the end of its period into the next one.
    return start <= position < end or start <= position + _DAY * period < end


def _union(intervals: list[_Interval]) -> list[_Interval]:
    merged: list[_Interval] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def _intersect(segments: list[_Segment], windows: list[_Interval]) -> list[_Segment]:
    """Both inputs sorted and non-overlapping: the parts of segments inside windows."""
    result: list[_Segment] = []
    i = j = 0
    while i < len(segments) and j < len(windows):
        s_start, s_end, user = segments[i]
        w_start, w_end = windows[j]
        start, end = max(s_start, w_start), min(s_end, w_end)
        if start < end:
            result.append((start, end, user))
        if s_end <= w_end:
            i += 1
        else:
            j += 1
    return result


# --------------------------------------------------------------------------------------------
# The schedule
# --------------------------------------------------------------------------------------------


def _window(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    _check_instant(start, "window start")
    _check_instant(end, "window end")
    if end < start:
        raise ValueError("window end must not be before its start")
    return start.astimezone(UTC), end.astimezone(UTC)


def on_call_at(schedule: ScheduleSpec, instant: datetime) -> UserId | None:
    """Who is on call at `instant` (timezone-aware), or None. Cost: one zone conversion and
    some wall-clock arithmetic per layer, whatever the age of the rotation."""
    _check_instant(instant, "instant")
    for override in reversed(schedule.overrides):
        if override.start <= instant < override.end:
            return override.user
    local = instant.astimezone(schedule.zone)
    for spec in reversed(schedule.layers):
        user = _Layer(spec, schedule.zone).user_at(instant, local)
        if user is not None:
            return user
    return None


def render_layer(
    schedule: ScheduleSpec, layer_name: str, start: datetime, end: datetime
) -> list[Shift]:
    """One layer's own shifts over [start, end), restrictions applied, ignoring the layers
    above it and overrides (the per-layer rows of a schedule view)."""
    lo, hi = _window(start, end)
    spec = schedule.layer(layer_name)
    segments = _Layer(spec, schedule.zone).segments(lo, hi)
    return _merge([Shift(user, a, b, spec.name) for a, b, user in segments])


def render(schedule: ScheduleSpec, start: datetime, end: datetime) -> list[Shift]:
    """The final schedule over [start, end): overrides over the top layer over the layers
    below; sorted UTC shifts, same user and source merged where they touch."""
    lo, hi = _window(start, end)
    if lo >= hi:
        return []
    # Levels from the top: each override, latest first, then the layers, top first. Each
    # level is sorted and non-overlapping; the highest level with someone wins.
    levels: list[list[Shift]] = [
        [Shift(o.user, max(o.start, lo).astimezone(UTC), min(o.end, hi).astimezone(UTC), OVERRIDE)]
        for o in reversed(schedule.overrides)
        if o.start < hi and o.end > lo
    ]
    for spec in reversed(schedule.layers):
        segments = _Layer(spec, schedule.zone).segments(lo, hi)
        levels.append([Shift(user, a, b, spec.name) for a, b, user in segments])
    return _merge(_stack(levels))


def gaps(schedule: ScheduleSpec, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The periods in [start, end) when nobody is on call (UTC)."""
    lo, hi = _window(start, end)
    found: list[tuple[datetime, datetime]] = []
    cursor = lo
    for shift in render(schedule, lo, hi):
        if shift.start > cursor:
            found.append((cursor, shift.start))
        cursor = shift.end
    if cursor < hi:
        found.append((cursor, hi))
    return found


def _stack(levels: list[list[Shift]]) -> list[Shift]:
    """Flatten levels (top first): every elementary interval goes to the highest level that
    covers it."""
    points = sorted({p for level in levels for shift in level for p in (shift.start, shift.end)})
    cursors = [0] * len(levels)
    result: list[Shift] = []
    for a, b in pairwise(points):
        for index, level in enumerate(levels):
            i = cursors[index]
            while i < len(level) and level[i].end <= a:
                i += 1
            cursors[index] = i
            if i < len(level) and level[i].start <= a:
                result.append(Shift(level[i].user, a, b, level[i].source))
                break
    return result


def _merge(shifts: list[Shift]) -> list[Shift]:
    merged: list[Shift] = []
    for shift in shifts:
        last = merged[-1] if merged else None
        if (
            last is not None
            and last.end == shift.start
            and last.user == shift.user
            and last.source == shift.source
        ):
            merged[-1] = Shift(last.user, last.start, shift.end, last.source)
        else:
            merged.append(shift)
    return merged
