"""Incidents and their append-only timelines."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from tocsin.db.base import Base, BigId

INCIDENT_STATUSES = ("triggered", "acknowledged", "resolved")
PRIORITIES = ("P1", "P2", "P3", "P4", "P5")


class Incident(Base):
    __tablename__ = "incidents"
    __table_args__ = (
        sa.Index("ix_incidents_status_service", "status", "service_id"),
        sa.Index("ix_incidents_service_group", "service_id", "group_key", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    service_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("services.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(sa.String(1024))
    status: Mapped[str] = mapped_column(sa.String(16), default="triggered")
    urgency: Mapped[str] = mapped_column(sa.String(16), default="high")
    priority: Mapped[str | None] = mapped_column(sa.String(8), default=None)
    severity: Mapped[str] = mapped_column(sa.String(16), default="critical")
    # Alerts with the same group key join this incident while it is open (grouping rules).
    group_key: Mapped[str | None] = mapped_column(sa.String(255), default=None)
    assignee_id: Mapped[int | None] = mapped_column(
        BigId, sa.ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    alert_count: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    last_alert_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None] = mapped_column(default=None)
    acknowledged_by: Mapped[str | None] = mapped_column(sa.String(200), default=None)
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)
    resolved_by: Mapped[str | None] = mapped_column(sa.String(200), default=None)
    # Bumped on every state change: timers carry the value they were set for and a timer
    # whose generation is stale exits without acting (a fencing token).
    generation: Mapped[int] = mapped_column(default=1)
    # Where the escalation policy stands: the level last paged and the loop it was in.
    escalation_policy_id: Mapped[int | None] = mapped_column(
        BigId, sa.ForeignKey("escalation_policies.id", ondelete="SET NULL"), default=None
    )
    escalation_level: Mapped[int] = mapped_column(default=0)
    escalation_loop: Mapped[int] = mapped_column(default=0)


class TimelineEntry(Base):
    """Append-only: rows are inserted, never updated or deleted by the application."""

    __tablename__ = "timeline_entries"
    __table_args__ = (sa.Index("ix_timeline_entries_incident", "incident_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("incidents.id", ondelete="CASCADE")
    )
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(sa.String(64))
    # "user:alice", "integration:prometheus", "system:engine", "token:ci-bot" ...
    actor: Mapped[str] = mapped_column(sa.String(200))
    message: Mapped[str] = mapped_column(sa.Text)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
