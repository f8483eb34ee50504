"""The tally service: the plan and the figures.

``uvicorn tally.app:create --factory`` serves it alone; ``sangkien run`` composes it with the others.
"""

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
from tally.runtime import TallyRuntime
from tally.settings import TallySettings

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


def definition(runtime: TallyRuntime) -> ServiceDefinition:
    return ServiceDefinition(
        name="tally",
        metadata=metadata,
        migrations=MIGRATIONS,
        routers=[plan.router, units.router, figures.router, snapshots.router, ops.router],
        subscriptions=SUBSCRIPTIONS,
        after_batch=runtime.counting(AFTER_BATCH),
        runtime=runtime,
        on_start=[runtime.start],
        workers=[runtime.province_progress],
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
    settings = settings or TallySettings()
    return create_app(definition(TallyRuntime(settings)), settings, bus=bus, broker=broker, topology=topology)
