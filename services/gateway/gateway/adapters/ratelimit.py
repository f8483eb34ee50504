"""Rate limiting per account and per IP: an atomic token bucket in Redis (Lua), in-process when Redis is absent.

Policy when Redis is configured but down: fail open to the in-process buckets of this instance
(each gateway instance then limits on its own, so the effective limit is at most N times the
configured one), count ``sangkien_gateway_ratelimit_fallback_total``, report ``redis: false`` on
/health, and retry Redis after ``redis_retry_after_s``. Refusing all traffic because a cache is
down would turn a Redis outage into a full outage of the campaign portal.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import redis.asyncio as aioredis
from prometheus_client import Counter
from redis.exceptions import NoScriptError

from gateway.domain.buckets import Limit, LocalBuckets, Verdict

log = logging.getLogger("gateway.ratelimit")

# Checks in one call of the script: it runs atomically, so Redis does nothing else meanwhile (~2 µs a key).
MAX_CHECKS_PER_CALL = 256

# The checks of one round trip in one call. KEYS: the bucket keys of every check, one after another; ARGV: the
# number of checks, each check's number of keys, then rate and burst of every key in KEYS' order. Each check takes
# one token from every one of its buckets or from none, in order (a later check sees an earlier one's take).
# Returns allowed_1, retry_1, allowed_2, retry_2, ...
_TOKEN_BUCKETS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local checks = tonumber(ARGV[1])
local out = {}
local first = 1
for c = 1, checks do
  local count = tonumber(ARGV[1 + c])
  local levels = {}
  local retry = 0
  for i = first, first + count - 1 do
    local rate = tonumber(ARGV[1 + checks + 2 * i - 1])
    local burst = tonumber(ARGV[1 + checks + 2 * i])
    local data = redis.call('HMGET', KEYS[i], 'tokens', 'at')
    local tokens = tonumber(data[1])
    local at = tonumber(data[2])
    if tokens == nil or at == nil then
      tokens = burst
      at = now
    end
    local level = math.min(burst, tokens + math.max(0, now - at) * rate)
    levels[i] = level
    if level < 1 then
      retry = math.max(retry, (1 - level) / rate)
    end
  end
  local allowed = 0
  if retry == 0 then allowed = 1 end
  for i = first, first + count - 1 do
    local rate = tonumber(ARGV[1 + checks + 2 * i - 1])
    local burst = tonumber(ARGV[1 + checks + 2 * i])
    local level = levels[i]
    if allowed == 1 then level = level - 1 end
    redis.call('HSET', KEYS[i], 'tokens', tostring(level), 'at', tostring(now))
    redis.call('PEXPIRE', KEYS[i], math.ceil(burst / rate * 1000) + 1000)
  end
  out[2 * c - 1] = allowed
  out[2 * c] = tostring(retry)
  first = first + count
end
return out
"""


class RateLimiter:
    def __init__(
        self,
        redis: aioredis.Redis | None,
        *,
        prefix: str,
        fallback_counter: Counter,
        retry_after_s: float = 5.0,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.local = LocalBuckets()
        self.fallback_counter = fallback_counter
        self.retry_after_s = retry_after_s
        self._redis_down_until = 0.0
        # EVALSHA, and SCRIPT LOAD once when Redis does not know the script yet (redis-py's Script)
        self._script = redis.register_script(_TOKEN_BUCKETS) if redis is not None else None
        # The checks waiting for the next round trip, and whether one is under way (``_coalesced``).
        self._waiting: list[tuple[list[str], list[float | int], asyncio.Future[Any]]] = []
        self._sender: asyncio.Task[None] | None = None

    @property
    def redis_healthy(self) -> bool | None:
        if self.redis is None:
            return None
        return time.monotonic() >= self._redis_down_until

    async def take(self, checks: list[tuple[str, Limit]]) -> Verdict:
        if self._script is not None and time.monotonic() >= self._redis_down_until:
            keys = [self.prefix + key for key, _ in checks]
            args: list[float | int] = []
            for _, limit in checks:
                args += [limit.rate_per_s, limit.burst]
            try:
                allowed, retry = await self._coalesced(keys, args)
                return Verdict(bool(int(allowed)), float(retry))
            except (aioredis.RedisError, OSError) as exc:
                self._redis_down_until = time.monotonic() + self.retry_after_s
                log.warning("redis unavailable for rate limiting, using in-process buckets", extra={"err": str(exc)})
        if self.redis is not None:
            self.fallback_counter.inc()
        return self.local.take(checks)

    async def _coalesced(self, keys: list[str], args: list[float | int]) -> Any:
        """One check, sent with the others that arrive while a round trip is under way: one EVALSHA of the script
        over all of them per round trip, instead of one round trip per request. Each check stays atomic (the script
        runs as a whole). Measured with bench/gateway.py and bench/pipeline.py (docs/benchmarks.md, Gateway): one
        round trip per request cost the gateway about 50 µs of CPU per request, most of it in the socket calls; one
        EVALSHA per check in a redis-py pipeline still ~40 µs (packing and parsing each command)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append((keys, args, future))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:MAX_CHECKS_PER_CALL], self._waiting[MAX_CHECKS_PER_CALL:]
            await self._send(batch)

    async def _send(self, batch: list[tuple[list[str], list[float | int], asyncio.Future[Any]]]) -> None:
        assert self.redis is not None and self._script is not None
        keys = [key for check_keys, _, _ in batch for key in check_keys]
        args: list[float | int] = [len(batch), *(len(check_keys) for check_keys, _, _ in batch)]
        for _, check_args, _ in batch:
            args += check_args
        try:
            try:
                results = await self.redis.evalsha(self._script.sha, len(keys), *keys, *args)
            except NoScriptError:  # Redis restarted or was flushed: load the script, once
                await self.redis.script_load(_TOKEN_BUCKETS)
                results = await self.redis.evalsha(self._script.sha, len(keys), *keys, *args)
        except BaseException as exc:
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for n, (_, _, future) in enumerate(batch):
            if not future.done():
                future.set_result((results[2 * n], results[2 * n + 1]))
