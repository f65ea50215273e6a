"""Accepted events (the durable inbox), alerts and change events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from tocsin.db.base import Base, BigId

EVENT_ACTIONS = ("trigger", "acknowledge", "resolve", "change")
SEVERITIES = ("critical", "error", "warning", "info")
ALERT_STATUSES = ("triggered", "acknowledged", "resolved")


class InboundEvent(Base):
    """An accepted event. Written by group commit before the 202; processed afterwards."""

    __tablename__ = "inbound_events"
    __table_args__ = (sa.Index("ix_inbound_events_pending", "status", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    received_at: Mapped[datetime]
    # No foreign keys on purpose: an integration deleted while its events wait in a group
    # commit must not fail the whole batch; the processor drops such events with a reason.
    integration_id: Mapped[int] = mapped_column(BigId)
    service_id: Mapped[int] = mapped_column(BigId)
    action: Mapped[str] = mapped_column(sa.String(16))
    dedup_key: Mapped[str | None] = mapped_column(sa.String(255))
    # Normalised fields: summary, severity, source, component, group, class, custom_details,
    # timestamp, links, images, client, client_url.
    payload: Mapped[dict[str, Any]]
    # pending -> processed | dropped (nothing to act on) | failed (kept for inspection)
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    outcome: Mapped[str | None] = mapped_column(sa.Text, default=None)
    processed_at: Mapped[datetime | None] = mapped_column(default=None)


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (
        # One open alert per (service, dedup key): the race-safe core of deduplication.
        sa.Index(
            "uq_alerts_open_dedup_key",
            "service_id",
            "dedup_key",
            unique=True,
            sqlite_where=sa.text("status != 'resolved'"),
            postgresql_where=sa.text("status != 'resolved'"),
        ),
        sa.Index("ix_alerts_status_service", "status", "service_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    service_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("services.id", ondelete="CASCADE"))
    integration_id: Mapped[int | None] = mapped_column(
        BigId, sa.ForeignKey("integrations.id", ondelete="SET NULL")
    )
    incident_id: Mapped[int | None] = mapped_column(
        BigId, sa.ForeignKey("incidents.id", ondelete="SET NULL"), index=True
    )
    dedup_key: Mapped[str] = mapped_column(sa.String(255))
    status: Mapped[str] = mapped_column(sa.String(16), default="triggered")
    summary: Mapped[str] = mapped_column(sa.String(1024))
    severity: Mapped[str] = mapped_column(sa.String(16))
    source: Mapped[str] = mapped_column(sa.String(255), default="")
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    last_event_at: Mapped[datetime]
    event_count: Mapped[int] = mapped_column(default=1)
    acknowledged_at: Mapped[datetime | None] = mapped_column(default=None)
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)


class ChangeEvent(Base):
    """A deploy or configuration change, kept for triage."""

    __tablename__ = "change_events"
    __table_args__ = (sa.Index("ix_change_events_service_at", "service_id", "occurred_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    service_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("services.id", ondelete="CASCADE"))
    integration_id: Mapped[int | None] = mapped_column(
        BigId, sa.ForeignKey("integrations.id", ondelete="SET NULL")
    )
    summary: Mapped[str] = mapped_column(sa.String(1024))
    source: Mapped[str] = mapped_column(sa.String(255), default="")
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime]
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
