"""What one running review service holds besides its connections: the similarity index and its metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from review.adapters.claims import LargeSubtrees
from review.adapters.orm import items
from review.adapters.similar_store import SimilarityStore
from review.settings import ReviewSettings
from shared.metrics import ServiceMetrics
from shared.service import ServiceContext

log = logging.getLogger("review")

UNITS_RECOUNT_S = 60.0
# How long a replica's claims use the lowest pending seq it read (review.adapters.claims.lowest_pending_seq).
FLOOR_REFRESH_S = 2.0
DECISION_BUCKETS = (60.0, 600.0, 3600.0, 6 * 3600.0, 86400.0, 3 * 86400.0, 7 * 86400.0, 30 * 86400.0, 90 * 86400.0)


@dataclass
class ReviewMetrics:
    queue_depth: Gauge
    leases_expired: Counter
    decisions: Counter
    time_to_decision: Histogram

    @classmethod
    def on(cls, m: ServiceMetrics) -> ReviewMetrics:
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
    # The lowest seq of a pending item, and when it was read.
    _floor: tuple[float, int | None] | None = None
    # The reviewers' roots whose subtrees claims found large (review.adapters.claims.LargeSubtrees).
    large_subtrees: LargeSubtrees = field(default_factory=LargeSubtrees)

    def __post_init__(self) -> None:
        self.similarity = SimilarityStore(self.settings.similarity_threshold, self.settings.similarity_memory_mb << 20)

    async def start(self, ctx: ServiceContext) -> None:
        self.metrics = ReviewMetrics.on(ctx.metrics)
        async with ctx.sessions() as session:
            loaded = await self.similarity.sync(session)
        log.info("similarity index loaded", extra={"signatures": loaded})

    async def queue_gauge(self, ctx: ServiceContext) -> None:
        """Keeps the queue-depth gauge current (the only figure that needs a query)."""
        while True:
            try:
                async with ctx.sessions() as session:
                    query = select(func.count()).select_from(items).where(items.c.status == "pending")
                    depth = (await session.execute(query)).scalar_one()
                if self.metrics:
                    self.metrics.queue_depth.set(depth)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database may be briefly away; the gauge just ages
                log.warning("queue depth not refreshed", extra={"error": repr(exc)})
            await asyncio.sleep(self.settings.queue_gauge_interval_s)

    async def units_total(self, session: AsyncSession, count: Callable[[AsyncSession], Awaitable[int]]) -> int:
        """The number of units, counted again at most once a minute."""
        now = time.monotonic()
        if self._units is None or now - self._units[0] > UNITS_RECOUNT_S:
            self._units = (now, await count(session))
        return self._units[1]

    async def claim_floor(
        self, session: AsyncSession, lowest: Callable[[AsyncSession], Awaitable[int | None]]
    ) -> int | None:
        """The lowest seq of a pending item (None: none was), read again at most every ``FLOOR_REFRESH_S``."""
        now = time.monotonic()
        if self._floor is not None and now - self._floor[0] <= FLOOR_REFRESH_S:
            return self._floor[1]
        # One claim reads it; the claims meanwhile keep the floor read before (each read walks what a claim would
        # have: at 600,000 initiatives 8 reviewers' claims read it 1.4 times a second instead of 0.5).
        before = self._floor[1] if self._floor is not None else None
        self._floor = (now, before)
        self._floor = (now, await lowest(session))
        return self._floor[1]


def runtime_of(ctx: ServiceContext) -> ReviewRuntime:
    return ctx.runtime_as(ReviewRuntime)
