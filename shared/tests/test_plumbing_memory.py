"""The plumbing on the in-process bus and SQLite: outbox → bus → inbox, duplicates, dead letters."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from pydantic import BaseModel, Field

from shared.bus.memory import InMemoryBroker
from shared.envelope import Envelope
from shared.http import install_error_handlers
from shared.service import create_app
from shared.settings import ServiceSettings
from shared.testing import auth, eventually, running_app
from shared.tests.demo.app import CONSUMER, PRODUCER, TOPOLOGY


def _settings(tmp_path: Path, name: str) -> ServiceSettings:
    return ServiceSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/{name}.db", outbox_poll_interval_s=0.05, log_json=False
    )


@pytest.fixture
def broker() -> InMemoryBroker:
    return InMemoryBroker(TOPOLOGY, delivery_limit=3)


async def test_event_flows_through_outbox_and_is_counted_once_even_when_delivered_twice(
    tmp_path: Path, broker: InMemoryBroker
) -> None:
    producer = create_app(PRODUCER, _settings(tmp_path, "p"), broker=broker, topology=TOPOLOGY)
    consumer = create_app(CONSUMER, _settings(tmp_path, "c"), broker=broker, topology=TOPOLOGY)
    async with running_app(producer) as p, running_app(consumer) as c:
        r = await p.post("/api/v1/notes", json={"text": "Sáng kiến đầu tiên"}, headers=auth("member"))
        assert r.status_code == 201

        async def counted(n: int) -> bool:
            got = await c.get("/api/v1/counts/noted", headers=auth("reviewer"))
            return bool(got.json()["n"] == n)

        await eventually(lambda: counted(1))
        # The same event again, as a broker redelivery would: acknowledged, not counted.
        env = Envelope(type="demo.noted", data={"note_id": 1, "text": "x"}, producer="demo", id="dup-1")
        bus = consumer.state.ctx.bus
        await bus.publish([env])
        await bus.publish([env])
        assert (await c.get("/api/v1/counts/noted", headers=auth("reviewer"))).json()["n"] == 2
        metrics = (await c.get("/metrics")).text
        assert 'sangkien_events_duplicate_total{type="demo.noted"} 1.0' in metrics


async def test_poison_message_is_dead_lettered_and_the_next_ones_still_flow(
    tmp_path: Path, broker: InMemoryBroker
) -> None:
    consumer = create_app(CONSUMER, _settings(tmp_path, "c"), broker=broker, topology=TOPOLOGY)
    async with running_app(consumer) as c:
        bus = consumer.state.ctx.bus
        poison = Envelope(type="demo.noted", data={"text": "poison"}, producer="demo")
        good = [Envelope(type="demo.noted", data={"text": f"ok {i}"}, producer="demo") for i in range(5)]
        await bus.publish([poison, *good])
        assert (await c.get("/api/v1/counts/noted", headers=auth("reviewer"))).json()["n"] == 5
        letters = await bus.dead_letters("demo_consumer")
        assert [Envelope.from_bytes(d.body).id for d in letters] == [poison.id]
        dl = await c.get("/api/v1/ops/demo_consumer/dead-letters", headers=auth("operator"))
        assert dl.status_code == 200 and len(dl.json()["items"]) == 1
        forbidden = await c.get("/api/v1/ops/demo_consumer/dead-letters", headers=auth("reviewer"))
        assert forbidden.status_code == 403


async def test_errors_have_the_spec_shape(tmp_path: Path, broker: InMemoryBroker) -> None:
    consumer = create_app(CONSUMER, _settings(tmp_path, "c"), broker=broker, topology=TOPOLOGY)
    async with running_app(consumer) as c:
        r = await c.get("/api/v1/counts/noted")
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
        r = await c.get("/api/v1/counts/noted", headers={"Authorization": "Bearer not-a-jwt"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_token"
        r = await c.get("/api/v1/counts/noted", headers=auth("reviewer", ttl_s=-10))
        assert r.status_code == 401 and r.json()["error"]["code"] == "token_expired"
        r = await c.get("/api/v1/counts/noted", headers=auth("member"))
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
        r = await c.get("/nowhere")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        health = await c.get("/health")
        assert health.status_code == 200 and health.json()["checks"] == {"database": True, "broker": True}


async def test_publish_to_a_queue_without_consumer_returns_and_keeps_the_message(
    tmp_path: Path, broker: InMemoryBroker
) -> None:
    producer = create_app(PRODUCER, _settings(tmp_path, "p"), broker=broker, topology=TOPOLOGY)
    async with running_app(producer) as p:
        r = await p.post("/api/v1/notes", json={"text": "chờ người nhận"}, headers=auth("member"))
        assert r.status_code == 201

        async def relayed() -> bool:
            return broker.queue("demo_consumer").qsize() == 1

        await eventually(relayed)
    # The consumer starts later and still gets it.
    consumer = create_app(CONSUMER, _settings(tmp_path, "c"), broker=broker, topology=TOPOLOGY)
    async with running_app(consumer) as c:

        async def counted() -> bool:
            return bool((await c.get("/api/v1/counts/noted", headers=auth("reviewer"))).json()["n"] == 1)

        await eventually(counted)


class BoundedBody(BaseModel):
    title: str = Field(min_length=5, max_length=300)
    benefit: int = Field(ge=0)


async def test_validation_errors_name_the_field_and_the_bound_in_vietnamese() -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/x")
    async def x(body: BoundedBody) -> dict[str, str]:
        return {"title": body.title}

    async with running_app(app) as client:
        r = await client.post("/x", json={"title": "abc", "benefit": -1})
        assert r.status_code == 422
        assert r.json()["error"]["details"] == [
            {"field": "title", "message": "Tiêu đề cần ít nhất 5 ký tự"},
            {"field": "benefit", "message": "Giá trị không được âm"},
        ]
        # An empty or missing field is asked for, not called "too short".
        r = await client.post("/x", json={"title": "   "})
        assert r.json()["error"]["details"] == [
            {"field": "title", "message": "Vui lòng nhập tiêu đề"},
            {"field": "benefit", "message": "Vui lòng nhập giá trị này"},
        ]


async def test_a_running_service_raises_the_collector_thresholds_and_restores_them(
    tmp_path: Path, broker: InMemoryBroker
) -> None:
    import gc

    from shared.service import GC_THRESHOLDS

    before = gc.get_threshold()
    assert before != GC_THRESHOLDS
    consumer = create_app(CONSUMER, _settings(tmp_path, "c"), broker=broker, topology=TOPOLOGY)
    async with running_app(consumer):
        assert gc.get_threshold() == GC_THRESHOLDS
    assert gc.get_threshold() == before
