"""Per-key rate limits: a token bucket per key name (requests per minute, bursts up to the same number)."""
from __future__ import annotations

import math
import threading
import time


class RateLimiter:
    """``take(name)`` -> 0 when the request may go ahead, else the seconds until it may (Retry-After)."""

    def __init__(self, per_minute: int, clock=time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # name -> (tokens, last refill time)
        self._lock = threading.Lock()

    def take(self, name: str) -> int:
        if self.per_minute <= 0:
            return 0
        rate = self.per_minute / 60.0
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(name, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - last) * rate)
            if tokens >= 1.0:
                self._buckets[name] = (tokens - 1.0, now)
                return 0
            self._buckets[name] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / rate))
