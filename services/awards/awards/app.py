"""The awards service: schemes, nominations from frozen figures, immutable decisions, exports.

``uvicorn awards.app:create --factory`` serves it alone; ``sangkien run`` composes it with the others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx
from fastapi import FastAPI

from awards.adapters.orm import metadata
from awards.api.routes import awards as awards_routes
from awards.api.routes import schemes as scheme_routes
from awards.handlers import AFTER_BATCH, SUBSCRIPTIONS
from awards.runtime import AwardsRuntime
from awards.settings import AwardsSettings
from shared.bus.base import EventBus
from shared.bus.memory import InMemoryBroker
from shared.service import ServiceDefinition, create_app

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


def definition(runtime: AwardsRuntime) -> ServiceDefinition:
    return ServiceDefinition(
        name="awards",
        metadata=metadata,
        migrations=MIGRATIONS,
        # The awards router's "/{award_id}" must come after the schemes' fixed paths.
        routers=[scheme_routes.router, awards_routes.router],
        subscriptions=SUBSCRIPTIONS,
        after_batch=AFTER_BATCH,
        runtime=runtime,
        on_start=[runtime.start],
        title="Sáng kiến — awards",
        description="Khen thưởng: hình thức, đề nghị từ số liệu đã chốt, quyết định bất biến, xuất danh sách.",
    )


def create(
    settings: AwardsSettings | None = None,
    *,
    bus: EventBus | None = None,
    broker: InMemoryBroker | None = None,
    topology: Mapping[str, Sequence[str]] | None = None,
    http_transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    settings = settings or AwardsSettings()
    runtime = AwardsRuntime(settings, tally_transport=(http_transports or {}).get("tally"))
    return create_app(definition(runtime), settings, bus=bus, broker=broker, topology=topology)
