"""Deciding who gets which notification, when: pages, other messages, test notifications.

page_user follows the user's notification rules for the incident's urgency ("immediately by
push, after 2 minutes by SMS") and writes one outbox row per rule, due at its delay. A user
without rules for that urgency is reached on every enabled contact method at once. The message
is rendered here, when the page is decided, and stored with the row.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from tocsin.incidents import timeline
from tocsin.incidents.models import Incident, TimelineEntry
from tocsin.notify import links, outbox, render
from tocsin.notify.models import ContactMethod, Notification, NotificationRule
from tocsin.orgs.models import Service, User

log = logging.getLogger(__name__)

# Roles whose links may act on incidents (observers are told, not asked to act).
ACTING_ROLES = ("responder", "admin")


@dataclass(frozen=True)
class Step:
    """One contact method at one delay; rule_id is None for the no-rules fallback."""

    rule_id: int | None
    method: ContactMethod
    delay_minutes: int


def plan(session: Session, user_id: int, urgency: str) -> list[Step]:
    """The user's rules for ``urgency`` on enabled contact methods, by delay; without any, every
    enabled contact method at once. A contact method named by several rules is used at the
    earliest of them (a page reaches a contact method once)."""
    rows = session.execute(
        sa.select(NotificationRule, ContactMethod)
        .join(ContactMethod, ContactMethod.id == NotificationRule.contact_method_id)
        .where(
            NotificationRule.user_id == user_id,
            NotificationRule.urgency == urgency,
            ContactMethod.enabled.is_(True),
        )
        .order_by(NotificationRule.delay_minutes, NotificationRule.id)
    ).all()
    steps: list[Step] = []
    seen: set[int] = set()
    for rule, method in rows:
        if method.id not in seen:
            seen.add(method.id)
            steps.append(Step(rule.id, method, max(rule.delay_minutes, 0)))
    if steps:
        return steps
    methods = session.scalars(
        sa.select(ContactMethod)
        .where(ContactMethod.user_id == user_id, ContactMethod.enabled.is_(True))
        .order_by(ContactMethod.id)
    )
    return [Step(None, method, 0) for method in methods]


def _describe_steps(steps: list[Step]) -> str:
    parts = []
    for step in steps:
        when = "now" if step.delay_minutes == 0 else f"after {step.delay_minutes} min"
        parts.append(f"{outbox.describe_method(step.method)} {when}")
    return ", ".join(parts)


def _skipped_once(session: Session, incident: Incident, message: str, now: datetime) -> None:
    """Say on the timeline that a user could not be paged, once per reason."""
    exists = session.scalar(
        sa.select(sa.literal(1))
        .select_from(TimelineEntry)
        .where(
            TimelineEntry.incident_id == incident.id,
            TimelineEntry.kind == "notification.skipped",
            TimelineEntry.message == message,
        )
        .limit(1)
    )
    if exists is None:
        timeline.append(
            session,
            incident_id=incident.id,
            at=now,
            kind="notification.skipped",
            actor=outbox.ACTOR,
            message=message,
        )


def page_message(
    incident: Incident, *, user: User, service_name: str, reason: str, due_at: datetime
) -> dict[str, Any]:
    rendered = render.page(incident, service_name=service_name, reason=reason)
    message: dict[str, Any] = {
        "subject": rendered.subject,
        "text": rendered.text,
        "html": rendered.html,
        "urgency": incident.urgency if incident.urgency in ("high", "low") else "high",
        "incident_url": links.incident_url(incident.id),
        "ack_url": None,
        "resolve_url": None,
        # Fences the page: a state change of the incident before it goes out cancels it.
        "generation": incident.generation,
    }
    if user.role in ACTING_ROLES and incident.status != "resolved":
        # Valid from when the page goes out, not from when it was decided.
        for action in links.ACTIONS:
            message[f"{action}_url"] = links.action_url(
                incident_id=incident.id, action=action, user_id=user.id, now=due_at
            )
    return message


def page_key(incident_id: int, level: int, loop: int, user_id: int) -> str:
    """The chain of one page: each contact method's row adds ``:<contact method id>``."""
    return f"page:{incident_id}:{level}:{loop}:{user_id}"


def page_user(
    session: Session,
    *,
    incident: Incident,
    user_id: int,
    level: int,
    loop: int,
    now: datetime,
    reason: str,
) -> int:
    """Queue the user's page for this incident, level and loop. Returns how many outbox rows
    were created (0 when this page already exists or the user cannot be reached)."""
    user = session.get(User, user_id)
    if user is None:
        return 0
    if not user.active:
        _skipped_once(session, incident, f"{user.username} is deactivated and was not paged", now)
        return 0
    steps = plan(session, user_id, incident.urgency)
    if not steps:
        _skipped_once(
            session,
            incident,
            f"{user.username} has no enabled contact method and could not be paged",
            now,
        )
        return 0
    service = session.get(Service, incident.service_id)
    service_name = service.name if service is not None else f"service #{incident.service_id}"
    chain = page_key(incident.id, level, loop, user_id)
    created: list[Step] = []
    for step in steps:
        due_at = now + timedelta(minutes=step.delay_minutes)
        message = page_message(
            incident, user=user, service_name=service_name, reason=reason, due_at=due_at
        )
        message["chain"] = chain
        new_id = outbox.insert(
            session,
            unique_key=f"{chain}:{step.method.id}",
            purpose=outbox.PAGE,
            user_id=user_id,
            contact_method_id=step.method.id,
            due_at=due_at,
            now=now,
            message=message,
            incident_id=incident.id,
            rule_id=step.rule_id,
            level=level,
            loop=loop,
        )
        if new_id is not None:
            created.append(step)
    if created:
        how = "" if created[0].rule_id is not None else " (no notification rules: every method)"
        timeline.append(
            session,
            incident_id=incident.id,
            at=now,
            kind="notification.queued",
            actor=outbox.ACTOR,
            message=f"Paging {user.username}{how}: {_describe_steps(created)}",
            data={
                "user_id": user_id,
                "user": user.username,
                "level": level,
                "loop": loop,
                "reason": reason,
                "contact_method_ids": [s.method.id for s in created],
            },
        )
    return len(created)


def notify_user(
    session: Session,
    *,
    user_id: int,
    purpose: str,
    unique_key: str,
    subject: str,
    text: str,
    now: datetime,
    urgency: str = "low",
) -> int:
    """Tell a user something that is not an incident (a hand-off notice), once per unique_key.

    It goes out now through the user's first notification step for ``urgency`` (every enabled
    contact method when they have no rules); a permanent failure falls back to the next rule.
    """
    if purpose in (outbox.PAGE, outbox.DIGEST, outbox.TEST) or not 0 < len(purpose) <= 16:
        raise ValueError("purpose must be 1 to 16 characters and not page, digest or test")
    if urgency not in ("high", "low"):
        raise ValueError("urgency must be high or low")
    user = session.get(User, user_id)
    if user is None or not user.active:
        return 0
    steps = plan(session, user_id, urgency)
    if not steps:
        log.warning("%s notice for user %s not sent: no enabled contact method", purpose, user_id)
        return 0
    first = [s for s in steps if s.delay_minutes == steps[0].delay_minutes]
    rendered = render.note(subject, text)
    message = {
        "subject": rendered.subject,
        "text": rendered.text,
        "html": rendered.html,
        "urgency": urgency,
        "chain": unique_key,
    }
    created = 0
    for step in first:
        new_id = outbox.insert(
            session,
            unique_key=f"{unique_key}:{step.method.id}",
            purpose=purpose,
            user_id=user_id,
            contact_method_id=step.method.id,
            due_at=now,
            now=now,
            message=message,
            rule_id=step.rule_id,
        )
        created += new_id is not None
    return created


def send_test(
    session: Session, *, contact_method: ContactMethod, now: datetime, actor: str
) -> Notification:
    """Queue a test message to one contact method (enabled or not). When the provider accepts
    it, the contact method's verified_at is set."""
    shown = outbox.describe_method(contact_method)
    rendered = render.note(
        "Tocsin test notification",
        f"This is a test notification for your contact method {shown}.\n"
        "If you can read it, Tocsin can reach you here.\n"
        f"Requested by {actor} at {now:%Y-%m-%d %H:%M} UTC.",
    )
    row = Notification(
        unique_key=f"test:{contact_method.id}:{secrets.token_hex(8)}",
        purpose=outbox.TEST,
        user_id=contact_method.user_id,
        contact_method_id=contact_method.id,
        state="pending",
        due_at=now,
        attempts=0,
        message={
            "subject": rendered.subject,
            "text": rendered.text,
            "html": rendered.html,
            "urgency": "low",
            "requested_by": actor,
        },
        created_at=now,
    )
    session.add(row)
    session.flush()
    outbox.mark_added(session)
    return row


# -- falling back when a contact method fails ----------------------------------------------


@dataclass(frozen=True)
class Fallback:
    row: Notification
    method: ContactMethod
    created: bool


def fallback_after(session: Session, failed: Notification, now: datetime) -> Fallback | None:
    """Reach the user through their next rule (by delay) now, after ``failed`` could not.

    The next contact method's row is created due now, or, if it is still waiting for its delay,
    brought forward to now. A method already paged in this chain that failed too is skipped;
    one that is sending or sent ends the search (the user is being reached). Only rows made
    from rules fall back: without rules every method was paged at once already.
    """
    chain = (failed.message or {}).get("chain")
    urgency = (failed.message or {}).get("urgency")
    if failed.rule_id is None or not chain or urgency not in ("high", "low"):
        return None
    steps = [s for s in plan(session, failed.user_id, urgency) if s.rule_id is not None]
    positions = [i for i, s in enumerate(steps) if s.rule_id == failed.rule_id]
    later = steps[positions[0] + 1 :] if positions else steps
    for step in later:
        if step.method.id == failed.contact_method_id:
            continue
        key = f"{chain}:{step.method.id}"
        # Never wait for a row another dispatcher holds: it may be waiting for a lock this
        # transaction holds (the user's, in digest.Throttle). A locked row is being claimed,
        # that is, sent: the user is being reached.
        existing = session.scalars(
            sa.select(Notification)
            .where(Notification.unique_key == key)
            .with_for_update(skip_locked=True)
        ).one_or_none()
        if existing is None and session.scalar(
            sa.select(Notification.id).where(Notification.unique_key == key)
        ):
            return None
        if existing is None:
            new_id = outbox.insert(
                session,
                unique_key=key,
                purpose=failed.purpose,
                user_id=failed.user_id,
                contact_method_id=step.method.id,
                due_at=now,
                now=now,
                message=dict(failed.message),
                incident_id=failed.incident_id,
                rule_id=step.rule_id,
                level=failed.level,
                loop=failed.loop,
            )
            if new_id is None:  # created by someone else a moment ago: theirs goes out
                return None
            return Fallback(session.get_one(Notification, new_id), step.method, True)
        if existing.state == "pending" and existing.attempts == 0:
            if existing.due_at > now:
                existing.due_at = now
                outbox.mark_added(session)
            return Fallback(existing, step.method, False)
        if existing.state in ("pending", "sending", "sent", "bundled"):
            return None
    return None
