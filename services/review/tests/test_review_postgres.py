"""Review on real PostgreSQL (and RabbitMQ): concurrent claims with SKIP LOCKED, the full decision path."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from review.adapters.orm import items, signatures
from review.adapters.similar_store import _SETS_PG, SimilarityStore, shingle_sets
from review.app import create
from review.domain.similarity import shingles, signature
from review_testkit import TREE, Review, initiative, review_settings
from sqlalchemy import func, select

from shared.testing import AMQP_URL, amqp_prefix, auth, eventually, pg_database, running_app

pytestmark = pytest.mark.integration


async def test_twenty_reviewers_claiming_at_once_lease_each_of_5000_items_exactly_once(pg_review: Review) -> None:
    now = datetime.now(UTC)
    rows = [
        {
            "initiative_id": str(uuid.uuid4()),
            "campaign": "1M",
            "phase": "P1",
            "unit_code": "TH-01-001" if n % 2 else "TH-02",
            "seq": n,
            "title": f"Sáng kiến số {n}",
            "expected_benefit_vnd": 0,
            "confidential": False,
            "authors": [{"member_id": f"M-{n}", "full_name": "Tác giả"}],
            "author_ids": f"|M-{n}|",
            "revision": 0,
            "status": "pending",
            "decision_seq": 0,
            "similar": [],
            "appraisal_count": 0,
            "queued_at": now,
        }
        for n in range(1, 5001)
    ]
    async with pg_review.app.state.ctx.sessions() as session, session.begin():
        await session.execute(items.insert(), rows)

    async def reviewer(k: int) -> list[str]:
        headers = auth("reviewer", "TH", sub=f"rev-{k}", member_id=f"M-R{k}")
        got: list[str] = []
        while True:
            r = await pg_review.client.post("/api/v1/review/claims", json={"count": 50}, headers=headers)
            assert r.status_code == 200, r.text
            batch = [i["initiative_id"] for i in r.json()["items"]]
            if not batch:
                return got
            got.extend(batch)

    per_reviewer = await asyncio.gather(*(reviewer(k) for k in range(20)))
    claimed = [i for ids in per_reviewer for i in ids]
    assert len(claimed) == 5000
    assert set(claimed) == {r["initiative_id"] for r in rows}
    assert sum(1 for ids in per_reviewer if ids) > 1  # they really competed
    stats = (await pg_review.client.get("/api/v1/review/stats", headers=auth("reviewer", "TH"))).json()
    assert (stats["leased"], stats["pending"]) == (5000, 0)


async def test_decision_path_on_postgres(pg_review: Review) -> None:
    a, b = initiative(), initiative()
    await pg_review.submit(a, b)
    rev = auth("reviewer", "TH", sub="rev-pg")
    r = await pg_review.client.post("/api/v1/review/claims", json={"count": 5}, headers=rev)
    assert [i["initiative_id"] for i in r.json()["items"]] == [a["id"], b["id"]]
    body = {
        "decisions": [
            {"initiative_id": a["id"], "outcome": "valid"},
            {"initiative_id": b["id"], "outcome": "revision", "note": "Thiếu số liệu"},
        ]
    }
    r = await pg_review.client.post("/api/v1/review/decisions/batch", json=body, headers=rev)
    assert r.json()["accepted"] == 2
    await pg_review.send("initiative.revised", {**b, "revision": 1})
    r = await pg_review.client.post("/api/v1/review/claims", json={"count": 5}, headers=rev)
    assert [i["initiative_id"] for i in r.json()["items"]] == [b["id"]]
    r = await pg_review.client.post(f"/api/v1/review/items/{b['id']}/decision", json={"outcome": "valid"}, headers=rev)
    assert r.status_code == 200 and r.json()["decision_seq"] == 2

    async def three() -> bool:
        return len(pg_review.of("initiative.reviewed")) == 3

    await eventually(three)
    assert sorted(e["decision_seq"] for e in pg_review.of("initiative.reviewed")) == [1, 1, 2]


@contextlib.asynccontextmanager
async def rabbit_review() -> AsyncIterator[Review]:
    """Review on PostgreSQL and RabbitMQ (no in-process probe: the broker carries the events)."""
    async with pg_database() as url, amqp_prefix() as prefix:
        app = create(review_settings(url, amqp_url=AMQP_URL, amqp_prefix=prefix))
        async with running_app(app) as client:
            r = Review(app, client)
            await r.send("unit.upserted", *({**u, "revision": 1} for u in TREE))

            async def units_known() -> bool:
                resp = await client.get("/api/v1/review/stats", headers=auth("reviewer", "TH"))
                return resp.status_code == 200

            await eventually(units_known)
            yield r


async def test_events_over_rabbitmq_reach_the_queue_and_decisions_leave_through_the_outbox() -> None:
    item = initiative()
    rev = auth("reviewer", "TH", sub="rev-mq")
    claimed: list[str] = []
    async with rabbit_review() as r:
        await r.submit(item)
        await r.submit(item)  # the same initiative twice: still one queue entry

        async def claimable() -> bool:
            resp = await r.client.post("/api/v1/review/claims", json={"count": 5}, headers=rev)
            claimed.extend(i["initiative_id"] for i in resp.json()["items"])
            return bool(claimed)

        await eventually(claimable)
        assert claimed == [item["id"]]
        resp = await r.client.post(
            f"/api/v1/review/items/{item['id']}/decision", json={"outcome": "valid"}, headers=rev
        )
        assert resp.status_code == 200
        ctx = r.app.state.ctx

        async def drained() -> bool:
            async with ctx.sessions() as session:
                left = (await session.execute(select(func.count()).select_from(ctx.outbox))).scalar_one()
            return bool(left == 0)

        await eventually(drained)
        metrics = (await r.client.get("/metrics")).text
        assert 'sangkien_review_events_published_total{service="review",type="initiative.reviewed"} 1.0' in metrics


async def test_the_index_picks_up_a_signature_committed_after_a_larger_id(pg_review: Review) -> None:
    """Two replicas draw ids 11 and 12; 12 commits first. The follower must still load 11."""
    sh = shingles("Cải tiến khuôn định vị bằng thép tận dụng")
    row = {"campaign": "1M", "shingles": sh.tobytes(), "signature": signature(sh).tobytes()}
    store = SimilarityStore(0.5)
    sessions = pg_review.app.state.ctx.sessions
    async with sessions() as session, session.begin():
        await session.execute(signatures.insert(), [{**row, "id": 10, "initiative_id": "a", "seq": 1}])
        await session.execute(signatures.insert(), [{**row, "id": 12, "initiative_id": "c", "seq": 3}])
    async with sessions() as session:
        assert await store.sync(session) == 2
    async with sessions() as session, session.begin():
        await session.execute(signatures.insert(), [{**row, "id": 11, "initiative_id": "b", "seq": 2}])
    async with sessions() as session:
        assert await store.sync(session) == 1
        assert await store.sync(session) == 0
    assert sorted(store.index("1M").ids) == ["a", "b", "c"]


async def test_shingle_sets_are_read_back_through_the_initiative_index_with_no_statistics(pg_review: Review) -> None:
    """The sets of candidates no longer in memory are read by id, one probe of ix_review_signature_initiative_id
    per id, on a table never analysed (no autovacuum had run in the national replay: the plan of
    ``initiative_id = ANY(ids) ORDER BY id`` walked the whole primary key there, 2.1 s for 6,000 ids). A revision's
    row is newer than its first and wins, whatever order the rows come back in."""
    sh = shingles("Cải tiến khuôn định vị bằng thép tận dụng")
    revised = shingles("Cải tiến quy trình kiểm kê kho vật tư")
    sig = signature(sh).tobytes()
    async with pg_review.app.state.ctx.engine.begin() as conn:
        await conn.execute(
            signatures.insert(),
            [
                {"initiative_id": f"i-{n}", "campaign": "1M", "seq": n, "shingles": sh.tobytes(), "signature": sig}
                for n in range(30_000)
            ],
        )
        await conn.execute(
            signatures.insert(),
            [{"initiative_id": "i-7", "campaign": "1M", "seq": 7, "shingles": revised.tobytes(), "signature": sig}],
        )
    wanted = {f"i-{n}" for n in range(0, 30_000, 10)} | {"nowhere"}
    async with pg_review.app.state.ctx.sessions() as session:
        sets = await shingle_sets(session, wanted)
        seven = await shingle_sets(session, {"i-7"})
        compiled = _SETS_PG.compile(dialect=session.bind.dialect)
        params = compiled.construct_params({"ids": sorted(wanted)})
        conn = await session.connection()
        plan = "\n".join(
            r[0]
            for r in await conn.exec_driver_sql(
                "EXPLAIN " + compiled.string, tuple(params[k] for k in compiled.positiontup)
            )
        )
    assert "ix_review_signature_initiative_id" in plan, plan
    assert "Seq Scan on review_signature" not in plan and "review_signature_pkey" not in plan, plan
    assert len(sets) == 3_000 and "nowhere" not in sets
    assert sets["i-0"].tolist() == sh.tolist() and sets["i-10"].tolist() == sh.tolist()
    assert seven["i-7"].tolist() == revised.tolist()
