"""The plumbing against the real RabbitMQ and PostgreSQL on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aio_pika
import orjson
import pytest
from sqlalchemy import func, select

from shared.bus.base import Delivery
from shared.bus.rabbitmq import PACK_CONTENT_TYPE, RabbitMQBus
from shared.envelope import Envelope
from shared.service import create_app
from shared.settings import ServiceSettings
from shared.testing import AMQP_URL, amqp_prefix, auth, eventually, pg_database, running_app
from shared.tests.demo.app import CONSUMER, PRODUCER, TOPOLOGY, outbox
from shared.topology import QUEUES, queue_name

pytestmark = pytest.mark.integration

DEMO_COUNT = 'sangkien_demo_consumer_events_{}_total{{service="demo_consumer",type="demo.noted"}} {}'


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    async with amqp_prefix(TOPOLOGY) as p:
        yield p


def _settings(url: str, prefix: str) -> ServiceSettings:
    return ServiceSettings(
        database_url=url,
        amqp_url=AMQP_URL,
        amqp_prefix=prefix,
        delivery_limit=3,
        outbox_poll_interval_s=0.05,
        log_json=False,
    )


async def _messages_left(service: str, prefix: str) -> int:
    """Ready or unacknowledged messages of a queue, seen from a fresh connection (0: every one settled)."""
    conn = await aio_pika.connect(AMQP_URL)
    async with conn, conn.channel() as channel:
        q = await channel.declare_queue(queue_name(service, prefix), passive=True)
        return int(q.declaration_result.message_count or 0)


async def _count(client: object) -> int:
    r = await client.get("/api/v1/counts/noted", headers=auth("reviewer"))  # type: ignore[attr-defined]
    return int(r.json()["n"])


async def test_outbox_survives_a_broken_path_to_the_broker_and_delivers_exactly_once(prefix: str) -> None:
    async with pg_database() as pdb, pg_database() as cdb:
        producer = create_app(PRODUCER, _settings(pdb, prefix), topology=TOPOLOGY)
        consumer = create_app(CONSUMER, _settings(cdb, prefix), topology=TOPOLOGY)
        async with running_app(producer) as p, running_app(consumer) as c:
            ctx = producer.state.ctx
            # Cut the path: close the producer's broker connection and stop the relay.
            ctx.relay.paused = True
            await ctx.bus.close()
            for i in range(3):
                r = await p.post("/api/v1/notes", json={"text": f"trong lúc mất kết nối {i}"}, headers=auth("member"))
                assert r.status_code == 201
            await asyncio.sleep(0.3)
            assert await _count(c) == 0
            async with ctx.engine.connect() as conn:
                assert (await conn.execute(select(func.count()).select_from(outbox))).scalar_one() == 3
            # A publish attempt on the dead path fails and leaves the rows in place.
            with pytest.raises(ConnectionError):
                await ctx.relay.publish_once()
            # Restore the path.
            await ctx.bus.start()
            ctx.relay.paused = False
            ctx.relay.wake()

            async def three() -> bool:
                return await _count(c) == 3

            await eventually(three)
            await asyncio.sleep(0.5)  # nothing more may arrive
            assert await _count(c) == 3
            async with ctx.engine.connect() as conn:
                assert (await conn.execute(select(func.count()).select_from(outbox))).scalar_one() == 0
            metrics = (await p.get("/metrics")).text
            assert (
                'sangkien_demo_producer_events_published_total{service="demo_producer",type="demo.noted"} 3.0'
                in metrics
            )


async def test_same_event_delivered_twice_is_counted_once(prefix: str) -> None:
    async with pg_database() as cdb:
        consumer = create_app(CONSUMER, _settings(cdb, prefix), topology=TOPOLOGY)
        async with running_app(consumer) as c:
            bus = RabbitMQBus(AMQP_URL, prefix=prefix, topology=TOPOLOGY, delivery_limit=3)
            await bus.start()
            try:
                env = Envelope(type="demo.noted", data={"text": "một lần"}, producer="test")
                await bus.publish([env])
                await bus.publish([env])
                marker = Envelope(type="demo.noted", data={"text": "marker"}, producer="test")
                await bus.publish([marker])

                async def two() -> bool:
                    return await _count(c) == 2

                await eventually(two)
                await asyncio.sleep(0.3)
                assert await _count(c) == 2
                metrics = (await c.get("/metrics")).text
                assert (
                    'sangkien_demo_consumer_events_duplicate_total{service="demo_consumer",type="demo.noted"} 1.0'
                    in metrics
                )
            finally:
                await bus.close()


async def test_poison_message_goes_to_dead_letter_queue_after_delivery_limit(prefix: str) -> None:
    async with pg_database() as cdb:
        consumer = create_app(CONSUMER, _settings(cdb, prefix), topology=TOPOLOGY)
        async with running_app(consumer) as c:
            bus = RabbitMQBus(AMQP_URL, prefix=prefix, topology=TOPOLOGY, delivery_limit=3)
            await bus.start()
            try:
                poison = Envelope(type="demo.noted", data={"text": "poison"}, producer="test")
                good = [Envelope(type="demo.noted", data={"text": f"tốt {i}"}, producer="test") for i in range(10)]
                await bus.publish([poison, *good])

                async def all_good() -> bool:
                    return await _count(c) == 10

                await eventually(all_good, timeout_s=20)

                async def dead() -> bool:
                    return len(await bus.dead_letters("demo_consumer")) == 1

                await eventually(dead, timeout_s=20)
                [letter] = await bus.dead_letters("demo_consumer")
                assert Envelope.from_bytes(letter.body).id == poison.id
                metrics = (await c.get("/metrics")).text
                assert (
                    'sangkien_demo_consumer_events_failed_total{service="demo_consumer",type="demo.noted"} 3.0'
                    in metrics
                )
                assert (
                    'sangkien_demo_consumer_events_dead_lettered_total{service="demo_consumer",type="demo.noted"} 1.0'
                    in metrics
                )
                # An operator can replay it; it fails again and returns to the dead-letter queue.
                replay = await c.post("/api/v1/ops/demo_consumer/dead-letters/replay", headers=auth("operator"))
                assert replay.json() == {"replayed": 1}
                await eventually(dead, timeout_s=20)
                assert await _count(c) == 10
            finally:
                await bus.close()


@pytest.mark.parametrize("pack_size", [1, 100])
async def test_an_unreadable_payload_is_dead_lettered_at_once_with_its_reason(prefix: str, pack_size: int) -> None:
    """Alone (a broker's reject cannot carry a reason: it is published to the dead-letter queue with it) or in a
    pack (split out of it): no retry, the reason kept, and the rest of the batch counted exactly once."""
    async with pg_database() as cdb:
        consumer = create_app(CONSUMER, _settings(cdb, prefix), topology=TOPOLOGY)
        async with running_app(consumer) as c:
            bus = RabbitMQBus(AMQP_URL, prefix=prefix, topology=TOPOLOGY, delivery_limit=3, pack_size=pack_size)
            await bus.start()
            try:
                missing = Envelope(type="demo.noted", data={"note_id": 7}, producer="test")
                good = [Envelope(type="demo.noted", data={"text": f"tốt {i}"}, producer="test") for i in range(10)]
                await bus.publish([*good[:4], missing, *good[4:]])

                async def settled() -> bool:
                    return await _count(c) == 10 and len(await bus.dead_letters("demo_consumer")) == 1

                await eventually(settled, timeout_s=20)
                await asyncio.sleep(0.3)  # nothing more may arrive
                assert await _count(c) == 10
                [letter] = await bus.dead_letters("demo_consumer")
                assert Envelope.from_bytes(letter.body).id == missing.id
                assert letter.reason == "invalid payload (Noted): text: Field required"
                metrics = (await c.get("/metrics")).text
                assert DEMO_COUNT.format("failed", "1.0") in metrics
                assert DEMO_COUNT.format("dead_lettered", "1.0") in metrics
                assert DEMO_COUNT.format("consumed", "10.0") in metrics
                dl = await c.get("/api/v1/ops/demo_consumer/dead-letters", headers=auth("operator"))
                assert [item["reason"] for item in dl.json()["items"]] == [letter.reason]
            finally:
                await bus.close()
    assert await _messages_left("demo_consumer", prefix) == 0


@pytest.mark.parametrize("pack_size", [1, 100])
async def test_batch_acknowledgement_settles_every_message_once(prefix: str, pack_size: int) -> None:
    """Acks of a batch go out as one multiple-ack: messages retried or dead-lettered within the batch keep
    their own fate, and nothing is left unacknowledged or acknowledged twice. With packs, the events of a
    pack that were retried or dead-lettered are split out of it and keep their count of deliveries."""
    topology = {"sink": ("bench.thing.v1",)}
    bus = RabbitMQBus(AMQP_URL, prefix=prefix, prefetch=50, topology=topology, pack_size=pack_size)
    await bus.start()
    try:
        seen: list[tuple[int, int]] = []  # (message number, delivery count)
        done = asyncio.Event()

        async def handler(batch: list[Delivery]) -> None:
            for d in batch:
                assert d.envelope is not None
                n = int(d.envelope.data["n"])
                seen.append((n, d.delivery_count))
                if n % 10 == 3 and d.delivery_count == 1:
                    await d.retry()  # comes back once, then acked
                elif n % 10 == 7:
                    await d.dead_letter()
                else:
                    await d.ack()
            if len({n for n, _ in seen}) == 120 and len(seen) == 132:
                done.set()

        await bus.publish([Envelope(type="bench.thing", data={"n": i}, producer="t") for i in range(120)])
        await bus.consume("sink", handler, batch_size=25, batch_wait_s=0.01)
        await asyncio.wait_for(done.wait(), 20)
        await asyncio.sleep(0.3)
        assert sorted(c for _, c in seen).count(2) == 12
        dead = await bus.dead_letters("sink", limit=50)
        assert sorted(int(Envelope.from_bytes(d.body).data["n"]) for d in dead) == list(range(7, 120, 10))
    finally:
        await bus.close()
    assert await _messages_left("sink", prefix) == 0
    cleanup = RabbitMQBus(AMQP_URL, prefix=prefix, topology=topology)
    await cleanup.delete_topology()


async def test_events_published_together_travel_as_packs_and_arrive_once_each(prefix: str) -> None:
    topology = {"sink": ("bench.thing.v1", "bench.other.v1")}
    bus = RabbitMQBus(AMQP_URL, prefix=prefix, topology=topology, pack_size=100)
    await bus.start()
    try:
        name = "Nguyễn Thị Ánh"
        things = [Envelope(type="bench.thing", data={"n": i, "tên": name}, producer="t") for i in range(250)]
        others = [Envelope(type="bench.other", data={"n": i}, producer="t") for i in range(3)]
        await bus.publish([*things, *others])
        # On the wire: four messages (100 + 100 + 50 things, 3 others), each a JSON array of envelopes.
        conn = await aio_pika.connect(AMQP_URL)
        async with conn, conn.channel() as channel:
            q = await channel.get_queue(queue_name("sink", prefix))
            held = []
            for _ in range(4):  # held unacknowledged, so each get returns the next message
                msg = await q.get(no_ack=False, fail=False)
                assert msg is not None
                held.append(msg)
            assert await q.get(no_ack=False, fail=False) is None
            assert {m.content_type for m in held} == {PACK_CONTENT_TYPE}
            sizes = sorted((m.type, len(orjson.loads(m.body))) for m in held)
            for m in held:
                await m.nack(requeue=True)
        assert sizes == [
            ("bench.other.v1", 3),
            ("bench.thing.v1", 50),
            ("bench.thing.v1", 100),
            ("bench.thing.v1", 100),
        ]
        got: list[Envelope] = []
        done = asyncio.Event()

        async def handler(batch: list[Delivery]) -> None:
            for d in batch:
                assert d.envelope is not None
                got.append(d.envelope)
                await d.ack()
            if len(got) >= 253:
                done.set()

        await bus.consume("sink", handler, batch_size=30, batch_wait_s=0.01)
        await asyncio.wait_for(done.wait(), 20)
        await asyncio.sleep(0.3)
        assert sorted(e.id for e in got) == sorted(e.id for e in [*things, *others])
        assert got[0].data["tên"] == "Nguyễn Thị Ánh"
    finally:
        await bus.close()
    assert await _messages_left("sink", prefix) == 0
    await RabbitMQBus(AMQP_URL, prefix=prefix, topology=topology).delete_topology()


async def test_a_dead_lettered_pack_is_shown_event_by_event(prefix: str) -> None:
    topology = {"sink": ("bench.thing.v1",)}
    bus = RabbitMQBus(AMQP_URL, prefix=prefix, topology=topology)
    await bus.start()
    try:
        envs = [Envelope(type="bench.thing", data={"n": i}, producer="t") for i in range(3)]
        body = b"[" + b",".join(e.to_bytes() for e in envs) + b"]"
        conn = await aio_pika.connect(AMQP_URL)
        async with conn, conn.channel() as channel:
            dlx = await channel.get_exchange(bus.dead_letter_exchange_name)
            await dlx.publish(
                aio_pika.Message(body, content_type=PACK_CONTENT_TYPE, type="bench.thing.v1"),
                routing_key=queue_name("sink", prefix),
            )
        letters = await bus.dead_letters("sink")
        assert [Envelope.from_bytes(d.body).id for d in letters] == [e.id for e in envs]
        assert {d.routing_key for d in letters} == {"bench.thing.v1"}
    finally:
        await bus.close()
        await RabbitMQBus(AMQP_URL, prefix=prefix, topology=topology).delete_topology()


async def test_a_binding_an_earlier_version_made_is_removed_at_start_up() -> None:
    """Awards took initiative.submitted.v1 until it read its facts from decisions alone (shared.topology.RETIRED):
    a broker that still binds it to awards' queue loses that binding when a service starts, and starting again
    (nothing left to unbind) is fine."""
    async with amqp_prefix() as prefix:
        earlier = {**QUEUES, "awards": ("initiative.submitted.v1", *QUEUES["awards"])}
        old = RabbitMQBus(AMQP_URL, prefix=prefix, topology=earlier)
        await old.start()
        await old.close()
        for _ in range(2):
            bus = RabbitMQBus(AMQP_URL, prefix=prefix)
            await bus.start()
            await bus.close()
        bus = RabbitMQBus(AMQP_URL, prefix=prefix)
        await bus.start()
        try:
            await bus.publish([Envelope(type="initiative.submitted", data={"id": "i1"}, producer="intake")])
        finally:
            await bus.close()
        assert await _messages_left("tally", prefix) == 1
        assert await _messages_left("review", prefix) == 1
        assert await _messages_left("awards", prefix) == 0
