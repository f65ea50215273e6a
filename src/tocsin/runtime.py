"""Everything one Tocsin node runs, wired together: database, ingest writer, event processor,
job engine. The web app and the tests build one of these; several may share a database."""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from tocsin import crypto
from tocsin.alerts.processor import process_batch, process_pending
from tocsin.clock import Clock, SystemClock
from tocsin.db import models as _all_models  # noqa: F401  (every mapper, before the first flush)
from tocsin.db.engine import create_db_engine, make_session_factory, read_only
from tocsin.engine.maintenance import periodic_jobs
from tocsin.engine.worker import Worker
from tocsin.incidents import jobs as _incident_jobs  # noqa: F401  (registers the job handlers)
from tocsin.ingest.writer import GroupCommitWriter
from tocsin.notify import links as notify_links
from tocsin.notify.channels_config import build_channels
from tocsin.notify.dispatcher import Dispatcher
from tocsin.oncall import jobs as _oncall_jobs  # noqa: F401  (escalation, hand-off notices)
from tocsin.settings import Settings

log = logging.getLogger(__name__)


# Under sustained intake the processor rests this many times as long as each batch took, so
# it uses at most a third of the node's time (one Python process shares one core's worth)...
PROCESSING_YIELD_RATIO = 2.0
# ...but only while it keeps up: once events wait longer than this it runs flat out, since
# a page that leaves late is worse than a sender that waits a little longer for its 202.
PROCESSING_MAX_LAG_SECONDS = 0.5


class EventProcessorThread:
    """Drains the accepted-events inbox; woken by each group commit, polling as a fallback."""

    def __init__(self, factory: sessionmaker[Session], clock: Clock, poll_seconds: float) -> None:
        self._factory = factory
        self._clock = clock
        self._poll = poll_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_intake = 0.0

    def wake(self, *_: Any) -> None:
        self._last_intake = time.monotonic()
        self._wake.set()

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="tocsin-processor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def drain(self) -> int:
        total = 0
        while (n := process_pending(self._factory, self._clock)) > 0:
            total += n
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._poll)
            self._wake.clear()
            try:
                self._drain_politely()
            except Exception:
                log.exception("event processing failed; retrying")
                self._stop.wait(1.0)

    def _drain_politely(self) -> None:
        """Drain the inbox, but while events keep arriving and processing keeps up, take at
        most a share of the node's time: accepting (what senders wait for) comes first.
        Processing runs flat out whenever intake is quiet or events start to wait."""
        while not self._stop.is_set():
            started = time.monotonic()
            batch = process_batch(self._factory, self._clock)
            if batch.count == 0:
                return
            behind = (
                batch.newest_received_at is not None
                and (self._clock.now() - batch.newest_received_at).total_seconds()
                > PROCESSING_MAX_LAG_SECONDS
            )
            if self._last_intake > started:
                took = time.monotonic() - started
                # Even when behind, pause a moment so the ingest writer can take the lock.
                self._stop.wait(0.002 if behind else took * PROCESSING_YIELD_RATIO)


class Runtime:
    def __init__(
        self, settings: Settings, *, clock: Clock | None = None, engine: sa.Engine | None = None
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        crypto.configure(crypto.load_or_create_key(settings.data_dir, settings.secret_key))
        notify_links.configure(
            settings.resolved_base_url, timedelta(minutes=settings.action_link_ttl_minutes)
        )
        if engine is None and settings.resolved_database_url.startswith("sqlite"):
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.engine = engine or create_db_engine(settings.resolved_database_url)
        self.factory = make_session_factory(self.engine)
        # For work that only reads: on SQLite it runs beside the writer instead of queueing.
        self.read_factory = make_session_factory(read_only(self.engine))
        self.processor = EventProcessorThread(self.factory, self.clock, poll_seconds=0.5)
        self.writer = GroupCommitWriter(
            self.engine,
            self.clock,
            batch_max=settings.ingest_batch_max,
            on_committed=self.processor.wake,
        )
        self.worker = Worker(
            self.factory,
            self.clock,
            node=settings.node_name,
            poll_seconds=settings.engine_poll_seconds,
            lease_seconds=settings.engine_lease_seconds,
            batch=settings.engine_batch,
            periodic=periodic_jobs(settings),
        )
        # The notification outbox sender; tests swap its channels and call run_once().
        channels = build_channels(settings, self.clock)
        self.dispatcher = Dispatcher(self.factory, self.clock, settings=settings, channels=channels)
        self._started = False

        @event.listens_for(self.factory, "after_commit")
        def _wake_engine(session: Session) -> None:
            if session.info.pop("tocsin_jobs_added", False):
                self.worker.wake()

    def start(self, *, background: bool = True) -> None:
        """Start the writer always; the processor and the engine threads when ``background``."""
        if self._started:
            return
        self.writer.start()
        if background:
            self.processor.start()
            if self.settings.run_engine:
                self.worker.start()
                self.dispatcher.start()
        self._started = True

    def stop(self) -> None:
        if not self._started:
            return
        self.dispatcher.stop()
        self.worker.stop()
        self.processor.stop()
        self.writer.stop()
        self._started = False

    def close(self) -> None:
        self.stop()
        self.engine.dispose()
