"""Periodic work as ordinary jobs: one row per time slot, deduplicated by a slot key.

Every node tries to create the next slot's row; the unique key lets the database keep exactly
one, and whichever node claims it runs it. Slots are aligned to the Unix epoch in UTC, so all
nodes agree on them without talking to each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from tocsin.engine.queue import enqueue


@dataclass(frozen=True)
class PeriodicJob:
    kind: str
    interval_seconds: int
    payload: dict[str, Any] = field(default_factory=dict)
    # A failed slot is not worth hours of retries: the next slot comes anyway.
    max_attempts: int = 3

    def next_slot(self, now: datetime) -> datetime:
        """Start of the slot after the one containing ``now``."""
        step = max(1, self.interval_seconds)
        start = int(now.timestamp()) // step * step
        return datetime.fromtimestamp(start + step, UTC)

    def slot_key(self, slot: datetime) -> str:
        return f"{self.kind}:{slot.isoformat()}"


def ensure_slot(session: Session, job: PeriodicJob, slot: datetime, now: datetime) -> bool:
    """Create the row for ``slot`` unless some node already has. True when this call did."""
    return enqueue(
        session,
        kind=job.kind,
        due_at=slot,
        now=now,
        payload=job.payload,
        unique_key=job.slot_key(slot),
        max_attempts=job.max_attempts,
    )
