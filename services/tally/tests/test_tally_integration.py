"""Tally against the real PostgreSQL and RabbitMQ: two consumer replicas racing on one queue."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from tally.adapters import plan as plan_store
from tally.adapters.maintenance import verify
from tally.adapters.orm import outbox
from tally.app import create
from tally_testkit import CAMPAIGN, OP, TREE, figures, new_id, reviewed, submitted, tally_settings, withdrawn

from shared.bus.rabbitmq import RabbitMQBus
from shared.testing import AMQP_URL, amqp_prefix, auth, eventually, pg_database, running_app

pytestmark = pytest.mark.integration


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    async with amqp_prefix() as p:
        yield p


async def test_two_consumers_racing_record_exactly_one_nth_initiative(prefix: str) -> None:
    async with pg_database() as url:
        settings = tally_settings(
            url, amqp_url=AMQP_URL, amqp_prefix=prefix, consumer_batch_size=7, consumer_batch_wait_ms=2
        )
        first, second = create(settings), create(settings)
        async with running_app(first) as c1, running_app(second):
            for app in (first, second):
                app.state.ctx.relay.paused = True  # keep emitted events in the outbox, to count them
            assert (await c1.put("/api/v1/units", json=TREE, headers=OP)).status_code == 200
            assert (
                await c1.put("/api/v1/campaigns/1M", json={**CAMPAIGN, "milestones": [50, 100, 150]}, headers=OP)
            ).status_code == 200
            leaves = ["TH-01-001", "TH-01-002", "TH-01-001-A", "HN-001"]
            ids = [new_id() for _ in range(160)]
            events = []
            for n, i in enumerate(ids):
                unit = leaves[n % 4]
                authors = (f"M-{n % 13}",)
                events += [submitted(i, unit, authors=authors), reviewed(i, unit, "valid", 1, authors=authors)]
            events += [withdrawn(ids[0], leaves[0])]  # arrives after its validation: withdrawn wins (terminal)
            publisher = RabbitMQBus(AMQP_URL, prefix=prefix)
            await publisher.start()
            try:
                # Two halves published concurrently, plus a redelivered slice.
                await asyncio.gather(publisher.publish(events[::2]), publisher.publish(events[1::2]))
                await publisher.publish(events[:40])
            finally:
                await publisher.close()

            async def done() -> bool:
                r = await c1.get("/api/v1/tally/units/VN", params={"campaign": "1M"}, headers=OP)
                f = r.json()["figures"]
                return bool(f["valid"] == 159 and f["submitted"] == 159)

            await eventually(done, timeout_s=30)
            r = await c1.get("/api/v1/tally/milestones", params={"campaign": "1M"})
            items = r.json()["items"]
            assert [m["n"] for m in items] == [50, 100, 150]
            assert len({m["initiative_id"] for m in items}) == 3 and set(m["initiative_id"] for m in items) <= set(ids)
            async with first.state.ctx.engine.connect() as conn:
                emitted = (
                    await conn.execute(
                        select(func.count())
                        .select_from(outbox)
                        .where(outbox.c.routing_key == "tally.milestone_reached.v1")
                    )
                ).scalar_one()
            assert emitted == 3
            vn = (await c1.get("/api/v1/tally/units/VN", params={"campaign": "1M"}, headers=OP)).json()["figures"]
            assert vn["participants"] == 13 and vn["benefit_vnd"] == 159 * 1000
            assert await verify(first.state.ctx.engine) == []
            # Both replicas really consumed from the shared queue.
            for app in (first, second):
                consumed = app.state.metrics.events_consumed.labels("initiative.reviewed")._value.get()
                assert consumed > 0


async def test_plan_move_quotas_rankings_and_snapshot_on_postgresql(prefix: str) -> None:
    async with pg_database() as url:
        app = create(tally_settings(url, amqp_url=AMQP_URL, amqp_prefix=prefix))
        async with running_app(app) as client:
            assert (await client.put("/api/v1/units", json=TREE, headers=OP)).status_code == 200
            assert (await client.put("/api/v1/campaigns/1M", json=CAMPAIGN, headers=OP)).status_code == 200
            quotas = [
                {"unit_code": "TH-01-001", "phase": "P1", "assigned": 2},
                {"unit_code": "HN-001", "phase": "P1", "assigned": 4, "self_set": 8},
            ]
            assert (await client.put("/api/v1/campaigns/1M/quotas", json=quotas, headers=OP)).status_code == 200
            publisher = RabbitMQBus(AMQP_URL, prefix=prefix)
            await publisher.start()
            try:
                evs = []
                for unit in ("TH-01-001", "HN-001", "HN-001"):
                    i = new_id()
                    evs += [submitted(i, unit), reviewed(i, unit, "valid", 1)]
                await publisher.publish(evs)
            finally:
                await publisher.close()

            async def counted() -> bool:
                r = await client.get("/api/v1/tally/units/VN", params={"campaign": "1M"}, headers=OP)
                return bool(r.json()["figures"]["valid"] == 3)

            await eventually(counted, timeout_s=20)
            r = await client.get(
                "/api/v1/tally/rankings",
                params={"campaign": "1M", "phase": "P1", "kind": "province", "metric": "achievement_pct"},
            )
            # 1 of 2 and 2 of 4: a tie at 50 %, listed by code.
            got = [(i["rank"], i["unit"]["code"], i["value"]) for i in r.json()["items"]]
            assert got == [(1, "HN", 50.0), (1, "TH", 50.0)]
            snap = (await client.post("/api/v1/tally/snapshots", json={"campaign": "1M"}, headers=OP)).json()["id"]
            move = [{"code": "HN-001", "name": "CĐCS Nhà máy Z", "kind": "grassroots", "parent_code": "TH-01"}]
            assert (await client.put("/api/v1/units", json=move, headers=OP)).status_code == 200
            th = (
                await client.get("/api/v1/tally/units/TH", params={"campaign": "1M", "phase": "P1"}, headers=OP)
            ).json()
            assert (th["figures"]["valid"], th["figures"]["quota"]) == (3, 6)
            frozen = (await client.get(f"/api/v1/tally/snapshots/{snap}/units/TH", headers=OP)).json()
            assert frozen["figures"]["valid"] == 1
            assert await verify(app.state.ctx.engine) == []


async def test_a_quota_upload_plans_each_statement_for_its_parameters_on_postgresql(
    prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At the national 152,573 units a read of the current quotas, kept on a generic plan made while the table was
    small, compared each of 300,000 rows with 2,000 parameters: 24 s, past the gateway's 15 s (docs/benchmarks.md,
    "The national plan"). Every statement of an upload is now planned for its parameters; a unit admin's upload
    still reads the current quotas right (through one array parameter)."""
    modes: list[tuple[str, str]] = []

    def spied(name: str) -> None:
        original = getattr(plan_store, name)

        async def spy(session: AsyncSession, *args: Any) -> Any:
            mode = (await session.execute(text("SELECT current_setting('plan_cache_mode')"))).scalar_one()
            modes.append((name, mode))
            return await original(session, *args)

        monkeypatch.setattr(plan_store, name, spy)

    for name in ("quotas_of", "store_quotas"):
        spied(name)
    async with pg_database() as url:
        app = create(tally_settings(url, amqp_url=AMQP_URL, amqp_prefix=prefix))
        async with running_app(app) as client:
            assert (await client.put("/api/v1/units", json=TREE, headers=OP)).status_code == 200
            assert (await client.put("/api/v1/campaigns/1M", json=CAMPAIGN, headers=OP)).status_code == 200
            own = [{"unit_code": "TH", "phase": "P1", "assigned": 5}]
            assert (await client.put("/api/v1/campaigns/1M/quotas", json=own, headers=OP)).status_code == 200
            admin = auth("unit_admin", "TH")
            raised = [{"unit_code": "TH", "phase": "P1", "assigned": 5, "self_set": 9}]
            assert (await client.put("/api/v1/campaigns/1M/quotas", json=raised, headers=admin)).status_code == 200
            changed = [{"unit_code": "TH", "phase": "P1", "assigned": 6}]
            assert (await client.put("/api/v1/campaigns/1M/quotas", json=changed, headers=admin)).status_code == 403
            r = await client.get("/api/v1/tally/units/TH", params={"campaign": "1M", "phase": "P1"}, headers=OP)
            assert r.json()["figures"]["quota"] == 5
    # The operator's upload does not read the current quotas (only a unit admin's needs them).
    assert modes == [
        ("store_quotas", "force_custom_plan"),
        ("quotas_of", "force_custom_plan"),
        ("store_quotas", "force_custom_plan"),
        ("quotas_of", "force_custom_plan"),
    ]


async def test_moves_while_two_consumers_count_leave_every_figure_exact(prefix: str) -> None:
    """A unit moved back and forth between provinces while two replicas consume: each batch counts along the
    paths as they stand (the plan lock orders them), so verify finds nothing and the provinces add up."""
    async with pg_database() as url:
        settings = tally_settings(
            url, amqp_url=AMQP_URL, amqp_prefix=prefix, consumer_batch_size=20, consumer_batch_wait_ms=2
        )
        first, second = create(settings), create(settings)
        async with running_app(first) as c1, running_app(second):
            assert (await c1.put("/api/v1/units", json=TREE, headers=OP)).status_code == 200
            assert (await c1.put("/api/v1/campaigns/1M", json=CAMPAIGN, headers=OP)).status_code == 200
            leaves = ["TH-01-001", "TH-01-002", "TH-01-001-A", "HN-001"]
            events = []
            for n in range(600):
                i, unit, authors = new_id(), leaves[n % 4], (f"M-{n % 17}", f"M-{n % 5 + 40}")
                events += [submitted(i, unit, authors=authors), reviewed(i, unit, "valid", 1, authors=authors)]
            publisher = RabbitMQBus(AMQP_URL, prefix=prefix, pack_size=10)
            await publisher.start()

            async def publish() -> None:
                for k in range(0, len(events), 50):
                    await publisher.publish(events[k : k + 50])
                    await asyncio.sleep(0.005)

            async def move_back_and_forth() -> None:
                for k in range(8):
                    parent = "HN" if k % 2 == 0 else "TH"
                    unit = {"code": "TH-01", "name": "LĐLĐ huyện Đông Sơn", "kind": "district", "parent_code": parent}
                    assert (await c1.put("/api/v1/units", json=[unit], headers=OP)).status_code == 200
                    await asyncio.sleep(0.02)

            try:
                await asyncio.gather(publish(), move_back_and_forth())
            finally:
                await publisher.close()

            async def done() -> bool:
                r = await c1.get("/api/v1/tally/units/VN", params={"campaign": "1M"}, headers=OP)
                f = r.json()["figures"]
                return bool(f["valid"] == 600 and f["submitted"] == 600)

            await eventually(done, timeout_s=60)
            assert await verify(first.state.ctx.engine) == []
            figures = {}
            for code in ("TH", "HN", "VN"):
                r = await c1.get(f"/api/v1/tally/units/{code}", params={"campaign": "1M"}, headers=OP)
                figures[code] = r.json()["figures"]
            # TH-01 ended under TH (8 moves); its three leaves' initiatives count there, HN-001's under HN.
            assert figures["TH"]["valid"] == 450 and figures["HN"]["valid"] == 150
            assert figures["VN"]["participants"] == 17 + 5


async def test_a_fact_another_replica_inserts_meanwhile_is_merged_again_over_its_row(
    planned_pg: tuple[FastAPI, httpx.AsyncClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replica A reads the batch's facts and finds none for an initiative; before A inserts it, replica B stores
    that initiative's submission and commits. A's insert then loses (nothing of A's is written over B's row): A
    locks B's row and merges its own event again over it, so the fact holds both events and each is counted once."""
    from tally.adapters import facts as fact_store
    from tally.handlers import initiatives as handlers

    app, client = planned_pg
    sessions = app.state.ctx.sessions
    iid = new_id()
    load, insert = fact_store.load_many_for_update, fact_store.insert_new
    lost: list[set[str]] = []

    async def replica_b() -> None:
        async with sessions() as session:
            event = submitted(iid, "TH-01-001", authors=("M-7",), benefit=5_000)
            await handlers.on_initiative_content(session, event)
            await handlers.apply_batch(session, [event])
            await session.commit()

    async def load_then_b_commits(session: Any, skeletons: list[Any]) -> dict[str, Any]:
        found = await load(session, skeletons)
        if not lost:  # A's first read: B stores the initiative before A writes
            lost.append(set())
            assert found == {}
            await replica_b()
        return found

    async def recording_insert(session: Any, new: list[Any]) -> set[str]:
        missed = await insert(session, new)
        lost.append(missed)
        return missed

    monkeypatch.setattr(fact_store, "load_many_for_update", load_then_b_commits)
    monkeypatch.setattr(fact_store, "insert_new", recording_insert)
    async with sessions() as session:
        event = reviewed(iid, "TH-01-001", "valid", 1, authors=("M-7",), benefit=5_000, verified=4_000)
        await handlers.on_initiative_reviewed(session, event)
        await handlers.apply_batch(session, [event])
        await session.commit()

    assert {iid} in lost  # A's insert met B's row: the path under test ran
    async with sessions() as session:
        stored = await load(session, [handlers.new_fact(iid, {"campaign": "1M"})])
    assert stored[iid].content_revision == 0 and stored[iid].authors == ("M-7",)  # B's submission
    assert stored[iid].outcome == "valid" and stored[iid].verified_benefit_vnd == 4_000  # A's decision
    got = await figures(client, "TH-01-001", "P1")
    assert (got["submitted"], got["valid"], got["benefit_vnd"], got["participants"]) == (1, 1, 4_000, 1)
    assert await verify(app.state.ctx.engine) == []
