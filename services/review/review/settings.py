"""Typed settings of the review service."""

from __future__ import annotations

from shared.settings import ServiceSettings


class ReviewSettings(ServiceSettings):
    database_url: str = "sqlite+aiosqlite:///./var/review.db"
    lease_minutes: int = 15
    max_claim: int = 50
    max_batch_decisions: int = 500
    similarity_threshold: float = 0.5
    # The near-duplicate index and the shingle sets kept beside it, per replica (issue 13: at most 2 GB per replica,
    # the process's own ~150 MiB included): the sets fill what the index leaves (review.adapters.similar_store).
    similarity_memory_mb: int = 1_700
    queue_gauge_interval_s: float = 15.0
