"""The plan: unit upserts and their refusals, moves, quotas and their derivation, scope of access."""

from __future__ import annotations

import io

import httpx
import openpyxl
from fastapi import FastAPI
from tally.adapters.maintenance import verify
from tally_testkit import CAMPAIGN, OP, TREE, figures, new_id, reviewed, submitted

from shared.testing import auth


async def _put(client: httpx.AsyncClient, rows: list[dict[str, object]]) -> httpx.Response:
    return await client.put("/api/v1/units", json=rows, headers=OP)


async def test_parent_may_come_later_in_the_batch(app_client: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _app, client = app_client
    r = await _put(client, list(reversed(TREE)))
    assert r.status_code == 200 and r.json()["upserted"] == len(TREE)
    unit = (await client.get("/api/v1/units/TH-01", headers=auth("member", "TH"))).json()
    assert unit["path"] == ["VN", "TH", "TH-01"] and unit["parent_code"] == "TH"
    assert [c["code"] for c in unit["children"]] == ["TH-01-001", "TH-01-002"]


async def test_refusals_name_the_offending_rows(app_client: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _app, client = app_client
    assert (await _put(client, TREE)).status_code == 200
    cases = [
        ([{"code": "X1", "name": "x", "kind": "galaxy", "parent_code": "VN"}], "kind"),
        ([{"code": "X1", "name": "x", "kind": "grassroots", "parent_code": "NOPE"}], "parent_code"),
        ([{"code": "X1", "name": "x", "kind": "grassroots", "parent_code": "TH-01-001"}], "parent_code"),
        ([{"code": "bad/code", "name": "x", "kind": "grassroots", "parent_code": "TH-01"}], "code"),
        # A cycle: TH moves under its own district.
        ([{"code": "TH", "name": "x", "kind": "province", "parent_code": "TH-01"}], "parent_code"),
        (
            [
                {"code": "D1", "name": "x", "kind": "district", "parent_code": "D2"},
                {"code": "D2", "name": "y", "kind": "district", "parent_code": "D1"},
            ],
            "parent_code",
        ),
    ]
    for rows, field in cases:
        r = await _put(client, [{"code": "OK-1", "name": "ok", "kind": "grassroots", "parent_code": "TH-01"}, *rows])
        assert r.status_code == 422, rows
        body = r.json()["error"]
        assert body["code"] == "validation_error"
        assert any(d["row"] >= 1 and d["field"].startswith(field) for d in body["details"]), body
    # Nothing of a refused batch was stored.
    assert (await client.get("/api/v1/units/OK-1", headers=OP)).status_code == 404


async def test_only_operators_change_the_plan(app_client: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _app, client = app_client
    assert (await client.put("/api/v1/units", json=TREE)).status_code == 401
    r = await client.put("/api/v1/units", json=TREE, headers=auth("unit_admin", "VN"))
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    r = await client.put("/api/v1/campaigns/1M", json=CAMPAIGN, headers=auth("unit_admin", "VN"))
    assert r.status_code == 403


async def test_import_csv_and_xlsx(app_client: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _app, client = app_client
    csv_text = (
        "code,name,kind,parent_code,cluster,member_count\nVN,Tổng LĐLĐ,national,,,\nTH,Thanh Hóa,province,VN,C1,\n"
    )
    files = {"file": ("units.csv", csv_text.encode("utf-8-sig"), "text/csv")}
    r = await client.post("/api/v1/units/import", files=files, headers=OP)
    assert r.status_code == 200 and r.json()["upserted"] == 2
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["code", "name", "kind", "parent_code", "member_count"])
    ws.append(["TH-01", "Đông Sơn", "district", "TH", None])
    ws.append(["TH-01-001", "CĐCS X", "grassroots", "TH-01", 420])
    ws.append(["TH-01-002", "CĐCS Y", "grassroots", "TH-01-001", 10])  # grassroots under grassroots
    buf = io.BytesIO()
    wb.save(buf)
    files = {"file": ("units.xlsx", buf.getvalue(), "application/octet-stream")}
    r = await client.post("/api/v1/units/import", files=files, headers=OP)
    assert r.status_code == 422 and [d["row"] for d in r.json()["error"]["details"]] == [2]


async def test_move_reattributes_counts_to_the_new_ancestors(planned: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, client = planned
    bus = app.state.ctx.bus
    a, b = new_id(), new_id()
    await bus.publish([submitted(a, "TH-01-001-A", authors=("M-1",)), submitted(b, "TH-01-002", authors=("M-1",))])
    await bus.publish([reviewed(a, "TH-01-001-A", "valid", 1)])
    # TH-01-001 (with its department) moves from Thanh Hóa to Hà Nội.
    r = await _put(client, [{"code": "TH-01-001", "name": "CĐCS Công ty X", "kind": "grassroots", "parent_code": "HN"}])
    assert r.status_code == 200 and r.json()["changed"] == 2
    th, hn, vn = await figures(client, "TH"), await figures(client, "HN"), await figures(client, "VN")
    assert (th["submitted"], th["valid"], th["participants"]) == (1, 0, 1)
    assert (hn["submitted"], hn["valid"], hn["participants"]) == (1, 1, 1)
    assert (vn["submitted"], vn["valid"], vn["participants"]) == (2, 1, 1)
    dept = (await client.get("/api/v1/units/TH-01-001-A", headers=OP)).json()
    assert dept["path"] == ["VN", "HN", "TH-01-001", "TH-01-001-A"]
    assert await verify(app.state.ctx.engine) == []


async def test_unknown_unit_is_counted_and_joins_its_ancestors_when_planned(
    planned: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = planned
    await app.state.ctx.bus.publish([submitted(new_id(), "LATE-1", authors=("M-7",))])
    assert (await figures(client, "TH"))["submitted"] == 0
    r = await _put(client, [{"code": "LATE-1", "name": "CĐCS mới", "kind": "grassroots", "parent_code": "TH-01"}])
    assert r.status_code == 200
    th = await figures(client, "TH")
    assert (th["submitted"], th["participants"]) == (1, 1)
    assert await verify(app.state.ctx.engine) == []


async def test_quota_of_a_unit_without_its_own_is_the_sum_of_its_children(
    planned: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = planned
    quotas = [
        {"unit_code": "TH-01-001", "phase": "P1", "assigned": 4, "self_set": 6},
        {"unit_code": "TH-01-002", "phase": "P1", "assigned": 6},
        {"unit_code": "TH-01-002", "phase": "P2", "assigned": 10},
        {"unit_code": "HN", "phase": "P1", "assigned": 60000, "self_set": 130000},
    ]
    r = await client.put("/api/v1/campaigns/1M/quotas", json=quotas, headers=OP)
    assert r.status_code == 200 and r.json() == {"upserted": 4}
    await app.state.ctx.bus.publish([submitted(i := new_id(), "TH-01-001"), reviewed(i, "TH-01-001", "valid", 1)])
    th_p1 = await figures(client, "TH", "P1")
    assert (th_p1["quota"], th_p1["self_set"], th_p1["valid"], th_p1["achievement_pct"]) == (10, 12, 1, 10.0)
    th = await figures(client, "TH")  # the whole campaign: the phases' quotas together
    assert th["quota"] == 20
    vn_p1 = await figures(client, "VN", "P1")
    assert vn_p1["quota"] == 60010
    # An own quota for the district replaces the derived one.
    r = await client.put(
        "/api/v1/campaigns/1M/quotas", json=[{"unit_code": "TH-01", "phase": "P1", "assigned": 3}], headers=OP
    )
    assert r.status_code == 200
    assert (await figures(client, "TH", "P1"))["quota"] == 3
    assert (await figures(client, "TH", "P1"))["achievement_pct"] == 33.33


async def test_quota_scope_and_refusals(planned: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _app, client = planned
    admin = auth("unit_admin", "TH")
    ok = [{"unit_code": "TH-01", "phase": "P1", "assigned": 100}]
    assert (await client.put("/api/v1/campaigns/1M/quotas", json=ok, headers=admin)).status_code == 200
    outside = [{"unit_code": "HN-001", "phase": "P1", "assigned": 1}]
    assert (await client.put("/api/v1/campaigns/1M/quotas", json=outside, headers=admin)).status_code == 403
    unknown = [{"unit_code": "NOWHERE", "phase": "P1", "assigned": 1}]
    assert (await client.put("/api/v1/campaigns/1M/quotas", json=unknown, headers=admin)).status_code == 403
    r = await client.put("/api/v1/campaigns/1M/quotas", json=unknown, headers=OP)
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "unit_code"
    bad_phase = [{"unit_code": "TH", "phase": "P9", "assigned": 1}]
    assert (await client.put("/api/v1/campaigns/1M/quotas", json=bad_phase, headers=OP)).status_code == 422
    # Its own assigned quota comes from above; its own self_set it may raise.
    own = [{"unit_code": "TH", "phase": "P1", "assigned": 5}]
    assert (await client.put("/api/v1/campaigns/1M/quotas", json=own, headers=admin)).status_code == 403
    assert (await client.put("/api/v1/campaigns/1M/quotas", json=own, headers=OP)).status_code == 200
    own_self = [{"unit_code": "TH", "phase": "P1", "assigned": 5, "self_set": 9}]
    assert (await client.put("/api/v1/campaigns/1M/quotas", json=own_self, headers=admin)).status_code == 200
    assert (await client.put("/api/v1/campaigns/NOPE/quotas", json=ok, headers=OP)).status_code == 404
    assert (await client.put("/api/v1/campaigns/1M/quotas", json=ok, headers=auth("reviewer", "TH"))).status_code == 403


async def test_campaign_validation(app_client: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _app, client = app_client
    overlapping = {
        **CAMPAIGN,
        "phases": [
            {"code": "P1", "opens_on": "2022-01-01", "closes_on": "2022-06-30"},
            {"code": "P2", "opens_on": "2022-06-01", "closes_on": "2022-12-31"},
        ],
    }
    r = await client.put("/api/v1/campaigns/1M", json=overlapping, headers=OP)
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "phases"
    r = await client.put(
        "/api/v1/campaigns/1M", json={k: v for k, v in CAMPAIGN.items() if k != "milestones"}, headers=OP
    )
    assert r.status_code == 200 and r.json()["milestones"][:2] == [100000, 200000]
    got = await client.get("/api/v1/campaigns/1M", headers=auth("member", "TH"))
    assert got.status_code == 200 and got.json()["phases"][1]["code"] == "P2"


async def test_figures_scope(planned: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _app, client = planned
    params = {"campaign": "1M"}
    assert (await client.get("/api/v1/tally/units/TH", params=params)).status_code == 401
    assert (
        await client.get("/api/v1/tally/units/TH-01", params=params, headers=auth("unit_admin", "TH"))
    ).status_code == 200
    assert (
        await client.get("/api/v1/tally/units/HN", params=params, headers=auth("unit_admin", "TH"))
    ).status_code == 403
    # Unknown units look the same as out-of-scope ones to non-operators; operators get 404.
    assert (
        await client.get("/api/v1/tally/units/ZZ", params=params, headers=auth("unit_admin", "TH"))
    ).status_code == 403
    assert (await client.get("/api/v1/tally/units/ZZ", params=params, headers=OP)).status_code == 404
