"""On the real PostgreSQL: group commit, the campaign seq, idempotency and duplicates under
concurrency, with two replicas of intake writing to one database."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import orjson
import pytest
from intake.adapters.orm import initiatives
from sqlalchemy import func, select

from shared.bus.memory import InMemoryBroker
from shared.testing import pg_database

pytestmark = pytest.mark.integration


async def _count(world: Any) -> int:
    async with world.ctx.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(initiatives))).scalar_one())


async def test_two_replicas_under_a_rush_keep_seq_unique_and_keys_exact(kit: Any) -> None:
    async with pg_database() as url:
        broker = InMemoryBroker(kit.TOPOLOGY)
        async with kit.world_on(url, broker) as a, kit.world_on(url, broker) as b:
            replicas = [a, b]

            def post(i: int, **over: Any) -> Any:
                mid = f"M-{i % 37:04d}"
                item = kit.body(title=f"Sáng kiến cao điểm {i}", authors=[{"member_id": mid, "full_name": "A"}])
                return replicas[i % 2].client.post("/api/v1/initiatives", json=item, headers=kit.member(mid), **over)

            answers = await asyncio.gather(*(post(i) for i in range(300)))
            assert {r.status_code for r in answers} == {201}
            seqs = sorted(r.json()["seq"] for r in answers)
            assert seqs == list(range(1, 301))

            # 50 concurrent requests with one key, spread over both replicas → exactly one initiative.
            headers = kit.member() | {"Idempotency-Key": "one-key"}
            same = await asyncio.gather(
                *(
                    replicas[i % 2].client.post(
                        "/api/v1/initiatives", json=kit.body(title="Một lần thôi"), headers=headers
                    )
                    for i in range(50)
                )
            )
            assert {r.status_code for r in same} == {201}
            assert len({r.json()["id"] for r in same}) == 1

            # The same initiative sent at once to both replicas without a key: one 201, the other 409.
            twice = await asyncio.gather(
                *(
                    r.client.post("/api/v1/initiatives", json=kit.body(title="Gửi hai nơi"), headers=kit.member())
                    for r in replicas
                )
            )
            assert sorted(r.status_code for r in twice) == [201, 409]
            assert await _count(a) == 302

            metrics = (await a.client.get("/metrics")).text
            count_line = next(
                x
                for x in metrics.splitlines()
                if x.startswith('sangkien_intake_batch_size_items_count{kind="group_commit",service="intake"}')
            )
            assert float(count_line.split()[-1]) < 150 + 25  # many requests shared a transaction


async def test_batch_and_import_on_postgres(kit: Any) -> None:
    async with pg_database() as url, kit.world_on(url) as w:
        items = [kit.body(title=f"Lô lớn {i}") for i in range(1000)]
        r = await w.client.post("/api/v1/initiatives/batch", json={"items": items}, headers=kit.support("TH"))
        assert r.status_code == 200 and r.json()["accepted"] == 1000
        assert sorted(i["seq"] for i in r.json()["items"]) == list(range(1, 1001))
        assert len(await w.wait_emitted("initiative.submitted", 1000)) == 1000


async def test_copy_rows_belong_to_the_callers_transaction(kit: Any) -> None:
    """The one-statement insert of initiatives, authors and events (unnest arrays, data-modifying CTEs)
    stores every column as given and rolls back with the transaction that holds it (no orphan rows)."""
    from intake.adapters.orm import initiative_authors, outbox
    from intake.adapters.store import persist
    from intake.domain.events import SUBMITTED, initiative_payload
    from intake.domain.models import InitiativeCreate
    from intake.submission import prepare

    from shared.auth import principal_from_claims

    async with pg_database() as url, kit.world_on(url) as w:
        operator = principal_from_claims({"sub": "op", "roles": ["operator"], "unit": None})
        items = [
            await prepare(
                w.ctx.runtime.plan, operator, InitiativeCreate.model_validate(kit.body(title=f"Hủy {i}")), kit.NOW
            )
            for i in range(3)
        ]
        w.ctx.relay.paused = True
        async with w.ctx.engine.connect() as conn:
            tx = await conn.begin()
            outcomes = await persist(conn, items, lambda r, _c: w.ctx.event(SUBMITTED, initiative_payload(r)))
            assert [o.kind for o in outcomes] == ["created"] * 3
            inside = (await conn.execute(select(func.count()).select_from(outbox))).scalar_one()
            assert inside == 3
            row = (await conn.execute(select(initiatives).where(initiatives.c.title == "Hủy 1"))).one()
            assert row.authors == items[1].record["authors"] and isinstance(row.authors, list)
            assert row.applied_on == items[1].record["applied_on"] and row.confidential is False
            assert row.submitted_at == items[1].record["submitted_at"] and row.seq == outcomes[1].seq
            assert row.problem == items[1].record["problem"]
            authors = (await conn.execute(select(func.count()).select_from(initiative_authors))).scalar_one()
            assert authors == sum(len({a["member_id"] for a in i.record["authors"]}) for i in items)
            body = (await conn.execute(select(outbox.c.body).order_by(outbox.c.id))).scalars().first()
            assert orjson.loads(body)["data"]["title"] == "Hủy 0"
            await tx.rollback()
        assert await _count(w) == 0
        async with w.ctx.engine.connect() as conn:
            assert (await conn.execute(select(func.count()).select_from(outbox))).scalar_one() == 0


async def test_group_commit_isolates_a_failing_item_and_keeps_seq_exact(kit: Any) -> None:
    """A batch whose write fails is retried item by item on fresh connections: the bad item fails alone,
    its neighbours are created with unique seqs, and the counter is not left locked or rolled back."""
    from intake.adapters.store import seq_of
    from intake.adapters.writer import GroupCommitWriter
    from intake.domain.events import SUBMITTED, initiative_payload
    from intake.domain.models import InitiativeCreate
    from intake.submission import prepare
    from prometheus_client import CollectorRegistry, Histogram

    from shared.auth import principal_from_claims

    async with pg_database() as url, kit.world_on(url) as w:
        operator = principal_from_claims({"sub": "op", "roles": ["operator"], "unit": None})

        def make_event(record: dict[str, Any], _correlation_id: str | None = None) -> Any:
            if record["title"] == "Sáng kiến hỏng":
                raise ValueError("cannot build this event")
            return w.ctx.event(SUBMITTED, initiative_payload(record))

        writer = GroupCommitWriter(
            w.ctx.engine,
            make_event,
            window_s=0.05,
            max_items=100,
            writers=1,
            on_commit=lambda: None,
            batch_sizes=Histogram("t", "t", registry=CollectorRegistry()),
        )
        task = asyncio.create_task(writer.run())
        try:
            await asyncio.sleep(0)
            titles = [f"Sáng kiến tốt {i}" for i in range(4)] + ["Sáng kiến hỏng"]
            items = [
                await prepare(w.ctx.runtime.plan, operator, InitiativeCreate.model_validate(kit.body(title=t)), kit.NOW)
                for t in titles
            ]
            results = await asyncio.gather(*(writer.submit(i) for i in items), return_exceptions=True)
            assert isinstance(results[-1], RuntimeError)
            good = [r for r in results[:-1] if not isinstance(r, BaseException)]
            assert [r.kind for r in good] == ["created"] * 4
            seqs = sorted(r.seq for r in good)
            assert len(set(seqs)) == 4
            # The counter moved on and is usable: the next write gets a number above all of them.
            after = await writer.submit(
                await prepare(
                    w.ctx.runtime.plan, operator, InitiativeCreate.model_validate(kit.body(title="Sau đó")), kit.NOW
                )
            )
            assert after.seq > max(seqs)
            async with w.ctx.engine.connect() as conn:
                assert await seq_of(conn, after.id) == after.seq
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert await _count(w) == 5
