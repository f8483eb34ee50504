"""Rate limiting per account and per IP: an atomic token bucket in Redis (Lua), in-process when Redis is absent.

Policy when Redis is configured but down: fail open to the in-process buckets of this instance
(each gateway instance then limits on its own, so the effective limit is at most N times the
configured one), count ``sangkien_gateway_ratelimit_fallback_total``, report ``redis: false`` on
/health, and retry Redis after ``redis_retry_after_s``. Refusing all traffic because a cache is
down would turn a Redis outage into a full outage of the campaign portal.

A key that is checked often (a shared IP, a support account entering a pile of forms) does not cost a round trip
per request: the check that goes to Redis takes a few tokens more than its own, a lease, and the next checks of the
key in this process take from it (LEASE_TTL_S below). Leased tokens are taken from the bucket in Redis, so the
limit still holds over every replica; it can only get stricter: what a lease does not use within its second is
dropped, and a replica holding a lease does not lend it to another (at most an eighth of a bucket's burst is
leased at once, in one replica).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import redis.asyncio as aioredis
from prometheus_client import Counter
from redis.exceptions import NoScriptError

from gateway.domain.buckets import Limit, LocalBuckets, Verdict

log = logging.getLogger("gateway.ratelimit")
_ALLOWED = Verdict(True, 0.0)

# Checks in one call of the script: it runs atomically, so Redis does nothing else meanwhile (~2 µs a key).
MAX_CHECKS_PER_CALL = 256

# Leases (:class:`RateLimiter`): tokens a check takes from Redis beyond its own, kept by this process for the next
# checks of the same key. A lease lives LEASE_TTL_S; what is left of it then is dropped, never given back, so the
# limit only gets stricter. Its size starts at 1 (a key seen now and then costs a round trip per check, exactly as
# without leases), doubles while each lease is used up within LEASE_TARGET_S of being granted, halves after one
# that expired unused, and never passes MAX_LEASE nor an eighth of the bucket's burst. Measured in the whole
# pipeline (bench/pipeline.py --n 3000 (c) at 900/s; docs/benchmarks.md, "pyreqwest and rate-limit leases"): the
# gateway's CPU per single submission 335 µs with a round trip per request (shared between concurrent checks),
# 276–280 µs with leases.
LEASE_TTL_S = 1.0
LEASE_TARGET_S = 0.1
MAX_LEASE = 64
MAX_LEASED_KEYS = 100_000

# The checks of one round trip in one call. KEYS: the bucket keys of every check, one after another; ARGV: the
# number of checks, each check's number of keys, then rate, burst and the tokens wanted (at least 1) of every key
# in KEYS' order. Each check takes from every one of its buckets or from none, in order (a later check sees an
# earlier one's take): one token, and up to the wanted number while the bucket holds them. Returns, per check,
# allowed, retry (seconds, a string), then the tokens taken from each of its buckets.
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
    local rate = tonumber(ARGV[1 + checks + 3 * i - 2])
    local burst = tonumber(ARGV[1 + checks + 3 * i - 1])
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
  out[#out + 1] = allowed
  out[#out + 1] = tostring(retry)
  for i = first, first + count - 1 do
    local rate = tonumber(ARGV[1 + checks + 3 * i - 2])
    local burst = tonumber(ARGV[1 + checks + 3 * i - 1])
    local want = tonumber(ARGV[1 + checks + 3 * i])
    local level = levels[i]
    local taken = 0
    if allowed == 1 then
      taken = math.max(1, math.min(want, math.floor(level)))
      level = level - taken
    end
    out[#out + 1] = taken
    redis.call('HSET', KEYS[i], 'tokens', tostring(level), 'at', tostring(now))
    redis.call('PEXPIRE', KEYS[i], math.ceil(burst / rate * 1000) + 1000)
  end
  first = first + count
end
return out
"""


@dataclass(slots=True)
class _Lease:
    """Tokens of one bucket that this process took ahead of its checks (see LEASE_TTL_S)."""

    tokens: int
    granted_at: float
    size: int  # the tokens the next round trip for this key asks for


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
        self._waiting: list[tuple[list[str], list[float | int], asyncio.Future[tuple[bool, float, list[int]]]]] = []
        self._sender: asyncio.Task[None] | None = None
        self._leases: dict[str, _Lease] = {}

    @property
    def redis_healthy(self) -> bool | None:
        if self.redis is None:
            return None
        return time.monotonic() >= self._redis_down_until

    async def take(self, checks: list[tuple[str, Limit]]) -> Verdict:
        if self._script is not None and time.monotonic() >= self._redis_down_until:
            now = time.monotonic()
            reserved: list[_Lease] = []
            remote: list[tuple[str, Limit]] = []
            for key, limit in checks:
                lease = self._leases.get(key)
                if lease is not None and lease.tokens > 0 and now - lease.granted_at < LEASE_TTL_S:
                    lease.tokens -= 1  # given back below if the rest of the check is refused
                    reserved.append(lease)
                else:
                    remote.append((key, limit))
            if not remote:
                return _ALLOWED
            wants = [self._lease_size(key, limit, now) for key, limit in remote]
            args: list[float | int] = []
            for (_, limit), want in zip(remote, wants, strict=True):
                args += [limit.rate_per_s, limit.burst, want]
            try:
                allowed, retry, taken = await self._coalesced([self.prefix + key for key, _ in remote], args)
            except (aioredis.RedisError, OSError) as exc:
                self._give_back(reserved)
                self._redis_down_until = time.monotonic() + self.retry_after_s
                log.warning("redis unavailable for rate limiting, using in-process buckets", extra={"err": str(exc)})
            else:
                if not allowed:
                    self._give_back(reserved)
                    return Verdict(False, retry)
                self._keep(remote, wants, taken, time.monotonic())
                return _ALLOWED
        if self.redis is not None:
            self.fallback_counter.inc()
        return self.local.take(checks)

    def _lease_size(self, key: str, limit: Limit, now: float) -> int:
        """The tokens to ask for ``key``: see LEASE_TTL_S."""
        lease = self._leases.get(key)
        if lease is None:
            return 1
        cap = max(1, min(MAX_LEASE, limit.burst // 8))
        if lease.tokens <= 0 and now - lease.granted_at < LEASE_TARGET_S:
            return min(cap, lease.size * 2)
        if lease.tokens > 0:  # expired before it was used up
            return max(1, min(cap, lease.size // 2))
        return min(cap, lease.size)

    def _keep(self, remote: list[tuple[str, Limit]], wants: list[int], taken: list[int], now: float) -> None:
        """Keep what Redis gave beyond this check's own token, for the next checks of each key."""
        if len(self._leases) >= MAX_LEASED_KEYS:
            self._leases = {k: v for k, v in self._leases.items() if v.tokens > 0 and now - v.granted_at < LEASE_TTL_S}
            if len(self._leases) >= MAX_LEASED_KEYS:
                self._leases.clear()
        for (key, _), want, got in zip(remote, wants, taken, strict=True):
            lease = self._leases.get(key)
            if lease is None:
                self._leases[key] = _Lease(got - 1, now, want)
                continue
            # two checks of one key may have been on their way together: both grants are kept
            alive = lease.tokens if now - lease.granted_at < LEASE_TTL_S else 0
            lease.tokens, lease.granted_at, lease.size = alive + got - 1, now, want

    @staticmethod
    def _give_back(reserved: list[_Lease]) -> None:
        for lease in reserved:
            lease.tokens += 1

    async def _coalesced(self, keys: list[str], args: list[float | int]) -> tuple[bool, float, list[int]]:
        """One check, sent with the others that arrive while a round trip is under way: one EVALSHA of the script
        over all of them per round trip, instead of one round trip per request. Each check stays atomic (the script
        runs as a whole). Measured with bench/gateway.py and bench/pipeline.py (docs/benchmarks.md, Gateway): one
        round trip per request cost the gateway about 50 µs of CPU per request, most of it in the socket calls; one
        EVALSHA per check in a redis-py pipeline still ~40 µs (packing and parsing each command)."""
        future: asyncio.Future[tuple[bool, float, list[int]]] = asyncio.get_running_loop().create_future()
        self._waiting.append((keys, args, future))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:MAX_CHECKS_PER_CALL], self._waiting[MAX_CHECKS_PER_CALL:]
            await self._send(batch)

    async def _send(
        self, batch: list[tuple[list[str], list[float | int], asyncio.Future[tuple[bool, float, list[int]]]]]
    ) -> None:
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
        at = 0
        for check_keys, _, future in batch:
            allowed, retry = bool(int(results[at])), float(results[at + 1])
            taken = [int(n) for n in results[at + 2 : at + 2 + len(check_keys)]]
            at += 2 + len(check_keys)
            if not future.done():
                future.set_result((allowed, retry, taken))
