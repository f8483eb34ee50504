"""Token buckets (the in-process fallback and the arithmetic the Redis script repeats)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limit:
    rate_per_s: float
    burst: int


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    retry_after_s: float


class LocalBuckets:
    """Buckets in this process only (embedded mode, or while Redis is down). Bounded in size (LRU)."""

    def __init__(self, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_keys = max_keys
        self.clock = clock
        self._state: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def _level(self, key: str, limit: Limit, now: float) -> float:
        tokens, at = self._state.get(key, (float(limit.burst), now))
        return min(float(limit.burst), tokens + (now - at) * limit.rate_per_s)

    def take(self, checks: list[tuple[str, Limit]]) -> Verdict:
        """Take one token from every bucket, or from none when any is empty (like the Redis script)."""
        now = self.clock()
        levels = [(key, limit, self._level(key, limit, now)) for key, limit in checks]
        retry = 0.0
        for _key, limit, level in levels:
            if level < 1.0:
                retry = max(retry, (1.0 - level) / limit.rate_per_s)
        allowed = retry == 0.0
        for key, _limit, level in levels:
            self._state[key] = (level - 1.0 if allowed else level, now)
            self._state.move_to_end(key)
        while len(self._state) > self.max_keys:
            self._state.popitem(last=False)
        return Verdict(allowed, retry)
