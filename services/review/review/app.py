"""The review service: the work queue, decisions, near-duplicates and appraisals.

``uvicorn review.app:create --factory`` serves it alone; ``sangkien run`` composes it with the others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from fastapi import FastAPI

from review.adapters.orm import metadata
from review.api.routes import items as item_routes
from review.api.routes import queue as queue_routes
from review.handlers import SUBSCRIPTIONS, make_apply_batch
from review.runtime import ReviewRuntime
from review.settings import ReviewSettings
from shared.bus.base import EventBus
from shared.bus.memory import InMemoryBroker
from shared.service import ServiceDefinition, create_app

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


def definition(runtime: ReviewRuntime) -> ServiceDefinition:
    return ServiceDefinition(
        name="review",
        metadata=metadata,
        migrations=MIGRATIONS,
        routers=[queue_routes.router, item_routes.router],
        fast_routes=[queue_routes.claim, queue_routes.decide_many],
        subscriptions=SUBSCRIPTIONS,
        after_batch=make_apply_batch(runtime),
        runtime=runtime,
        on_start=[runtime.start],
        workers=[runtime.queue_gauge],
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
