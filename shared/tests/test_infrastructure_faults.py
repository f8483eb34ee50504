"""Issue 14, finding 4 and "an infrastructure fault is not a poison message".

The database goes away for longer than the old five attempts took (~1 s): the consumer holds its
batch, pauses, says so on /health, and when the database is back every event is counted once and
nothing is dead-lettered. Only an event failing on its own reaches the dead letter. The outage is a
TCP proxy between the service and the real PostgreSQL, cut and restored (the server is shared).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.bus.memory import InMemoryBroker
from shared.bus.rabbitmq import RabbitMQBus
from shared.envelope import Envelope
from shared.messaging import Subscription
from shared.service import ServiceDefinition, create_app
from shared.settings import ServiceSettings
from shared.tcpproxy import proxy_for
from shared.testing import AMQP_URL, PG_ADMIN_DSN, amqp_prefix, auth, eventually, pg_database, running_app
from shared.tests.demo.app import CONSUMER, MIGRATIONS, PRODUCER, TOPOLOGY, counts, metadata


async def _count(client: object) -> int:
    r = await client.get("/api/v1/counts/noted", headers=auth("reviewer"))  # type: ignore[attr-defined]
    return int(r.json()["n"])


def _metric(text: str, name: str) -> float:
    """The sum of a metric's samples (0 when absent)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_a_transient_connection_error_is_retried_in_process_without_spending_a_delivery(
    tmp_path: Path,
) -> None:
    """A handler that fails twice with a connection error while the database answers: held and retried in the
    dispatcher; the event is counted once, never failed through the bus, never given back for redelivery."""
    attempts = 0

    async def flaky(session: AsyncSession, env: Envelope) -> None:
        nonlocal attempts
        attempts += 1
        if attempts <= 2:
            raise ConnectionResetError("connection reset by peer")
        await session.execute(update(counts).where(counts.c.key == "noted").values(n=counts.c.n + 1))
        if (await session.execute(counts.select())).first() is None:
            await session.execute(counts.insert().values(key="noted", n=1))

    definition = ServiceDefinition(
        name="demo_consumer",
        metadata=metadata,
        migrations=MIGRATIONS,
        routers=CONSUMER.routers,
        subscriptions=[Subscription("demo.noted.v1", flaky)],
    )
    broker = InMemoryBroker(TOPOLOGY, delivery_limit=2)
    settings = ServiceSettings(database_url=f"sqlite+aiosqlite:///{tmp_path}/c.db", log_json=False)
    app = create_app(definition, settings, broker=broker, topology=TOPOLOGY)
    async with running_app(app) as c:
        app.state.ctx.consumer.hold_backoff_s = (0.05, 0.1)
        env = Envelope(type="demo.noted", data={"text": "một lần"}, producer="t")
        await app.state.ctx.bus.publish([env])  # returns once the consumer acknowledged it
        assert attempts == 3
        assert await _count(c) == 1
        assert await app.state.ctx.bus.dead_letters("demo_consumer") == []
        metrics = (await c.get("/metrics")).text
        assert _metric(metrics, "sangkien_demo_consumer_events_failed_total") == 0
        health = (await c.get("/health")).json()
        assert health["consumer"] == {"state": "running"}


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    async with amqp_prefix(TOPOLOGY) as p:
        yield p


@pytest.mark.integration
async def test_a_database_outage_longer_than_the_retries_strands_nothing_in_dead_letters(prefix: str) -> None:
    async with pg_database() as cdb, proxy_for(cdb, 5432) as db_proxy:
        settings = ServiceSettings(
            database_url=db_proxy.url(cdb),
            amqp_url=AMQP_URL,
            amqp_prefix=prefix,
            delivery_limit=3,
            consumer_batch_size=10,
            log_json=False,
        )
        consumer = create_app(CONSUMER, settings, topology=TOPOLOGY)
        async with running_app(consumer) as c:
            dispatcher = consumer.state.ctx.consumer
            dispatcher.hold_backoff_s = (0.1, 0.5)
            bus = RabbitMQBus(AMQP_URL, prefix=prefix, topology=TOPOLOGY, delivery_limit=3, pack_size=1)
            await bus.start()
            try:
                await bus.publish([Envelope(type="demo.noted", data={"text": "trước"}, producer="t")])
                await eventually(lambda: _is(c, 1), timeout_s=20)

                await db_proxy.cut()
                events = [Envelope(type="demo.noted", data={"text": f"trong lúc {i}"}, producer="t") for i in range(25)]
                await bus.publish(events)

                async def paused() -> bool:
                    return dispatcher.paused

                await eventually(paused, timeout_s=20)
                health = await c.get("/health")
                assert health.status_code == 503
                body = health.json()
                assert body["checks"]["database"] is False
                assert body["consumer"]["state"] == "paused"
                assert body["consumer"]["reason"] == "database unreachable"
                # Several times longer than the old policy's five attempts (~1 s) took to dead-letter them.
                await asyncio.sleep(4)
                assert dispatcher.paused
                assert await bus.dead_letters("demo_consumer") == []

                await db_proxy.restore()
                await eventually(lambda: _is(c, 26), timeout_s=30)
                assert not dispatcher.paused
                assert (await c.get("/health")).json()["consumer"] == {"state": "running"}
                await asyncio.sleep(0.5)  # nothing more may arrive
                assert await _count(c) == 26
                assert await bus.dead_letters("demo_consumer") == []
                metrics = (await c.get("/metrics")).text
                assert _metric(metrics, "sangkien_demo_consumer_events_dead_lettered_total") == 0
                assert _metric(metrics, "sangkien_demo_consumer_events_failed_total") == 0
            finally:
                await bus.close()


async def _is(client: object, n: int) -> bool:
    return await _count(client) == n


@pytest.mark.integration
async def test_a_poison_event_still_reaches_the_dead_letter_after_the_limit_while_others_are_held(
    prefix: str,
) -> None:
    """The two policies side by side: the database is cut while a poison event and good ones wait; the good
    ones are held through the outage and counted; the poison one fails on its own once the database is back
    and is dead-lettered after the delivery limit."""
    async with pg_database() as cdb, proxy_for(cdb, 5432) as db_proxy:
        settings = ServiceSettings(
            database_url=db_proxy.url(cdb), amqp_url=AMQP_URL, amqp_prefix=prefix, delivery_limit=3, log_json=False
        )
        consumer = create_app(CONSUMER, settings, topology=TOPOLOGY)
        async with running_app(consumer) as c:
            consumer.state.ctx.consumer.hold_backoff_s = (0.1, 0.5)
            bus = RabbitMQBus(AMQP_URL, prefix=prefix, topology=TOPOLOGY, delivery_limit=3)
            await bus.start()
            try:
                await db_proxy.cut()
                poison = Envelope(type="demo.noted", data={"text": "poison"}, producer="t")
                good = [Envelope(type="demo.noted", data={"text": f"tốt {i}"}, producer="t") for i in range(8)]
                await bus.publish([good[0], poison, *good[1:]])
                await asyncio.sleep(2)
                await db_proxy.restore()
                await eventually(lambda: _is(c, 8), timeout_s=30)

                async def dead() -> bool:
                    return len(await bus.dead_letters("demo_consumer")) == 1

                await eventually(dead, timeout_s=30)
                [letter] = await bus.dead_letters("demo_consumer")
                assert Envelope.from_bytes(letter.body).id == poison.id
                metrics = (await c.get("/metrics")).text
                assert _metric(metrics, "sangkien_demo_consumer_events_dead_lettered_total") == 1
                assert await _count(c) == 8
            finally:
                await bus.close()


@pytest.mark.integration
async def test_requests_answer_503_not_500_while_the_database_is_unreachable(prefix: str) -> None:
    async with pg_database() as pdb, proxy_for(pdb, 5432) as db_proxy:
        settings = ServiceSettings(
            database_url=db_proxy.url(pdb), amqp_url=AMQP_URL, amqp_prefix=prefix, log_json=False
        )
        producer = create_app(PRODUCER, settings, topology=TOPOLOGY)
        async with running_app(producer) as p:
            assert (await p.post("/api/v1/notes", json={"text": "trước"}, headers=auth("member"))).status_code == 201
            await db_proxy.cut()
            r = await p.post("/api/v1/notes", json={"text": "trong lúc"}, headers=auth("member"))
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "unavailable" and r.headers["retry-after"]
            await db_proxy.restore()
            r = await p.post("/api/v1/notes", json={"text": "sau"}, headers=auth("member"))
            assert r.status_code == 201


@pytest.mark.integration
async def test_a_pooled_connection_whose_server_process_died_costs_at_most_one_503(prefix: str) -> None:
    """The pool does not ping a connection before lending it (shared.db: three round trips each time). One whose
    PostgreSQL process was ended while it sat in the pool fails its first statement: that request answers 503 (or
    201, if it got a fresh connection), the pool is invalidated, and the requests after it are served."""
    async with pg_database() as pdb:
        settings = ServiceSettings(database_url=pdb, amqp_url=AMQP_URL, amqp_prefix=prefix, log_json=False)
        producer = create_app(PRODUCER, settings, topology=TOPOLOGY)
        async with running_app(producer) as p:
            for n in range(3):
                r = await p.post("/api/v1/notes", json={"text": f"trước {n}"}, headers=auth("member"))
                assert r.status_code == 201, r.text
            admin = await asyncpg.connect(PG_ADMIN_DSN)
            try:
                ended = await admin.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = $1 AND pid <> pg_backend_pid()",
                    pdb.rsplit("/", 1)[1],
                )
            finally:
                await admin.close()
            assert ended >= 1
            first = await p.post("/api/v1/notes", json={"text": "sau 0"}, headers=auth("member"))
            assert first.status_code in (201, 503), first.text
            for n in range(1, 4):
                r = await p.post("/api/v1/notes", json={"text": f"sau {n}"}, headers=auth("member"))
                assert r.status_code == 201, (n, r.text)
