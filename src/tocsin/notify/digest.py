"""Alert fatigue: per-user throttling that bundles a burst of pages into one digest.

At most ``max_pages`` incidents page one user within ``window``. Pages for further incidents in
that window are not sent: they are marked ``bundled`` and attached to one pending digest per
user and contact method, sent when the window that was full ends (``window`` after the oldest
page counted in it). Pages of an incident already paging the user in the window (the next rule,
a retry, a fallback) always go out, and so do the first pages of a burst.

The decision is taken when the dispatcher claims a page for its first attempt, under a lock on
the user's row, so dispatchers on several nodes count the same pages.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from tocsin.incidents.models import Incident
from tocsin.notify import outbox, render
from tocsin.notify.models import Notification
from tocsin.orgs.models import User


@dataclass
class _UserWindow:
    incidents: set[int] = field(default_factory=set)
    oldest: datetime | None = None


class Throttle:
    """Decides, for one claimed batch, which first attempts go out and which are bundled."""

    def __init__(
        self,
        session: Session,
        *,
        max_pages: int,
        window: timedelta,
        now: datetime,
        batch: Iterable[Notification],
    ) -> None:
        self.session = session
        self.max_pages = max_pages
        self.window = window
        self.now = now
        rows = list(batch)
        self._batch_ids = {r.id for r in rows}
        self._windows: dict[int, _UserWindow] = {}
        users = sorted({r.user_id for r in rows if self._applies(r)})
        if users and max_pages > 0:
            # One lock per user, taken in id order (no deadlock between dispatchers): a second
            # dispatcher counting for the same user waits and then sees this batch's pages.
            session.execute(
                sa.select(User.id).where(User.id.in_(users)).order_by(User.id).with_for_update()
            ).all()

    @staticmethod
    def _applies(row: Notification) -> bool:
        return row.purpose == outbox.PAGE and row.attempts == 1 and row.incident_id is not None

    def _window_for(self, user_id: int) -> _UserWindow:
        found = self._windows.get(user_id)
        if found is not None:
            return found
        since = self.now - self.window
        rows = self.session.execute(
            sa.select(Notification.incident_id, Notification.sent_at, Notification.due_at).where(
                Notification.user_id == user_id,
                Notification.purpose == outbox.PAGE,
                Notification.incident_id.is_not(None),
                Notification.id.not_in(self._batch_ids),
                sa.or_(
                    Notification.state.in_(outbox.ATTEMPTED),
                    sa.and_(Notification.state == "pending", Notification.attempts > 0),
                ),
                sa.or_(
                    Notification.sent_at >= since,
                    sa.and_(Notification.sent_at.is_(None), Notification.due_at >= since),
                ),
            )
        ).all()
        window = _UserWindow()
        for incident_id, sent_at, due_at in rows:
            if incident_id is None:
                continue
            window.incidents.add(incident_id)
            at = sent_at or due_at
            window.oldest = at if window.oldest is None else min(window.oldest, at)
        self._windows[user_id] = window
        return window

    def admit(self, row: Notification) -> bool:
        """True: send now. False: the caller bundles it (see ``bundle``)."""
        if self.max_pages <= 0 or not self._applies(row) or row.incident_id is None:
            return True
        window = self._window_for(row.user_id)
        if row.incident_id in window.incidents or len(window.incidents) < self.max_pages:
            window.incidents.add(row.incident_id)
            if window.oldest is None:
                window.oldest = self.now
            return True
        return False

    def digest_due(self, user_id: int) -> datetime:
        oldest = self._window_for(user_id).oldest or self.now
        return max(oldest + self.window, self.now)


def bundle(session: Session, row: Notification, *, due_at: datetime, now: datetime) -> int:
    """Hold ``row`` back in the user's pending digest for its contact method (made if needed).
    Returns the digest's id."""
    digest_id = session.scalars(
        sa.select(Notification.id)
        .where(
            Notification.purpose == outbox.DIGEST,
            Notification.user_id == row.user_id,
            Notification.contact_method_id == row.contact_method_id,
            Notification.state == "pending",
        )
        .order_by(Notification.id)
        .limit(1)
        # A digest another dispatcher is claiming right now is being sent: start a new one.
        .with_for_update(skip_locked=True)
    ).first()
    if digest_id is None:
        digest_id = outbox.insert(
            session,
            unique_key=f"digest:{row.user_id}:{row.contact_method_id}:{row.id}",
            purpose=outbox.DIGEST,
            user_id=row.user_id,
            contact_method_id=row.contact_method_id,
            due_at=due_at,
            now=now,
            message={"subject": "Digest", "text": "", "urgency": "low"},
        )
        assert digest_id is not None  # the key names this row, which only this lease holds
    row.state = "bundled"
    row.digest_id = digest_id
    row.attempts -= 1  # nothing was attempted
    outbox.release(row)
    return digest_id


def digest_message(
    session: Session, digest: Notification, *, window_minutes: int
) -> dict[str, Any] | None:
    """The digest's message, listing its incidents that are not resolved; None when none of
    them still waits for someone (nothing left to tell)."""
    bundled = session.scalars(
        sa.select(Notification).where(Notification.digest_id == digest.id).order_by(Notification.id)
    ).all()
    first_by_incident: dict[int, Notification] = {}
    for row in bundled:
        if row.incident_id is not None:
            first_by_incident.setdefault(row.incident_id, row)
    incidents = {
        i.id: i
        for i in session.scalars(
            sa.select(Incident).where(Incident.id.in_(list(first_by_incident)))
        )
    }
    entries: list[render.DigestEntry] = []
    for incident_id, row in first_by_incident.items():
        incident = incidents.get(incident_id)
        if incident is None or incident.status == "resolved":
            continue
        stored = row.message or {}
        entries.append(
            render.DigestEntry(
                id=incident.id,
                title=incident.title,
                status=incident.status,
                urgency=incident.urgency,
                ack_url=stored.get("ack_url") if incident.status == "triggered" else None,
                resolve_url=stored.get("resolve_url"),
            )
        )
    if not any(e.status == "triggered" for e in entries):
        return None
    rendered = render.digest(entries, window_minutes=window_minutes)
    return {
        "subject": rendered.subject,
        "text": rendered.text,
        "html": rendered.html,
        "urgency": "high" if any(e.urgency == "high" for e in entries) else "low",
        "incident_ids": [e.id for e in entries],
    }
