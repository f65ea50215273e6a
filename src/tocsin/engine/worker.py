"""The engine loop: claims due jobs and runs their handlers. (Interface; see engine docs.)"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from tocsin.clock import Clock
from tocsin.engine.models import Job


@dataclass(frozen=True)
class JobContext:
    session: Session
    job: Job
    clock: Clock


Handler = Callable[[JobContext], None]
HANDLERS: dict[str, Handler] = {}


def handler(kind: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[kind] = fn
        return fn

    return register


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
    ) -> None:
        self.factory = factory
        self.clock = clock
        self.node = node
        self.poll_seconds = poll_seconds
        self.lease_seconds = lease_seconds
        self.batch = batch
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_beat: float = 0.0

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    @property
    def running(self) -> bool:
        return True

    def run_once(self) -> int:
        return 0
