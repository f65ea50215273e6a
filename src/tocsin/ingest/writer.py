"""Group commit: many accepted requests, one durable transaction.

Request handlers hand their validated events to ``submit`` and wait. One writer thread drains
everything that has queued up, inserts it in a single transaction, commits (SQLite with
synchronous=FULL, PostgreSQL with its WAL flush) and only then releases the waiting handlers,
so a 2xx always means the event is on disk. Throughput is bound by commits, not rows.
"""

from __future__ import annotations

import asyncio
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
    done: Future[None]


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

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def submit_nowait(self, events: list[AcceptedEvent]) -> Future[None]:
        if self._stopping or not self.running:
            raise WriterStopped("the ingest writer is not running")
        done: Future[None] = Future()
        self._queue.put(_Batch(events, done))
        return done

    async def submit(self, events: list[AcceptedEvent]) -> None:
        """Returns once the events are committed; raises if the commit failed."""
        await asyncio.wrap_future(self.submit_nowait(events))

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
            for b in batches:
                b.done.set_exception(exc)
            return
        for b in batches:
            b.done.set_result(None)
        if self._on_committed is not None:
            self._on_committed(len(rows))
