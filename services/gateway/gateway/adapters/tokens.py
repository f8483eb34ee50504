"""Token verification with a small cache: a deployment sees the same bearer token on every request of a
session, and verifying its signature each time was the largest CPU cost of the gateway (bench/gateway.py).

A cached principal is used only until the token's own ``exp``; the cache is bounded (LRU).
"""

from __future__ import annotations

import time
from collections import OrderedDict

from shared.auth import Principal, TokenVerifier


class CachingVerifier:
    def __init__(self, verifier: TokenVerifier, max_entries: int = 10_000) -> None:
        self.verifier = verifier
        self.max_entries = max_entries
        self._cache: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    async def verify(self, token: str) -> Principal:
        hit = self._cache.get(token)
        if hit is not None and time.time() < hit[1]:
            self._cache.move_to_end(token)
            return hit[0]
        principal = await self.verifier.verify(token)  # raises AuthError (expired, forged...)
        exp = principal.claims.get("exp")
        if isinstance(exp, int | float):
            self._cache[token] = (principal, float(exp))
            if len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
        return principal
