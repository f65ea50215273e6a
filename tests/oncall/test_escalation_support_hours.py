"""Low-urgency incidents page only within their service's support hours, which follow the wall
clock of the support zone across daylight-saving changes; high urgency always pages at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.oncall import org_builders as b
from tests.oncall.helpers import utc
from tests.oncall.paging import FakeOutbox, outbox, pages
from tests.oncall.test_escalation import escalation_log, open_incident, run_jobs
from tocsin.clock import FakeClock
from tocsin.oncall.support_hours import next_opening
from tocsin.runtime import Runtime

__all__ = ["outbox"]

BERLIN_OFFICE = {
    "time_zone": "Europe/Berlin",
    "days": [0, 1, 2, 3, 4],
    "start": "09:00",
    "end": "17:00",
}
NEW_YORK_OFFICE = {**BERLIN_OFFICE, "time_zone": "America/New_York"}


def service_with_hours(rt: Runtime, hours: dict[str, Any]) -> int:
    alice, bob = b.user(rt, "alice"), b.user(rt, "bob")
    b.policy(rt, "ops", [(10, [("user", alice)]), (10, [("user", bob)])])
    return b.service(rt, "checkout", policy_slug="ops", support_hours=hours)


def first_page_at(rt: Runtime, clock: FakeClock, until: datetime) -> datetime | None:
    """Run the engine minute by minute until something is paged; when that happened."""
    while clock.now() <= until:
        run_jobs(rt)
        if pages(rt):
            return clock.now()
        clock.advance(timedelta(minutes=1))
    return None


def test_low_urgency_waits_for_support_hours_to_open(
    runtime: Runtime, clock: FakeClock, outbox: FakeOutbox
) -> None:
    clock.set(utc(2026, 1, 5, 16, 30))  # Monday 17:30 in Berlin: closed
    incident = open_incident(runtime, service_with_hours(runtime, BERLIN_OFFICE), urgency="low")
    assert escalation_log(runtime, incident) == [
        "waiting for support hours until Tue 6 Jan 2026 09:00 CET"
    ]
    clock.set(utc(2026, 1, 6, 7, 59))
    run_jobs(runtime)
    assert pages(runtime) == []
    clock.set(utc(2026, 1, 6, 8))  # 09:00 CET
    run_jobs(runtime)
    assert pages(runtime) == [("alice", 0, 0)]


def test_high_urgency_pages_at_once_whatever_the_hour(
    runtime: Runtime, clock: FakeClock, outbox: FakeOutbox
) -> None:
    clock.set(utc(2026, 1, 10, 3))  # Saturday night
    incident = open_incident(runtime, service_with_hours(runtime, BERLIN_OFFICE), urgency="high")
    run_jobs(runtime)
    assert pages(runtime) == [("alice", 0, 0)]
    assert escalation_log(runtime, incident) == ["escalated to level 0 (loop 0): paged alice"]


def test_a_later_level_also_waits_when_support_hours_close_first(
    runtime: Runtime, clock: FakeClock, outbox: FakeOutbox
) -> None:
    clock.set(utc(2026, 1, 9, 15, 55))  # Friday 16:55 in Berlin: open for five more minutes
    incident = open_incident(runtime, service_with_hours(runtime, BERLIN_OFFICE), urgency="low")
    run_jobs(runtime)
    assert pages(runtime) == [("alice", 0, 0)]
    assert escalation_log(runtime, incident)[-1] == (
        "waiting for support hours until Mon 12 Jan 2026 09:00 CET"
    )
    clock.set(utc(2026, 1, 12, 7, 59))
    run_jobs(runtime)
    assert pages(runtime) == [("alice", 0, 0)]
    clock.set(utc(2026, 1, 12, 8))
    run_jobs(runtime)
    assert pages(runtime) == [("alice", 0, 0), ("bob", 1, 0)]


@pytest.mark.parametrize(
    ("hours", "opened", "expected"),
    [
        # New York changes to summer time on Sunday 8 March: Monday 09:00 is 13:00 UTC,
        # where it was 14:00 UTC the week before.
        (NEW_YORK_OFFICE, utc(2026, 3, 7, 15), utc(2026, 3, 9, 13)),
        (NEW_YORK_OFFICE, utc(2026, 2, 28, 15), utc(2026, 3, 2, 14)),
        # Berlin changes on Sunday 29 March: Monday 09:00 CEST is 07:00 UTC.
        (BERLIN_OFFICE, utc(2026, 3, 28, 12), utc(2026, 3, 30, 7)),
        # ... and back on Sunday 25 October: Monday 09:00 CET is 08:00 UTC again.
        (BERLIN_OFFICE, utc(2026, 10, 24, 12), utc(2026, 10, 26, 8)),
    ],
)
def test_support_hours_follow_the_wall_clock_across_daylight_saving_changes(
    runtime: Runtime,
    clock: FakeClock,
    outbox: FakeOutbox,
    hours: dict[str, Any],
    opened: datetime,
    expected: datetime,
) -> None:
    clock.set(opened)
    open_incident(runtime, service_with_hours(runtime, hours), urgency="low")
    run_jobs(runtime)
    assert pages(runtime) == []
    clock.set(expected - timedelta(minutes=2))
    assert first_page_at(runtime, clock, expected + timedelta(hours=2)) == expected


def test_next_opening() -> None:
    sunday_night = {"time_zone": "Europe/Berlin", "days": [6], "start": "02:30", "end": "05:00"}
    # 29 March 2026: Berlin skips from 02:00 to 03:00, so 02:30 happens at the jump, 01:00 UTC.
    assert next_opening(sunday_night, utc(2026, 3, 28)) == utc(2026, 3, 29, 1)
    inside = utc(2026, 1, 5, 10)
    assert next_opening(BERLIN_OFFICE, inside) == inside
    assert next_opening(None, inside) == inside
    assert next_opening({**BERLIN_OFFICE, "days": []}, inside) is None
    # 17:00 is closed (the window is half-open) and the next day opens at 09:00.
    assert next_opening(BERLIN_OFFICE, utc(2026, 1, 5, 16)) == utc(2026, 1, 6, 8)
    assert next_opening(BERLIN_OFFICE, datetime(2026, 1, 5, 15, 59, 59, tzinfo=UTC)) == datetime(
        2026, 1, 5, 15, 59, 59, tzinfo=UTC
    )
    # Unreadable hours never silence an incident.
    assert next_opening({"time_zone": "Mars/Olympus"}, inside) == inside


def test_support_hours_that_never_open_say_so(
    runtime: Runtime, clock: FakeClock, outbox: FakeOutbox
) -> None:
    incident = open_incident(
        runtime, service_with_hours(runtime, {**BERLIN_OFFICE, "days": []}), urgency="low"
    )
    run_jobs(runtime)
    assert pages(runtime) == []
    assert escalation_log(runtime, incident) == [
        "low urgency: the service's support hours never open, so nobody is paged"
    ]
