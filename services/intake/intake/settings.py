"""Settings of the intake service (env: DATABASE_URL, ..., plus the INTAKE_* knobs below)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from shared.settings import ServiceSettings


class IntakeSettings(ServiceSettings):
    database_url: str = "sqlite+aiosqlite:///./var/intake.db"
    # Group commit of POST /initiatives: how long the first request of a batch waits for company.
    group_commit_window_ms: float = Field(default=2.0, ge=0, le=100, alias="INTAKE_GROUP_COMMIT_WINDOW_MS")
    group_commit_max: int = Field(default=500, ge=1, le=5000, alias="INTAKE_GROUP_COMMIT_MAX")
    # Transactions in flight at once (PostgreSQL only; SQLite has one writer).
    group_commit_writers: int = Field(default=2, ge=1, le=16, alias="INTAKE_GROUP_COMMIT_WRITERS")
    # The relay is woken at most this often by group commits (its poll interval covers the rest).
    relay_wake_interval_ms: float = Field(default=50.0, ge=0, le=5000, alias="INTAKE_RELAY_WAKE_INTERVAL_MS")
    # Batch requests writing at once (PostgreSQL). Each holds two pooled connections, the seq counter's and the
    # transaction's: unbounded, enough of them took every connection and waited on each other until the pool's
    # timeout (issue 14, finding 8). Those beyond wait for a slot without holding any connection.
    batch_writers: int = Field(default=6, ge=1, le=32, alias="INTAKE_BATCH_WRITERS")
    # A batch that finds neither a slot nor a connection in this time answers 503 with Retry-After.
    batch_wait_s: float = Field(default=20.0, gt=0, le=120, alias="INTAKE_BATCH_WAIT_S")
    import_chunk_rows: int = Field(default=500, ge=1, le=5000, alias="INTAKE_IMPORT_CHUNK_ROWS")
    import_max_bytes: int = Field(default=64 * 1024 * 1024, alias="INTAKE_IMPORT_MAX_BYTES")
    import_max_rows: int = Field(default=200_000, alias="INTAKE_IMPORT_MAX_ROWS")
    idempotency_ttl_hours: int = Field(default=48, ge=24, alias="INTAKE_IDEMPOTENCY_TTL_HOURS")
    # Seconds a replica of the plan (campaign, unit) is cached in memory.
    plan_cache_ttl_s: float = Field(default=2.0, ge=0, alias="INTAKE_PLAN_CACHE_TTL_S")
    # A fixed "now" (UTC) for tests and rehearsals; None means the real clock.
    fixed_now: datetime | None = Field(default=None, alias="INTAKE_FIXED_NOW")

    model_config = ServiceSettings.model_config | {"populate_by_name": True}
