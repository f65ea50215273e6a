"""The notification outbox: rows with a due time, claimed under a lease like engine jobs.

A row is written in the transaction of whatever decided to notify (an escalation step, a
hand-off notice), so a notification exists exactly when that decision committed. Pages are
keyed by (incident, level, loop, user, contact method) and inserted with ON CONFLICT DO
NOTHING, so a rerun, a second node or a crash-retry adds nothing. The dispatcher
(notify/dispatcher.py) moves rows pending -> sending -> sent | failed | unknown.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tocsin.incidents import timeline
from tocsin.notify.channels.base import URGENCIES, Message
from tocsin.notify.models import ContactMethod, Notification
from tocsin.orgs.models import User

NOTIFY_CHANNEL = "tocsin_notifications"
# Read by the dispatcher's after-commit hook, which wakes it when a transaction added rows.
ADDED_FLAG = "tocsin_notifications_added"
ACTOR = "system:notify"

PAGE = "page"
TEST = "test"
DIGEST = "digest"
# States in which a page counts as having gone out (or being on its way) to the user.
ATTEMPTED = ("sending", "sent", "unknown", "failed")


def insert(
    session: Session,
    *,
    unique_key: str,
    purpose: str,
    user_id: int,
    contact_method_id: int | None,
    due_at: datetime,
    now: datetime,
    message: dict[str, Any],
    incident_id: int | None = None,
    rule_id: int | None = None,
    level: int | None = None,
    loop: int | None = None,
) -> int | None:
    """Add a row in the caller's transaction; None when its unique key already exists."""
    if len(unique_key) > 255:
        raise ValueError("notification unique key must be at most 255 characters")
    values = {
        "unique_key": unique_key,
        "purpose": purpose,
        "incident_id": incident_id,
        "user_id": user_id,
        "contact_method_id": contact_method_id,
        "rule_id": rule_id,
        "level": level,
        "loop": loop,
        "state": "pending",
        "due_at": due_at,
        "attempts": 0,
        "message": message,
        "created_at": now,
    }
    dialect = session.get_bind().dialect.name
    insert_ = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (
        insert_(Notification)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["unique_key"])
        .returning(Notification.id)
    )
    new_id = session.execute(stmt).scalar_one_or_none()
    if new_id is not None:
        mark_added(session)
    return new_id


def mark_added(session: Session) -> None:
    session.info[ADDED_FLAG] = True
    if session.get_bind().dialect.name == "postgresql":
        # Delivered at commit: other nodes' dispatchers wake when the row becomes visible.
        session.execute(sa.select(sa.func.pg_notify(NOTIFY_CHANNEL, "")))


def claim_due(
    session: Session, *, node: str, now: datetime, deadline_seconds: float, limit: int
) -> list[Notification]:
    """Move up to ``limit`` due pending rows to sending under a fresh lease token.

    One UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED LIMIT n) RETURNING: on
    PostgreSQL concurrent dispatchers divide the due rows between them; on SQLite the
    transaction already holds the single write lock.
    """
    due = (
        sa.select(Notification.id)
        .where(Notification.state == "pending", Notification.due_at <= now)
        .order_by(Notification.due_at, Notification.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    stmt = (
        sa.update(Notification)
        .where(Notification.id.in_(due))
        .values(
            state="sending",
            lease_owner=node,
            lease_token=secrets.token_hex(16),
            deadline_at=now + timedelta(seconds=deadline_seconds),
            attempts=Notification.attempts + 1,
        )
        .returning(Notification.id)
        .execution_options(synchronize_session=False)
    )
    ids = list(session.execute(stmt).scalars())
    if not ids:
        return []
    return list(
        session.scalars(
            sa.select(Notification)
            .where(Notification.id.in_(ids))
            .order_by(Notification.due_at, Notification.id)
        )
    )


def lapsed(session: Session, *, now: datetime, limit: int) -> list[Notification]:
    """Rows still "sending" past their deadline: the sender died or lost its outcome."""
    return list(
        session.scalars(
            sa.select(Notification)
            .where(Notification.state == "sending", Notification.deadline_at < now)
            .order_by(Notification.deadline_at, Notification.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )


def lock_if_still_ours(session: Session, notification_id: int, token: str) -> Notification | None:
    """The row under a row lock, or None when it was swept or taken over meanwhile."""
    row = session.scalars(
        sa.select(Notification).where(Notification.id == notification_id).with_for_update()
    ).one_or_none()
    if row is None or row.state != "sending" or row.lease_token != token:
        return None
    return row


def release(row: Notification) -> None:
    """End the lease (the owner's name stays as a record of who sent it)."""
    row.lease_token = None
    row.deadline_at = None


def next_wake_at(session: Session) -> datetime | None:
    due = session.scalars(
        sa.select(Notification.due_at)
        .where(Notification.state == "pending")
        .order_by(Notification.due_at)
        .limit(1)
    ).first()
    deadline = session.scalars(
        sa.select(Notification.deadline_at)
        .where(Notification.state == "sending", Notification.deadline_at.is_not(None))
        .order_by(Notification.deadline_at)
        .limit(1)
    ).first()
    candidates = [t for t in (due, deadline) if t is not None]
    return min(candidates) if candidates else None


def backoff_seconds(attempts: int, *, base: float, cap: float) -> float:
    """base * 2^(attempts-1), capped: 30 s, 60 s, 120 s ... 10 min with the defaults."""
    return float(min(base * 2.0 ** min(max(attempts - 1, 0), 30), cap))


def to_message(row: Notification) -> Message:
    stored = row.message or {}
    urgency = stored.get("urgency")
    return Message(
        idempotency_key=row.unique_key,
        subject=str(stored.get("subject") or "Tocsin notification"),
        text=str(stored.get("text") or ""),
        html=stored.get("html"),
        urgency=urgency if urgency in URGENCIES else "high",
        incident_id=str(row.incident_id) if row.incident_id is not None else None,
        incident_url=stored.get("incident_url"),
        ack_url=stored.get("ack_url"),
        resolve_url=stored.get("resolve_url"),
        extra={"purpose": row.purpose},
    )


# -- describing a notification on the timeline (no secrets: display forms only) ------------


@dataclass(frozen=True)
class Recipient:
    user_id: int
    username: str
    method_id: int | None
    method: str  # "email a***@example.com (work)"


def describe_method(method: ContactMethod | None) -> str:
    if method is None:
        return "a deleted contact method"
    shown = f"{method.kind} {method.display}".strip()
    return f"{shown} ({method.name})" if method.name else shown


def recipient(session: Session, row: Notification) -> Recipient:
    user = session.get(User, row.user_id)
    method = (
        session.get(ContactMethod, row.contact_method_id)
        if row.contact_method_id is not None
        else None
    )
    return Recipient(
        user_id=row.user_id,
        username=user.username if user is not None else f"user #{row.user_id}",
        method_id=row.contact_method_id,
        method=describe_method(method),
    )


def incidents_of(session: Session, row: Notification) -> list[int]:
    """The incidents a notification is about: its own, or those a digest lists."""
    if row.incident_id is not None:
        return [row.incident_id]
    if row.purpose != DIGEST:
        return []
    listed = (row.message or {}).get("incident_ids")
    if isinstance(listed, list) and listed:
        return [i for i in listed if isinstance(i, int)]
    ids = session.scalars(
        sa.select(Notification.incident_id)
        .where(Notification.digest_id == row.id, Notification.incident_id.is_not(None))
        .order_by(Notification.id)
    )
    return list(dict.fromkeys(i for i in ids if i is not None))


def note(
    session: Session,
    row: Notification,
    *,
    kind: str,
    message: str,
    at: datetime,
    who: Recipient | None = None,
    **data: Any,
) -> None:
    """A timeline entry on every incident the notification is about."""
    incidents = incidents_of(session, row)
    if not incidents:
        return
    who = who or recipient(session, row)
    payload = {
        "notification_id": row.id,
        "purpose": row.purpose,
        "user_id": who.user_id,
        "user": who.username,
        "contact_method_id": who.method_id,
        "contact_method": who.method,
        "attempt": row.attempts,
        **data,
    }
    for incident_id in incidents:
        timeline.append(
            session,
            incident_id=incident_id,
            at=at,
            kind=kind,
            actor=ACTOR,
            message=message,
            data=payload,
        )
