"""The outbox sender: one per node, in its own thread, claiming due notifications like the engine
claims jobs.

Each round:
1. sweep: rows left "sending" past their deadline (a node died mid-send) become ``unknown``;
2. claim: due pending rows move to "sending" under a fresh lease token, in one transaction that
   also cancels pages whose incident was handled meanwhile, bundles pages over the user's limit
   into a digest, and fails rows that cannot be sent (no channel, contact method deleted);
3. send, outside any transaction, on the dispatcher's own asyncio loop (a batch concurrently);
4. record each outcome in a new transaction, fenced by the lease token.

Outcomes: sent; temporary failure -> retried with capped exponential backoff (honouring the
provider's retry_after) until the attempt limit, then failed; permanent failure -> failed;
unknown -> never resent (a duplicate page is worse than a visible failure). Failed and unknown
pages fall back to the user's next contact method. Every attempt is on the incident timeline.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from tocsin.clock import Clock
from tocsin.crypto import SecretsUnavailable
from tocsin.db.engine import transaction
from tocsin.engine.loop import WakeableLoop, rest_until
from tocsin.incidents.models import Incident
from tocsin.notify import digest, outbox
from tocsin.notify.channels.base import Channel, DeliveryResult, Message, Target
from tocsin.notify.channels_config import ChannelSet
from tocsin.notify.models import ContactMethod, Notification
from tocsin.notify.pages import fallback_after
from tocsin.observability.metrics import NOTIFICATIONS
from tocsin.orgs.models import User
from tocsin.settings import Settings

log = logging.getLogger(__name__)

# Longest provider retry_after honoured; anything longer is treated as this.
MAX_RETRY_AFTER_SECONDS = 3600.0
# The send itself is abandoned this long before the row's deadline, so that the sending node,
# not the sweeper, records the outcome whenever it is still alive.
_DEADLINE_MARGIN_SECONDS = 5.0


@dataclass(frozen=True)
class SendTask:
    notification_id: int
    token: str
    kind: str
    channel: Channel
    message: Message
    target: Target


def _cancel_reason(row: Notification, incident: Incident | None) -> str | None:
    """Why a page decided earlier is moot now, if it is.

    The page carries the incident's generation from when it was decided; any state change
    since (acknowledged, resolved, re-triggered, reassigned) makes it stale: a re-triggered or
    reassigned incident escalates anew and pages again. A responder request into an incident
    that was already acknowledged when it was made still goes out.
    """
    if incident is None:
        return None
    if incident.status == "resolved":
        return f"the incident was resolved by {incident.resolved_by}"
    generation = (row.message or {}).get("generation")
    acknowledged = f"the incident was acknowledged by {incident.acknowledged_by}"
    if isinstance(generation, int):
        if incident.generation == generation:
            return None
        if incident.status == "acknowledged":
            return acknowledged
        return "the incident was re-triggered or reassigned since; its new escalation pages anew"
    acked = incident.acknowledged_at
    if incident.status == "acknowledged" and acked is not None and acked >= row.created_at:
        return acknowledged
    return None


class Dispatcher:
    def __init__(
        self,
        factory: sessionmaker[Session],
        clock: Clock,
        *,
        settings: Settings,
        channels: ChannelSet,
        node: str | None = None,
    ) -> None:
        self.factory = factory
        self.clock = clock
        self.settings = settings
        self.channels = channels
        self.node = node or settings.node_name
        self.batch = max(1, settings.notify_batch)
        self.poll_seconds = settings.notify_poll_seconds
        self.send_timeout = max(1.0, settings.notify_send_timeout_seconds)
        self._background = WakeableLoop(
            factory,
            self._tick,
            name="tocsin-notify",
            channel=outbox.NOTIFY_CHANNEL,
            retry_seconds=self.poll_seconds,
            # Sends in flight finish (or time out) and their outcomes are recorded first.
            join_seconds=self.send_timeout + 10,
            logger=log,
            failure="notification dispatch failed; retrying",
        )
        self._round = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.last_beat = 0.0

        @event.listens_for(factory, "after_commit")
        def _wake_on_commit(session: Session) -> None:
            if session.info.pop(outbox.ADDED_FLAG, False):
                self.wake()

    # -- lifecycle ----------------------------------------------------------------------------

    def wake(self) -> None:
        self._background.wake()

    def start(self) -> None:
        self._background.start()

    def stop(self) -> None:
        self._background.stop()
        with self._round:
            if self._loop is not None:
                self._loop.run_until_complete(self._loop.shutdown_default_executor())
                self._loop.close()
                self._loop = None

    @property
    def running(self) -> bool:
        return self._background.running

    # -- one round, used by the thread and directly by tests -----------------------------------

    def run_once(self) -> int:
        """Sweep, claim one batch, send it and record the outcomes. Returns how many
        notifications were settled or attempted this round."""
        with self._round:
            self.last_beat = time.monotonic()
            done = self.sweep()
            tasks, settled = self.claim()
            done += settled
            if tasks:
                results = self._event_loop().run_until_complete(self._send_all(tasks))
                for task, result in zip(tasks, results, strict=True):
                    self.record(task, result)
            return done + len(tasks)

    def drain(self, max_rounds: int = 1000) -> int:
        """Run rounds until nothing is due (tests; the thread does the same)."""
        total = 0
        for _ in range(max_rounds):
            n = self.run_once()
            if n == 0:
                break
            total += n
        return total

    def sweep(self) -> int:
        with transaction(self.factory) as session:
            now = self.clock.now()
            rows = outbox.lapsed(session, now=now, limit=self.batch)
            for row in rows:
                kind = self._kind(session, row)
                log.warning(
                    "notification %s was still sending at its deadline; outcome unknown", row.id
                )
                self._apply(
                    session,
                    row,
                    DeliveryResult.unknown(
                        "no outcome was recorded before the send deadline "
                        "(the sending node stopped or lost its database connection)"
                    ),
                    now,
                    kind,
                )
            return len(rows)

    def claim(self) -> tuple[list[SendTask], int]:
        """Claim due rows; returns the sends to make and how many rows were settled without
        sending (cancelled, bundled, failed before sending)."""
        with transaction(self.factory) as session:
            now = self.clock.now()
            rows = outbox.claim_due(
                session,
                node=self.node,
                now=now,
                deadline_seconds=self.send_timeout,
                limit=self.batch,
            )
            if not rows:
                return [], 0
            throttle = digest.Throttle(
                session,
                max_pages=self.settings.digest_max_pages,
                window=timedelta(minutes=self.settings.digest_window_minutes),
                now=now,
                batch=rows,
            )
            tasks: list[SendTask] = []
            for row in rows:
                task = self._prepare(session, row, now, throttle)
                if task is not None:
                    tasks.append(task)
            return tasks, len(rows) - len(tasks)

    def record(self, task: SendTask, result: DeliveryResult) -> None:
        try:
            with transaction(self.factory) as session:
                row = outbox.lock_if_still_ours(session, task.notification_id, task.token)
                if row is None:
                    NOTIFICATIONS.labels(channel=task.kind, outcome="fenced").inc()
                    log.warning(
                        "notification %s: outcome %s not recorded, the row was swept or taken "
                        "over meanwhile",
                        task.notification_id,
                        result.outcome,
                    )
                    return
                self._apply(session, row, result, self.clock.now(), task.kind)
        except Exception:
            # The row stays "sending" until its deadline and is then swept to unknown.
            log.exception("notification %s: recording the outcome failed", task.notification_id)

    # -- internals -----------------------------------------------------------------------------

    def _prepare(
        self, session: Session, row: Notification, now: datetime, throttle: digest.Throttle
    ) -> SendTask | None:
        """Turn a claimed row into a send, or settle it here and return None."""
        if row.purpose == outbox.DIGEST:
            message = digest.digest_message(
                session, row, window_minutes=self.settings.digest_window_minutes
            )
            if message is None:
                self._cancel(session, row, now, "every incident in it was handled meanwhile")
                return None
            row.message = message
        elif row.incident_id is not None:
            reason = _cancel_reason(row, session.get(Incident, row.incident_id))
            if reason is not None:
                self._cancel(session, row, now, reason)
                return None
        user = session.get(User, row.user_id)
        if user is None or not user.active:
            self._cancel(session, row, now, "the user is deactivated")
            return None
        method = (
            session.get(ContactMethod, row.contact_method_id)
            if row.contact_method_id is not None
            else None
        )
        kind = method.kind if method is not None else "unknown"
        if method is None or (not method.enabled and row.purpose != outbox.TEST):
            why = "was deleted" if method is None else "is disabled"
            self._fail_unsent(session, row, now, kind, f"the contact method {why}")
            return None
        if not throttle.admit(row):
            due_at = throttle.digest_due(row.user_id)
            digest.bundle(session, row, due_at=due_at, now=now)
            outbox.note(
                session,
                row,
                kind="notification.bundled",
                at=now,
                message=(
                    f"Page to {user.username} by {outbox.describe_method(method)} held back: "
                    f"{throttle.max_pages} incidents already paged them within "
                    f"{self.settings.digest_window_minutes} min; it will be in a digest at "
                    f"{due_at:%H:%M} UTC"
                ),
                digest_id=row.digest_id,
            )
            NOTIFICATIONS.labels(channel=kind, outcome="bundled").inc()
            return None
        channel = self.channels.get(kind)
        if channel is None:
            self._fail_unsent(session, row, now, kind, self.channels.why_missing(kind))
            return None
        try:
            secret = method.secret
            target = Target(
                kind=method.kind,  # type: ignore[arg-type]  # validated by Target
                address=str(secret["address"]),
                options=secret.get("options") or {},
            )
        except SecretsUnavailable as exc:
            self._fail_unsent(session, row, now, kind, f"the contact method's secret: {exc}")
            return None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            self._fail_unsent(session, row, now, kind, f"the contact method is invalid: {exc}")
            return None
        assert row.lease_token is not None
        return SendTask(row.id, row.lease_token, kind, channel, outbox.to_message(row), target)

    def _cancel(self, session: Session, row: Notification, now: datetime, reason: str) -> None:
        row.state = "cancelled"
        row.attempts -= 1
        row.detail = f"cancelled: {reason}"
        outbox.release(row)
        outbox.note(
            session,
            row,
            kind="notification.cancelled",
            at=now,
            message=f"Notification to {outbox.recipient(session, row).username} not sent: {reason}",
        )

    def _fail_unsent(
        self, session: Session, row: Notification, now: datetime, kind: str, detail: str
    ) -> None:
        row.attempts -= 1  # nothing left this node
        self._apply(session, row, DeliveryResult.permanent(detail), now, kind)

    def _apply(
        self,
        session: Session,
        row: Notification,
        result: DeliveryResult,
        now: datetime,
        kind: str,
    ) -> None:
        """Record one outcome on a row this node holds, with its timeline entry and fallback."""
        NOTIFICATIONS.labels(channel=kind, outcome=result.outcome).inc()
        who = outbox.recipient(session, row)
        to = f"{row.purpose.capitalize()} to {who.username} by {who.method}"
        detail = result.detail
        row.detail = detail
        outbox.release(row)
        max_attempts = max(1, self.settings.notify_max_attempts)
        if result.outcome == "sent":
            row.state = "sent"
            row.sent_at = now
            row.provider_message_id = result.provider_message_id
            outbox.note(
                session,
                row,
                kind="notification.sent",
                at=now,
                who=who,
                message=f"{to}: sent ({detail})",
                outcome="sent",
                detail=detail,
            )
            if row.purpose == outbox.TEST and row.contact_method_id is not None:
                method = session.get(ContactMethod, row.contact_method_id)
                if method is not None:
                    method.verified_at = now
            return
        if result.outcome == "temporary_failure" and row.attempts < max_attempts:
            delay = outbox.backoff_seconds(
                row.attempts,
                base=self.settings.notify_retry_base_seconds,
                cap=self.settings.notify_retry_max_seconds,
            )
            if result.retry_after is not None:
                delay = max(delay, min(result.retry_after, MAX_RETRY_AFTER_SECONDS))
            row.state = "pending"
            row.due_at = now + timedelta(seconds=delay)
            outbox.note(
                session,
                row,
                kind="notification.retry",
                at=now,
                who=who,
                message=f"{to}: attempt {row.attempts} of {max_attempts} failed ({detail}); "
                f"retrying in {delay:.0f} s",
                outcome=result.outcome,
                detail=detail,
                retry_at=row.due_at.isoformat(),
            )
            return
        if result.outcome == "unknown":
            row.state = "unknown"
            outbox.note(
                session,
                row,
                kind="notification.unknown",
                at=now,
                who=who,
                message=f"{to}: outcome unknown ({detail}); not resent, to avoid a duplicate",
                outcome="unknown",
                detail=detail,
            )
        else:
            row.state = "failed"
            why = (
                f"gave up after {row.attempts} attempts"
                if result.outcome == "temporary_failure"
                else "failed permanently"
            )
            outbox.note(
                session,
                row,
                kind="notification.failed",
                at=now,
                who=who,
                message=f"{to}: {why} ({detail})",
                outcome=result.outcome,
                detail=detail,
            )
        self._fall_back(session, row, now)

    def _fall_back(self, session: Session, row: Notification, now: datetime) -> None:
        if row.purpose in (outbox.TEST, outbox.DIGEST):
            return  # a test checks one method; a digest's pages were already decided
        found = fallback_after(session, row, now)
        if found is None:
            return
        method = outbox.describe_method(found.method)
        outbox.note(
            session,
            found.row,
            kind="notification.fallback",
            at=now,
            message=f"Falling back to {method} for {outbox.recipient(session, row).username} "
            f"now, after {outbox.describe_method(self._method(session, row))} failed",
            failed_notification_id=row.id,
        )

    @staticmethod
    def _method(session: Session, row: Notification) -> ContactMethod | None:
        if row.contact_method_id is None:
            return None
        return session.get(ContactMethod, row.contact_method_id)

    def _kind(self, session: Session, row: Notification) -> str:
        method = self._method(session, row)
        return method.kind if method is not None else "unknown"

    # -- sending ------------------------------------------------------------------------------

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.new_event_loop()
        return self._loop

    async def _send_all(self, tasks: list[SendTask]) -> list[DeliveryResult]:
        return list(await asyncio.gather(*(self._send_one(task) for task in tasks)))

    async def _send_one(self, task: SendTask) -> DeliveryResult:
        limit = max(1.0, self.send_timeout - _DEADLINE_MARGIN_SECONDS)
        try:
            return await asyncio.wait_for(task.channel.send(task.message, task.target), limit)
        except TimeoutError:
            return DeliveryResult.unknown(f"no outcome within {limit:.0f} s")
        except Exception as exc:  # Channel.send maps errors; this is a last resort
            return DeliveryResult.unknown(f"unexpected error: {type(exc).__name__}")

    # -- the thread ---------------------------------------------------------------------------

    def _tick(self) -> float:
        """One round of the background thread: send what is due; how long to rest then."""
        self.last_beat = time.monotonic()
        while not self._background.stopping and self.run_once() > 0:
            pass
        return self._idle_timeout()

    def _idle_timeout(self) -> float:
        with self.factory() as session:
            wake_at = outbox.next_wake_at(session)
        return rest_until(wake_at, self.clock.now(), self.poll_seconds)
