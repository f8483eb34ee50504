"""The intake service: POST/GET/PATCH initiatives, batch, imports; replicas of the plan; review status.

``uvicorn intake.app:create --factory`` serves it alone; ``sangkien run`` composes it with the others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from fastapi import FastAPI

from intake.adapters.imports import import_worker
from intake.adapters.orm import metadata
from intake.api.routes import imports, initiatives
from intake.handlers import AFTER_BATCH, make_subscriptions
from intake.runtime import IntakeRuntime
from intake.settings import IntakeSettings
from shared.bus.base import EventBus
from shared.bus.memory import InMemoryBroker
from shared.service import ServiceDefinition, create_app

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


def definition(runtime: IntakeRuntime) -> ServiceDefinition:
    return ServiceDefinition(
        name="intake",
        metadata=metadata,
        migrations=MIGRATIONS,
        routers=[initiatives.router, imports.router],
        subscriptions=make_subscriptions(runtime.plan_reader),
        after_batch=AFTER_BATCH,
        runtime=runtime,
        on_start=[runtime.start],
        workers=[runtime.group_commit, import_worker],
        fast_routes=[initiatives.submit_initiative, initiatives.submit_batch],
        title="Sáng kiến — intake",
        description="Every way an initiative gets in: single, batch, import; idempotent and group-committed.",
    )


def create(
    settings: IntakeSettings | None = None,
    *,
    bus: EventBus | None = None,
    broker: InMemoryBroker | None = None,
    topology: Mapping[str, Sequence[str]] | None = None,
) -> FastAPI:
    settings = settings or IntakeSettings()
    return create_app(definition(IntakeRuntime(settings)), settings, bus=bus, broker=broker, topology=topology)
