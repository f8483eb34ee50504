"""What an operator watches besides request counters: consumer lag, outbox age, dead letters, pool use.

Each service gets ``sangkien_<service>_*`` gauges, sampled by a background task every
``OPS_SAMPLE_INTERVAL_S`` (default 5 s) and read at scrape time, so a scrape never waits for the
broker or the database:

- the broker's view of the service's queue (messages ready, consumers) and of its dead-letter
  queue, through a passive ``queue.declare`` on a connection of its own;
- this process's view of its consumer: events received and not yet settled, and the age (from the
  event's ``occurred_at``) of the oldest of them, which is the oldest unhandled event whenever the
  consumer is busy or stuck (the broker keeps a queue in order, so what waits behind is newer);
- the outbox: rows waiting and the age of the oldest (two primary-key reads);
- the database pool: connections in use, its capacity, and checkouts that had to wait.

A passive declare tells messages *ready* only; the unacknowledged ones are held by consumers, so
each replica reports its own and Prometheus sums them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Table, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.bus.base import BatchHandler, Delivery

log = logging.getLogger("shared.operations")


@dataclass(slots=True)
class QueueDepth:
    ready: int
    consumers: int
    dead_letters: int


class QueueProbe(Protocol):
    async def depth(self, service: str) -> QueueDepth: ...

    async def close(self) -> None: ...


class RabbitQueueProbe:
    """Depths from RabbitMQ by passive declares, on a connection apart from the bus's own."""

    def __init__(self, url: str, prefix: str = "") -> None:
        self.url = url
        self.prefix = prefix
        self._connection: Any = None

    async def depth(self, service: str) -> QueueDepth:
        import aio_pika

        from shared.topology import dead_letter_queue_name, queue_name

        if self._connection is None or self._connection.is_closed:
            self._connection = await aio_pika.connect_robust(
                self.url, client_properties={"connection_name": f"sangkien-ops-{service}"}
            )
        async with self._connection.channel() as channel:
            queue = await channel.declare_queue(queue_name(service, self.prefix), passive=True)
            dlq = await channel.declare_queue(dead_letter_queue_name(service, self.prefix), passive=True)
            ok, dead = queue.declaration_result, dlq.declaration_result
            return QueueDepth(ok.message_count or 0, ok.consumer_count or 0, dead.message_count or 0)

    async def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()
            self._connection = None


class MemoryQueueProbe:
    """Depths of the in-process broker (embedded mode); dead letters as the bus keeps them (its store)."""

    def __init__(self, bus: Any) -> None:
        self.bus = bus
        self.broker = bus.broker

    async def depth(self, service: str) -> QueueDepth:
        queue = self.broker.queues.get(service)
        consumers = 1 if service in self.broker.consuming else 0
        dead = await self.bus.dead_letter_count(service)
        return QueueDepth(queue.qsize() if queue else 0, consumers, dead)

    async def close(self) -> None:
        return None


def probe_for(bus: Any) -> QueueProbe | None:
    """The probe matching a bus: RabbitMQ by its URL and prefix, the in-process broker by itself."""
    from shared.bus.memory import InMemoryBus

    if isinstance(bus, InMemoryBus):
        return MemoryQueueProbe(bus)
    url = getattr(bus, "url", None)
    if isinstance(url, str) and url.startswith("amqp"):
        return RabbitQueueProbe(url, getattr(bus, "prefix", ""))
    return None


class PoolMeter:
    """Counts checkouts of a SQLAlchemy QueuePool that found every connection taken, and their wait.

    The pool has no event before a checkout, so its ``_do_get`` is wrapped on this one instance."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.pool = engine.sync_engine.pool
        self.waits = 0
        self.wait_seconds = 0.0
        self.metered = hasattr(self.pool, "checkedout") and hasattr(self.pool, "_do_get")
        if self.metered:
            original = self.pool._do_get

            def timed_get() -> Any:
                if self.pool.checkedout() < self.capacity():
                    return original()
                start = time.perf_counter()
                try:
                    return original()
                finally:
                    self.waits += 1
                    self.wait_seconds += time.perf_counter() - start

            self.pool._do_get = timed_get

    def capacity(self) -> int:
        return int(self.pool.size()) + max(0, int(getattr(self.pool, "_max_overflow", 0)))

    def in_use(self) -> int:
        return int(self.pool.checkedout()) if self.metered else 0


class ConsumerWatch:
    """Wraps a service's batch handler: which events this process holds, and since when they occurred."""

    def __init__(self, handler: BatchHandler) -> None:
        self.handler = handler
        self.held = 0
        self._oldest: dict[int, float] = {}  # per batch in flight: the earliest occurred_at (epoch seconds)
        self.handled = 0

    async def __call__(self, deliveries: Sequence[Delivery]) -> None:
        key = id(deliveries)
        stamps = [d.envelope.occurred_at for d in deliveries if d.envelope is not None]
        # ISO 8601 in UTC sorts as text: parse only the earliest.
        self._oldest[key] = _epoch(min(stamps)) if stamps else time.time()
        self.held += len(deliveries)
        try:
            await self.handler(deliveries)
        finally:
            self.held -= len(deliveries)
            self.handled += len(deliveries)
            self._oldest.pop(key, None)

    def oldest_age_s(self) -> float:
        if not self._oldest:
            return 0.0
        return max(0.0, time.time() - min(self._oldest.values()))


def _epoch(stamp: str) -> float:
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return time.time()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


@dataclass(slots=True)
class _Sample:
    ready: float = 0.0
    consumers: float = 0.0
    dead_letters: float = 0.0
    outbox_rows: float = 0.0
    outbox_oldest_age_s: float = 0.0
    broker_ok: bool = False


class OperatorSignals(Collector):
    """The ``sangkien_<service>_*`` gauges of this module, registered on the service's registry."""

    def __init__(self, service: str, registry: CollectorRegistry) -> None:
        self.service = service
        self.sample = _Sample()
        self.watch: ConsumerWatch | None = None
        self.pool: PoolMeter | None = None
        self.probe: QueueProbe | None = None
        self.outbox: Table | None = None
        self.engine: AsyncEngine | None = None
        self.draining = False
        self.sampled_at = 0.0
        registry.register(self)

    def describe(self) -> list[Any]:
        return []  # families are known only once the service runs; no checks at registration

    def attach(
        self,
        *,
        engine: AsyncEngine,
        outbox: Table,
        probe: QueueProbe | None,
        watch: ConsumerWatch | None,
    ) -> None:
        self.engine, self.outbox, self.probe, self.watch = engine, outbox, probe, watch
        self.pool = PoolMeter(engine)

    def collect(self) -> Iterator[Any]:
        svc = self.service
        s = self.sample

        def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
            family = GaugeMetricFamily(f"sangkien_{svc}_{name}", doc, labels=["service"])
            family.add_metric([svc], value)
            return family

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            family = CounterMetricFamily(f"sangkien_{svc}_{name}", doc, labels=["service"])
            family.add_metric([svc], value)
            return family

        if self.probe is not None:
            yield gauge("queue_messages_ready", "Messages waiting in the service's queue (broker)", s.ready)
            yield gauge("queue_consumers", "Consumers of the service's queue (broker)", s.consumers)
            yield gauge("dead_letter_messages", "Messages waiting in the service's dead-letter queue", s.dead_letters)
            yield gauge("broker_up", "1 when the last sample reached the broker", 1.0 if s.broker_ok else 0.0)
        if self.watch is not None:
            yield gauge(
                "consumer_unacked_events", "Events this process received and has not yet settled", self.watch.held
            )
            yield gauge(
                "consumer_oldest_unhandled_age_seconds",
                "Age (since it occurred) of the oldest event this process holds unhandled",
                self.watch.oldest_age_s(),
            )
            yield counter("consumer_handled_events_total", "Events handed to the dispatcher", self.watch.handled)
        if self.engine is not None:
            yield gauge("outbox_rows", "Outbox rows waiting to be published", s.outbox_rows)
            yield gauge("outbox_oldest_age_seconds", "Age of the oldest outbox row waiting", s.outbox_oldest_age_s)
        if self.pool is not None and self.pool.metered:
            yield gauge("db_pool_connections_in_use", "Database connections checked out", self.pool.in_use())
            yield gauge("db_pool_connections_max", "Database pool capacity (size + overflow)", self.pool.capacity())
            yield counter("db_pool_waits_total", "Checkouts that found every connection taken", self.pool.waits)
            yield counter(
                "db_pool_wait_seconds_total", "Time spent waiting for a database connection", self.pool.wait_seconds
            )
        yield gauge("draining", "1 while the service shuts down (stops taking work)", 1.0 if self.draining else 0.0)
        yield gauge("ops_sampled_timestamp_seconds", "When the operator signals were last sampled", self.sampled_at)

    async def sample_once(self) -> None:
        if self.probe is not None:
            try:
                depth = await asyncio.wait_for(self.probe.depth(self.service), 5)
                self.sample.ready, self.sample.consumers = depth.ready, depth.consumers
                self.sample.dead_letters = depth.dead_letters
                self.sample.broker_ok = True
            except Exception as exc:
                self.sample.broker_ok = False
                log.debug("queue depth not sampled", extra={"error": repr(exc)})
        if self.engine is not None and self.outbox is not None:
            try:
                rows, age = await asyncio.wait_for(outbox_status(self.engine, self.outbox), 5)
                self.sample.outbox_rows, self.sample.outbox_oldest_age_s = rows, age
            except Exception as exc:
                log.debug("outbox not sampled", extra={"error": repr(exc)})
        self.sampled_at = time.time()

    async def run(self, interval_s: float) -> None:
        while True:
            await self.sample_once()
            await asyncio.sleep(interval_s)

    def status(self) -> dict[str, Any]:
        """What ``GET /api/v1/ops/<service>/status`` answers (and ``sangkien ops`` prints)."""
        s = self.sample
        return {
            "service": self.service,
            "queue": {
                "ready": int(s.ready),
                "consumers": int(s.consumers),
                "unacked_here": self.watch.held if self.watch else 0,
                "oldest_unhandled_age_s": round(self.watch.oldest_age_s(), 3) if self.watch else 0.0,
                "broker_reached": s.broker_ok,
            },
            "dead_letters": int(s.dead_letters),
            "outbox": {"rows": int(s.outbox_rows), "oldest_age_s": round(s.outbox_oldest_age_s, 3)},
            "db_pool": {
                "in_use": self.pool.in_use() if self.pool else 0,
                "max": self.pool.capacity() if self.pool and self.pool.metered else 0,
                "waits": self.pool.waits if self.pool else 0,
            },
            "draining": self.draining,
            "sampled_at": datetime.fromtimestamp(self.sampled_at, UTC).isoformat() if self.sampled_at else None,
        }

    async def close(self) -> None:
        if self.probe is not None:
            await self.probe.close()


async def outbox_status(engine: AsyncEngine, outbox: Table) -> tuple[int, float]:
    """Rows waiting (PostgreSQL: the span of their ids, an upper bound, as the relay reports) and the
    oldest row's age in seconds; both from the primary key's two ends, never a scan."""
    ids = outbox.c.id
    async with engine.connect() as conn:
        first = (await conn.execute(select(ids, outbox.c.created_at).order_by(ids).limit(1))).first()
        if first is None:
            return 0, 0.0
        if engine.dialect.name == "postgresql":
            last = (await conn.execute(select(func.max(ids)))).scalar_one()
            rows = int(last) - int(first.id) + 1
        else:
            rows = int((await conn.execute(select(func.count()).select_from(outbox))).scalar_one())
    created = first.created_at
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return rows, max(0.0, (datetime.now(UTC) - created).total_seconds())


async def drain(
    stop_consuming: Callable[[float], Awaitable[bool]] | None,
    engine: AsyncEngine,
    outbox: Table,
    wake_relay: Callable[[], None],
    deadline_s: float,
    *,
    can_publish: Callable[[], Awaitable[bool]] | None = None,
) -> dict[str, Any]:
    """Stop consuming (the current batch is finished and settled), then let the relay empty the outbox.

    Answers what was left: ``consumer_settled`` and ``outbox_rows``; bounded by ``deadline_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_s
    settled = True
    if stop_consuming is not None:
        try:
            settled = await stop_consuming(max(0.1, deadline - loop.time()))
        except Exception:
            log.exception("could not stop consuming cleanly")
            settled = False
    rows = 0
    while loop.time() < deadline:
        try:
            rows, _ = await outbox_status(engine, outbox)
        except Exception:
            log.exception("outbox not readable while draining")
            break
        if rows == 0:
            break
        if can_publish is not None and not await can_publish():
            break  # the relay cannot publish (broker away, relay paused): the rows wait for the next start
        wake_relay()
        await asyncio.sleep(0.05)
    return {"consumer_settled": settled, "outbox_rows": rows}


def probes_router(service: str) -> APIRouter:
    """``/health/live`` and ``/health/ready`` for an orchestrator, beside the detailed ``/health``.

    Live: the process answers (a restart would not help anything else). Ready: it takes work, that is, it
    has started, is not shutting down, and reaches its database and broker; Redis is not needed to serve."""
    router = APIRouter()

    @router.get("/health/live", tags=["ops"])
    async def live() -> JSONResponse:
        return JSONResponse({"status": "ok", "service": service})

    @router.get("/health/ready", tags=["ops"])
    async def ready(request: Request) -> JSONResponse:
        ctx = getattr(request.app.state, "ctx", None)
        signals: OperatorSignals | None = getattr(request.app.state, "signals", None)
        if ctx is None:
            return JSONResponse({"status": "starting", "service": service}, 503)
        if signals is not None and signals.draining:
            return JSONResponse({"status": "draining", "service": service}, 503)
        checks = {"database": await _reaches_database(ctx.engine), "broker": await _answers(ctx.bus.ping)}
        ok = all(checks.values())
        body = {"status": "ok" if ok else "unready", "service": service, "checks": checks}
        return JSONResponse(body, 200 if ok else 503)

    return router


async def _reaches_database(engine: AsyncEngine) -> bool:
    async def select_one() -> bool:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True

    return await _answers(select_one)


async def _answers(probe: Callable[[], Awaitable[bool]], timeout_s: float = 2.0) -> bool:
    try:
        return bool(await asyncio.wait_for(probe(), timeout_s))
    except Exception:
        return False
