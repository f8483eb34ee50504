"""Typed settings of the tally service."""

from __future__ import annotations

from shared.settings import ServiceSettings


class TallySettings(ServiceSettings):
    database_url: str = "sqlite+aiosqlite:///./var/tally.db"
    # Bounds on request sizes: the plan of a whole country fits in one upload.
    max_units_per_request: int = 200_000
    max_quotas_per_request: int = 200_000
    max_import_bytes: int = 64 * 1024 * 1024
    # Consumption is set-based per batch (a few statements whatever its size): large batches, a deep prefetch.
    consumer_batch_size: int = 1000
    consumer_prefetch: int = 4000
