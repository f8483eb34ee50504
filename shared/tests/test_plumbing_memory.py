"""The plumbing on the in-process bus and SQLite: outbox → bus → inbox, duplicates, dead letters."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from pydantic import BaseModel, Field
from sqlalchemy import select

from shared.bus.memory import InMemoryBroker
from shared.envelope import Envelope
from shared.http import install_error_handlers
from shared.service import create_app
from shared.settings import ServiceSettings
from shared.testing import auth, eventually, running_app
from shared.tests.demo.app import CONSUMER, PRODUCER, TOPOLOGY, inbox

DEMO_COUNT = 'sangkien_demo_consumer_events_{}_total{{service="demo_consumer",type="demo.noted"}} {}'


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
        assert 'sangkien_demo_consumer_events_duplicate_total{service="demo_consumer",type="demo.noted"} 1.0' in metrics


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
        # Delivered three times (the limit): the second and third deliveries are counted as made again.
        assert DEMO_COUNT.format("redelivered", "2.0") in (await c.get("/metrics")).text
        dl = await c.get("/api/v1/ops/demo_consumer/dead-letters", headers=auth("operator"))
        assert dl.status_code == 200 and len(dl.json()["items"]) == 1
        forbidden = await c.get("/api/v1/ops/demo_consumer/dead-letters", headers=auth("reviewer"))
        assert forbidden.status_code == 403


async def test_an_unreadable_payload_is_dead_lettered_at_once_with_its_reason_and_the_rest_counts_once(
    tmp_path: Path, broker: InMemoryBroker
) -> None:
    consumer = create_app(CONSUMER, _settings(tmp_path, "c"), broker=broker, topology=TOPOLOGY)
    async with running_app(consumer) as c:
        bus = consumer.state.ctx.bus
        wrong_type = Envelope(type="demo.noted", data={"note_id": "một", "text": "x"}, producer="demo")
        missing = Envelope(type="demo.noted", data={"note_id": 7}, producer="demo")
        good = [Envelope(type="demo.noted", data={"text": f"ok {i}"}, producer="demo") for i in range(5)]
        # One batch: the in-process bus queues every message before the consumer wakes.
        # A second copy of a poison event in the same batch (a redelivery) makes no second dead letter.
        await bus.publish([good[0], wrong_type, *good[1:3], missing, wrong_type, *good[3:]])
        assert (await c.get("/api/v1/counts/noted", headers=auth("reviewer"))).json()["n"] == 5
        letters = await bus.dead_letters("demo_consumer")
        assert [Envelope.from_bytes(d.body).id for d in letters] == [wrong_type.id, missing.id]
        assert letters[0].reason.startswith("invalid payload (Noted): note_id: Input should be a valid integer")
        assert letters[1].reason == "invalid payload (Noted): text: Field required"
        metrics = (await c.get("/metrics")).text
        # Once each: no delivery was retried (the limit is 3), and nothing was counted twice.
        assert DEMO_COUNT.format("failed", "2.0") in metrics
        assert DEMO_COUNT.format("dead_lettered", "2.0") in metrics
        assert DEMO_COUNT.format("consumed", "5.0") in metrics
        assert DEMO_COUNT.format("duplicate", "1.0") in metrics
        # Not in the inbox: once its consumer can read it, a replay is handled, not skipped as a duplicate.
        async with consumer.state.ctx.engine.connect() as conn:
            ids = set((await conn.execute(select(inbox.c.event_id))).scalars())
        assert ids == {e.id for e in good}
        dl = await c.get("/api/v1/ops/demo_consumer/dead-letters", headers=auth("operator"))
        assert [item["reason"] for item in dl.json()["items"]] == [d.reason for d in letters]


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

    from shared.gc_tuning import GC_THRESHOLDS

    before = gc.get_threshold()
    assert before != GC_THRESHOLDS
    consumer = create_app(CONSUMER, _settings(tmp_path, "c"), broker=broker, topology=TOPOLOGY)
    async with running_app(consumer):
        assert gc.get_threshold() == GC_THRESHOLDS
    assert gc.get_threshold() == before
    # GC_TUNED=false (how the tuning is measured again) leaves the collector alone.
    untuned = _settings(tmp_path, "u").model_copy(update={"gc_tuned": False})
    async with running_app(create_app(CONSUMER, untuned, broker=broker, topology=TOPOLOGY)):
        assert gc.get_threshold() == before


def test_a_service_metric_is_named_for_its_service_made_once_and_labelled_with_it() -> None:
    from shared.metrics import ServiceMetrics

    metrics = ServiceMetrics("demo")
    with pytest.raises(ValueError, match="sangkien_demo_"):
        metrics.counter("demo_things_total", "Things")
    made = metrics.counter("sangkien_demo_things_total", "Things", ["kind"])
    # A second lifespan of the same app asks again, and gets the same counter (the registry holds one).
    assert metrics.counter("sangkien_demo_things_total", "Things", ["kind"]) is made
    with pytest.raises(ValueError, match="Counter"):
        metrics.gauge("sangkien_demo_things_total", "Things")
    made.labels("a").inc(2)
    assert 'sangkien_demo_things_total{kind="a",service="demo"} 2.0' in metrics.render().decode()


def test_the_allocator_keeps_what_a_batch_freed_for_the_next() -> None:
    """Batches that each hold three 8 MB arrays at once, then free them, as review's MinHash does: with glibc's
    defaults the heap is trimmed after each batch and grown again in the next, every page faulted in anew; tuned,
    the freed memory is reused. Each measured in a fresh interpreter (this one's heap holds what earlier tests
    freed, and an earlier service has tuned it)."""
    import ctypes
    import subprocess
    import sys

    try:
        ctypes.CDLL(None).mallopt  # noqa: B018
    except AttributeError:
        pytest.skip("not glibc")
    repo = Path(__file__).resolve().parents[2]
    script = """
import resource, sys
from shared.gc_tuning import allocator_keeps_freed_memory
if sys.argv[1] == "tuned":
    assert allocator_keeps_freed_memory()
else:
    assert not allocator_keeps_freed_memory(False)  # MALLOC_TUNED=false leaves the allocator alone

def batches(n):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(n):
        arrays = [bytearray(8 << 20) for _ in range(3)]  # written through (zeroed), as a NumPy result is
        del arrays
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

batches(2)  # the first blocks are mapped on their own: freeing them raises glibc's thresholds
print(batches(20))
"""

    def faults(mode: str) -> int:
        done = subprocess.run(
            [sys.executable, "-c", script, mode], cwd=repo, capture_output=True, text=True, timeout=60, check=True
        )
        return int(done.stdout.strip())

    assert faults("defaults") > 20 * 2_000  # measured: ~81,000 (about 4,000 pages a batch)
    assert faults("tuned") < 500  # measured: 0
