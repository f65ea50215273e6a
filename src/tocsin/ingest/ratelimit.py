"""Per-integration token buckets: ``rate`` events a second sustained, ``burst`` at once.

Buckets live in this node's memory, so in a cluster each node allows the rate on its own.
Time comes from the injectable clock, so refills are tested without sleeping.
"""

from __future__ import annotations

import math

from tocsin.clock import Clock


class TokenBuckets:
    def __init__(self, clock: Clock, *, rate_per_second: float, burst: int) -> None:
        self._clock = clock
        self.rate = rate_per_second
        self.burst = burst
        # integration id -> (tokens, last refill as a POSIX timestamp)
        self._buckets: dict[int, tuple[float, float]] = {}

    @property
    def enabled(self) -> bool:
        return self.rate > 0 and self.burst > 0

    def take(self, bucket: int, cost: int = 1) -> float:
        """Spend ``cost`` tokens. Returns 0 when allowed, else the seconds until it would be.

        A request costing more than the whole burst (a large Alertmanager batch) is charged
        the burst, so it passes once the bucket is full instead of never.
        """
        if not self.enabled:
            return 0.0
        cost = min(cost, self.burst)
        now = self._clock.now().timestamp()
        tokens, last = self._buckets.get(bucket, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + max(0.0, now - last) * self.rate)
        if tokens >= cost:
            self._buckets[bucket] = (tokens - cost, now)
            return 0.0
        self._buckets[bucket] = (tokens, now)
        return (cost - tokens) / self.rate


def retry_after_header(wait_seconds: float) -> str:
    """Retry-After takes whole seconds; never tell a sender to retry at once."""
    return str(max(1, math.ceil(wait_seconds)))
