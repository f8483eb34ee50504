"""The gateway application: ``uvicorn gateway.app:create --factory`` (port 8000), or embedded by ``sangkien run``."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Mapping

import httpx
import redis.asyncio as aioredis
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from gateway.adapters.downstream import Downstreams
from gateway.adapters.oidc import OidcClient
from gateway.adapters.ratelimit import RateLimiter
from gateway.adapters.tokens import CachingVerifier
from gateway.api import front
from gateway.api.routes import compose, proxy, system
from gateway.context import GatewayContext
from gateway.metrics import GatewayMetrics
from gateway.settings import GatewaySettings
from gateway.web import pages, sheets, signin
from gateway.web.pages import STATIC_DIR
from shared.auth import TokenVerifier
from shared.http import ObservabilityMiddleware, install_error_handlers
from shared.logs import configure_logging


class GatewayApp(FastAPI):
    """FastAPI, with plain forwards taken by :mod:`gateway.api.front` before routing and middleware."""

    front_door: front.FrontDoor

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        service = front.takes(scope)
        if service is None:
            await super().__call__(scope, receive, send)
        else:
            await self.front_door(getattr(self.state, "ctx", None), service, scope, receive, send)


def create(
    settings: GatewaySettings | None = None,
    *,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    settings = settings or GatewaySettings()
    configure_logging(settings.log_level, settings.log_json)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per proxied call is too much
    metrics = GatewayMetrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis_client = (
            aioredis.from_url(settings.redis_url, socket_connect_timeout=0.5, socket_timeout=0.5)
            if settings.redis_url
            else None
        )
        downstreams = Downstreams(settings, metrics, transports)
        limiter = RateLimiter(
            redis_client,
            prefix=settings.rate_limit_key_prefix,
            fallback_counter=metrics.ratelimit_fallback,
            retry_after_s=settings.redis_retry_after_s,
        )
        app.state.ctx = GatewayContext(
            settings=settings,
            metrics=metrics,
            verifier=CachingVerifier(TokenVerifier(settings)),
            limiter=limiter,
            downstreams=downstreams,
            redis=redis_client,
        )
        try:
            yield
        finally:
            app.state.ctx = None
            await downstreams.aclose()
            if redis_client is not None:
                await redis_client.aclose()

    app = GatewayApp(
        title="Sáng kiến gateway",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    app.state.metrics = metrics.base
    app.state.ctx = None
    app.front_door = front.FrontDoor(metrics.base)
    app.state.oidc = (
        OidcClient(
            str(settings.oidc_issuer),
            str(settings.oidc_client_id),
            client_secret=settings.oidc_client_secret,
            scopes=settings.oidc_scopes,
            api_token=settings.oidc_api_token,
        )
        if settings.oidc_enabled
        else None
    )
    install_error_handlers(app)
    pages.install_html_errors(app)  # pages answer 404/500 as HTML; /api/v1 keeps the JSON shape
    app.add_middleware(ObservabilityMiddleware, metrics=metrics.base)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(system.router)
    if settings.environment == "development":
        app.include_router(system.dev_router)
    app.include_router(pages.router)
    app.include_router(signin.router)
    app.include_router(compose.router)
    app.include_router(sheets.router)  # composed spreadsheets of the support page
    app.include_router(proxy.router)  # last: the catch-all of /api/v1
    return app
