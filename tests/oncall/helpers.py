"""Small builders shared by the on-call tests."""

from __future__ import annotations

from datetime import UTC, datetime

from tocsin.oncall import Shift


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def spans(shifts: list[Shift]) -> list[tuple[object, datetime, datetime, str]]:
    """Shifts as plain tuples, so that a failing assertion shows a readable diff."""
    return [(s.user, s.start, s.end, s.source) for s in shifts]
