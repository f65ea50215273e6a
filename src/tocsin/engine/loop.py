"""A background thread that works in rounds and rests between them until woken: the engine
worker and the notification dispatcher each run one per node.

A round does whatever is due and says how long to rest. ``wake()`` cuts the rest short (after a
local commit added work); on PostgreSQL a LISTEN connection on the given channel wakes it when
any node adds work. Hints can be lost, so the rest is always bounded: the round's answer is the
poll fallback. A round that fails is logged and tried again after ``retry_seconds``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from tocsin.engine.listener import JobNotificationListener, conninfo_for

# How soon to look again for work that is due but was not claimed in the last round.
RECHECK_SECONDS = 0.05


def rest_until(wake_at: datetime | None, now: datetime, poll_seconds: float) -> float:
    """How long a round may rest before ``wake_at``, the earliest moment work falls due.

    Work already due yet unclaimed fell due after the round's last claim, or another node
    holds it right now: look again shortly, since waiting a whole poll interval would make a
    timer or a page up to that much late."""
    if wake_at is None:
        return poll_seconds
    until = (wake_at - now).total_seconds()
    if until <= 0:
        return min(poll_seconds, RECHECK_SECONDS)
    return max(0.01, min(poll_seconds, until))


class WakeableLoop:
    def __init__(
        self,
        factory: sessionmaker[Session],
        work: Callable[[], float],
        *,
        name: str,
        channel: str,
        retry_seconds: float,
        join_seconds: float,
        logger: logging.Logger,
        failure: str,
    ) -> None:
        """``work``: one round, returning the seconds to rest; ``failure``: what ``logger``
        says when a round raises; ``join_seconds``: how long ``stop()`` waits for a round in
        flight."""
        self._factory = factory
        self._work = work
        self._name = name
        self._channel = channel
        self._retry_seconds = retry_seconds
        self._join_seconds = join_seconds
        self._log = logger
        self._failure = failure
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._resting = threading.Event()
        self._thread: threading.Thread | None = None
        self._listener: JobNotificationListener | None = None

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        if self.running:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()
        bind = self._factory.kw.get("bind")
        if bind is not None and bind.dialect.name == "postgresql":
            self._listener = JobNotificationListener(
                conninfo_for(bind), self.wake, channel=self._channel
            )
            self._listener.start()

    def stop(self) -> None:
        """Stop listening, let the round in flight finish, and end the thread."""
        self._stopping.set()
        self._wake.set()
        if self._listener is not None:
            self._listener.stop()
            self._listener = None
        if self._thread is not None:
            self._thread.join(timeout=self._join_seconds)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def stopping(self) -> bool:
        """True once stop() was called: a long round should end early."""
        return self._stopping.is_set()

    @property
    def resting(self) -> bool:
        """True while the thread rests between rounds."""
        return self._resting.is_set()

    @property
    def listening(self) -> bool:
        """True while the PostgreSQL LISTEN connection is up."""
        return self._listener is not None and self._listener.listening.is_set()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                rest = self._work()
            except Exception:
                self._log.exception(self._failure)
                rest = self._retry_seconds
            if self._stopping.is_set():
                break
            self._resting.set()
            self._wake.wait(rest)
            self._resting.clear()
