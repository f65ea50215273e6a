"""Helpers for the engine tests: test job kinds, a worker per simulated node, and a PostgreSQL
database for the tests that only make sense there (LISTEN/NOTIFY, several processes)."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from tocsin.db.base import Base
from tocsin.db.engine import create_db_engine, transaction
from tocsin.engine.models import Effect, Job
from tocsin.engine.queue import enqueue
from tocsin.engine.worker import JobContext, Worker, handler
from tocsin.runtime import Runtime

RECORD = "test.record"
FAIL = "test.fail"


@handler(RECORD)
def record_run(ctx: JobContext) -> None:
    """Writes one row per run (never deduplicated), so a second run would show."""
    ctx.session.add(
        Effect(
            key=f"run:{ctx.job.id}:{uuid.uuid4().hex}",
            job_id=ctx.job.id,
            created_at=ctx.clock.now(),
            data={"node": ctx.job.lease_owner},
        )
    )


@handler(FAIL)
def always_fail(ctx: JobContext) -> None:
    """Writes, then fails: the write must roll back with the failed attempt."""
    record_run(ctx)
    raise RuntimeError("downstream refused the request")


def add_job(
    rt: Runtime,
    kind: str = RECORD,
    *,
    due_in: float = 0,
    unique_key: str | None = None,
    max_attempts: int = 10,
    payload: dict[str, Any] | None = None,
) -> int:
    now = rt.clock.now()
    with transaction(rt.factory) as s:
        enqueue(
            s,
            kind=kind,
            due_at=now + timedelta(seconds=due_in),
            now=now,
            payload=payload,
            unique_key=unique_key,
            max_attempts=max_attempts,
        )
        return int(s.scalar(sa.select(sa.func.max(Job.id))) or 0)


def get_job(rt: Runtime, job_id: int) -> Job:
    with rt.factory() as s:
        return s.get_one(Job, job_id)


def runs(rt: Runtime) -> Counter[int]:
    """How many times each job's handler committed."""
    with rt.factory() as s:
        ids = s.scalars(sa.select(Effect.job_id).where(Effect.key.like("run:%"))).all()
    return Counter(i for i in ids if i is not None)


def node(rt: Runtime, name: str, **kw: Any) -> Worker:
    """A worker as another node would run it: same database, no periodic jobs."""
    kw.setdefault("lease_seconds", 30.0)
    return Worker(rt.factory, rt.clock, node=name, **kw)


@pytest.fixture
def pg_url(pg_database_url: str) -> str:
    """The session's PostgreSQL database, emptied for this test."""
    eng = create_db_engine(pg_database_url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with eng.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    eng.dispose()
    return pg_database_url
