"""What one running review service holds besides its database: the similarity index and its metrics."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy.ext.asyncio import AsyncSession

from review.adapters.similar_store import SimilarityStore
from review.settings import ReviewSettings
from shared.service import ServiceContext

UNITS_RECOUNT_S = 60.0
DECISION_BUCKETS = (60.0, 600.0, 3600.0, 6 * 3600.0, 86400.0, 3 * 86400.0, 7 * 86400.0, 30 * 86400.0, 90 * 86400.0)


@dataclass
class ReviewMetrics:
    queue_depth: Gauge
    leases_expired: Counter
    decisions: Counter
    time_to_decision: Histogram

    @classmethod
    def on(cls, ctx: ServiceContext) -> ReviewMetrics:
        m = ctx.metrics
        return cls(
            queue_depth=m.gauge("sangkien_review_queue_depth", "Initiatives pending review (leased or not)"),
            leases_expired=m.counter("sangkien_review_leases_expired_total", "Expired leases claimed again"),
            decisions=m.counter("sangkien_review_decisions_total", "Review decisions", ["outcome", "reason"]),
            time_to_decision=m.histogram(
                "sangkien_review_submission_to_decision_seconds",
                "Time from submission to a decision",
                buckets=DECISION_BUCKETS,
            ),
        )


@dataclass
class ReviewRuntime:
    settings: ReviewSettings
    similarity: SimilarityStore = field(init=False)
    metrics: ReviewMetrics | None = None
    # How many units the replica holds, and when it was counted (claims choose their plan by it).
    _units: tuple[float, int] | None = None

    def __post_init__(self) -> None:
        self.similarity = SimilarityStore(self.settings.similarity_threshold)

    async def units_total(self, session: AsyncSession, count: Callable[[AsyncSession], Awaitable[int]]) -> int:
        """The number of units, counted again at most once a minute."""
        now = time.monotonic()
        if self._units is None or now - self._units[0] > UNITS_RECOUNT_S:
            self._units = (now, await count(session))
        return self._units[1]


def runtime_of(ctx: ServiceContext) -> ReviewRuntime:
    return ctx.extras["review"]  # type: ignore[no-any-return]
