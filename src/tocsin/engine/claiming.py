"""Claiming due jobs under a lease, and the fenced re-read every run starts with.

A claim is an UPDATE that moves due pending rows to ``running`` with this node's name, a fresh
random token and a lease, then, if the batch has room, a second one for running rows whose
lease has expired (the work of a node that died).
On PostgreSQL the inner SELECT takes ``FOR UPDATE SKIP LOCKED``, so concurrent claimers divide
the due rows between them instead of queueing on each other; on SQLite the connection already
holds the single write lock (BEGIN IMMEDIATE) and SQLAlchemy leaves the clause out.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import QueryableAttribute, Session

from tocsin.engine.models import Job


@dataclass(frozen=True)
class ClaimedJob:
    """What a claim hands back: enough to find the row again and prove the lease is ours."""

    id: int
    kind: str
    token: str
    attempts: int


def claim_due(
    session: Session, *, node: str, now: datetime, lease_seconds: float, limit: int
) -> list[ClaimedJob]:
    # Two claims, each a range scan on its own index, rather than one OR that makes the
    # database read and sort every overdue row (tens of milliseconds with 100,000 due).
    due = _claim(
        session,
        sa.and_(Job.state == "pending", Job.due_at <= now),
        Job.due_at,
        node=node,
        now=now,
        lease_seconds=lease_seconds,
        limit=limit,
    )
    if len(due) >= limit:
        return due
    lapsed = _claim(
        session,
        sa.and_(Job.state == "running", Job.lease_expires_at < now),
        Job.lease_expires_at,
        node=node,
        now=now,
        lease_seconds=lease_seconds,
        limit=limit - len(due),
    )
    return lapsed + due


def _claim(
    session: Session,
    condition: sa.ColumnElement[bool],
    order: QueryableAttribute[Any],
    *,
    node: str,
    now: datetime,
    lease_seconds: float,
    limit: int,
) -> list[ClaimedJob]:
    due = (
        sa.select(Job.id)
        .where(condition)
        .order_by(order, Job.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    token = secrets.token_hex(16)
    stmt = (
        sa.update(Job)
        .where(Job.id.in_(due))
        .values(
            state="running",
            lease_owner=node,
            lease_token=token,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            attempts=Job.attempts + 1,
            started_at=now,
        )
        .returning(Job.id, Job.kind, Job.attempts, Job.due_at)
        .execution_options(synchronize_session=False)
    )
    # RETURNING gives no order guarantee; run the batch oldest first.
    rows = sorted(session.execute(stmt).all(), key=lambda r: (r.due_at, r.id))
    return [ClaimedJob(id=r.id, kind=r.kind, token=token, attempts=r.attempts) for r in rows]


def lock_if_still_ours(session: Session, claimed: ClaimedJob) -> Job | None:
    """Re-read the job row under a row lock; None when another node has taken the job over.

    Holding the lock for the rest of the transaction also keeps other claimers away (they skip
    locked rows), so a handler that outlives its lease is never run a second time meanwhile.
    """
    job = session.scalars(
        sa.select(Job).where(Job.id == claimed.id).with_for_update()
    ).one_or_none()
    if job is None or job.state != "running" or job.lease_token != claimed.token:
        return None
    return job


def next_wake_at(session: Session) -> datetime | None:
    """The earliest instant at which some job becomes claimable (due, or its lease lapses)."""
    due = session.scalars(
        sa.select(Job.due_at).where(Job.state == "pending").order_by(Job.due_at).limit(1)
    ).first()
    lapse = session.scalars(
        sa.select(Job.lease_expires_at)
        .where(Job.state == "running", Job.lease_expires_at.is_not(None))
        .order_by(Job.lease_expires_at)
        .limit(1)
    ).first()
    candidates = [t for t in (due, lapse) if t is not None]
    return min(candidates) if candidates else None
