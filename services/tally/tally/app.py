"""The tally service: the plan and the figures. ``uvicorn tally.app:create --factory``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from fastapi import FastAPI

from shared.bus.base import EventBus
from shared.bus.memory import InMemoryBroker
from shared.service import ServiceDefinition, create_app
from tally.adapters.orm import metadata
from tally.api.routes import figures, ops, plan, snapshots, units
from tally.handlers import AFTER_BATCH, SUBSCRIPTIONS
from tally.observability import with_business_metrics
from tally.settings import TallySettings

DEFINITION = ServiceDefinition(
    name="tally",
    metadata=metadata,
    migrations=Path(__file__).resolve().parents[1] / "migrations",
    routers=[plan.router, units.router, figures.router, snapshots.router, ops.router],
    subscriptions=SUBSCRIPTIONS,
    after_batch=AFTER_BATCH,
    title="Sáng kiến — tally",
    description="Kế hoạch (đơn vị, đợt, chỉ tiêu) và số liệu tổng hợp chính xác.",
)


def create(
    settings: TallySettings | None = None,
    *,
    bus: EventBus | None = None,
    broker: InMemoryBroker | None = None,
    topology: Mapping[str, Sequence[str]] | None = None,
) -> FastAPI:
    definition = with_business_metrics(DEFINITION)
    return create_app(definition, settings or TallySettings(), bus=bus, broker=broker, topology=topology)
