"""What the gateway's routes share, made in the lifespan (no import-time connections)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from gateway.adapters.downstream import Downstreams
from gateway.adapters.ratelimit import RateLimiter
from gateway.adapters.tokens import CachingVerifier
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
