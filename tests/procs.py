"""Real Tocsin server processes on loopback, for the system tests and the benchmarks.

A database is created and seeded the way an operator's would be (migrated, one service with a
PagerDuty and an Alertmanager integration); servers are started with uvicorn as in production
and are always stopped again, even when a test fails half way.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from tests.services import PG_URL, require_service
from tocsin.db import migrate
from tocsin.db.engine import create_db_engine, normalise_url
from tocsin.orgs.models import Integration, Service, Team

REPO_ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 60.0
DB_KINDS = ("sqlite", "postgresql")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_until(
    condition: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.05
) -> float:
    """Poll ``condition`` until it holds; returns the seconds it took. Raises on the deadline."""
    start = time.monotonic()
    deadline = start + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
    return time.monotonic() - start


# --- databases ---------------------------------------------------------------------------


def postgres_available() -> bool:
    try:
        eng = create_db_engine(PG_URL, pool_size=1)
        with eng.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        eng.dispose()
        return True
    except Exception:
        return False


@dataclass
class SeededDatabase:
    """A migrated database holding one service fed by a PagerDuty and an Alertmanager key."""

    kind: str
    url: str
    service_id: int
    pd_key: str
    am_key: str
    drop: Callable[[], None] = field(default=lambda: None, repr=False)

    def engine(self) -> sa.Engine:
        return create_db_engine(self.url, pool_size=2)


def create_database(kind: str, workdir: Path) -> SeededDatabase:
    """A fresh SQLite file in ``workdir``, or a fresh PostgreSQL database next to ``test``."""
    drop: Callable[[], None] = lambda: None  # noqa: E731
    if kind == "sqlite":
        url = f"sqlite:///{workdir / 'tocsin.db'}"
    elif kind == "postgresql":
        url, drop = _create_pg_database()
    else:
        raise ValueError(f"unknown database kind {kind!r}")
    try:
        eng = create_db_engine(url, pool_size=1)
        try:
            migrate.upgrade(eng)
            service_id, pd_key, am_key = seed(eng)
        finally:
            eng.dispose()
    except BaseException:
        drop()
        raise
    return SeededDatabase(kind, url, service_id, pd_key, am_key, drop)


def _create_pg_database() -> tuple[str, Callable[[], None]]:
    name = f"tocsin_sys_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(normalise_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(normalise_url(PG_URL)).set(database=name)

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url.render_as_string(hide_password=False), drop


def seed(engine: sa.Engine) -> tuple[int, str, str]:
    """One team and service with a PagerDuty and an Alertmanager integration (random keys)."""
    now = datetime.now(UTC)
    pd_key, am_key = secrets.token_hex(16), secrets.token_hex(16)
    with Session(engine) as s, s.begin():
        team = Team(slug="platform", name="Platform", created_at=now)
        s.add(team)
        s.flush()
        service = Service(
            slug="api",
            name="API",
            team_id=team.id,
            urgency="high",
            grouping={"type": "none"},
            created_at=now,
        )
        s.add(service)
        s.flush()
        for name, kind, key in [("events", "pagerduty", pd_key), ("am", "alertmanager", am_key)]:
            s.add(
                Integration(
                    service_id=service.id, name=name, type=kind, key=key, options={}, created_at=now
                )
            )
        return service.id, pd_key, am_key


def scalar(engine: sa.Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def pending_events(engine: sa.Engine) -> int:
    return int(scalar(engine, "SELECT count(*) FROM inbound_events WHERE status = 'pending'"))


# --- server processes --------------------------------------------------------------------


class ServerProcess:
    """One ``uvicorn tocsin.api.asgi:app_from_env`` process on a free loopback port."""

    def __init__(self, db: SeededDatabase, workdir: Path, name: str, **env: str) -> None:
        self.db = db
        self.name = name
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.data_dir = workdir / name
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / f"{name}.log"
        self.extra_env = env
        # An admin token for the REST API (the bootstrap token this node starts with).
        self.token = env.get("TOCSIN_BOOTSTRAP_TOKEN") or secrets.token_urlsafe(24)
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServerProcess:
        if self.alive:
            raise RuntimeError(f"{self.name} is already running")
        env = {
            **os.environ,
            "TOCSIN_DATABASE_URL": self.db.url,
            "TOCSIN_DATA_DIR": str(self.data_dir),
            "TOCSIN_BOOTSTRAP_TOKEN": self.token,
            "TOCSIN_INGEST_RATE_PER_SECOND": "0",
            "TOCSIN_LOG_LEVEL": "WARNING",
            **self.extra_env,
        }
        argv = [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "tocsin.api.asgi:app_from_env",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--no-access-log",
            "--loop",
            "uvloop",
            "--http",
            "httptools",
        ]
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                argv, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        return self

    @property
    def pid(self) -> int:
        assert self._proc is not None, "not started"
        return self._proc.pid

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> ServerProcess:
        """Until GET /readyz answers 200; fails early, with the log, if the process dies."""
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as client:
            while True:
                if not self.alive:
                    raise RuntimeError(f"{self.name} exited during start-up:\n{self.log_tail()}")
                try:
                    if client.get(f"{self.base_url}/readyz").status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"{self.name} not ready in {timeout:.0f}s:\n{self.log_tail()}"
                    )
                time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flushing, like a power cut for the process."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGKILL)
        if self._proc is not None:
            self._proc.wait(timeout=30)

    def terminate(self, timeout: float = 15.0) -> int | None:
        """SIGTERM and a graceful shutdown; SIGKILL if it does not exit in time."""
        if self._proc is None:
            return None
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self._proc.returncode

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


class ServerPool:
    """Starts servers against databases and stops every one of them in ``close``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._servers: list[ServerProcess] = []
        self._databases: list[SeededDatabase] = []

    def database(self, kind: str) -> SeededDatabase:
        workdir = self.workdir / f"db{len(self._databases)}"
        workdir.mkdir(parents=True, exist_ok=True)
        db = create_database(kind, workdir)
        self._databases.append(db)
        return db

    def start(self, db: SeededDatabase, *, ready: bool = True, **env: str) -> ServerProcess:
        server = ServerProcess(db, self.workdir, f"node{len(self._servers)}", **env)
        self._servers.append(server)
        server.start()
        return server.wait_ready() if ready else server

    def close(self) -> None:
        for server in self._servers:
            try:
                server.terminate(timeout=10)
            except Exception:
                server.kill()
        for db in self._databases:
            db.drop()


def require_database(kind: str) -> None:
    if kind == "postgresql":
        require_service("postgresql", postgres_available(), f"cannot connect to {PG_URL}")


@pytest.fixture
def servers(request: pytest.FixtureRequest, tmp_path: Path) -> ServerPool:
    """Server processes and databases that are torn down however the test ends."""
    pool = ServerPool(tmp_path)
    request.addfinalizer(pool.close)
    return pool


# --- events ------------------------------------------------------------------------------


def pd_trigger(routing_key: str, dedup_key: str, **payload: Any) -> dict[str, Any]:
    """A PagerDuty Events API v2 trigger, as any PagerDuty client library sends it."""
    body = {"summary": f"CPU high on {dedup_key}", "source": "web-1", "severity": "critical"}
    body.update(payload)
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "payload": body,
    }


@dataclass(frozen=True)
class Send:
    url: str
    body: dict[str, Any]
    key: str


@dataclass
class SendReport:
    accepted: list[str] = field(default_factory=list)
    rejected: list[tuple[str, int]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    not_sent: int = 0


def fire(
    sends: Sequence[Send],
    *,
    threads: int = 8,
    accepted_status: int = 202,
    stop: threading.Event | None = None,
    on_accept: Callable[[int], None] | None = None,
) -> SendReport:
    """Send every request from ``threads`` keep-alive connections at once.

    A key counts as accepted only when the server answered ``accepted_status``; a connection
    error (e.g. the server was killed) goes to ``failed`` and that thread carries on, so every
    request is attempted once unless ``stop`` is set. ``on_accept`` sees the running total.
    """
    report = SendReport()
    lock = threading.Lock()
    it: Iterator[Send] = iter(sends)

    def worker() -> None:
        with httpx.Client(timeout=30.0) as client:
            while True:
                with lock:
                    if stop is not None and stop.is_set():
                        return
                    item = next(it, None)
                if item is None:
                    return
                try:
                    status = client.post(item.url, json=item.body).status_code
                except httpx.HTTPError:
                    with lock:
                        report.failed.append(item.key)
                    continue
                with lock:
                    if status == accepted_status:
                        report.accepted.append(item.key)
                        total = len(report.accepted)
                    else:
                        report.rejected.append((item.key, status))
                        total = -1
                if on_accept is not None and total >= 0:
                    on_accept(total)

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=300)
    report.not_sent = sum(1 for _ in it)
    return report
