"""Jobs: every piece of deferred work is a row with a due time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from tocsin.db.base import Base, BigId

JOB_STATES = ("pending", "running", "done", "failed", "cancelled")


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        sa.Index("ix_jobs_state_due", "state", "due_at"),
        sa.Index("ix_jobs_state_lease", "state", "lease_expires_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(64))
    # Deduplicates enqueues: periodic work and per-effect timers use a deterministic key,
    # so every node may try to create the row and the database keeps one.
    unique_key: Mapped[str | None] = mapped_column(sa.String(255), unique=True, default=None)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    due_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(sa.String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=10)
    lease_owner: Mapped[str | None] = mapped_column(sa.String(200), default=None)
    lease_token: Mapped[str | None] = mapped_column(sa.String(64), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(sa.Text, default=None)
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class Effect(Base):
    """A unique key per external effect makes a handler that runs twice act once."""

    __tablename__ = "effects"

    key: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    job_id: Mapped[int | None] = mapped_column(BigId, default=None)
    created_at: Mapped[datetime]
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
