"""Schedules (layers, overrides) and escalation policies (levels of targets)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tocsin.db.base import Base, BigId, Json

TARGET_TYPES = ("user", "schedule", "team")


class Schedule(Base):
    __tablename__ = "schedules"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    time_zone: Mapped[str] = mapped_column(sa.String(64))
    team_id: Mapped[int | None] = mapped_column(
        BigId, sa.ForeignKey("teams.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime]

    layers: Mapped[list[ScheduleLayer]] = relationship(
        back_populates="schedule",
        cascade="all, delete-orphan",
        order_by="ScheduleLayer.position",
    )
    overrides: Mapped[list[ScheduleOverride]] = relationship(
        back_populates="schedule",
        cascade="all, delete-orphan",
        order_by="ScheduleOverride.id",
    )


class ScheduleLayer(Base):
    """Rotation of ``members`` (user ids, in order); later positions sit on top."""

    __tablename__ = "schedule_layers"
    __table_args__ = (sa.UniqueConstraint("schedule_id", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    schedule_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("schedules.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int]
    name: Mapped[str] = mapped_column(sa.String(100))
    # Naive wall-clock ISO datetimes in the schedule's time zone ("2026-01-05T09:00").
    start_local: Mapped[str] = mapped_column(sa.String(32))
    end_local: Mapped[str | None] = mapped_column(sa.String(32), default=None)
    rotation_length: Mapped[int]
    rotation_unit: Mapped[str] = mapped_column(sa.String(8))
    members: Mapped[list[int]] = mapped_column(Json)
    # [{"kind": "daily", "start": "09:00", "end": "17:00"},
    #  {"kind": "weekly", "start_weekday": 4, "start": "17:00", "end_weekday": 0, "end": "09:00"}]
    restrictions: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)

    schedule: Mapped[Schedule] = relationship(back_populates="layers")


class ScheduleOverride(Base):
    __tablename__ = "schedule_overrides"
    __table_args__ = (sa.Index("ix_schedule_overrides_window", "schedule_id", "end_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    schedule_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("schedules.id", ondelete="CASCADE")
    )
    user_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("users.id", ondelete="CASCADE"))
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(sa.String(200), default="")

    schedule: Mapped[Schedule] = relationship(back_populates="overrides")


class EscalationPolicy(Base):
    __tablename__ = "escalation_policies"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    team_id: Mapped[int | None] = mapped_column(
        BigId, sa.ForeignKey("teams.id", ondelete="SET NULL"), default=None
    )
    # How many more times the whole policy runs after its last level (0: once).
    repeat: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime]

    levels: Mapped[list[EscalationLevel]] = relationship(
        back_populates="policy",
        cascade="all, delete-orphan",
        order_by="EscalationLevel.position",
    )


class EscalationLevel(Base):
    __tablename__ = "escalation_levels"
    __table_args__ = (sa.UniqueConstraint("policy_id", "position"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    policy_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("escalation_policies.id", ondelete="CASCADE")
    )
    position: Mapped[int]
    # Minutes from this level's pages until the next level (or the next loop).
    delay_minutes: Mapped[int] = mapped_column(default=30)
    # [{"type": "user"|"schedule"|"team", "id": 3}]
    targets: Mapped[list[dict[str, Any]]] = mapped_column(Json)

    policy: Mapped[EscalationPolicy] = relationship(back_populates="levels")
