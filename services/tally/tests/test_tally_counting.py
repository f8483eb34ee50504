"""Counting on SQLite with the in-process bus: SPEC §4 figures, out of order and duplicated events."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from tally.adapters.maintenance import verify
from tally_testkit import OP, figures, new_id, reviewed, submitted, withdrawn


async def test_figures_roll_up_and_follow_the_latest_decision(planned: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, client = planned
    bus = app.state.ctx.bus
    a, b, c = new_id(), new_id(), new_id()
    # The review of `a` arrives before its submission; `b` is decided twice (the later decision wins).
    await bus.publish([reviewed(a, "TH-01-001", "valid", 1, authors=("M-1", "M-2"), benefit=500, verified=700)])
    await bus.publish([submitted(a, "TH-01-001", authors=("M-1", "M-2"), benefit=500)])
    await bus.publish([submitted(b, "TH-01-001-A", authors=("M-2",), benefit=90, phase="P2")])
    await bus.publish([reviewed(b, "TH-01-001-A", "invalid", 2, phase="P2"), reviewed(b, "TH-01-001-A", "valid", 1)])
    await bus.publish([submitted(c, "HN-001", authors=("M-3",))])
    th = await figures(client, "TH")
    assert th == {
        "submitted": 2,
        "valid": 1,
        "invalid": 1,
        "pending": 0,
        "participants": 2,
        "benefit_vnd": 700,
        "quota": 0,
        "self_set": 0,
        "achievement_pct": None,
    }
    assert (await figures(client, "TH", "P2"))["invalid"] == 1
    assert (await figures(client, "TH", "P1"))["valid"] == 1
    vn = await figures(client, "VN")
    assert (vn["submitted"], vn["pending"], vn["participants"]) == (3, 1, 3)
    # Withdrawing `c` removes it and its only author.
    await bus.publish([withdrawn(c, "HN-001")])
    vn = await figures(client, "VN")
    assert (vn["submitted"], vn["participants"]) == (2, 2)
    assert await verify(app.state.ctx.engine) == []


async def test_redelivered_event_counts_once_and_late_older_decision_is_ignored(
    planned: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = planned
    bus = app.state.ctx.bus
    a = new_id()
    sub = submitted(a, "HN-001")
    await bus.publish([sub, sub])
    await bus.publish([sub])
    await bus.publish([reviewed(a, "HN-001", "revision", 1), reviewed(a, "HN-001", "valid", 3)])
    await bus.publish([reviewed(a, "HN-001", "invalid", 2)])
    hn = await figures(client, "HN")
    assert (hn["submitted"], hn["valid"], hn["invalid"], hn["benefit_vnd"]) == (1, 1, 0, 1000)
    assert await verify(app.state.ctx.engine) == []


async def test_verify_reports_a_tampered_counter_and_rebuild_restores_it(
    planned: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    from sqlalchemy import update
    from tally.adapters.maintenance import rebuild
    from tally.adapters.orm import counters

    app, client = planned
    await app.state.ctx.bus.publish([submitted(new_id(), "TH-01-002", authors=("M-9",))])
    engine = app.state.ctx.engine
    async with engine.begin() as conn:
        await conn.execute(
            update(counters).where(counters.c.unit_code == "TH", counters.c.phase == "*").values(submitted=42)
        )
    diffs = await verify(engine)
    assert [d["key"][0] for d in diffs] == ["TH"]
    assert diffs[0]["expected"][0] == 1 and diffs[0]["actual"][0] == 42
    assert await rebuild(engine) == 1
    assert await verify(engine) == []
    assert (await figures(client, "TH"))["submitted"] == 1


async def test_phase_attribution_and_timeseries(planned: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, client = planned
    bus = app.state.ctx.bus
    a, b = new_id(), new_id()
    # 2022-05-31T20:00Z is already 1 June in Hà Nội: the day bucket is the local date.
    await bus.publish([submitted(a, "TH-01-001", phase="P1", submitted_at="2022-05-31T20:00:00+00:00")])
    await bus.publish([submitted(b, "TH-01-001", phase="P2", submitted_at="2022-06-02T01:00:00+00:00")])
    await bus.publish([reviewed(b, "TH-01-001", "valid", 1, phase="P2", decided_at="2022-06-03T01:00:00+00:00")])
    assert (await figures(client, "TH", "P1"))["submitted"] == 1
    p2 = await figures(client, "TH", "P2")
    assert (p2["submitted"], p2["valid"]) == (1, 1)
    r = await client.get("/api/v1/tally/timeseries", params={"campaign": "1M", "unit": "TH"}, headers=OP)
    assert r.status_code == 200
    assert r.json()["items"] == [
        {"date": "2022-06-01", "submitted": 1, "valid": 0, "cumulative_submitted": 1, "cumulative_valid": 0},
        {"date": "2022-06-02", "submitted": 1, "valid": 0, "cumulative_submitted": 2, "cumulative_valid": 0},
        {"date": "2022-06-03", "submitted": 0, "valid": 1, "cumulative_submitted": 2, "cumulative_valid": 1},
    ]


async def test_milestone_records_the_nth_valid_initiative_once(planned: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, client = planned
    app.state.ctx.relay.paused = True  # keep emitted events in the outbox, to count them
    bus = app.state.ctx.bus
    ids = [new_id() for _ in range(6)]
    await bus.publish([submitted(i, "HN-001") for i in ids])
    for i in ids[:3]:
        await bus.publish([reviewed(i, "HN-001", "valid", 1)])
    # The third falls back to invalid, then a fourth makes the count 3 again: N=3 stays with ids[2].
    await bus.publish([reviewed(ids[2], "HN-001", "invalid", 2)])
    await bus.publish([reviewed(ids[3], "HN-001", "valid", 1)])
    await bus.publish([reviewed(ids[4], "HN-001", "valid", 1)])
    r = await client.get("/api/v1/tally/milestones", params={"campaign": "1M"})
    assert r.status_code == 200
    items = r.json()["items"]
    assert [(m["n"], m["initiative_id"]) for m in items] == [(3, ids[2])]
    from sqlalchemy import func, select
    from tally.adapters.orm import outbox

    async with app.state.ctx.engine.connect() as conn:
        emitted = (
            await conn.execute(
                select(func.count()).select_from(outbox).where(outbox.c.routing_key == "tally.milestone_reached.v1")
            )
        ).scalar_one()
    assert emitted == 1


async def test_an_unreadable_event_is_dead_lettered_at_once_and_the_rest_of_its_batch_counts_once(
    planned: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = planned
    bus = app.state.ctx.bus
    a, b = new_id(), new_id()
    no_unit = reviewed(b, "TH-01-002", "valid", 1)
    no_unit.data.pop("unit_code")
    bad_seq = reviewed(a, "TH-01-001", "valid", 1)
    bad_seq.data["decision_seq"] = "một"
    # One batch: a poison event between good ones.
    await bus.publish([submitted(a, "TH-01-001"), no_unit, bad_seq, reviewed(a, "TH-01-001", "valid", 2)])
    th = await figures(client, "TH")
    assert (th["submitted"], th["valid"], th["benefit_vnd"]) == (1, 1, 1000)
    letters = await bus.dead_letters("tally")
    assert [d.reason for d in letters] == [
        "invalid payload (InitiativeReviewed): unit_code: Field required",
        "invalid payload (InitiativeReviewed): decision_seq: Input should be a valid integer, unable to parse string"
        " as an integer",
    ]
    metrics = (await client.get("/metrics")).text
    assert 'sangkien_tally_events_dead_lettered_total{service="tally",type="initiative.reviewed"} 2.0' in metrics
    assert 'sangkien_tally_events_failed_total{service="tally",type="initiative.reviewed"} 2.0' in metrics  # no retry
    assert await verify(app.state.ctx.engine) == []
