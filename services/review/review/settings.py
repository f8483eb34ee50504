"""Typed settings of the review service."""

from __future__ import annotations

from shared.settings import ServiceSettings


class ReviewSettings(ServiceSettings):
    database_url: str = "sqlite+aiosqlite:///./var/review.db"
    lease_minutes: int = 15
    max_claim: int = 50
    max_batch_decisions: int = 500
    similarity_threshold: float = 0.5
    queue_gauge_interval_s: float = 15.0
