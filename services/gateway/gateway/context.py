"""The gateway's runtime: what its routes share, made in the lifespan (no import-time connections).

The gateway has no database and no bus, so it does not go through ``shared.service.create_app``; its
``app.py`` reads like the other services' all the same: settings, this runtime, the routers.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import redis.asyncio as aioredis

from gateway.adapters.downstream import Downstreams
from gateway.adapters.ratelimit import RateLimiter
from gateway.adapters.tokens import CachingVerifier
from gateway.domain.buckets import Limit
from gateway.metrics import GatewayMetrics
from gateway.settings import GatewaySettings
from shared.auth import TokenVerifier


@dataclass
class GatewayContext:
    settings: GatewaySettings
    metrics: GatewayMetrics
    verifier: CachingVerifier
    limiter: RateLimiter
    downstreams: Downstreams
    redis: aioredis.Redis | None = None
    openapi_cache: dict[str, Any] = field(default_factory=dict)
    ip_limit: Limit = field(init=False)
    account_limit: Limit = field(init=False)

    def __post_init__(self) -> None:
        s = self.settings
        self.ip_limit = Limit(s.rate_ip_per_s, s.rate_ip_burst)
        self.account_limit = Limit(s.rate_account_per_s, s.rate_account_burst)


@contextlib.asynccontextmanager
async def running(
    settings: GatewaySettings,
    metrics: GatewayMetrics,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> AsyncIterator[GatewayContext]:
    """The gateway's runtime for one lifespan: its Redis client, downstream pools and rate limiter."""
    redis_client = (
        aioredis.from_url(settings.redis_url, socket_connect_timeout=0.5, socket_timeout=0.5)
        if settings.redis_url
        else None
    )
    downstreams = Downstreams(settings, metrics, transports)
    limiter = RateLimiter(
        redis_client,
        prefix=settings.rate_limit_key_prefix,
        fallback_counter=metrics.ratelimit_fallback,
        retry_after_s=settings.redis_retry_after_s,
    )
    try:
        yield GatewayContext(
            settings=settings,
            metrics=metrics,
            verifier=CachingVerifier(TokenVerifier(settings)),
            limiter=limiter,
            downstreams=downstreams,
            redis=redis_client,
        )
    finally:
        await downstreams.aclose()
        if redis_client is not None:
            await redis_client.aclose()
