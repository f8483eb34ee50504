"""The awards service: schemes, nominations from frozen figures, immutable decisions, exports.

``uvicorn awards.app:create --factory`` (distributed) or composed by ``sangkien run`` (embedded).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx
from fastapi import FastAPI

from awards.adapters.orm import metadata
from awards.adapters.tally_client import TallyClient
from awards.api.routes import awards as awards_routes
from awards.api.routes import schemes as scheme_routes
from awards.handlers import AFTER_BATCH, SUBSCRIPTIONS
from awards.settings import AwardsSettings
from shared.bus.base import EventBus
from shared.bus.memory import InMemoryBroker
from shared.service import ServiceContext, ServiceDefinition, create_app

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


def create(
    settings: AwardsSettings | None = None,
    *,
    bus: EventBus | None = None,
    broker: InMemoryBroker | None = None,
    topology: Mapping[str, Sequence[str]] | None = None,
    http_transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    settings = settings or AwardsSettings()
    transport = (http_transports or {}).get("tally")
    base_url = "http://tally" if transport is not None else settings.tally_url

    async def start_tally_client(ctx: ServiceContext) -> None:
        ctx.extras["tally"] = TallyClient(
            base_url, transport=transport, timeout_s=settings.tally_timeout_s, page_size=settings.tally_page_size
        )

    definition = ServiceDefinition(
        name="awards",
        metadata=metadata,
        migrations=MIGRATIONS,
        # The awards router's "/{award_id}" must come after the schemes' fixed paths.
        routers=[scheme_routes.router, awards_routes.router],
        subscriptions=SUBSCRIPTIONS,
        after_batch=AFTER_BATCH,
        on_start=[start_tally_client],
        title="Sáng kiến — awards",
        description="Khen thưởng: hình thức, đề nghị từ số liệu đã chốt, quyết định bất biến, xuất danh sách.",
    )
    return create_app(definition, settings, bus=bus, broker=broker, topology=topology)
