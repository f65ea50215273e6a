"""The engine loop: claims due jobs and runs their handlers, exactly once in the database.

Each claimed job runs in its own transaction that re-reads the job row under a lock, checks the
lease token is still this claim's (fencing), runs the handler and marks the job done, so the
handler's writes and the job's completion commit together or not at all. A failure rolls all of
that back and records the error in a second transaction, with a retry after a backoff. See
docs/engine.md for the whole lifecycle.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from tocsin.clock import Clock
from tocsin.db.engine import transaction
from tocsin.engine.claiming import ClaimedJob, claim_due, lock_if_still_ours, next_wake_at
from tocsin.engine.loop import WakeableLoop, rest_until
from tocsin.engine.models import Job
from tocsin.engine.periodic import PeriodicJob, ensure_slot
from tocsin.engine.queue import JOBS_CHANNEL
from tocsin.observability.metrics import JOBS_RUN

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 600.0
MAX_ERROR_CHARS = 4000


@dataclass(frozen=True)
class JobContext:
    session: Session
    job: Job
    clock: Clock


Handler = Callable[[JobContext], None]
HANDLERS: dict[str, Handler] = {}


def handler(kind: str) -> Callable[[Handler], Handler]:
    """Register the function that runs jobs of ``kind``. It must be idempotent."""

    def register(fn: Handler) -> Handler:
        HANDLERS[kind] = fn
        return fn

    return register


class PermanentJobError(Exception):
    """Raised by a handler when retrying cannot help (a malformed payload): fail the job now."""


def backoff_seconds(attempts: int) -> float:
    """2**attempts seconds, capped at ten minutes, with +-10% jitter so retries spread out."""
    base = min(2.0 ** min(attempts, 30), MAX_BACKOFF_SECONDS)
    return base * random.uniform(0.9, 1.1)


class Worker:
    def __init__(
        self,
        factory: sessionmaker[Session],
        clock: Clock,
        *,
        node: str,
        poll_seconds: float = 1.0,
        lease_seconds: float = 30.0,
        batch: int = 32,
        periodic: Sequence[PeriodicJob] = (),
    ) -> None:
        self.factory = factory
        self.clock = clock
        self.node = node
        self.poll_seconds = poll_seconds
        self.lease_seconds = lease_seconds
        self.batch = batch
        self.periodic = tuple(periodic)
        self._background = WakeableLoop(
            factory,
            self._tick,
            name="tocsin-engine",
            channel=JOBS_CHANNEL,
            retry_seconds=poll_seconds,
            # A handler in flight finishes first; its transaction is never cut in half.
            join_seconds=30,
            logger=log,
            failure="job engine iteration failed; retrying",
        )
        self._ensured_slots: dict[str, str] = {}
        self.last_beat: float = 0.0

    # -- lifecycle -------------------------------------------------------------------------

    def wake(self) -> None:
        self._background.wake()

    def start(self) -> None:
        self._background.start()

    def stop(self) -> None:
        self._background.stop()

    @property
    def running(self) -> bool:
        return self._background.running

    @property
    def waiting(self) -> bool:
        """True while the loop sleeps with nothing due (it wakes on a hint or its timeout)."""
        return self._background.resting

    @property
    def listening(self) -> bool:
        """True while the PostgreSQL LISTEN connection is up."""
        return self._background.listening

    # -- one step, used by the loop and directly by tests ------------------------------------

    def run_once(self) -> int:
        """Ensure periodic slots, claim one batch and run it. Returns how many jobs ran
        (whatever their outcome; a job taken over by another node does not count)."""
        self.last_beat = time.monotonic()
        self.ensure_periodic()
        return self._run_claimed(self.claim())

    def claim(self) -> list[ClaimedJob]:
        with transaction(self.factory) as session:
            return claim_due(
                session,
                node=self.node,
                now=self.clock.now(),
                lease_seconds=self.lease_seconds,
                limit=self.batch,
            )

    def execute(self, claimed: ClaimedJob) -> bool:
        """Run one claimed job. False when the claim was fenced off (the job is another's)."""
        try:
            with transaction(self.factory) as session:
                job = lock_if_still_ours(session, claimed)
                if job is None:
                    self._count(claimed.kind, "fenced")
                    log.info("job %s (%s) was taken over; not running it", claimed.id, claimed.kind)
                    return False
                fn = HANDLERS.get(job.kind)
                if fn is None:
                    self._finish(
                        job,
                        "failed",
                        error=f"no handler is registered for job kind {job.kind!r}; the module "
                        "defining it must be imported where the engine runs",
                    )
                    self._count(job.kind, "failed")
                    return True
                fn(JobContext(session, job, self.clock))
                self._finish(job, "done")
            self._count(claimed.kind, "done")
            return True
        except Exception as exc:
            log.exception("job %s (%s) failed", claimed.id, claimed.kind)
            return self._record_failure(claimed, exc)

    def ensure_periodic(self) -> None:
        """Make sure the next slot of each periodic job has its row (any node may try)."""
        now = self.clock.now()
        wanted = [(p, p.next_slot(now)) for p in self.periodic]
        missing = [(p, s) for p, s in wanted if self._ensured_slots.get(p.kind) != p.slot_key(s)]
        if not missing:
            return
        with transaction(self.factory) as session:
            for job, slot in missing:
                ensure_slot(session, job, slot, now)
        for job, slot in missing:
            self._ensured_slots[job.kind] = job.slot_key(slot)

    # -- internals ------------------------------------------------------------------------

    def _run_claimed(self, claimed: list[ClaimedJob]) -> int:
        ran = 0
        for job in claimed:
            if self.execute(job):
                ran += 1
        return ran

    def _finish(self, job: Job, state: str, *, error: str | None = None) -> None:
        job.state = state
        job.finished_at = self.clock.now()
        job.lease_expires_at = None
        if error is not None:
            job.last_error = error[:MAX_ERROR_CHARS]

    def _record_failure(self, claimed: ClaimedJob, exc: Exception) -> bool:
        error = f"{type(exc).__name__}: {exc}"
        with transaction(self.factory) as session:
            job = lock_if_still_ours(session, claimed)
            if job is None:
                self._count(claimed.kind, "fenced")
                return False
            if isinstance(exc, PermanentJobError) or job.attempts >= job.max_attempts:
                self._finish(job, "failed", error=error)
                self._count(job.kind, "failed")
                log.error(
                    "job %s (%s) failed for good after %d attempts", job.id, job.kind, job.attempts
                )
                return True
            job.state = "pending"
            job.due_at = self.clock.now() + timedelta(seconds=backoff_seconds(job.attempts))
            job.last_error = error[:MAX_ERROR_CHARS]
            job.lease_owner = None
            job.lease_token = None
            job.lease_expires_at = None
        self._count(claimed.kind, "retry")
        return True

    @staticmethod
    def _count(kind: str, outcome: str) -> None:
        JOBS_RUN.labels(kind=kind, outcome=outcome).inc()

    def _tick(self) -> float:
        """One round of the background thread: run what is due; how long to rest then."""
        self.last_beat = time.monotonic()
        self._drain()
        return self._idle_timeout()

    def _drain(self) -> None:
        """Claim and run batches until nothing is due."""
        while not self._background.stopping:
            self.last_beat = time.monotonic()
            self.ensure_periodic()
            claimed = self.claim()
            if not claimed:
                return
            self._run_claimed(claimed)

    def _idle_timeout(self) -> float:
        with self.factory() as session:
            wake_at = next_wake_at(session)
        return rest_until(wake_at, self.clock.now(), self.poll_seconds)
