"""Escalation survives nodes that die: a step claimed by a node that never finishes is taken
over after its lease and pages once; a step that fails half-way leaves nothing behind and
pages once on its retry; a restarted node fires the next level once, on time."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests.oncall import org_builders as b
from tests.oncall.paging import FakeOutbox, outbox, pages
from tests.oncall.test_escalation import escalation_log, open_incident, run_jobs
from tocsin.clock import FakeClock
from tocsin.engine.worker import Worker
from tocsin.oncall import escalation
from tocsin.orgs.models import User
from tocsin.runtime import Runtime
from tocsin.settings import Settings

__all__ = ["outbox"]

LEVEL_DELAY = timedelta(minutes=10)


@pytest.fixture
def service_id(runtime: Runtime, outbox: FakeOutbox) -> int:
    alice, bob, carol = (b.user(runtime, n) for n in ("alice", "bob", "carol"))
    b.policy(
        runtime,
        "ops",
        [(10, [("user", alice)]), (10, [("user", bob), ("user", carol)]), (10, [("user", alice)])],
    )
    return b.service(runtime, "checkout", policy_slug="ops")


def test_a_step_claimed_by_a_node_that_dies_is_taken_over_and_pages_once(
    runtime: Runtime, clock: FakeClock, service_id: int
) -> None:
    incident = open_incident(runtime, service_id)
    run_jobs(runtime)
    clock.advance(LEVEL_DELAY)
    doomed = Worker(runtime.factory, clock, node="doomed", lease_seconds=30)
    claimed = [c for c in doomed.claim() if c.kind == escalation.STEP_JOB]
    assert len(claimed) == 1  # ... and the node dies before running it

    clock.advance(timedelta(seconds=29))
    run_jobs(runtime)
    assert pages(runtime) == [("alice", 0, 0)]  # the lease still holds

    clock.advance(timedelta(seconds=2))
    run_jobs(runtime)
    assert pages(runtime) == [("alice", 0, 0), ("bob", 1, 0), ("carol", 1, 0)]
    assert doomed.execute(claimed[0]) is False  # it wakes up too late: fenced off
    assert pages(runtime) == [("alice", 0, 0), ("bob", 1, 0), ("carol", 1, 0)]

    # The level after it fires once, its delay counted from the takeover.
    clock.advance(LEVEL_DELAY - timedelta(seconds=1))
    run_jobs(runtime)
    assert len(pages(runtime)) == 3
    clock.advance(timedelta(seconds=1))
    run_jobs(runtime)
    assert pages(runtime)[3:] == [("alice", 2, 0)]
    assert (
        escalation_log(runtime, incident).count("escalated to level 1 (loop 0): paged bob, carol")
        == 1
    )


def test_a_step_that_fails_half_way_leaves_nothing_and_its_retry_pages_once(
    runtime: Runtime, clock: FakeClock, service_id: int, outbox: FakeOutbox
) -> None:
    incident = open_incident(runtime, service_id)
    run_jobs(runtime)
    with runtime.factory() as s:
        carol = s.scalars(sa.select(User.id).where(User.username == "carol")).one()
    outbox.fail_once.add(carol)  # bob's page is written, then carol's fails
    clock.advance(LEVEL_DELAY)
    run_jobs(runtime)
    assert pages(runtime) == [("alice", 0, 0)]  # bob's page rolled back with the step
    assert escalation_log(runtime, incident) == ["escalated to level 0 (loop 0): paged alice"]

    clock.advance(timedelta(seconds=3))  # the first retry's backoff is about two seconds
    run_jobs(runtime)
    assert pages(runtime) == [("alice", 0, 0), ("bob", 1, 0), ("carol", 1, 0)]


def test_after_a_restart_the_next_level_fires_once_on_time(
    runtime: Runtime, clock: FakeClock, service_id: int, settings: Settings
) -> None:
    incident = open_incident(runtime, service_id)
    run_jobs(runtime)
    runtime.close()  # the node goes away between two levels

    clock.advance(timedelta(minutes=3))
    restarted = Runtime(settings, clock=clock)
    restarted.start(background=False)
    try:
        clock.advance(LEVEL_DELAY - timedelta(minutes=3, seconds=1))
        run_jobs(restarted)
        assert pages(restarted) == [("alice", 0, 0)]
        clock.advance(timedelta(seconds=1))
        run_jobs(restarted)
        run_jobs(restarted)
        assert pages(restarted) == [("alice", 0, 0), ("bob", 1, 0), ("carol", 1, 0)]
        assert escalation_log(restarted, incident) == [
            "escalated to level 0 (loop 0): paged alice",
            "escalated to level 1 (loop 0): paged bob, carol",
        ]
    finally:
        restarted.close()


def test_two_nodes_running_at_once_page_each_level_once(
    runtime: Runtime, clock: FakeClock, service_id: int
) -> None:
    open_incident(runtime, service_id)
    other = Worker(runtime.factory, clock, node="other", lease_seconds=30)
    for _ in range(40):
        other.run_once()
        runtime.worker.run_once()
        clock.advance(timedelta(minutes=1))
    assert pages(runtime) == [("alice", 0, 0), ("bob", 1, 0), ("carol", 1, 0), ("alice", 2, 0)]
