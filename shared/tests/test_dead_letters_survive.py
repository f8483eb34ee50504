"""Issue 14, finding 12: the embedded bus's dead letters survive a restart of the process."""

from __future__ import annotations

from pathlib import Path

from shared.bus.memory import InMemoryBroker
from shared.envelope import Envelope
from shared.service import create_app
from shared.settings import ServiceSettings
from shared.testing import auth, eventually, running_app
from shared.tests.demo.app import CONSUMER, TOPOLOGY


def _settings(tmp_path: Path) -> ServiceSettings:
    return ServiceSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/consumer.db", outbox_poll_interval_s=0.05, log_json=False
    )


async def _count(client: object) -> int:
    r = await client.get("/api/v1/counts/noted", headers=auth("reviewer"))  # type: ignore[attr-defined]
    return int(r.json()["n"])


async def test_dead_letters_of_the_embedded_bus_are_listed_and_replayed_after_a_restart(tmp_path: Path) -> None:
    poison = Envelope(type="demo.noted", data={"text": "poison"}, producer="demo")
    good = Envelope(type="demo.noted", data={"text": "tốt"}, producer="demo")
    # First life of the process: the poison message reaches the delivery limit.
    consumer = create_app(
        CONSUMER, _settings(tmp_path), broker=InMemoryBroker(TOPOLOGY, delivery_limit=2), topology=TOPOLOGY
    )
    async with running_app(consumer) as c:
        await consumer.state.ctx.bus.publish([poison, good])
        assert await _count(c) == 1
        listed = await c.get("/api/v1/ops/demo_consumer/dead-letters", headers=auth("operator"))
        assert [Envelope.from_bytes(i["body"].encode()).id for i in listed.json()["items"]] == [poison.id]
    # A new process: a new broker, the same database.
    broker = InMemoryBroker(TOPOLOGY, delivery_limit=2)
    consumer = create_app(CONSUMER, _settings(tmp_path), broker=broker, topology=TOPOLOGY)
    async with running_app(consumer) as c:
        listed = await c.get("/api/v1/ops/demo_consumer/dead-letters", headers=auth("operator"))
        items = listed.json()["items"]
        assert [Envelope.from_bytes(i["body"].encode()).id for i in items] == [poison.id]
        assert items[0]["routing_key"] == "demo.noted.v1" and items[0]["reason"] == "delivery limit reached"
        # Replay takes it out of the store and back to the queue; it fails again and is dead-lettered again, once.
        replay = await c.post("/api/v1/ops/demo_consumer/dead-letters/replay", headers=auth("operator"))
        assert replay.json() == {"replayed": 1}

        async def dead_again() -> bool:
            got = await c.get("/api/v1/ops/demo_consumer/dead-letters", headers=auth("operator"))
            return len(got.json()["items"]) == 1 and broker.queue("demo_consumer").qsize() == 0

        await eventually(dead_again, timeout_s=10)
        assert await _count(c) == 1
    # Dead-lettered again after the replay: still there after another restart.
    consumer = create_app(
        CONSUMER, _settings(tmp_path), broker=InMemoryBroker(TOPOLOGY, delivery_limit=2), topology=TOPOLOGY
    )
    async with running_app(consumer) as c:
        letters = await consumer.state.ctx.bus.dead_letters("demo_consumer")
        assert [Envelope.from_bytes(d.body).id for d in letters] == [poison.id]
