"""The job engine on both databases: claiming, due times, dedup, retries, fencing, restarts."""

from __future__ import annotations

import time
from datetime import timedelta

import sqlalchemy as sa

from tests.engine.conftest import FAIL, RECORD, add_job, get_job, node, runs
from tocsin.clock import FakeClock, SystemClock
from tocsin.db.engine import transaction
from tocsin.engine.models import Effect, Job
from tocsin.engine.periodic import PeriodicJob
from tocsin.engine.queue import cancel, enqueue
from tocsin.engine.worker import Worker
from tocsin.observability.metrics import REGISTRY
from tocsin.runtime import Runtime
from tocsin.settings import Settings


def jobs_run_total(kind: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value("tocsin_jobs_run_total", {"kind": kind, "outcome": outcome})
    return value or 0.0


def test_due_job_runs_once_and_is_marked_done(runtime: Runtime, clock: FakeClock) -> None:
    job_id = add_job(runtime)
    worker = node(runtime, "node-a")
    done_before = jobs_run_total(RECORD, "done")

    assert worker.run_once() == 1
    assert worker.run_once() == 0

    job = get_job(runtime, job_id)
    assert (job.state, job.attempts, job.lease_owner) == ("done", 1, "node-a")
    assert job.finished_at == clock.now()
    assert runs(runtime) == {job_id: 1}
    assert jobs_run_total(RECORD, "done") == done_before + 1


def test_job_not_yet_due_waits_for_its_time(runtime: Runtime, clock: FakeClock) -> None:
    job_id = add_job(runtime, due_in=60)
    worker = node(runtime, "node-a")
    assert worker.run_once() == 0
    clock.advance(59)
    assert worker.run_once() == 0
    assert get_job(runtime, job_id).state == "pending"
    clock.advance(1)
    assert worker.run_once() == 1
    assert runs(runtime) == {job_id: 1}


def test_unique_key_keeps_one_job(runtime: Runtime) -> None:
    now = runtime.clock.now()
    with transaction(runtime.factory) as s:
        first = enqueue(s, kind=RECORD, due_at=now, now=now, unique_key="timer:1")
        second = enqueue(s, kind=RECORD, due_at=now, now=now, unique_key="timer:1")
    with transaction(runtime.factory) as s:
        third = enqueue(s, kind=RECORD, due_at=now, now=now, unique_key="timer:1")
    assert (first, second, third) == (True, False, False)
    assert node(runtime, "node-a").run_once() == 1
    with runtime.factory() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Job)) == 1


def test_cancelled_job_never_runs(runtime: Runtime, clock: FakeClock) -> None:
    job_id = add_job(runtime, due_in=10, unique_key="timer:2")
    with transaction(runtime.factory) as s:
        cancel(s, unique_key="timer:2")
    clock.advance(10)
    assert node(runtime, "node-a").run_once() == 0
    assert get_job(runtime, job_id).state == "cancelled"


def test_failures_back_off_then_fail_for_good(runtime: Runtime, clock: FakeClock) -> None:
    job_id = add_job(runtime, FAIL, max_attempts=3)
    worker = node(runtime, "node-a")
    retries_before = jobs_run_total(FAIL, "retry")
    failed_before = jobs_run_total(FAIL, "failed")

    for attempt, nominal_delay in [(1, 2.0), (2, 4.0)]:
        assert worker.run_once() == 1
        job = get_job(runtime, job_id)
        assert (job.state, job.attempts, job.lease_token) == ("pending", attempt, None)
        assert job.last_error == "RuntimeError: downstream refused the request"
        delay = (job.due_at - clock.now()).total_seconds()
        assert 0.9 * nominal_delay <= delay <= 1.1 * nominal_delay
        assert worker.run_once() == 0  # backing off: not due yet
        clock.set(job.due_at)

    assert worker.run_once() == 1
    job = get_job(runtime, job_id)
    assert (job.state, job.attempts) == ("failed", 3)
    assert job.finished_at == clock.now()
    clock.advance(3600)
    assert worker.run_once() == 0
    # Every attempt rolled back its own writes.
    assert runs(runtime) == {}
    assert jobs_run_total(FAIL, "retry") == retries_before + 2
    assert jobs_run_total(FAIL, "failed") == failed_before + 1


def test_backoff_is_capped_at_ten_minutes(runtime: Runtime, clock: FakeClock) -> None:
    job_id = add_job(runtime, FAIL, max_attempts=20)
    worker = node(runtime, "node-a")
    for _ in range(12):
        assert worker.run_once() == 1
        clock.set(get_job(runtime, job_id).due_at)
    job = get_job(runtime, job_id)
    assert job.attempts == 12
    assert job.due_at - job.started_at <= timedelta(seconds=660)


def test_unknown_kind_fails_with_a_clear_error(runtime: Runtime) -> None:
    job_id = add_job(runtime, "test.nobody-handles-this")
    assert node(runtime, "node-a").run_once() == 1
    job = get_job(runtime, job_id)
    assert job.state == "failed"
    assert job.attempts == 1
    assert "no handler is registered for job kind 'test.nobody-handles-this'" in (
        job.last_error or ""
    )


def test_fencing_a_node_that_lost_its_lease_cannot_complete(
    runtime: Runtime, clock: FakeClock
) -> None:
    job_id = add_job(runtime)
    node_a = node(runtime, "node-a", lease_seconds=30)
    node_b = node(runtime, "node-b", lease_seconds=30)

    [claimed_by_a] = node_a.claim()  # ... and node A stalls before running it
    assert node_b.run_once() == 0  # A's lease still holds
    clock.advance(31)
    assert node_b.run_once() == 1  # the lease lapsed: B takes the job over and runs it
    assert node_a.execute(claimed_by_a) is False  # A wakes up: refused

    job = get_job(runtime, job_id)
    assert (job.state, job.lease_owner, job.attempts) == ("done", "node-b", 2)
    assert runs(runtime) == {job_id: 1}


def test_fencing_applies_to_a_late_failure_report_too(runtime: Runtime, clock: FakeClock) -> None:
    job_id = add_job(runtime)
    node_a = node(runtime, "node-a", lease_seconds=30)
    node_b = node(runtime, "node-b", lease_seconds=30)
    [claimed_by_a] = node_a.claim()
    clock.advance(31)
    [claimed_by_b] = node_b.claim()
    # Both think they own it; only the newest claim may act.
    assert node_a.execute(claimed_by_a) is False
    assert node_b.execute(claimed_by_b) is True
    assert runs(runtime) == {job_id: 1}
    assert get_job(runtime, job_id).lease_owner == "node-b"


def test_claims_split_due_work_between_nodes(runtime: Runtime) -> None:
    ids = [add_job(runtime) for _ in range(10)]
    node_a = node(runtime, "node-a", batch=4)
    node_b = node(runtime, "node-b", batch=4)
    a = {c.id for c in node_a.claim()}
    b = {c.id for c in node_b.claim()}
    assert len(a) == len(b) == 4
    assert not a & b
    assert a | b == set(ids[:8])  # oldest due first


def test_restart_runs_each_pending_job_exactly_once(
    settings: Settings, clock: FakeClock, runtime: Runtime
) -> None:
    ids = [add_job(runtime) for _ in range(5)]
    later = add_job(runtime, due_in=120)
    # A node claims one and dies with it in hand.
    [orphan] = node(runtime, "dead-node", batch=1).claim()
    runtime.close()

    restarted = Runtime(settings, clock=clock)
    restarted.start(background=False)
    try:
        while restarted.worker.run_once():
            pass
        clock.advance(settings.engine_lease_seconds + 1)  # the orphan's lease lapses
        while restarted.worker.run_once():
            pass
        clock.advance(120)
        while restarted.worker.run_once():
            pass
        assert runs(restarted) == {job_id: 1 for job_id in [*ids, later]}
        assert get_job(restarted, orphan.id).lease_owner == "test-node"
    finally:
        restarted.close()


def test_periodic_slot_is_created_once_whatever_the_number_of_nodes(
    runtime: Runtime, clock: FakeClock
) -> None:
    tick = PeriodicJob(RECORD, 60, {"what": "tick"})
    nodes = [node(runtime, f"node-{i}", periodic=[tick]) for i in range(3)]
    for worker in nodes:
        assert worker.run_once() == 0
    with runtime.factory() as s:
        [slot] = s.scalars(sa.select(Job).where(Job.kind == RECORD)).all()
    assert slot.due_at == clock.now() + timedelta(seconds=60)  # the clock starts on a minute
    assert slot.unique_key == f"{RECORD}:{slot.due_at.isoformat()}"
    assert slot.payload == {"what": "tick"}

    clock.advance(60)
    assert sum(worker.run_once() for worker in nodes) == 1
    with runtime.factory() as s:
        states = s.execute(sa.select(Job.due_at, Job.state).order_by(Job.due_at)).all()
    assert [state for _, state in states] == ["done", "pending"]
    assert states[1].due_at - states[0].due_at == timedelta(seconds=60)


def test_background_loop_runs_work_and_wakes_on_request(runtime: Runtime) -> None:
    """The real thread: a job added while it sleeps (poll 30 s) runs once it is woken."""
    worker = Worker(runtime.factory, SystemClock(), node="looper", poll_seconds=30)
    worker.start()
    try:
        assert worker.running
        wait_for(lambda: worker.waiting, "the loop to go idle")
        job_id = add_job_now(runtime)
        worker.wake()  # what the after-commit hook does for jobs this node adds
        wait_for(lambda: get_job(runtime, job_id).state == "done", "the job to run")
        assert worker.last_beat > 0
    finally:
        worker.stop()
    assert not worker.running


def add_job_now(rt: Runtime) -> int:
    """A job due by the real clock (the fixture's clock is fake)."""
    now = SystemClock().now()
    with transaction(rt.factory) as s:
        enqueue(s, kind=RECORD, due_at=now, now=now)
        return int(s.scalar(sa.select(sa.func.max(Job.id))) or 0)


def wait_for(condition: object, what: str, timeout: float = 10.0) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_failing_handler_leaves_no_partial_write(runtime: Runtime) -> None:
    add_job(runtime, FAIL)
    node(runtime, "node-a").run_once()
    with runtime.factory() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Effect)) == 0
