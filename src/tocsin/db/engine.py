"""Engine and session factory with the pragmas durable ingestion depends on."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import psycopg
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def normalise_url(url: str) -> str:
    """Accept postgresql:// and postgres:// and use the psycopg 3 driver for them."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def is_sqlite(url_or_engine: str | sa.Engine) -> bool:
    if isinstance(url_or_engine, sa.Engine):
        return url_or_engine.dialect.name == "sqlite"
    return make_url(normalise_url(url_or_engine)).get_backend_name() == "sqlite"


READ_ONLY = "tocsin_read_only"
# Waiting longer than this for the in-process write lock falls back to SQLite's own busy
# handling, so a leaked lock can slow a node down but never wedge it.
_WRITE_LOCK_WAIT_SECONDS = 30.0


def _configure_sqlite(engine: sa.Engine) -> None:
    # One in-process lock serialises this process's SQLite writers. SQLite's busy handler
    # sleeps and retries (up to 100 ms a try) when another connection holds the write lock;
    # a threading lock hands over the moment the holder commits.
    write_lock = threading.Lock()

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Python 3.11's sqlite3 module opens transactions on its own; take that over so that
        # BEGIN IMMEDIATE (one writer, no upgrade deadlocks) is what actually runs.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        if conn.get_execution_options().get(READ_ONLY):
            # WAL readers neither wait for nor block the writer.
            conn.exec_driver_sql("BEGIN")
            return
        if write_lock.acquire(timeout=_WRITE_LOCK_WAIT_SECONDS):
            conn.info["tocsin_write_lock"] = True
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            _release(conn.info)
            raise

    def _release(info: dict[Any, Any]) -> None:
        if info.pop("tocsin_write_lock", False):
            write_lock.release()

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _on_end(conn: sa.Connection) -> None:
        _release(conn.info)

    @event.listens_for(engine.pool, "checkin")
    def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
        # A connection returned mid-transaction (an error path) must not keep the lock.
        if record is not None:
            _release(record.info)


def read_only(engine: sa.Engine) -> sa.Engine:
    """The same engine and pool for sessions that only read (no write lock on SQLite)."""
    return engine.execution_options(**{READ_ONLY: True})


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def create_db_engine(url: str, *, pool_size: int = 10) -> sa.Engine:
    url = normalise_url(url)
    if is_sqlite(url):
        engine = sa.create_engine(
            url,
            json_serializer=_json_dumps,
            json_deserializer=orjson.loads,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=pool_size,
            max_overflow=20,
            pool_pre_ping=False,
        )
        _configure_sqlite(engine)
        return engine
    return sa.create_engine(
        url,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        # PostgreSQL's own $n placeholders through psycopg's RawCursor: psycopg then sends
        # statements as they are instead of rewriting %(name)s placeholders client-side, which
        # it caches only for short statements and which cost a third of the processor's time
        # on the multi-row INSERTs of a batch.
        paramstyle="numeric_dollar",
        connect_args={"cursor_factory": psycopg.RawCursor},
        pool_size=pool_size,
        max_overflow=20,
        pool_pre_ping=True,
        pool_recycle=1800,
    )


def make_session_factory(engine: sa.Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commits on success, rolls back on any exception."""
    with factory() as session, session.begin():
        yield session
