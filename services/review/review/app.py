"""The review service: the work queue, decisions, near-duplicates and appraisals.

``uvicorn review.app:create --factory`` serves it alone; ``sangkien run`` composes it with the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy import func, select

from review.adapters.orm import items, metadata
from review.api.routes import items as item_routes
from review.api.routes import queue as queue_routes
from review.handlers import SUBSCRIPTIONS, make_apply_batch
from review.runtime import ReviewMetrics, ReviewRuntime, runtime_of
from review.settings import ReviewSettings
from shared.bus.base import EventBus
from shared.bus.memory import InMemoryBroker
from shared.service import ServiceContext, ServiceDefinition, create_app

log = logging.getLogger("review")
MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


def definition(runtime: ReviewRuntime) -> ServiceDefinition:
    async def start(ctx: ServiceContext) -> None:
        ctx.extras["review"] = runtime
        if runtime.metrics is None:  # the registry belongs to the app, which may be started again
            runtime.metrics = ReviewMetrics.on(ctx)
        async with ctx.sessions() as session:
            loaded = await runtime.similarity.sync(session)
        log.info("similarity index loaded", extra={"signatures": loaded})

    async def queue_gauge(ctx: ServiceContext) -> None:
        """Keeps the queue-depth gauge current (the only figure that needs a query)."""
        rt = runtime_of(ctx)
        while True:
            try:
                async with ctx.sessions() as session:
                    query = select(func.count()).select_from(items).where(items.c.status == "pending")
                    depth = (await session.execute(query)).scalar_one()
                if rt.metrics:
                    rt.metrics.queue_depth.set(depth)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database may be briefly away; the gauge just ages
                log.warning("queue depth not refreshed", extra={"error": repr(exc)})
            await asyncio.sleep(rt.settings.queue_gauge_interval_s)

    return ServiceDefinition(
        name="review",
        metadata=metadata,
        migrations=MIGRATIONS,
        routers=[queue_routes.router, item_routes.router],
        subscriptions=SUBSCRIPTIONS,
        after_batch=make_apply_batch(runtime),
        on_start=[start],
        workers=[queue_gauge],
        title="Sáng kiến — review",
        description="Hàng chờ xét duyệt, quyết định, phát hiện trùng lặp và thẩm định sáng kiến.",
    )


def create(
    settings: ReviewSettings | None = None,
    *,
    bus: EventBus | None = None,
    broker: InMemoryBroker | None = None,
    topology: Mapping[str, Sequence[str]] | None = None,
) -> FastAPI:
    settings = settings or ReviewSettings()
    return create_app(definition(ReviewRuntime(settings)), settings, bus=bus, broker=broker, topology=topology)
