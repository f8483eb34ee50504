"""Typed settings every service inherits; each service subclasses with its own defaults."""

from __future__ import annotations

import logging
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "dev-only-secret-sang-kien-not-for-production"

log = logging.getLogger("shared.settings")


class ServiceSettings(BaseSettings):
    """Settings read from the environment (DATABASE_URL, AMQP_URL, REDIS_URL, JWT_SECRET...)."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    # Production unless said otherwise: a deployment that forgets ENVIRONMENT must not fall back to the
    # development secret, which is in the repository (`make run`, run-distributed.sh and the tests say development).
    environment: Literal["development", "test", "production"] = "production"
    database_url: str = "sqlite+aiosqlite:///./var/service.db"
    # None means the in-process bus (embedded mode).
    amqp_url: str | None = None
    # Prefix of exchanges and queues, so test runs never meet each other on one broker.
    amqp_prefix: str = ""
    # Events published together with one routing key travel as one AMQP message of up to this many (1: never).
    amqp_pack_size: int = Field(default=100, ge=1, le=1000)
    redis_url: str | None = None
    jwt_secret: str | None = None
    jwt_algorithms: list[str] = ["HS256"]
    jwks_url: str | None = None
    jwt_audience: str | None = None
    # With JWKS_URL both are required and checked: a token of another issuer or another API is refused.
    jwt_issuer: str | None = None
    # An unknown key id fetches the JWKS again at most this often (a forged kid must not hammer the provider).
    jwks_refetch_s: float = Field(default=60.0, ge=0)
    # Consumers handle a delivered batch set-based: a few statements per batch whatever its size, so larger
    # batches cost less per event (review's consumer: ~20% less CPU per initiative at 500 than at 100).
    consumer_prefetch: int = 2000
    consumer_batch_size: int = 500
    consumer_batch_wait_ms: int = 20
    delivery_limit: int = 5
    outbox_poll_interval_s: float = 0.5
    outbox_batch_size: int = 500
    # Operator signals (shared.operations): how often queue depths and the outbox are sampled.
    ops_sample_interval_s: float = Field(default=5.0, gt=0)
    # On SIGTERM: how long to wait for the consuming batch to settle and the outbox to empty (inside the
    # orchestrator's grace period, after uvicorn has finished the requests in flight).
    shutdown_drain_s: float = Field(default=10.0, ge=0)
    log_level: str = "INFO"
    log_json: bool = True
    # The collector tuned for batches while the service runs (shared.gc_tuning); GC_TUNED=false measures without.
    gc_tuned: bool = True
    # glibc's allocator keeps what a batch freed (shared.gc_tuning.allocator_keeps_freed_memory); MALLOC_TUNED=false
    # measures without.
    malloc_tuned: bool = True

    @model_validator(mode="after")
    def _secret_policy(self) -> ServiceSettings:
        if self.jwt_secret is None and self.jwks_url is None:
            if self.environment != "development":
                raise ValueError("JWT_SECRET or JWKS_URL must be set outside ENVIRONMENT=development")
            self.jwt_secret = DEV_JWT_SECRET
        if self.environment != "development" and self.jwt_secret == DEV_JWT_SECRET:
            raise ValueError("the development JWT secret may not be used outside ENVIRONMENT=development")
        if self.environment != "development" and self.jwt_secret and len(self.jwt_secret) < 32:
            raise ValueError("JWT_SECRET must be at least 32 characters outside ENVIRONMENT=development")
        if self.jwks_url and not (self.jwt_issuer and self.jwt_audience):
            raise ValueError("JWT_ISSUER and JWT_AUDIENCE must be set with JWKS_URL")
        return self
