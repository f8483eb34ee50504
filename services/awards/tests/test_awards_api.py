"""Awards on SQLite with the in-process bus: schemes, nominations, decisions, revocation, exports."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from awards_testkit import OP, Harness, appraised, ev, harness, reviewed, unit_item
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from shared.testing import auth, eventually

COLLECTIVE = {
    "campaign": "1M",
    "phase": None,
    "name": "Tập thể xuất sắc",
    "recipient": "collective",
    "unit_kind": "grassroots",
    "rule": {"min_achievement_pct": 100, "min_valid": 5, "top_per_cluster": None},
    "order_by": ["valid", "achievement_pct"],
    "max_recipients": 3,
}
INDIVIDUAL = {
    "campaign": "1M",
    "phase": "P1",
    "name": "Cá nhân tiêu biểu",
    "recipient": "individual",
    "rule": {"any_of": [{"grade_in": ["excellent"]}, {"min_valid": 2}]},
    "order_by": ["valid", "benefit_vnd"],
    "max_recipients": 10,
}


@pytest.fixture
async def h(tmp_path: Path) -> Any:
    async with harness(tmp_path) as hh:
        hh.tally.add(
            "S1",
            "1M",
            None,
            "2023-08-31T00:00:00+00:00",
            [
                unit_item("TH-01-001", "C1", 50, 40),
                unit_item("TH-01-002", "C1", 50, 50),
                unit_item("TH-01-003", "C2", 70, 100),  # below quota
                unit_item("TH-01-004", "C2", 4, 2),  # too few valid
                unit_item("TH-01-005", None, 30, 10),
                unit_item("TH-01-006", "C2", 30, 0),  # no quota: achievement null
            ],
        )
        yield hh


async def test_scheme_validation_and_roles(h: Harness) -> None:
    c = h.client
    assert (await c.put("/api/v1/awards/schemes/COL-1", json=COLLECTIVE)).status_code == 401
    r = await c.put("/api/v1/awards/schemes/COL-1", json=COLLECTIVE, headers=auth("unit_admin", "TH"))
    assert r.status_code == 403
    r = await h.put_scheme("COL-1", {**COLLECTIVE, "colour": "red"})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "colour"
    r = await h.put_scheme("COL-1", {**COLLECTIVE, "rule": {"grade_in": ["excellent"]}})
    assert r.status_code == 422 and [d["field"] for d in r.json()["error"]["details"]] == ["rule.grade_in"]
    r = await h.put_scheme("COL-1", {**COLLECTIVE, "rule": {"min_valid": -1}})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "rule.min_valid"
    r = await h.put_scheme("IND-1", {**INDIVIDUAL, "rule": {"top_per_cluster": 1, "min_participants": 3}})
    fields = {d["field"] for d in r.json()["error"]["details"]}
    assert r.status_code == 422 and fields == {"rule.top_per_cluster", "rule.min_participants"}
    r = await h.put_scheme("IND-1", {**INDIVIDUAL, "rule": {"any_of": [{"min_valid": 1}, {}]}})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "rule.any_of.1"
    r = await h.put_scheme("IND-1", {**INDIVIDUAL, "order_by": ["achievement_pct"]})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "order_by.0"
    r = await h.put_scheme("COL-1", {k: v for k, v in COLLECTIVE.items() if k != "unit_kind"})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "unit_kind"
    await h.publish(
        ev(
            "campaign.upserted",
            {"code": "1M", "name": "01 triệu sáng kiến", "revision": 1, "phases": [{"code": "P1"}, {"code": "P2"}]},
        )
    )
    r = await h.put_scheme("COL-1", {**COLLECTIVE, "phase": "P9"})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "phase"
    r = await h.put_scheme("COL-1", COLLECTIVE)
    assert r.status_code == 200 and r.json()["code"] == "COL-1" and r.json()["max_recipients"] == 3
    assert (await c.get("/api/v1/awards/schemes/COL-1")).json()["rule"]["min_achievement_pct"] == 100
    assert [s["code"] for s in (await c.get("/api/v1/awards/schemes")).json()["items"]] == ["COL-1"]
    assert (await c.get("/api/v1/awards/schemes/NOPE")).status_code == 404


async def test_collective_nominations_decision_revocation_export(h: Harness) -> None:
    c = h.client
    assert (await h.put_scheme("COL-1", COLLECTIVE)).status_code == 200
    # Only operators compute and decide; tally's answers are forwarded (unknown snapshot → 404).
    assert (await h.nominate("COL-1", "S1", auth("unit_admin", "TH"))).status_code == 403
    assert (await h.nominate("COL-1", "NOPE")).status_code == 404
    r = await h.nominate("COL-1", "S1")
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [(i["rank"], i["recipient"]["unit_code"]) for i in items] == [
        (1, "TH-01-001"),  # 50 valid, 125 %
        (2, "TH-01-002"),  # 50 valid, 100 %
        (3, "TH-01-005"),
    ]
    assert items[0]["figures"]["achievement_pct"] == 125.0
    # Recomputing gives the same bytes, and tally was read once (figures frozen with the computation).
    calls = h.tally.figure_calls
    h.tally.snapshots["S1"][1][0]["figures"]["valid"] = 1  # tally's answer would change now: irrelevant
    again = await h.nominate("COL-1", "S1")
    assert again.content == r.content and h.tally.figure_calls == calls

    body = {"decision_no": "123/QĐ-LĐLĐ", "signed_on": "2023-09-07", "approve": "all"}
    assert (
        await c.post("/api/v1/awards/schemes/COL-1/decision", json=body, headers=auth("unit_admin"))
    ).status_code == 403
    assert (await c.post("/api/v1/awards/schemes/COL-1/decision", json=body)).status_code == 401
    r = await c.post("/api/v1/awards/schemes/COL-1/decision", json={**body, "approve": []}, headers=OP)
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "approve"
    bad = {**body, "approve": ["TH-01-003"]}
    r = await c.post("/api/v1/awards/schemes/COL-1/decision", json=bad, headers=OP)
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "approve.0"
    r = await c.post(
        "/api/v1/awards/schemes/COL-1/decision", json={**body, "approve": [{"unit_code": "TH-01-002"}]}, headers=OP
    )
    assert r.status_code == 201 and [g["recipient"]["unit_code"] for g in r.json()["granted"]] == ["TH-01-002"]
    r = await c.post("/api/v1/awards/schemes/COL-1/decision", json=body, headers=OP)
    # "all" of the last list: TH-01-002 is already awarded, so only the other two are granted now.
    assert sorted(g["recipient"]["unit_code"] for g in r.json()["granted"]) == ["TH-01-001", "TH-01-005"]

    async def three_events() -> bool:
        got.extend(await h.emitted())
        return len(got) >= 3

    got: list[Any] = []
    await eventually(three_events)
    assert {e.type for e in got} == {"award.granted"}
    assert got[0].data["decision_no"] == "123/QĐ-LĐLĐ" and got[0].data["recipient_kind"] == "collective"

    # Already awarded units are not nominated again.
    r = await h.nominate("COL-1", "S1")
    assert r.json()["items"] == []
    # A decision is taken on the list of the scheme as it stands: changed since → compute again.
    assert (await h.put_scheme("COL-1", {**COLLECTIVE, "max_recipients": 2})).status_code == 200
    r = await c.post("/api/v1/awards/schemes/COL-1/decision", json=body, headers=OP)
    assert r.status_code == 409 and r.json()["error"]["code"] == "nominations_stale"
    assert (await h.put_scheme("COL-1", COLLECTIVE)).status_code == 200

    listed = (await c.get("/api/v1/awards", params={"campaign": "1M"})).json()["items"]
    assert len(listed) == 3 and all(not a["revoked"] for a in listed)
    target = next(a for a in listed if a["recipient"]["unit_code"] == "TH-01-005")

    # No route alters an award; the store refuses it too.
    assert (await c.put(f"/api/v1/awards/{target['id']}", json={}, headers=OP)).status_code == 405
    assert (await c.delete(f"/api/v1/awards/{target['id']}", headers=OP)).status_code == 405
    engine = h.app.state.ctx.engine
    for stmt in ("UPDATE awards SET decision_no = 'x'", "DELETE FROM awards"):
        with pytest.raises(DBAPIError):
            async with engine.begin() as conn:
                await conn.execute(text(stmt))

    revoke = {"decision_no": "200/QĐ-LĐLĐ", "reason": "Số liệu báo cáo sai", "revoked_on": "2023-10-01"}
    path = f"/api/v1/awards/{target['id']}/revoke"
    assert (await c.post(path, json=revoke, headers=auth("unit_admin"))).status_code == 403
    assert (await c.post(path, json={**revoke, "revoked_on": "2023-01-01"}, headers=OP)).status_code == 422
    unknown = "/api/v1/awards/00000000-0000-0000-0000-000000000000/revoke"
    assert (await c.post(unknown, json=revoke, headers=OP)).status_code == 404
    r = await c.post(path, json=revoke, headers=OP)
    assert r.status_code == 201 and r.json()["revoked"] and r.json()["revocation"]["decision_no"] == "200/QĐ-LĐLĐ"
    assert (await c.post(path, json=revoke, headers=OP)).status_code == 409
    revoked_events: list[Any] = []

    async def revoked_seen() -> bool:
        revoked_events.extend(e for e in await h.emitted() if e.type == "award.revoked")
        return bool(revoked_events)

    await eventually(revoked_seen)
    assert revoked_events[0].data["award_id"] == target["id"] and revoked_events[0].data["reason"]
    # A revoked recipient may be nominated again.
    r = await h.nominate("COL-1", "S1")
    assert [i["recipient"]["unit_code"] for i in r.json()["items"]] == ["TH-01-005"]

    # Exports: Vietnamese headers, one row per award, the revocation shown.
    r = await c.get("/api/v1/awards/schemes/COL-1/export", params={"format": "csv"})
    assert r.status_code == 200
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["STT", "Mã đơn vị", "Tên đơn vị"] and "Số quyết định" in rows[0]
    assert sorted(row[1] for row in rows[1:]) == ["TH-01-001", "TH-01-002", "TH-01-005"]
    assert any(row[-1].startswith("Đã thu hồi") and row[1] == "TH-01-005" for row in rows[1:])
    r = await c.get("/api/v1/awards/schemes/COL-1/export", params={"format": "xlsx"})
    wb = openpyxl.load_workbook(io.BytesIO(r.content))
    sheet = list(wb.active.iter_rows(values_only=True))
    assert sheet[1][:2] == ("STT", "Mã đơn vị")
    assert sorted(row[1] for row in sheet[2:]) == ["TH-01-001", "TH-01-002", "TH-01-005"]
    assert (await c.get("/api/v1/awards/schemes/COL-1/export", params={"format": "pdf"})).status_code == 422


async def test_per_cluster_scheme(h: Harness) -> None:
    scheme = {**COLLECTIVE, "rule": {"min_achievement_pct": 100, "top_per_cluster": 1}, "max_recipients": 10}
    assert (await h.put_scheme("CL-1", scheme)).status_code == 200
    r = await h.nominate("CL-1", "S1")
    # C1: best of 001/002 is 001; C2: only 004 beat its quota; 005 has no cluster.
    assert [i["recipient"]["unit_code"] for i in r.json()["items"]] == ["TH-01-001", "TH-01-004"]
    assert [i["cluster"] for i in r.json()["items"]] == ["C1", "C2"]


async def test_individual_figures_are_exact_and_frozen_at_the_snapshot(h: Harness) -> None:
    c = h.client
    h.tally.add("SP1", "1M", "P1", "2023-08-31T00:00:00+00:00", [])
    h.tally.add("SOTHER", "1M", "P2", "2023-08-31T00:00:00+00:00", [])
    assert (await h.put_scheme("IND-1", INDIVIDUAL)).status_code == 200
    a, b, cc = ("M-1", "Nguyễn Văn A"), ("M-2", "Trần Thị B"), ("M-3", "Lê Văn C")
    dup = reviewed("i1", [a, b], benefit=5_000_000, verified=2_000_000)
    await h.publish(
        ev(
            "initiative.submitted",
            {
                "id": "i1",
                "campaign": "1M",
                "phase": "P1",
                "unit_code": "TH-01-001",
                "authors": [{"member_id": "M-1", "full_name": "Nguyễn Văn A"}],
                "revision": 0,
            },
        ),
        dup,
        dup,  # a redelivery: counted once
        reviewed("i2", [a], benefit=1_000_000),
        # i3 went valid then invalid; the later decision arrives first.
        reviewed("i3", [b], outcome="invalid", seq=2),
        reviewed("i3", [b], outcome="valid", seq=1),
        reviewed("i4", [cc]),
        appraised("i4", "excellent", seq=2),
        appraised("i4", "none", seq=1),  # older appraisal, arrives late
        # decided after the snapshot: must not count
        reviewed("i5", [b], decided_at="2023-09-02T00:00:00+00:00"),
        reviewed("i6", [b], phase="P2"),  # other phase
    )
    await h.publish(dup)  # redelivered in a later batch (no inbox row: the decision is kept once per decision_seq)
    assert (await h.nominate("IND-1", "SOTHER")).status_code == 422
    r = await h.nominate("IND-1", "SP1")
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [(i["recipient"]["member_id"], i["figures"]) for i in items] == [
        ("M-1", {"valid": 2, "benefit_vnd": 3_000_000, "grade": "none"}),
        ("M-3", {"valid": 1, "benefit_vnd": 1_000_000, "grade": "excellent"}),
    ]
    assert items[0]["recipient"]["full_name"] == "Nguyễn Văn A"
    # A decision made before the snapshot but delivered late does not change the frozen figures.
    await h.publish(reviewed("i7", [b], decided_at="2023-08-30T00:00:00+00:00"))
    again = await h.nominate("IND-1", "SP1")
    assert again.content == r.content
    r = await c.post(
        "/api/v1/awards/schemes/IND-1/decision",
        json={"decision_no": "9/QĐ", "signed_on": "2023-09-07", "approve": ["M-3"]},
        headers=OP,
    )
    assert r.status_code == 201
    mine = (await c.get("/api/v1/awards", params={"member": "M-3"})).json()["items"]
    assert len(mine) == 1 and mine[0]["recipient"]["full_name"] == "Lê Văn C"
    assert (await c.get("/api/v1/awards", params={"member": "M-1"})).json()["items"] == []


async def test_unit_filter_uses_the_subtree(h: Harness) -> None:
    c = h.client
    tree = [("VN", None), ("TH", "VN"), ("TH-01", "TH"), ("TH-01-001", "TH-01"), ("HN", "VN")]
    paths = {"VN": ["VN"], "TH": ["VN", "TH"], "TH-01": ["VN", "TH", "TH-01"], "HN": ["VN", "HN"]}
    paths["TH-01-001"] = [*paths["TH-01"], "TH-01-001"]
    for code, parent in tree:
        await h.publish(
            ev(
                "unit.upserted",
                {
                    "code": code,
                    "name": code,
                    "kind": "grassroots",
                    "parent_code": parent,
                    "path": paths[code],
                    "revision": 1,
                },
            )
        )
    assert (await h.put_scheme("COL-1", COLLECTIVE)).status_code == 200
    await h.nominate("COL-1", "S1")
    body = {"decision_no": "1/QĐ", "signed_on": "2023-09-07", "approve": ["TH-01-001"]}
    assert (await c.post("/api/v1/awards/schemes/COL-1/decision", json=body, headers=OP)).status_code == 201
    assert len((await c.get("/api/v1/awards", params={"unit": "TH"})).json()["items"]) == 1
    assert (await c.get("/api/v1/awards", params={"unit": "HN"})).json()["items"] == []
    assert (await c.get("/api/v1/awards/00000000-0000-0000-0000-000000000000")).status_code == 404


async def test_request_bodies_are_documented_and_refused_in_vietnamese(h: Harness) -> None:
    """Every request body is a model in the OpenAPI document, and a body that does not fit it is answered
    with the 422 of the other services: code, a Vietnamese message, and each field with its own."""
    c = h.client
    spec = (await c.get("/openapi.json")).json()
    bodies = {
        (path, method): op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if "requestBody" in op
    }
    assert bodies == {
        ("/api/v1/awards/schemes/{code}", "put"): "Scheme",
        ("/api/v1/awards/schemes/{code}/nominations", "post"): "NominationRequest",
        ("/api/v1/awards/schemes/{code}/decision", "post"): "DecisionRequest",
        ("/api/v1/awards/{award_id}/revoke", "post"): "RevokeRequest",
    }
    wrong = {**COLLECTIVE, "campaign": 5, "max_recipients": "3", "rule": [], "name": "x" * 301}
    r = await h.put_scheme("COL-1", wrong)
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "validation_error" and error["message"] == "Dữ liệu không hợp lệ"
    messages = {d["field"]: d["message"] for d in error["details"]}
    assert messages == {
        "campaign": "Phải là chuỗi ký tự",
        "max_recipients": "Phải là số nguyên",
        "rule": "Phải là một đối tượng",
        "name": "Tên tối đa 300 ký tự",
    }
    r = await c.post(
        "/api/v1/awards/schemes/COL-1/decision",
        json={"decision_no": "1/QĐ", "signed_on": "hôm qua", "approve": "all"},
        headers=OP,
    )
    assert r.status_code == 422
    assert r.json()["error"]["details"] == [{"field": "signed_on", "message": "Ngày không hợp lệ (YYYY-MM-DD)"}]
    r = await c.post(
        "/api/v1/awards/schemes/COL-1/decision",
        json={"decision_no": "1/QĐ", "signed_on": "2023-09-07", "approve": ["TH-01-001", 5]},
        headers=OP,
    )
    assert r.status_code == 422
    message = 'Phải là "all" hoặc danh sách mã đơn vị/đoàn viên (tối đa 100000)'
    assert r.json()["error"]["details"] == [{"field": "approve", "message": message}]
    r = await c.post("/api/v1/awards/schemes/COL-1/nominations", json={"snapshot_id": 7}, headers=OP)
    assert r.status_code == 422
    assert r.json()["error"]["details"] == [{"field": "snapshot_id", "message": "Phải là chuỗi ký tự"}]


async def test_an_unreadable_event_is_dead_lettered_at_once_with_its_reason(h: Harness) -> None:
    no_seq = reviewed("i1", [("M-1", "Nguyễn Văn A")])
    no_seq.data.pop("decision_seq")
    late_snapshot = ev("tally.snapshot_frozen", {"snapshot_id": "S1", "campaign": "1M", "taken_at": "hôm qua"})
    await h.publish(no_seq, late_snapshot, reviewed("i2", [("M-2", "Trần Thị B")]))
    letters = await h.app.state.ctx.bus.dead_letters("awards")
    assert [d.reason for d in letters] == [
        "invalid payload (InitiativeReviewed): decision_seq: Field required",
        "invalid payload (SnapshotFrozen): taken_at: Input should be a valid datetime or date, input is too short",
    ]
    metrics = (await h.client.get("/metrics")).text
    assert 'sangkien_awards_events_consumed_total{service="awards",type="initiative.reviewed"} 1.0' in metrics
