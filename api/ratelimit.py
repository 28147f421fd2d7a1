"""Per-client request limits: a token bucket per (client, class of endpoint), in process memory.

Each api process limits on its own; behind a load balancer of N processes a client gets up to N times
the rate, which is fine for what this protects against (one runaway script, not a distributed attack).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(
        self, rate_per_s: float, burst: float, *, clock: Callable[[], float] = time.monotonic, max_clients: int = 50_000
    ) -> None:
        self._rate = rate_per_s
        self._burst = burst
        self._clock = clock
        self._max_clients = max_clients
        self._buckets: dict[str, _Bucket] = {}

    def allow(self, client: str) -> float:
        """0 when the request may go ahead, else how many seconds until it could."""
        now = self._clock()
        bucket = self._buckets.get(client)
        if bucket is None:
            if len(self._buckets) >= self._max_clients:
                self._forget_full(now)
            bucket = self._buckets[client] = _Bucket(self._burst, now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self._rate

    def _forget_full(self, now: float) -> None:
        """Drop clients whose bucket has refilled: they would start full anyway."""
        refill_s = self._burst / self._rate
        self._buckets = {k: b for k, b in self._buckets.items() if now - b.updated < refill_s}
        if len(self._buckets) >= self._max_clients:
            self._buckets.clear()
