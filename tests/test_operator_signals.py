"""Issue 17 (1): the signals an operator needs, on every service's /metrics, the probes and ops status.

Embedded mode (SQLite, the in-process bus): the walking skeleton runs, then each service's metrics
are read and checked for the figures that matter, not merely for their names."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from sangkien_cli import build_embedded
from shared.bus.base import OutgoingMessage
from shared.operations import ConsumerWatch
from shared.testing import auth, eventually
from tests.flow import embedded_system, walking_skeleton

SERVICES = ("intake", "review", "tally", "awards")
APPS: dict[str, FastAPI] = {}


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    hits = [v for (n, ls), v in found.items() if n == name and want <= ls]
    assert hits, f"{name} {labels} not exposed"
    return sum(hits)


@contextlib.asynccontextmanager
async def embedded(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, httpx.AsyncClient]]]:
    """The system embedded; the gateway's client and one client on each service."""
    async with embedded_system(tmp_path, ops_sample_interval_s=0.2) as (gw, apps):
        APPS.clear()
        APPS.update(apps)
        async with contextlib.AsyncExitStack() as stack:
            clients = {
                name: await stack.enter_async_context(
                    httpx.AsyncClient(transport=httpx.ASGITransport(app=apps[name]), base_url=f"http://{name}")
                )
                for name in SERVICES
            }
            yield gw, clients


async def test_every_service_exposes_lag_outbox_dead_letters_pool_and_business_rates(tmp_path: Path) -> None:
    async with embedded(tmp_path) as (gw, services):
        await walking_skeleton(gw)

        async def all_handled() -> bool:  # the skeleton's last events may still be in a consumer's hands
            return all(APPS[name].state.signals.watch.held == 0 for name in SERVICES)

        await eventually(all_handled, timeout_s=10)
        for client in services.values():
            await client.get("/metrics")  # counted once answered: the second read shows the first
        texts = {name: (await client.get("/metrics")).text for name, client in services.items()}
        texts["gateway"] = (await gw.get("/metrics")).text
        for name in SERVICES:
            found = samples(texts[name])
            for gauge in (
                "queue_messages_ready",
                "queue_consumers",
                "dead_letter_messages",
                "consumer_unacked_events",
                "consumer_oldest_unhandled_age_seconds",
                "outbox_rows",
                "outbox_oldest_age_seconds",
                "db_pool_connections_in_use",
                "db_pool_connections_max",
            ):
                assert value(found, f"sangkien_{name}_{gauge}", service=name) >= 0
            # Every consumer is listening, nothing is stuck, nothing waits in the outbox or as a dead letter.
            assert value(found, f"sangkien_{name}_queue_consumers") == 1
            assert value(found, f"sangkien_{name}_dead_letter_messages") == 0
            assert value(found, f"sangkien_{name}_consumer_unacked_events") == 0
            assert value(found, f"sangkien_{name}_db_pool_connections_max") >= 1
            assert value(found, f"sangkien_{name}_draining") == 0
            # The request metrics under the service's own name only.
            assert value(found, f"sangkien_{name}_http_requests_total", route="/metrics", status="200") >= 1
            assert "sangkien_http_requests_total" not in texts[name]
        for name, text in texts.items():
            # Every metric of every service is sangkien_<service>_*, and every sample says whose it is.
            stray = {n for n, labels in samples(text) if not n.startswith(f"sangkien_{name}_")}
            unlabelled = {n for n, labels in samples(text) if ("service", name) not in labels}
            assert stray == set() and unlabelled == set(), (name, stray, unlabelled)
        tally = samples(texts["tally"])
        assert value(tally, "sangkien_tally_events_consumed_total", type="initiative.submitted") == 1
        # Business rates per province: the skeleton's one initiative in Thanh Hóa, submitted and valid.
        assert value(tally, "sangkien_tally_initiatives_submitted_total", province="TH") == 1
        assert value(tally, "sangkien_tally_initiatives_decided_total", province="TH", outcome="valid") == 1
        intake = samples(texts["intake"])
        assert value(intake, "sangkien_intake_initiatives_accepted_total") == 1
        assert value(intake, "sangkien_intake_events_published_total", type="initiative.submitted") == 1
        gateway = samples(texts["gateway"])
        assert value(gateway, "sangkien_gateway_http_requests_total") > 0


async def test_dead_letters_and_consumer_lag_show_on_metrics(tmp_path: Path) -> None:
    """A poison message shows as a waiting dead letter; a batch held in a handler shows its age."""
    async with embedded(tmp_path) as (_gw, services):
        tally_app = APPS["tally"]
        await tally_app.state.ctx.bus.publish_raw([OutgoingMessage("x", "initiative.submitted.v1", b"not json")])
        await tally_app.state.signals.sample_once()
        found = samples((await services["tally"].get("/metrics")).text)
        assert value(found, "sangkien_tally_dead_letter_messages") == 1

        # The watch reports the oldest event it holds while a batch is in a handler.
        release = asyncio.Event()

        async def slow(_deliveries: object) -> None:
            await release.wait()

        watch = ConsumerWatch(slow)

        class _Held:
            envelope = type("E", (), {"occurred_at": "2020-01-01T00:00:00+00:00"})()

        task = asyncio.create_task(watch([_Held(), _Held()]))  # type: ignore[list-item]
        await asyncio.sleep(0.01)
        assert watch.held == 2 and watch.oldest_age_s() > 3600 * 24 * 365
        release.set()
        await task
        assert watch.held == 0 and watch.oldest_age_s() == 0


@pytest.mark.parametrize("service", SERVICES)
async def test_live_and_ready_probes(tmp_path: Path, service: str) -> None:
    app = build_embedded(tmp_path)[1][service]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        assert (await client.get("/health/live")).status_code == 200
        assert (await client.get("/health/ready")).json()["status"] == "starting"
        async with app.router.lifespan_context(app):
            ready = await client.get("/health/ready")
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"] == {"database": True, "broker": True}
            app.state.ctx.bus.broker.available = False
            assert (await client.get("/health/ready")).status_code == 503
            assert (await client.get("/health/live")).status_code == 200
            app.state.ctx.bus.broker.available = True
            app.state.signals.draining = True
            assert (await client.get("/health/ready")).json()["status"] == "draining"
            app.state.signals.draining = False


async def test_ops_status_through_the_gateway_for_operators_only(tmp_path: Path) -> None:
    async with embedded(tmp_path) as (gw, _services):
        await walking_skeleton(gw)
        for service in SERVICES:

            async def settled(service: str = service) -> bool:
                # Sampled every 0.2 s: the skeleton's last events may still be on their way.
                resp = await gw.get(f"/api/v1/ops/{service}/status", headers=auth("operator", "VN"))
                assert resp.status_code == 200, resp.text
                body = resp.json()
                assert body["service"] == service and re.match(r"\d{4}-", body["sampled_at"])
                return body["queue"]["consumers"] == 1 and body["dead_letters"] == 0 and body["outbox"]["rows"] == 0

            await eventually(settled, timeout_s=10)
            denied = await gw.get(f"/api/v1/ops/{service}/status", headers=auth("reviewer", "VN"))
            assert denied.status_code == 403


async def test_gateway_live_and_ready_probes(tmp_path: Path) -> None:
    gateway = build_embedded(tmp_path)[0]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gw") as client:
        assert (await client.get("/health/live")).status_code == 200
        assert (await client.get("/health/ready")).status_code == 503  # not started
        async with gateway.router.lifespan_context(gateway):
            assert (await client.get("/health/ready")).status_code == 200
        assert (await client.get("/health/ready")).status_code == 503  # stopped


async def test_pool_meter_counts_checkouts_that_wait(tmp_path: Path) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from shared.operations import PoolMeter

    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path}/pool.db", pool_size=1, max_overflow=0)
    meter = PoolMeter(engine)
    try:
        assert meter.metered and meter.capacity() == 1
        holding = asyncio.Event()

        async def hold() -> None:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
                holding.set()
                await asyncio.sleep(0.3)

        async def wait_for_it() -> None:
            await holding.wait()
            assert meter.in_use() == 1
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))

        await asyncio.gather(hold(), wait_for_it())
        assert meter.waits == 1 and meter.wait_seconds >= 0.2
        assert meter.in_use() == 0
    finally:
        await engine.dispose()


@pytest.mark.integration
async def test_rabbitmq_probe_reads_ready_consumers_and_dead_letters() -> None:
    import aio_pika

    from shared.bus.rabbitmq import RabbitMQBus
    from shared.operations import RabbitQueueProbe, probe_for
    from shared.testing import AMQP_URL, amqp_prefix
    from shared.topology import dead_letter_queue_name

    async with amqp_prefix() as prefix:
        bus = RabbitMQBus(AMQP_URL, prefix=prefix)
        await bus.start()  # declares the topology; nobody consumes
        probe = probe_for(bus)
        assert isinstance(probe, RabbitQueueProbe)
        try:
            await bus.publish_raw([OutgoingMessage(f"e{n}", "initiative.submitted.v1", b"{}") for n in range(3)])
            connection = await aio_pika.connect(AMQP_URL)
            async with connection, connection.channel() as channel:
                await channel.default_exchange.publish(
                    aio_pika.Message(b"dead"), routing_key=dead_letter_queue_name("tally", prefix)
                )
            depth = await probe.depth("tally")
            # three events published together travel as one pack: one message ready
            assert (depth.ready, depth.consumers, depth.dead_letters) == (1, 0, 1)
            assert (await probe.depth("intake")).ready == 0  # intake does not take initiative.submitted
        finally:
            await probe.close()
            await bus.close()
