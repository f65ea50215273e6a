"""Group commit: many accepted requests, one durable transaction.

Request handlers hand their validated events to ``submit`` and wait. One writer thread drains
everything that has queued up, inserts it in a single transaction, commits (SQLite with
synchronous=FULL, PostgreSQL with its WAL flush) and only then releases the waiting handlers,
so a 2xx always means the event is on disk. Throughput is bound by commits, not rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from tocsin.alerts.models import InboundEvent
from tocsin.clock import Clock

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AcceptedEvent:
    integration_id: int
    service_id: int
    action: str
    dedup_key: str | None
    payload: dict[str, Any]


class WriterStopped(RuntimeError):
    """The writer is shut down; the request must be answered 503 so the sender retries."""


@dataclass
class _Batch:
    events: list[AcceptedEvent]
    # Exactly one of: a thread's future, or an event loop's future. Loop waiters are woken
    # with one call_soon_threadsafe per loop per commit, not one per request.
    done: Future[None] | None = None
    waiter: asyncio.Future[None] | None = None


def _settle(batches: list[_Batch], failure: BaseException | None) -> None:
    """Release the waiting callers: with the failure, or as committed."""
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for batch in batches:
        if batch.done is not None:
            if failure is None:
                batch.done.set_result(None)
            else:
                batch.done.set_exception(failure)
        elif batch.waiter is not None:
            by_loop.setdefault(batch.waiter.get_loop(), []).append(batch.waiter)
    for loop, waiters in by_loop.items():
        # A closed loop raises RuntimeError: nobody is waiting there any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_wake, waiters, failure)


def _wake(waiters: list[asyncio.Future[None]], failure: BaseException | None) -> None:
    for waiter in waiters:
        if waiter.done():  # the request was cancelled; its events are stored all the same
            continue
        if failure is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(failure)


class GroupCommitWriter:
    def __init__(
        self,
        engine: sa.Engine,
        clock: Clock,
        *,
        batch_max: int = 512,
        on_committed: Callable[[int], None] | None = None,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._batch_max = batch_max
        self._on_committed = on_committed
        self._queue: queue.Queue[_Batch | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._stopping = False

    def start(self) -> None:
        if self._thread is None:
            self._stopping = False
            self._thread = threading.Thread(
                target=self._run, name="tocsin-ingest-writer", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._stopping = True
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._thread = None
            self._fail_leftovers()

    def _fail_leftovers(self) -> None:
        """Requests that raced with stop() get an answer (503) instead of waiting forever."""
        while True:
            try:
                batch = self._queue.get_nowait()
            except queue.Empty:
                return
            if batch is not None:
                _settle([batch], WriterStopped("the ingest writer stopped"))

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def submit_nowait(self, events: list[AcceptedEvent]) -> Future[None]:
        if self._stopping or not self.running:
            raise WriterStopped("the ingest writer is not running")
        done: Future[None] = Future()
        # Running futures cannot be cancelled: a handler that goes away (client disconnect,
        # shutdown) must not make the writer's set_result fail after the commit.
        done.set_running_or_notify_cancel()
        self._queue.put(_Batch(events, done=done))
        return done

    async def submit(self, events: list[AcceptedEvent]) -> None:
        """Returns once the events are committed; raises if the commit failed."""
        if self._stopping or not self.running:
            raise WriterStopped("the ingest writer is not running")
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put(_Batch(events, waiter=waiter))
        await waiter

    def submit_sync(self, events: list[AcceptedEvent], timeout: float = 30) -> None:
        self.submit_nowait(events).result(timeout)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batches = [first]
            count = len(first.events)
            while count < self._batch_max:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batches.append(nxt)
                count += len(nxt.events)
            self._commit(batches)

    def _commit(self, batches: list[_Batch]) -> None:
        failure = self._insert(batches)
        if failure is not None and len(batches) > 1 and not _is_connection_failure(failure):
            # One bad request must not fail the others it was grouped with: retry each alone.
            for batch in batches:
                _settle([batch], self._insert([batch]))
            return
        _settle(batches, failure)

    def _insert(self, batches: list[_Batch]) -> Exception | None:
        """Insert and commit in one transaction. Returns the failure, if any."""
        now = self._clock.now()
        rows = [
            {
                "received_at": now,
                "integration_id": e.integration_id,
                "service_id": e.service_id,
                "action": e.action,
                "dedup_key": e.dedup_key,
                "payload": e.payload,
                "status": "pending",
            }
            for b in batches
            for e in b.events
        ]
        try:
            if rows:
                with self._engine.begin() as conn:
                    conn.execute(sa.insert(InboundEvent), rows)
        except Exception as exc:
            log.exception("group commit of %d events failed", len(rows))
            return exc
        if self._on_committed is not None:
            self._on_committed(len(rows))
        return None


def _is_connection_failure(exc: Exception) -> bool:
    """The database is unreachable: retrying each request alone would only fail slower."""
    return isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError) or bool(
        getattr(exc, "connection_invalidated", False)
    )
