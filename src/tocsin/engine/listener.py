"""PostgreSQL LISTEN on the jobs channel: wakes this node's worker when any node adds a job.

Only a hint. Notifications are lost while the connection is down, so the worker keeps polling
regardless, and every (re)connect wakes it once to pick up whatever was missed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
import sqlalchemy as sa
from psycopg import sql

from tocsin.engine.queue import JOBS_CHANNEL

log = logging.getLogger(__name__)

# How often the listening loop looks at its stop flag.
_STOP_CHECK_SECONDS = 0.5
_MAX_RECONNECT_DELAY = 30.0
# Shown in pg_stat_activity, so operators can tell this connection from the pool's.
APPLICATION_NAME = "tocsin-job-listener"


def conninfo_for(engine: sa.Engine) -> str:
    """A libpq connection string from the SQLAlchemy URL (which names the driver)."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


class JobNotificationListener:
    def __init__(
        self, conninfo: str, on_notify: Callable[[], None], *, channel: str = JOBS_CHANNEL
    ) -> None:
        self._conninfo = conninfo
        self._on_notify = on_notify
        self._channel = channel
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.listening = threading.Event()

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="tocsin-job-listener", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.listening.clear()

    def _run(self) -> None:
        delay = 0.5
        while not self._stop.is_set():
            try:
                self._listen()
            except Exception as exc:
                # The connection string holds the password: log the error type only.
                log.warning(
                    "job listener lost its connection (%s); reconnecting", type(exc).__name__
                )
            if self.listening.is_set():
                delay = 0.5  # it had worked: start the back-off afresh
            self.listening.clear()
            if self._stop.wait(delay):
                return
            delay = min(delay * 2, _MAX_RECONNECT_DELAY)

    def _listen(self) -> None:
        with psycopg.connect(
            self._conninfo, autocommit=True, connect_timeout=10, application_name=APPLICATION_NAME
        ) as conn:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
            self.listening.set()
            self._on_notify()
            while not self._stop.is_set():
                for _ in conn.notifies(timeout=_STOP_CHECK_SECONDS):
                    self._on_notify()
