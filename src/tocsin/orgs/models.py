"""Who owns what: teams, users, services and the integrations that feed them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tocsin.db.base import Base, BigId

ROLES = ("admin", "responder", "observer")
URGENCIES = ("high", "low")
INTEGRATION_TYPES = ("pagerduty", "alertmanager", "webhook", "internal")


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime]

    members: Mapped[list[TeamMember]] = relationship(
        back_populates="team", cascade="all, delete-orphan"
    )


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    email: Mapped[str] = mapped_column(sa.String(320), unique=True)
    role: Mapped[str] = mapped_column(sa.String(16), default="responder")
    time_zone: Mapped[str] = mapped_column(sa.String(64), default="UTC")
    password_hash: Mapped[str | None] = mapped_column(sa.String(255), default=None)
    active: Mapped[bool] = mapped_column(default=True)
    # SHA-256 of the secret in the user's calendar feed URL; None until one is issued.
    calendar_token_hash: Mapped[str | None] = mapped_column(
        sa.String(64), unique=True, default=None
    )
    # Minutes before a shift starts to tell the user; None turns hand-off notices off.
    handoff_notice_minutes: Mapped[int | None] = mapped_column(default=60)
    created_at: Mapped[datetime]

    memberships: Mapped[list[TeamMember]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )


class TeamMember(Base):
    __tablename__ = "team_members"

    team_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(sa.String(16), default="member")

    team: Mapped[Team] = relationship(back_populates="members")
    user: Mapped[User] = relationship(back_populates="memberships")


class Service(Base):
    __tablename__ = "services"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    team_id: Mapped[int | None] = mapped_column(
        BigId, sa.ForeignKey("teams.id", ondelete="SET NULL"), index=True
    )
    # Name of the escalation policy; the policies themselves arrive with on-call scheduling.
    escalation_policy: Mapped[str | None] = mapped_column(sa.String(64), default=None)
    urgency: Mapped[str] = mapped_column(sa.String(16), default="high")
    # Seconds after which an untouched incident resolves itself; None keeps it open.
    auto_resolve_seconds: Mapped[int | None] = mapped_column(default=None)
    # Seconds after which an acknowledged, still open incident triggers again.
    ack_timeout_seconds: Mapped[int | None] = mapped_column(default=None)
    # How new alerts join incidents: {"type": "none"|"time_window"|"fields", ...}.
    grouping: Mapped[dict[str, Any]] = mapped_column(default=dict)
    internal: Mapped[bool] = mapped_column(default=False)
    # When low-urgency incidents may notify: {"time_zone": "Europe/Berlin", "days": [0..6],
    # "start": "09:00", "end": "17:00"}; None means always.
    support_hours: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    created_at: Mapped[datetime]

    integrations: Mapped[list[Integration]] = relationship(
        back_populates="service", cascade="all, delete-orphan"
    )


class Integration(Base):
    __tablename__ = "integrations"
    __table_args__ = (sa.UniqueConstraint("service_id", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    service_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("services.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(sa.String(64))
    type: Mapped[str] = mapped_column(sa.String(32))
    # The routing/integration key: the credential of the ingestion endpoints.
    key: Mapped[str] = mapped_column(sa.String(64), unique=True)
    # Type-specific settings: a webhook's field mapping, Alertmanager's auth.
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]

    service: Mapped[Service] = relationship(back_populates="integrations")
