"""Integration keys resolved through a short-lived in-memory cache.

The hot path must not query the database per request: a key is looked up once, then served
from memory for ``ttl_seconds`` (unknown keys too, so a misconfigured sender cannot hammer the
database). A miss runs the query in a worker thread, and concurrent misses for one key share
a single query. Changes to an integration therefore take effect within the TTL, or at once
after ``invalidate()``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from tocsin.clock import Clock
from tocsin.orgs.models import Integration

DEFAULT_TTL_SECONDS = 5.0
MAX_KEY_CHARS = 64  # the width of integrations.key
_MAX_UNKNOWN_ENTRIES = 4096


@dataclass(frozen=True)
class IntegrationInfo:
    id: int
    service_id: int
    type: str
    options: dict[str, Any]  # shared by every request: read, never mutate


def load_integration(factory: sessionmaker[Session], key: str) -> IntegrationInfo | None:
    with factory() as session:
        row = session.execute(
            sa.select(
                Integration.id, Integration.service_id, Integration.type, Integration.options
            ).where(Integration.key == key)
        ).first()
    if row is None:
        return None
    return IntegrationInfo(row.id, row.service_id, row.type, dict(row.options or {}))


class IntegrationCache:
    def __init__(
        self,
        factory: sessionmaker[Session],
        clock: Clock,
        *,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
    ) -> None:
        self._factory = factory
        self._clock = clock
        self._ttl = timedelta(seconds=ttl_seconds)
        self._known: dict[str, tuple[datetime, IntegrationInfo]] = {}
        self._unknown: dict[str, datetime] = {}
        self._inflight: dict[str, asyncio.Future[IntegrationInfo | None]] = {}

    async def get(self, key: str) -> IntegrationInfo | None:
        if not key or len(key) > MAX_KEY_CHARS:
            return None
        now = self._clock.now()
        hit = self._known.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        miss_until = self._unknown.get(key)
        if miss_until is not None and miss_until > now:
            return None
        task = self._inflight.get(key)
        if task is None or task.get_loop() is not asyncio.get_running_loop():
            # One query per key however many requests miss at once; it runs in a worker
            # thread and outlives any single request that gives up waiting for it.
            task = asyncio.ensure_future(asyncio.to_thread(load_integration, self._factory, key))
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._settle(key, done))
        return await asyncio.shield(task)

    def _settle(self, key: str, task: asyncio.Future[IntegrationInfo | None]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled() and task.exception() is None:
            self._remember(key, task.result())

    def _remember(self, key: str, info: IntegrationInfo | None) -> None:
        expires = self._clock.now() + self._ttl
        if info is not None:
            self._known[key] = (expires, info)
            self._unknown.pop(key, None)
            return
        self._known.pop(key, None)
        if len(self._unknown) >= _MAX_UNKNOWN_ENTRIES:
            self._unknown.clear()  # bounded memory against senders of random keys
        self._unknown[key] = expires

    def invalidate(self, key: str | None = None) -> None:
        """Forget one key, or everything: the next request reads the database again."""
        if key is None:
            self._known.clear()
            self._unknown.clear()
        else:
            self._known.pop(key, None)
            self._unknown.pop(key, None)
