"""A per-downstream circuit breaker: after N consecutive failures, fail fast for a cool-down, then probe once."""

from __future__ import annotations

import time
from collections.abc import Callable


class CircuitBreaker:
    def __init__(self, failures: int, cooldown_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = max(1, failures)
        self.cooldown_s = cooldown_s
        self.clock = clock
        self.consecutive = 0
        self.opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        if self.clock() - self.opened_at >= self.cooldown_s:
            return "half_open"
        return "open"

    def allow(self) -> bool:
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self._probing:
            self._probing = True  # one trial request; the others still fail fast
            return True
        return False

    def success(self) -> None:
        self.consecutive = 0
        self.opened_at = None
        self._probing = False

    def failure(self) -> None:
        self.consecutive += 1
        self._probing = False
        if self.opened_at is not None or self.consecutive >= self.threshold:
            self.opened_at = self.clock()
