"""What the gateway's routes share, made in the lifespan (no import-time connections)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from gateway.adapters.downstream import Downstreams
from gateway.adapters.ratelimit import RateLimiter
from gateway.adapters.tokens import CachingVerifier
from gateway.domain.buckets import Limit
from gateway.metrics import GatewayMetrics
from gateway.settings import GatewaySettings


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
