"""One engine node in its own OS process, for the multi-process test.

    python worker_process.py DATABASE_URL NODE_NAME

Registers a test job kind whose handler records each run, starts a Worker with the real clock
and its background threads, prints "ready" once it listens for notifications, and exits when
no job of that kind is left pending or running (or after a safety deadline, with status 2).
"""

from __future__ import annotations

import sys
import time
import uuid

import sqlalchemy as sa

from tocsin.clock import SystemClock
from tocsin.db.engine import create_db_engine, make_session_factory
from tocsin.engine.models import Effect, Job
from tocsin.engine.worker import JobContext, Worker, handler

KIND = "test.two_process"
DEADLINE_SECONDS = 120


@handler(KIND)
def record_run(ctx: JobContext) -> None:
    # One row per run, never deduplicated, so that a second run of a job would show.
    ctx.session.add(
        Effect(
            key=f"run:{ctx.job.id}:{uuid.uuid4().hex}",
            job_id=ctx.job.id,
            created_at=ctx.clock.now(),
            data={"node": ctx.job.lease_owner},
        )
    )
    time.sleep(0.002)  # a little work, so that the two processes overlap


def main(url: str, name: str) -> int:
    engine = create_db_engine(url)
    factory = make_session_factory(engine)
    worker = Worker(factory, SystemClock(), node=name, poll_seconds=0.5, batch=8)
    worker.start()
    deadline = time.monotonic() + DEADLINE_SECONDS
    try:
        while not (worker.listening and worker.waiting):
            if time.monotonic() > deadline:
                return 2
            time.sleep(0.01)
        print("ready", flush=True)
        seen_work = False
        while time.monotonic() < deadline:
            with factory() as s:
                states = s.scalars(sa.select(Job.state).where(Job.kind == KIND)).all()
            seen_work = seen_work or bool(states)
            if seen_work and all(state in ("done", "failed") for state in states):
                return 0
            time.sleep(0.05)
        return 2
    finally:
        worker.stop()
        engine.dispose()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
