"""The parts of a schedule and of support hours as people write them, in the REST API and in
the configuration files alike: one set of models, so both accept and refuse the same things.

Stored shapes (see oncall/models.py):
  restriction   {"kind": "daily", "start": "09:00", "end": "17:00"}
                {"kind": "weekly", "start_weekday": 4, "start": "17:00",
                 "end_weekday": 0, "end": "09:00"}
  layer start   "2026-01-05T09:00" (naive wall-clock time in the schedule's zone)
  support hours {"time_zone": "Europe/Berlin", "days": [0, 1, 2, 3, 4],
                 "start": "09:00", "end": "17:00"}
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from tocsin.api.fields import USERNAME_PATTERN, no_nul
from tocsin.oncall.rendering import (
    OVERRIDE,
    WEEKDAYS,
    LayerSpec,
    Restriction,
    ScheduleSpec,
    load_zone,
    parse_time,
    parse_weekday,
)

MAX_LAYERS = 20
MAX_MEMBERS = 100
MAX_RESTRICTIONS = 50
MAX_ROTATION_LENGTH = 10_000

WeekdayName = Literal[
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
    "mon", "tue", "wed", "thu", "fri", "sat", "sun",
]  # fmt: skip


class Shape(BaseModel):
    """Unknown keys are an error in both the API and the files."""

    model_config = ConfigDict(extra="forbid")


# ---- scalar pieces -------------------------------------------------------------------------


def format_time(value: time) -> str:
    return value.strftime("%H:%M:%S" if value.second else "%H:%M")


def format_local(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S" if value.second else "%Y-%m-%dT%H:%M")


def parse_local(value: str) -> datetime:
    """'2026-01-05T09:00' to a naive datetime; an offset is refused (it is wall-clock time)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(
            f"expected a local date and time like '2026-01-05T09:00', got {value!r}"
        ) from exc
    if parsed.tzinfo is not None:
        raise ValueError(
            f"{value!r} carries an offset: give the wall-clock time in the schedule's time zone"
        )
    return parsed.replace(microsecond=0)


def _time_input(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        # YAML 1.1 reads an unquoted 17:00 as the base-60 number 1020.
        raise ValueError("write times of day as quoted strings, like '17:00'")
    if isinstance(value, time):
        return value.isoformat()
    return value


def _time_of_day(value: str) -> str:
    return format_time(parse_time(value))


def _local_input(value: Any) -> Any:
    # YAML turns "2026-01-05 09:00:00" into a datetime and "2026-01-05" into a date.
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            raise ValueError("give the wall-clock time without an offset or 'Z'")
        return value.isoformat()
    if isinstance(value, date):
        return datetime.combine(value, time()).isoformat()
    return value


def _local_datetime(value: str) -> str:
    return format_local(parse_local(value))


def _weekday(value: Any) -> Any:
    # One clear message for 9 or "fryday" instead of one per member of the union.
    if isinstance(value, int | str) and not isinstance(value, bool):
        return parse_weekday(value)
    return value


def _layer_name(value: str) -> str:
    if value == OVERRIDE:
        raise ValueError(f"{OVERRIDE!r} is reserved and cannot name a layer")
    return value


def _time_zone(value: str) -> str:
    load_zone(value)
    return value


TimeOfDay = Annotated[
    str,
    BeforeValidator(_time_input),
    StringConstraints(max_length=16),
    AfterValidator(_time_of_day),
    Field(description="Local time of day, 'HH:MM'.", examples=["09:00"]),
]
LocalDateTime = Annotated[
    str,
    BeforeValidator(_local_input),
    StringConstraints(max_length=32),
    AfterValidator(_local_datetime),
    Field(
        description="Wall-clock date and time in the schedule's time zone, without an offset.",
        examples=["2026-01-05T09:00"],
    ),
]
Weekday = Annotated[
    Annotated[int, Field(ge=0, le=6)] | WeekdayName,
    BeforeValidator(_weekday),
    Field(description="0 (Monday) to 6 (Sunday), or a name such as 'mon' or 'friday'."),
]
TimeZoneName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64),
    AfterValidator(_time_zone),
    Field(description="An IANA time zone such as Europe/Berlin.", examples=["Europe/Berlin"]),
]
LayerName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(no_nul),
    AfterValidator(_layer_name),
]
MemberName = Annotated[str, StringConstraints(pattern=USERNAME_PATTERN)]


# ---- restrictions, rotations, layers -------------------------------------------------------


class DailyRestriction(Shape):
    kind: Literal["daily"]
    start: TimeOfDay
    end: TimeOfDay = Field(description="Before start: the window crosses midnight.")

    @model_validator(mode="after")
    def _has_length(self) -> DailyRestriction:
        Restriction.daily(self.start, self.end)
        return self


class WeeklyRestriction(Shape):
    kind: Literal["weekly"]
    start_weekday: Weekday
    start: TimeOfDay
    end_weekday: Weekday
    end: TimeOfDay

    @model_validator(mode="after")
    def _has_length(self) -> WeeklyRestriction:
        Restriction.weekly(self.start_weekday, self.start, self.end_weekday, self.end)
        return self


RestrictionIn = Annotated[DailyRestriction | WeeklyRestriction, Field(discriminator="kind")]


class Rotation(Shape):
    length: Annotated[int, Field(ge=1, le=MAX_ROTATION_LENGTH)] = Field(
        description="How many units one turn lasts."
    )
    unit: Literal["hours", "days", "weeks"] = Field(
        description="Days and weeks hand off at the same local time; hours in absolute time."
    )


class LayerIn(Shape):
    name: LayerName = Field(description="Unique within the schedule.")
    members: Annotated[list[MemberName], Field(min_length=1, max_length=MAX_MEMBERS)] = Field(
        description="Usernames in rotation order; the first takes the turn starting at start."
    )
    start: LocalDateTime
    rotation: Rotation
    restrictions: Annotated[list[RestrictionIn], Field(max_length=MAX_RESTRICTIONS)] = Field(
        default_factory=list,
        description="Windows in which the layer is on call; none means around the clock.",
    )
    end: LocalDateTime | None = Field(None, description="The layer has nobody from then on.")

    def spec(self) -> LayerSpec:
        """The renderer's spec, with usernames as the user identifiers."""
        return LayerSpec(
            self.name,
            list(self.members),
            parse_local(self.start),
            self.rotation.length,
            self.rotation.unit,
            [restriction_spec(stored_restriction(r)) for r in self.restrictions],
            parse_local(self.end) if self.end is not None else None,
        )

    @model_validator(mode="after")
    def _renders(self) -> LayerIn:
        self.spec()
        return self


def check_layers(time_zone: str, layers: list[LayerIn]) -> None:
    """Raise ValueError when the layers cannot make one schedule (two layers of one name)."""
    ScheduleSpec("schedule", time_zone, [layer.spec() for layer in layers])


# ---- stored forms ---------------------------------------------------------------------------


def stored_restriction(restriction: DailyRestriction | WeeklyRestriction) -> dict[str, Any]:
    return restriction.model_dump()


def restriction_spec(stored: dict[str, Any]) -> Restriction:
    if stored.get("kind") == "weekly":
        return Restriction.weekly(
            stored["start_weekday"], stored["start"], stored["end_weekday"], stored["end"]
        )
    return Restriction.daily(stored["start"], stored["end"])


def restriction_in(stored: dict[str, Any]) -> DailyRestriction | WeeklyRestriction:
    if stored.get("kind") == "weekly":
        return WeeklyRestriction.model_validate(stored)
    return DailyRestriction.model_validate(stored)


# ---- support hours --------------------------------------------------------------------------


class SupportHours(Shape):
    """When a service's low-urgency incidents may notify anyone; outside them they wait."""

    time_zone: TimeZoneName
    days: Annotated[list[Weekday], Field(min_length=1, max_length=7)] = Field(
        description="Weekdays with support hours."
    )
    start: TimeOfDay
    end: TimeOfDay = Field(description="Before start: the window runs past midnight.")

    @model_validator(mode="after")
    def _normalise(self) -> SupportHours:
        if len(set(self.days)) != len(self.days):
            raise ValueError("days lists a weekday twice")
        if parse_time(self.end) == parse_time(self.start):
            raise ValueError(
                "support hours start and end at the same time: a window needs a length "
                "(leave support_hours out to page at any time)"
            )
        self.days = sorted(int(day) for day in self.days)
        return self

    def stored(self) -> dict[str, Any]:
        return self.model_dump()


__all__ = [
    "WEEKDAYS",
    "DailyRestriction",
    "LayerIn",
    "RestrictionIn",
    "Rotation",
    "SupportHours",
    "WeeklyRestriction",
    "check_layers",
    "format_local",
    "parse_local",
    "restriction_in",
    "restriction_spec",
    "stored_restriction",
]
