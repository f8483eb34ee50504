"""The token bucket in the real Redis: shared by every gateway instance, atomic under concurrency."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from shared.testing import REDIS_URL, auth, unique

pytestmark = pytest.mark.integration


async def test_two_gateway_instances_share_one_bucket_in_redis(gateway) -> None:
    prefix = unique("sk:test:rl:") + ":"
    settings = {
        "redis_url": REDIS_URL,
        "rate_limit_key_prefix": prefix,
        "rate_account_per_s": 0.2,
        "rate_account_burst": 5,
        "rate_ip_burst": 1000,
    }
    a = auth("operator", "VN", sub="shared-acct")
    try:
        async with gateway(**settings) as one, gateway(**settings) as two:
            # 12 concurrent requests over two instances: exactly the burst (5) passes, atomically.
            calls = [c.get("/api/v1/units/HN", headers=a) for c in (one.client, two.client) for _ in range(6)]
            statuses = sorted(r.status_code for r in await asyncio.gather(*calls))
            assert statuses == [200] * 5 + [429] * 7
            r = await two.client.get("/api/v1/units/HN", headers=a)
            assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 5
            assert (
                'sangkien_gateway_ratelimit_fallback_total{service="gateway"} 0.0'
                in (await one.client.get("/metrics")).text
            )
            health = (await one.client.get("/health")).json()
            assert health["checks"]["redis"] is True
    finally:
        client = aioredis.from_url(REDIS_URL)
        keys = [k async for k in client.scan_iter(match=prefix + "*")]
        assert keys  # the buckets lived in Redis
        await client.delete(*keys)
        await client.aclose()


async def test_checks_arriving_together_share_round_trips_and_survive_a_script_flush() -> None:
    """Concurrent checks go to Redis together (one call of the script per round trip, fewer than checks), each still
    atomic: of 40 at once on a bucket of 7, exactly 7 pass. After Redis forgets the script (a restart, SCRIPT FLUSH)
    it is loaded again and the checks go on being answered by Redis, not by the in-process fallback."""
    from gateway.adapters.ratelimit import RateLimiter
    from gateway.domain.buckets import Limit
    from prometheus_client import CollectorRegistry, Counter

    prefix = unique("sk:test:rlc:") + ":"
    client = aioredis.from_url(REDIS_URL)
    fallback = Counter("fallback", "fallbacks", registry=CollectorRegistry())
    limiter = RateLimiter(client, prefix=prefix, fallback_counter=fallback)
    sent = _counting(limiter)
    try:
        limit = Limit(rate_per_s=0.01, burst=7)
        verdicts = await asyncio.gather(*(limiter.take([("acct", limit)]) for _ in range(40)))
        assert sum(v.allowed for v in verdicts) == 7
        assert sum(sent) == 40 and len(sent) < 40
        await client.script_flush()
        again = await limiter.take([("other", Limit(rate_per_s=1.0, burst=2))])
        assert again.allowed and fallback._value.get() == 0  # noqa: SLF001
    finally:
        await _drop(client, prefix)


async def test_checks_of_one_call_take_all_their_tokens_or_none_in_order() -> None:
    """Checks of different sizes in one call: each takes a token from every one of its buckets or from none, and
    a later check sees what an earlier one took."""
    from gateway.adapters.ratelimit import RateLimiter
    from gateway.domain.buckets import Limit
    from prometheus_client import CollectorRegistry, Counter

    prefix = unique("sk:test:rlo:") + ":"
    client = aioredis.from_url(REDIS_URL)
    limiter = RateLimiter(
        client, prefix=prefix, fallback_counter=Counter("fallback", "fallbacks", registry=CollectorRegistry())
    )
    sent = _counting(limiter)
    one = Limit(rate_per_s=0.001, burst=1)
    try:
        verdicts = await asyncio.gather(
            limiter.take([("ip:x", one)]),  # takes x's only token
            limiter.take([("ip:y", one), ("ip:x", one)]),  # x is empty: takes nothing, not even y's
            limiter.take([("ip:y", one)]),  # y still has its token
            limiter.take([("ip:y", one)]),  # now y is empty
        )
        assert sent == [4]
        assert [v.allowed for v in verdicts] == [True, False, True, False]
        assert verdicts[1].retry_after_s > 100 and verdicts[0].retry_after_s == 0
    finally:
        await _drop(client, prefix)


async def _drop(client: aioredis.Redis, prefix: str) -> None:
    """Delete the test's buckets and close its client."""
    keys = [k async for k in client.scan_iter(match=prefix + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def _counting(limiter):  # type: ignore[no-untyped-def]
    """The limiter's round trips to Redis, counted: the list of the numbers of checks each carried."""
    sent: list[int] = []
    send = limiter._send

    async def counted(batch):  # type: ignore[no-untyped-def]
        sent.append(len(batch))
        return await send(batch)

    limiter._send = counted
    return sent


async def test_a_hot_key_leases_tokens_and_still_passes_exactly_its_burst_over_two_replicas() -> None:
    """A key checked again and again takes a few tokens per round trip (a lease) and spends them here without going
    back to Redis; the bucket in Redis still bounds the whole: two limiters (two gateway replicas) on one bucket of 160
    pass exactly 160 of 400 checks between them, in far fewer round trips than checks."""
    from gateway.adapters.ratelimit import RateLimiter
    from gateway.domain.buckets import Limit
    from prometheus_client import CollectorRegistry, Counter

    prefix = unique("sk:test:rll:") + ":"
    client = aioredis.from_url(REDIS_URL)
    registry = CollectorRegistry()
    fallback = Counter("fallback", "fallbacks", registry=registry)
    one = RateLimiter(client, prefix=prefix, fallback_counter=fallback)
    two = RateLimiter(client, prefix=prefix, fallback_counter=fallback)
    sent_one, sent_two = _counting(one), _counting(two)
    limit = Limit(rate_per_s=0.001, burst=160)
    try:
        allowed = 0
        for n in range(200):
            for limiter in (one, two):
                verdict = await limiter.take([("ip:shared", limit)])
                allowed += verdict.allowed
                if n >= 100:  # well past the burst
                    assert not verdict.allowed and verdict.retry_after_s > 100
        assert allowed == 160
        # while tokens were left, most checks were answered from a lease (refusals always ask Redis)
        assert len(sent_one) + len(sent_two) < 400 - 160 + 160 // 3
        assert fallback._value.get() == 0  # noqa: SLF001
    finally:
        await _drop(client, prefix)


async def test_a_refused_check_gives_its_leased_tokens_back_and_a_lease_expires() -> None:
    """A check of two buckets whose second is empty takes nothing, not even the token the first one had in its
    lease: that token is still there for the next check, with no round trip. A lease older than its time to live is
    not used: the next check goes to Redis."""
    from gateway.adapters import ratelimit
    from gateway.adapters.ratelimit import RateLimiter
    from gateway.domain.buckets import Limit
    from prometheus_client import CollectorRegistry, Counter

    prefix = unique("sk:test:rlg:") + ":"
    client = aioredis.from_url(REDIS_URL)
    limiter = RateLimiter(
        client, prefix=prefix, fallback_counter=Counter("fallback", "fallbacks", registry=CollectorRegistry())
    )
    sent = _counting(limiter)
    roomy, empty = Limit(rate_per_s=0.001, burst=1000), Limit(rate_per_s=0.001, burst=1)
    try:
        for _ in range(4):  # the lease of "ip:x" grows: 1, then 2, then (one check from the lease) 4 tokens asked
            assert (await limiter.take([("ip:x", roomy)])).allowed
        assert (await limiter.take([("acct:y", empty)])).allowed  # y's only token
        lease = limiter._leases["ip:x"]
        left = lease.tokens
        assert left == 3 and len(sent) == 4
        refused = await limiter.take([("ip:x", roomy), ("acct:y", empty)])
        assert not refused.allowed and len(sent) == 5
        assert lease.tokens == left  # given back
        assert (await limiter.take([("ip:x", roomy)])).allowed and len(sent) == 5  # from the lease
        lease.granted_at -= ratelimit.LEASE_TTL_S  # its time is up
        assert (await limiter.take([("ip:x", roomy)])).allowed and len(sent) == 6
        level = float((await client.hget(prefix + "ip:x", "tokens")).decode())
        taken_from_redis = 1000 - level
        # every token taken from Redis was either used by a check or dropped with the expired lease
        assert round(taken_from_redis) == 6 + left - 1 + limiter._leases["ip:x"].tokens
    finally:
        await _drop(client, prefix)
