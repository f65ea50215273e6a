"""Contact methods, personal notification rules, and the outbox of notifications."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from tocsin.crypto import EncryptedJson
from tocsin.db.base import Base, BigId, Json

CONTACT_KINDS = ("email", "sms", "voice", "push", "chat", "slack", "matrix", "webhook", "apprise")
# pending -> sending -> sent | failed | unknown ; pending -> bundled (into a digest) | cancelled
NOTIFICATION_STATES = ("pending", "sending", "sent", "failed", "unknown", "bundled", "cancelled")


class ContactMethod(Base):
    __tablename__ = "contact_methods"
    __table_args__ = (sa.UniqueConstraint("user_id", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(sa.String(64))
    # The channel kind that delivers it ("email", "webhook", "slack", "matrix", "apprise"...).
    kind: Mapped[str] = mapped_column(sa.String(16))
    # Address and channel options may carry credentials (Apprise URLs, signing secrets,
    # bot tokens): stored encrypted, as {"address": ..., "options": {...}}.
    secret: Mapped[dict[str, Any]] = mapped_column(EncryptedJson)
    # A display form of the address with credentials removed ("a***@example.com").
    display: Mapped[str] = mapped_column(sa.String(200), default="")
    enabled: Mapped[bool] = mapped_column(default=True)
    verified_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime]


class NotificationRule(Base):
    """ "For a high-urgency page, after 2 minutes, by SMS" is one rule."""

    __tablename__ = "notification_rules"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "urgency", "contact_method_id", "delay_minutes"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    urgency: Mapped[str] = mapped_column(sa.String(8))
    delay_minutes: Mapped[int] = mapped_column(default=0)
    contact_method_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("contact_methods.id", ondelete="CASCADE")
    )


class Notification(Base):
    """One message to one person over one contact method: the outbox row.

    ``unique_key`` is (incident, level, loop, user, contact method) for pages, so a page is
    created at most once whatever runs twice."""

    __tablename__ = "notifications"
    __table_args__ = (
        sa.Index("ix_notifications_state_due", "state", "due_at"),
        sa.Index("ix_notifications_user_created", "user_id", "created_at"),
        sa.Index("ix_notifications_incident", "incident_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    unique_key: Mapped[str] = mapped_column(sa.String(255), unique=True)
    purpose: Mapped[str] = mapped_column(sa.String(16))  # page | test | handoff | digest
    incident_id: Mapped[int | None] = mapped_column(
        BigId, sa.ForeignKey("incidents.id", ondelete="CASCADE"), default=None
    )
    user_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("users.id", ondelete="CASCADE"))
    contact_method_id: Mapped[int | None] = mapped_column(
        BigId, sa.ForeignKey("contact_methods.id", ondelete="SET NULL"), default=None
    )
    rule_id: Mapped[int | None] = mapped_column(BigId, default=None)
    level: Mapped[int | None] = mapped_column(default=None)
    loop: Mapped[int | None] = mapped_column(default=None)
    state: Mapped[str] = mapped_column(sa.String(16), default="pending")
    due_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(default=0)
    # While "sending": the node that sends, its token and the deadline past which the outcome
    # is unknown (a crash mid-send); never resent automatically, see docs/notifications.md.
    lease_owner: Mapped[str | None] = mapped_column(sa.String(200), default=None)
    lease_token: Mapped[str | None] = mapped_column(sa.String(64), default=None)
    deadline_at: Mapped[datetime | None] = mapped_column(default=None)
    # The rendered message (subject, text, html, links): what was, or will be, sent.
    message: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    detail: Mapped[str | None] = mapped_column(sa.Text, default=None)
    provider_message_id: Mapped[str | None] = mapped_column(sa.String(255), default=None)
    digest_id: Mapped[int | None] = mapped_column(BigId, default=None)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
