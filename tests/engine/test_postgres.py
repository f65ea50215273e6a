"""What only PostgreSQL offers the engine: notifications that wake idle nodes, and several
processes sharing one queue without ever running a job twice."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from tests.engine.conftest import RECORD
from tocsin.clock import SystemClock
from tocsin.db.engine import create_db_engine, make_session_factory, transaction
from tocsin.engine.listener import APPLICATION_NAME
from tocsin.engine.models import Effect, Job
from tocsin.engine.queue import enqueue
from tocsin.engine.worker import Worker

WORKER_SCRIPT = Path(__file__).with_name("worker_process.py")


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.02)


def add_job(factory: sa.orm.sessionmaker[sa.orm.Session], kind: str = RECORD) -> int:
    now = SystemClock().now()
    with transaction(factory) as s:
        enqueue(s, kind=kind, due_at=now, now=now)
        return int(s.scalar(sa.select(sa.func.max(Job.id))) or 0)


def job_state(factory: sa.orm.sessionmaker[sa.orm.Session], job_id: int) -> str:
    with factory() as s:
        return s.get_one(Job, job_id).state


def test_notification_wakes_an_idle_worker_long_before_its_poll(pg_url: str) -> None:
    engine = create_db_engine(pg_url)
    factory = make_session_factory(engine)
    # Another node's writes: a separate engine, so only the database can tell our worker.
    other = make_session_factory(create_db_engine(pg_url))
    worker = Worker(factory, SystemClock(), node="idle-node", poll_seconds=30)
    worker.start()
    try:
        wait_for(lambda: worker.listening and worker.waiting, "the worker to listen and idle")
        job_id = add_job(other)
        wait_for(lambda: job_state(other, job_id) == "done", "the notified job to run", 5.0)
    finally:
        worker.stop()
        engine.dispose()
        other.kw["bind"].dispose()
    assert not worker.listening


def test_listener_reconnects_after_losing_its_connection(pg_url: str) -> None:
    engine = create_db_engine(pg_url)
    factory = make_session_factory(engine)
    worker = Worker(factory, SystemClock(), node="resilient-node", poll_seconds=30)

    def listener_pids() -> list[int]:
        with engine.connect() as conn:
            return list(
                conn.execute(
                    sa.text(
                        "SELECT pid FROM pg_stat_activity WHERE application_name = :app "
                        "AND datname = current_database()"
                    ),
                    {"app": APPLICATION_NAME},
                ).scalars()
            )

    worker.start()
    try:
        wait_for(lambda: worker.listening and worker.waiting, "the worker to listen and idle")
        [first] = listener_pids()
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        wait_for(lambda: listener_pids() not in ([], [first]), "the listener to reconnect")
        wait_for(lambda: worker.listening and worker.waiting, "the worker to idle again")
        job_id = add_job(make_session_factory(engine))
        wait_for(lambda: job_state(factory, job_id) == "done", "the notified job to run", 5.0)
    finally:
        worker.stop()
        engine.dispose()


def test_two_processes_share_the_queue_and_never_run_a_job_twice(pg_url: str) -> None:
    kind = "test.two_process"
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER_SCRIPT), pg_url, f"proc-{i}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in (1, 2)
    ]
    engine = create_db_engine(pg_url)
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()  # returns "" at once if the process died
            assert line.strip() == "ready", proc.stderr.read() if proc.stderr else ""
        now = SystemClock().now()
        with transaction(make_session_factory(engine)) as s:
            for _ in range(500):
                enqueue(s, kind=kind, due_at=now, now=now)
        for proc in procs:
            _, err = proc.communicate(timeout=150)
            assert proc.returncode == 0, err
        with engine.connect() as conn:
            job_ids = set(conn.scalars(sa.select(Job.id).where(Job.kind == kind)).all())
            runs = conn.execute(sa.select(Effect.job_id, Effect.data)).all()
            states = Counter(conn.scalars(sa.select(Job.state).where(Job.kind == kind)).all())
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        engine.dispose()

    per_job = Counter(job_id for job_id, _ in runs)
    assert len(job_ids) == 500
    assert states == {"done": 500}
    assert set(per_job) == job_ids
    assert set(per_job.values()) == {1}, "some job ran more than once"
    per_node = Counter(data["node"] for _, data in runs)
    assert set(per_node) == {"proc-1", "proc-2"}, f"work was not shared: {per_node}"
