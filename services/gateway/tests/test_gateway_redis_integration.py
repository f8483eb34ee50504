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
