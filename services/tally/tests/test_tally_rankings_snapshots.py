"""Rankings (competition ranking, ties by code, clusters) and snapshot immutability."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from tally_testkit import OP, new_id, reviewed, submitted

from shared.testing import auth

GRASSROOTS = [
    {"code": f"G{i}", "name": f"CĐCS {i}", "kind": "grassroots", "parent_code": "TH-01", "cluster": c}
    for i, c in [(1, "K1"), (2, "K1"), (3, "K2"), (4, "K2"), (5, "K1")]
]


async def _valid(app: FastAPI, unit: str, n: int, authors: tuple[str, ...] = ("M-1",)) -> None:
    events = []
    for _ in range(n):
        i = new_id()
        events += [submitted(i, unit, authors=authors), reviewed(i, unit, "valid", 1, authors=authors)]
    await app.state.ctx.bus.publish(events)


async def test_competition_ranking_with_ties_by_code_and_clusters(planned: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, client = planned
    assert (await client.put("/api/v1/units", json=GRASSROOTS, headers=OP)).status_code == 200
    for unit, n in [("G1", 2), ("G2", 3), ("G3", 2), ("G4", 1), ("G5", 0)]:
        await _valid(app, unit, n)
    r = await client.get(
        "/api/v1/tally/rankings", params={"campaign": "1M", "kind": "grassroots", "metric": "valid", "limit": 5}
    )
    assert r.status_code == 200  # public: no token
    got = [(i["rank"], i["unit"]["code"], i["value"]) for i in r.json()["items"]]
    assert got[:5] == [(1, "G2", 3), (2, "G1", 2), (2, "G3", 2), (4, "G4", 1), (5, "G5", 0)]
    r = await client.get("/api/v1/tally/rankings", params={"campaign": "1M", "kind": "grassroots", "cluster": "K1"})
    assert [(i["rank"], i["unit"]["code"]) for i in r.json()["items"]] == [(1, "G2"), (2, "G1"), (3, "G5")]
    quotas = [{"unit_code": u, "phase": "P1", "assigned": q} for u, q in [("G1", 4), ("G2", 6), ("G3", 2)]]
    assert (await client.put("/api/v1/campaigns/1M/quotas", json=quotas, headers=OP)).status_code == 200
    r = await client.get(
        "/api/v1/tally/rankings",
        params={"campaign": "1M", "phase": "P1", "kind": "grassroots", "metric": "achievement_pct"},
    )
    assert [(i["rank"], i["unit"]["code"], i["value"]) for i in r.json()["items"]] == [
        (1, "G3", 100.0),
        (2, "G1", 50.0),
        (2, "G2", 50.0),
    ]
    bad = await client.get("/api/v1/tally/rankings", params={"campaign": "1M", "kind": "grassroots", "metric": "x"})
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "metric"


async def test_snapshot_never_changes_afterwards(planned: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, client = planned
    app.state.ctx.relay.paused = True
    await _valid(app, "TH-01-001", 2, authors=("M-1", "M-2"))
    r = await client.post("/api/v1/tally/snapshots", json={"campaign": "1M", "phase": None}, headers=OP)
    assert r.status_code == 201
    snap = r.json()["id"]
    await _valid(app, "TH-01-001", 3)
    path = f"/api/v1/tally/snapshots/{snap}/units/TH"
    frozen = (await client.get(path, headers=OP)).json()
    assert (frozen["figures"]["valid"], frozen["figures"]["participants"]) == (2, 2)
    assert [c["unit"]["code"] for c in frozen["children"]] == ["TH-01"]
    live = (await client.get("/api/v1/tally/units/TH", params={"campaign": "1M"}, headers=OP)).json()
    assert live["figures"]["valid"] == 5
    meta = (await client.get(f"/api/v1/tally/snapshots/{snap}", headers=auth("unit_admin", "TH"))).json()
    assert meta["units_count"] == 8 and meta["campaign"] == "1M"
    page = await client.get(
        f"/api/v1/tally/snapshots/{snap}/figures", params={"kind": "grassroots", "limit": 2}, headers=OP
    )
    body = page.json()
    assert [i["unit"]["code"] for i in body["items"]] == ["HN-001", "TH-01-001"] and body["next_cursor"] == "TH-01-001"
    page2 = await client.get(
        f"/api/v1/tally/snapshots/{snap}/figures",
        params={"kind": "grassroots", "limit": 2, "cursor": body["next_cursor"]},
        headers=OP,
    )
    assert [i["unit"]["code"] for i in page2.json()["items"]] == ["TH-01-002"]
    assert page2.json()["items"][0]["figures"]["valid"] == 0
    scoped = await client.get(f"/api/v1/tally/snapshots/{snap}/figures", headers=auth("unit_admin", "HN"))
    assert {i["unit"]["code"] for i in scoped.json()["items"]} == {"HN", "HN-001"}
    assert (
        await client.get(f"/api/v1/tally/snapshots/{snap}/units/TH", headers=auth("unit_admin", "HN"))
    ).status_code == 403
    assert (await client.get("/api/v1/tally/snapshots/nope", headers=OP)).status_code == 404
    assert (
        await client.post("/api/v1/tally/snapshots", json={"campaign": "1M"}, headers=auth("unit_admin", "VN"))
    ).status_code == 403
    from sqlalchemy import select
    from tally.adapters.orm import outbox

    async with app.state.ctx.engine.connect() as conn:
        keys = (await conn.execute(select(outbox.c.routing_key))).scalars().all()
    assert keys.count("tally.snapshot_frozen.v1") == 1
