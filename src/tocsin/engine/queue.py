"""Writing jobs: always inside the caller's transaction, next to the change that caused them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tocsin.engine.models import Job

JOBS_CHANNEL = "tocsin_jobs"


def enqueue(
    session: Session,
    *,
    kind: str,
    due_at: datetime,
    now: datetime,
    payload: dict[str, Any] | None = None,
    unique_key: str | None = None,
    max_attempts: int = 10,
) -> bool:
    """Add a job in the current transaction. Returns False when unique_key already exists."""
    values = {
        "kind": kind,
        "unique_key": unique_key,
        "payload": payload or {},
        "due_at": due_at,
        "state": "pending",
        "attempts": 0,
        "max_attempts": max_attempts,
        "created_at": now,
    }
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(Job).values(**values)
    if unique_key is not None:
        stmt = stmt.on_conflict_do_nothing(index_elements=["unique_key"])
    # RETURNING tells reliably whether a row went in (rowcount is -1 through the ORM).
    created = session.execute(stmt.returning(Job.id)).first() is not None
    if created:
        # Read by the after-commit hook that wakes this node's engine (tocsin.runtime).
        session.info["tocsin_jobs_added"] = True
    if created and dialect == "postgresql":
        # Delivered at commit, so a waiting node wakes exactly when the row is visible.
        session.execute(sa.select(sa.func.pg_notify(JOBS_CHANNEL, kind)))
    return created


def cancel(session: Session, *, unique_key: str) -> None:
    session.execute(
        sa.update(Job)
        .where(Job.unique_key == unique_key, Job.state == "pending")
        .values(state="cancelled")
    )
