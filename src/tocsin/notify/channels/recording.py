"""An in-memory channel for tests of code that sends pages (the outbox, escalations).

It records every attempt and answers `sent` unless scripted otherwise: queue results or
exceptions for the next attempts, or make one address fail every time. It goes through the same
`Channel.send` path as the real channels, so a scripted exception comes back as `unknown`
exactly as a real channel's bug would. Not registered: tests hand it to the code under test.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from tocsin.notify.channels.base import (
    TARGET_KINDS,
    Channel,
    DeliveryResult,
    Message,
    Outcome,
    Target,
)


@dataclass(frozen=True)
class Attempt:
    message: Message
    target: Target
    result: DeliveryResult


class RecordingChannel(Channel):
    kind: ClassVar[str] = "recording"

    def __init__(self, kinds: Iterable[str] = TARGET_KINDS) -> None:
        self._kinds = frozenset(kinds)
        self._lock = threading.Lock()
        self._script: deque[DeliveryResult | BaseException] = deque()
        self._failing: dict[str, DeliveryResult] = {}
        self.attempts: list[Attempt] = []

    def serves(self, kind: str) -> bool:
        return kind in self._kinds

    def validate_target(self, target: Target) -> None:
        if not target.address.strip():
            raise ValueError("address must not be empty")

    # Scripting -----------------------------------------------------------------------------

    def script(self, *results: DeliveryResult | BaseException) -> None:
        """Answer the next attempts with these results (or raise these exceptions), in order."""
        with self._lock:
            self._script.extend(results)

    def fail_next(
        self,
        outcome: Outcome = "temporary_failure",
        *,
        times: int = 1,
        detail: str = "scripted failure",
        retry_after: float | None = None,
    ) -> None:
        result = DeliveryResult(outcome, detail, retry_after=retry_after)
        self.script(*([result] * times))

    def fail_address(
        self, address: str, outcome: Outcome = "permanent_failure", detail: str = "scripted"
    ) -> None:
        """Every attempt to this address fails the same way until `heal_address`."""
        with self._lock:
            self._failing[address] = DeliveryResult(outcome, detail)

    def heal_address(self, address: str) -> None:
        with self._lock:
            self._failing.pop(address, None)

    # Inspection ----------------------------------------------------------------------------

    @property
    def sent(self) -> list[Attempt]:
        """Successful attempts only."""
        with self._lock:
            return [a for a in self.attempts if a.result.ok]

    def delivered_once(self) -> list[tuple[str, str]]:
        """(idempotency key, address) pairs that reached someone, as a deduplicating provider
        would show them: a retried page that was already sent does not count twice."""
        seen: list[tuple[str, str]] = []
        for attempt in self.sent:
            pair = (attempt.message.idempotency_key, attempt.target.address)
            if pair not in seen:
                seen.append(pair)
        return seen

    def attempts_for(self, idempotency_key: str) -> list[Attempt]:
        with self._lock:
            return [a for a in self.attempts if a.message.idempotency_key == idempotency_key]

    # Delivery ------------------------------------------------------------------------------

    async def deliver(self, message: Message, target: Target) -> DeliveryResult:
        with self._lock:
            scripted = self._script.popleft() if self._script else None
            failing = self._failing.get(target.address)
        if isinstance(scripted, BaseException):
            with self._lock:
                self.attempts.append(
                    Attempt(message, target, DeliveryResult.unknown("scripted exception"))
                )
            raise scripted
        result = (
            scripted
            or failing
            or DeliveryResult.sent(
                f"recorded for {target.display_address()}",
                provider_message_id=f"recording-{len(self.attempts) + 1}",
            )
        )
        with self._lock:
            self.attempts.append(Attempt(message, target, result))
        return result
