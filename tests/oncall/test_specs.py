"""Spec validation: a bad schedule is refused with a message that says what is wrong."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

import pytest

from tests.oncall.helpers import utc
from tocsin.oncall import LayerSpec, Override, Restriction, ScheduleSpec, render, render_layer

START = datetime(2026, 1, 5, 9)


def layer(**changes: Any) -> LayerSpec:
    fields: dict[str, Any] = {
        "name": "Primary",
        "users": ["alice"],
        "start": START,
        "rotation_length": 1,
        "rotation_unit": "weeks",
    }
    fields.update(changes)
    return LayerSpec(**fields)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"users": []}, "at least one user"),
        ({"users": "alice"}, "list of user identifiers"),
        ({"users": ["alice", None]}, "string or an integer"),
        ({"users": [True]}, "string or an integer"),
        ({"users": [""]}, "must not be empty"),
        ({"name": " "}, "layer name"),
        ({"rotation_length": 0}, "positive integer"),
        ({"rotation_length": -2}, "positive integer"),
        ({"rotation_length": 1.5}, "positive integer"),
        ({"rotation_length": True}, "positive integer"),
        ({"rotation_unit": "months"}, "hours, days, weeks"),
        ({"start": utc(2026, 1, 5)}, "naive wall-clock time"),
        ({"start": "2026-01-05T09:00"}, "must be a datetime"),
        ({"start": datetime(1, 1, 1)}, "between the years"),
        ({"end": START}, "end must be after start"),
        ({"end": utc(2026, 2, 1)}, "naive wall-clock time"),
        ({"restrictions": Restriction.daily("09:00", "17:00")}, "list of Restriction"),
        ({"restrictions": [("09:00", "17:00")]}, "must be Restriction"),
    ],
)
def test_bad_layer_is_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        layer(**changes)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Restriction.daily("09:00", "09:00"), "needs a length"),
        (lambda: Restriction.weekly("mon", "09:00", "mon", "09:00"), "needs a length"),
        (lambda: Restriction.daily("9am", "17:00"), "time of day like '09:00'"),
        (lambda: Restriction.daily("09:00+01:00", "17:00"), "must not carry an offset"),
        (lambda: Restriction.weekly("someday", "09:00", "fri", "17:00"), "unknown weekday"),
        (lambda: Restriction.weekly(7, "09:00", 1, "17:00"), r"0 \(Monday\) to 6"),
        (lambda: Restriction("weekly", time(9), time(17), 1, None), "end_weekday"),
        (lambda: Restriction("daily", time(9), time(17), 1, 2), "takes no weekdays"),
        (lambda: Restriction("hourly", time(9), time(17)), "'daily' or 'weekly'"),  # type: ignore[arg-type]
    ],
)
def test_bad_restriction_is_refused(build: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_restriction_helpers_accept_names_and_times() -> None:
    assert Restriction.weekly("Friday", time(18), "MON", "08:00") == Restriction(
        "weekly", time(18), time(8), 4, 0
    )


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: ScheduleSpec("S", "Mars/Olympus_Mons"), "unknown time zone"),
        (lambda: ScheduleSpec("S", "../../etc/passwd"), "unknown time zone"),
        (lambda: ScheduleSpec("S", ""), "IANA time zone name"),
        (lambda: ScheduleSpec("", "UTC"), "schedule name"),
        (lambda: ScheduleSpec("S", "UTC", [layer(), layer()]), "two layers are named"),
        (lambda: ScheduleSpec("S", "UTC", [layer(name="override")]), "reserved"),
        (lambda: ScheduleSpec("S", "UTC", ["not a layer"]), "must be LayerSpec"),  # type: ignore[list-item]
        (lambda: ScheduleSpec("S", "UTC", [], ["not an override"]), "must be Override"),  # type: ignore[list-item]
        (lambda: Override("bob", datetime(2026, 1, 5), datetime(2026, 1, 6)), "timezone-aware"),
        (lambda: Override("bob", utc(2026, 1, 6), utc(2026, 1, 5)), "after its start"),
        (lambda: Override("bob", utc(2026, 1, 6), utc(2026, 1, 6)), "after its start"),
        (lambda: Override(None, utc(2026, 1, 5), utc(2026, 1, 6)), "string or an integer"),  # type: ignore[arg-type]
    ],
)
def test_bad_schedule_or_override_is_refused(build: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_bad_render_window_is_refused() -> None:
    schedule = ScheduleSpec("S", "UTC", [layer()])
    with pytest.raises(ValueError, match="timezone-aware"):
        render(schedule, datetime(2026, 1, 1), utc(2026, 1, 2))
    with pytest.raises(ValueError, match="must not be before its start"):
        render(schedule, utc(2026, 1, 2), utc(2026, 1, 1))
    with pytest.raises(ValueError, match="no layer named 'Secondary'"):
        render_layer(schedule, "Secondary", utc(2026, 1, 1), utc(2026, 1, 2))


def test_specs_are_frozen_hashable_values() -> None:
    a = ScheduleSpec("S", "UTC", [layer(users=["a", 2])])
    b = ScheduleSpec("S", "UTC", (layer(users=("a", 2)),))
    assert a == b
    assert hash(a) == hash(b)
    assert a.layers[0].users == ("a", 2)
    with pytest.raises(AttributeError):
        a.name = "T"  # type: ignore[misc]
