"""The one way a service is put together: lifespan, stores, bus, relay, consumers, health, metrics.

Every service's ``app.py`` reads the same way: ``definition(runtime)`` builds its ``ServiceDefinition``
(tables, migrations, routers, the subscription list from ``handlers/__init__.py``, background workers)
around one runtime dataclass (``<service>/runtime.py``: what the running service holds besides its
connections), and ``create(settings, *, bus, broker, topology)`` hands both to ``create_app``.
Connections are made in the lifespan and handed in through ``ServiceContext``, so tests and the
embedded mode can swap them; ``ctx.runtime_as(XRuntime)`` gives the runtime back, typed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import redis.asyncio as aioredis
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import Response
from sqlalchemy import MetaData, Table, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.auth import AuthError, Principal, TokenVerifier
from shared.bus.base import EventBus
from shared.bus.memory import DeadLetterStore, InMemoryBroker, InMemoryBus
from shared.db import make_engine, run_migrations
from shared.envelope import Envelope, encode_many, new_event, routing_key
from shared.fast_routes import Endpoint, ServiceApp
from shared.gc_tuning import allocator_keeps_freed_memory, collector_tuned_for_batches
from shared.http import (
    ApiError,
    JsonResponse,
    ObservabilityMiddleware,
    install_error_handlers,
)
from shared.logs import configure_logging
from shared.messaging import AfterBatch, Dispatcher, OutboxRelay, Subscription, stage, stage_encoded
from shared.metrics import CONTENT_TYPE_LATEST, ServiceMetrics
from shared.operations import ConsumerWatch, OperatorSignals, drain, probe_for, probes_router
from shared.settings import ServiceSettings
from shared.topology import QUEUES

log = logging.getLogger("shared.service")

Worker = Callable[["ServiceContext"], Awaitable[None]]
R = TypeVar("R")


@dataclass
class ServiceDefinition:
    name: str
    metadata: MetaData
    migrations: Path
    routers: Sequence[APIRouter] = ()
    subscriptions: Sequence[Subscription] = ()
    after_batch: AfterBatch | None = None
    # The service's runtime dataclass (<service>/runtime.py), handed to every lifespan as ``ctx.runtime``.
    runtime: object | None = None
    # Run once after migrations, before consumers and workers start.
    on_start: Sequence[Worker] = ()
    # Long-running background tasks (import jobs, lease expiry...), cancelled at shutdown.
    workers: Sequence[Worker] = ()
    # Endpoints of hot routes also served without FastAPI's routing (shared.fast_routes, with its measurement).
    fast_routes: Sequence[Endpoint] = ()
    title: str = ""
    description: str = ""
    version: str = "0.1.0"


@dataclass
class ServiceContext:
    name: str
    settings: ServiceSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    bus: EventBus
    relay: OutboxRelay
    metrics: ServiceMetrics
    verifier: TokenVerifier
    outbox: Table
    inbox: Table
    redis: aioredis.Redis | None = None
    runtime: object | None = None
    # The event consumer, when the service has subscriptions (/health reports it paused on a database fault).
    consumer: Dispatcher | None = None

    def runtime_as(self, kind: type[R]) -> R:
        """The service's runtime, checked to be of ``kind`` (each service's ``runtime_of`` calls this)."""
        if not isinstance(self.runtime, kind):
            raise RuntimeError(f"{self.name} runs with {type(self.runtime).__name__}, not {kind.__name__}")
        return self.runtime

    def event(self, event_type: str, data: dict[str, Any], *, causation: Envelope | None = None) -> Envelope:
        return new_event(event_type, data, producer=self.name, causation=causation)

    async def emit(self, session: AsyncSession, *envelopes: Envelope) -> None:
        """Stage events in the session's transaction; the relay publishes them after commit."""
        await stage(session, self.outbox, *envelopes)

    async def emit_many(
        self, session: AsyncSession, event_type: str, datas: Sequence[dict[str, Any]], *, version: int = 1
    ) -> None:
        """``emit`` of many events of one type made now (``event`` of each), encoded together."""
        ids, bodies = encode_many(event_type, datas, producer=self.name, version=version)
        await stage_encoded(session, self.outbox, ids, [routing_key(event_type, version)] * len(ids), bodies)


def _find_table(metadata: MetaData, name: str) -> Table:
    if name not in metadata.tables:
        raise RuntimeError(f"metadata has no {name!r} table: call shared.messaging.messaging_tables(metadata)")
    return metadata.tables[name]


def create_app(
    definition: ServiceDefinition,
    settings: ServiceSettings,
    *,
    bus: EventBus | None = None,
    broker: InMemoryBroker | None = None,
    topology: Mapping[str, Sequence[str]] | None = None,
) -> FastAPI:
    """Build the FastAPI app of a service. ``bus``/``broker`` override the transport chosen by settings."""
    topology = topology or QUEUES
    keys = set(topology.get(definition.name, ()))
    stray = [s.routing_key for s in definition.subscriptions if s.routing_key not in keys]
    if stray:
        raise RuntimeError(f"{definition.name} subscribes to {stray} but shared/topology.py does not bind them")

    metrics = ServiceMetrics(definition.name)
    signals = OperatorSignals(definition.name, metrics.registry)
    outbox = _find_table(definition.metadata, "outbox")
    inbox = _find_table(definition.metadata, "inbox")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level, settings.log_json)
        engine = await make_engine(settings.database_url)
        await run_migrations(engine, definition.migrations, definition.metadata)
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        the_bus = bus
        if the_bus is None:
            if settings.amqp_url:
                from shared.bus.rabbitmq import RabbitMQBus

                the_bus = RabbitMQBus(
                    settings.amqp_url,
                    prefix=settings.amqp_prefix,
                    prefetch=settings.consumer_prefetch,
                    delivery_limit=settings.delivery_limit,
                    topology=topology,
                    pack_size=settings.amqp_pack_size,
                )
            else:
                the_bus = InMemoryBus(
                    broker or InMemoryBroker(topology, delivery_limit=settings.delivery_limit),
                    dead_letters=DeadLetterStore(engine),
                )
        await the_bus.start()
        relay = OutboxRelay(
            engine,
            outbox,
            the_bus,
            metrics,
            batch_size=settings.outbox_batch_size,
            poll_interval_s=settings.outbox_poll_interval_s,
        )
        redis_client = aioredis.from_url(settings.redis_url) if settings.redis_url else None
        ctx = ServiceContext(
            name=definition.name,
            settings=settings,
            engine=engine,
            sessions=sessions,
            bus=the_bus,
            relay=relay,
            metrics=metrics,
            verifier=TokenVerifier(settings),
            outbox=outbox,
            inbox=inbox,
            redis=redis_client,
            runtime=definition.runtime,
        )
        app.state.ctx = ctx
        tasks: list[asyncio.Task[None]] = []
        watch: ConsumerWatch | None = None
        signals.draining = False
        try:
            for hook in definition.on_start:
                await hook(ctx)
            if definition.subscriptions:
                dispatcher = Dispatcher(
                    definition.name,
                    sessions,
                    inbox,
                    definition.subscriptions,
                    metrics,
                    after_batch=definition.after_batch,
                    on_commit=relay.wake,
                    delivery_limit=settings.delivery_limit,
                )
                ctx.consumer = dispatcher
                watch = ConsumerWatch(dispatcher)  # what the operator signals read: events held, their age
                await the_bus.consume(
                    definition.name,
                    watch,
                    batch_size=settings.consumer_batch_size,
                    batch_wait_s=settings.consumer_batch_wait_ms / 1000,
                )
            tasks.append(asyncio.create_task(relay.run(), name=f"{definition.name}:outbox-relay"))
            signals.attach(engine=engine, outbox=outbox, probe=probe_for(the_bus), watch=watch)
            tasks.append(
                asyncio.create_task(signals.run(settings.ops_sample_interval_s), name=f"{definition.name}:signals")
            )
            workers = [
                asyncio.create_task(worker(ctx), name=f"{definition.name}:{worker.__name__}")
                for worker in definition.workers
            ]
            tasks.extend(workers)
            log.info("service started", extra={"service": definition.name})
            allocator_keeps_freed_memory(settings.malloc_tuned)
            with collector_tuned_for_batches(settings.gc_tuned):
                yield
            # Graceful shutdown (uvicorn has stopped listening and finished the requests in flight): not ready
            # any more, the consuming batch finished and settled, the outbox published.
            signals.draining = True
            # Background jobs (imports, gauges) stop first: they resume where they were after a restart, and
            # must not keep writing while the consumers and the outbox drain.
            await _cancel(workers)
            left = await drain(
                getattr(the_bus, "stop_consuming", None) if watch is not None else None,
                engine,
                outbox,
                relay.rescan,
                settings.shutdown_drain_s,
                can_publish=lambda: _relay_can_publish(relay, the_bus),
            )
            log.info("service drained", extra={"service": definition.name, **left})
        finally:
            signals.draining = True
            await _cancel(tasks)
            await signals.close()
            await the_bus.close()
            if redis_client is not None:
                await redis_client.aclose()
            await engine.dispose()

    app = ServiceApp(
        title=definition.title or f"Sáng kiến — {definition.name}",
        description=definition.description,
        version=definition.version,
        lifespan=lifespan,
        # Metrics are Prometheus (shared.metrics); FastAPI's native OpenTelemetry hooks would only cost
        # a provider lookup per request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.metrics = metrics
    app.state.signals = signals
    app.state.definition = definition
    install_error_handlers(app)
    app.add_middleware(ObservabilityMiddleware, metrics=metrics)
    app.include_router(_plumbing_router(definition.name))
    for router in definition.routers:
        app.include_router(router)
    if definition.fast_routes:
        app.serve_fast(definition.routers, definition.fast_routes, metrics)
    return app


async def _relay_can_publish(relay: OutboxRelay, bus: EventBus) -> bool:
    return not relay.paused and await bus.ping()


async def _cancel(tasks: Sequence[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


# ---- dependencies (the Annotated aliases routes use) -------------------------------------------


async def get_context(request: Request) -> ServiceContext:
    # async: FastAPI runs a plain ``def`` dependency in its thread pool, a thread hop per request.
    return request.app.state.ctx  # type: ignore[no-any-return]


ContextDep = Annotated[ServiceContext, Depends(get_context)]


@contextlib.asynccontextmanager
async def session_of(ctx: ServiceContext) -> AsyncIterator[AsyncSession]:
    """A session for a route; once it is closed, the relay is woken if events were staged. ``SessionDep`` for an
    endpoint served by ``shared.fast_routes``, which resolves no dependencies."""
    async with ctx.sessions() as session:
        yield session
    if session.info.pop("outbox_dirty", False):
        ctx.relay.wake()


async def get_session(ctx: ContextDep) -> AsyncIterator[AsyncSession]:
    async with session_of(ctx) as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


def bearer_token(request: Request) -> str | None:
    return bearer_of(request.headers.get("authorization", ""))


def bearer_of(header: str) -> str | None:
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    return token.strip()


async def get_principal(request: Request, ctx: ContextDep) -> Principal:
    token = bearer_token(request)
    if token is None:
        raise ApiError(401, "unauthorized", "Cần đăng nhập", headers={"WWW-Authenticate": "Bearer"})
    try:
        return await ctx.verifier.verify(token)
    except AuthError as exc:
        raise exc.api_error() from exc


async def get_optional_principal(request: Request, ctx: ContextDep) -> Principal | None:
    if bearer_token(request) is None:
        return None
    return await get_principal(request, ctx)


PrincipalDep = Annotated[Principal, Depends(get_principal)]
OptionalPrincipalDep = Annotated[Principal | None, Depends(get_optional_principal)]


def check_roles(principal: Principal, *roles: str) -> Principal:
    """The caller, unless they hold none of ``roles`` (operators hold all): then 403."""
    if principal.is_operator or principal.has(*roles):
        return principal
    raise ApiError(403, "forbidden", "Không có quyền thực hiện thao tác này")


def require_roles(*roles: str) -> Any:
    """A dependency answering 403 unless the caller holds one of ``roles`` (``check_roles``)."""

    async def dep(principal: PrincipalDep) -> Principal:
        return check_roles(principal, *roles)

    return Depends(dep)


# ---- /health, /metrics, dead letters -----------------------------------------------------------


def _plumbing_router(service: str) -> APIRouter:
    router = APIRouter()

    @router.get("/health", tags=["ops"])
    async def health(request: Request) -> JsonResponse:
        ctx: ServiceContext | None = getattr(request.app.state, "ctx", None)
        if ctx is None:
            return JsonResponse({"status": "starting", "service": service}, 503)
        checks: dict[str, bool] = {}
        try:
            async with ctx.engine.connect() as conn:
                await asyncio.wait_for(conn.execute(text("SELECT 1")), 2)
            checks["database"] = True
        except Exception:
            checks["database"] = False
        try:
            checks["broker"] = await asyncio.wait_for(ctx.bus.ping(), 2)
        except Exception:
            checks["broker"] = False
        if ctx.redis is not None:
            try:
                checks["redis"] = bool(await asyncio.wait_for(ctx.redis.ping(), 2))
            except Exception:
                checks["redis"] = False
        ok = all(checks.values())
        body: dict[str, Any] = {"status": "ok" if ok else "degraded", "service": service, "checks": checks}
        if ctx.consumer is not None:
            # Paused: a batch is held through an infrastructure fault (shared.messaging.Dispatcher).
            body["consumer"] = ctx.consumer.state()
            if ctx.consumer.paused:
                ok = False
                body["status"] = "degraded"
        return JsonResponse(body, 200 if ok else 503)

    @router.get("/metrics", tags=["ops"])
    async def metrics(request: Request) -> Response:
        return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    router.include_router(probes_router(service))

    @router.get(f"/api/v1/ops/{service}/status", tags=["ops"])
    async def status(request: Request, _op: Principal = require_roles("operator")) -> dict[str, Any]:
        """Queue depth and lag, dead letters waiting, outbox and pool, as last sampled (``sangkien ops``)."""
        signals: OperatorSignals = request.app.state.signals
        return signals.status()

    @router.get(f"/api/v1/ops/{service}/dead-letters", tags=["ops"])
    async def dead_letters(ctx: ContextDep, _op: Principal = require_roles("operator")) -> dict[str, Any]:
        letters = await ctx.bus.dead_letters(service)
        return {
            "items": [
                {"routing_key": d.routing_key, "reason": d.reason, "body": d.body.decode("utf-8", "replace")}
                for d in letters
            ]
        }

    @router.post(f"/api/v1/ops/{service}/dead-letters/replay", tags=["ops"])
    async def replay(ctx: ContextDep, _op: Principal = require_roles("operator")) -> dict[str, int]:
        return {"replayed": await ctx.bus.replay_dead_letters(service)}

    return router
