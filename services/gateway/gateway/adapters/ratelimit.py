"""Rate limiting per account and per IP: an atomic token bucket in Redis (Lua), in-process when Redis is absent.

Policy when Redis is configured but down: fail open to the in-process buckets of this instance
(each gateway instance then limits on its own, so the effective limit is at most N times the
configured one), count ``sangkien_gateway_ratelimit_fallback_total``, report ``redis: false`` on
/health, and retry Redis after ``redis_retry_after_s``. Refusing all traffic because a cache is
down would turn a Redis outage into a full outage of the campaign portal.
"""

from __future__ import annotations

import logging
import time

import redis.asyncio as aioredis
from prometheus_client import Counter

from gateway.domain.buckets import Limit, LocalBuckets, Verdict

log = logging.getLogger("gateway.ratelimit")

# KEYS: bucket keys; ARGV: rate_1, burst_1, rate_2, burst_2, ... Takes one token from every bucket or none.
_TOKEN_BUCKET = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local levels = {}
local retry = 0
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local data = redis.call('HMGET', key, 'tokens', 'at')
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
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local level = levels[i]
  if allowed == 1 then level = level - 1 end
  redis.call('HSET', key, 'tokens', tostring(level), 'at', tostring(now))
  redis.call('PEXPIRE', key, math.ceil(burst / rate * 1000) + 1000)
end
return {allowed, tostring(retry)}
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
        # EVALSHA, and EVAL once when Redis does not know the script yet (redis-py's Script)
        self._script = redis.register_script(_TOKEN_BUCKET) if redis is not None else None

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
                allowed, retry = await self._script(keys=keys, args=args)
                return Verdict(bool(int(allowed)), float(retry))
            except (aioredis.RedisError, OSError) as exc:
                self._redis_down_until = time.monotonic() + self.retry_after_s
                log.warning("redis unavailable for rate limiting, using in-process buckets", extra={"err": str(exc)})
        if self.redis is not None:
            self.fallback_counter.inc()
        return self.local.take(checks)
