"""POST /initiatives: acceptance, every refusal rule, roles and scope, exact duplicates, confidentiality."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from shared.testing import auth


async def test_member_submits_and_the_event_carries_the_whole_initiative(world: Any, kit: Any) -> None:
    r = await world.client.post("/api/v1/initiatives", json=kit.body(), headers=kit.member())
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["seq"] == 1 and out["status"] == "submitted"
    r2 = await world.client.post("/api/v1/initiatives", json=kit.body(title="Sáng kiến thứ hai"), headers=kit.member())
    assert r2.json()["seq"] == 2
    [event, _] = await world.wait_emitted("initiative.submitted", 2)
    data = event.data
    assert event.routing_key == "initiative.submitted.v1"
    assert data["id"] == out["id"] and data["seq"] == 1 and data["phase"] == "P1" and data["revision"] == 0
    assert data["entered_by"] == "acc-M-0001" and data["submitted_at"] == "2022-03-05T02:00:00+00:00"
    assert data["authors"] == [{"member_id": "M-0001", "full_name": "Nguyễn Văn A"}]
    assert set(data) == {
        "id", "seq", "campaign", "phase", "unit_code", "field", "title", "problem", "solution", "effect",
        "expected_benefit_vnd", "applied_on", "confidential", "authors", "entered_by", "submitted_at", "revision",
    }  # fmt: skip
    record = (await world.client.get(f"/api/v1/initiatives/{out['id']}", headers=kit.member())).json()
    assert record["status"] == "submitted" and record["entered_by"] == "acc-M-0001" and record["phase"] == "P1"
    assert record["applied_on"] == "2022-03-01" and record["revision"] == 0


async def test_phase_follows_the_hanoi_date_not_utc(world: Any, kit: Any) -> None:
    # 2022-05-31T18:00Z is already 1 June in Hà Nội: phase P2.
    world.set_now(datetime(2022, 5, 31, 18, 0, tzinfo=UTC))
    r = await world.client.post("/api/v1/initiatives", json=kit.body(), headers=kit.member())
    assert r.status_code == 201
    [event] = await world.wait_emitted("initiative.submitted")
    assert event.data["phase"] == "P2"


def _fields(r: Any) -> set[str]:
    return {d["field"] for d in r.json()["error"]["details"]}


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"title": "abc"}, "title"),
        ({"title": "x" * 301}, "title"),
        ({"campaign": "NOPE"}, "campaign"),
        ({"field": "cooking"}, "field"),
        ({"applied_on": "2021-08-31"}, "applied_on"),
        ({"applied_on": "2023-09-02"}, "applied_on"),
        ({"expected_benefit_vnd": -1}, "expected_benefit_vnd"),
        ({"problem": "x" * 20_001}, "problem"),
        ({"authors": []}, "authors"),
        ({"authors": [{"member_id": f"M-{i}", "full_name": "A"} for i in range(21)]}, "authors"),
        (
            {"authors": [{"member_id": "M-0001", "full_name": "A"}, {"member_id": " ", "full_name": "B"}]},
            "authors.1.member_id",
        ),
        (
            {"authors": [{"member_id": "M-0001", "full_name": "A"}, {"member_id": "M-0001", "full_name": "B"}]},
            "authors.1.member_id",
        ),
        ({"confidential": True}, "problem"),
        ({"confidential": True, "problem": None}, "solution"),
        ({"confidential": True, "problem": None, "solution": None, "effect": "x" * 2001}, "effect"),
        ({"unit_code": "TH-01"}, "unit_code"),
        ({"surprise": 1}, "surprise"),
    ],
)
async def test_each_refusal_is_a_422_naming_the_field_in_vietnamese(
    world: Any, kit: Any, over: dict, field: str
) -> None:
    headers = kit.support("TH") if over.get("unit_code") == "TH-01" else kit.member()
    r = await world.client.post("/api/v1/initiatives", json=kit.body(**over), headers=headers)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "validation_error" and field in _fields(r)
    assert all(d["message"] for d in error["details"])


async def test_a_closed_phase_refuses_submissions(world: Any, kit: Any) -> None:
    world.set_now(datetime(2023, 9, 2, 3, 0, tzinfo=UTC))
    r = await world.client.post("/api/v1/initiatives", json=kit.body(), headers=kit.member())
    assert r.status_code == 422 and _fields(r) == {"campaign"}
    assert "giai đoạn" in r.json()["error"]["details"][0]["message"]


async def test_confidential_initiative_keeps_only_title_and_effect(world: Any, kit: Any) -> None:
    r = await world.client.post(
        "/api/v1/initiatives",
        json=kit.body(confidential=True, problem=None, solution=None, effect="Tiết kiệm 10%"),
        headers=kit.member(),
    )
    assert r.status_code == 201
    record = (await world.client.get(f"/api/v1/initiatives/{r.json()['id']}", headers=kit.member())).json()
    assert record["confidential"] is True and record["problem"] is None and record["solution"] is None
    assert record["effect"] == "Tiết kiệm 10%"


async def test_roles_and_scope_of_submission(world: Any, kit: Any) -> None:
    c = world.client
    assert (await c.post("/api/v1/initiatives", json=kit.body())).status_code == 401
    assert (
        await c.post("/api/v1/initiatives", json=kit.body(), headers={"Authorization": "Bearer x.y.z"})
    ).status_code == 401
    # A member must be among the authors, and act in their own unit.
    r = await c.post("/api/v1/initiatives", json=kit.body(), headers=kit.member("M-0002"))
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_an_author"
    other = kit.body(unit_code="HN-01-001")
    assert (await c.post("/api/v1/initiatives", json=other, headers=kit.member())).status_code == 403
    # Support acts for any member in its subtree, not beyond.
    assert (await c.post("/api/v1/initiatives", json=other, headers=kit.support("TH-01"))).status_code == 403
    assert (
        await c.post("/api/v1/initiatives", json=kit.body(unit_code="NOWHERE"), headers=kit.support())
    ).status_code == 403
    r = await c.post("/api/v1/initiatives", json=kit.body(unit_code="TH-01-001-D1"), headers=kit.support())
    assert r.status_code == 201
    record = (await c.get(f"/api/v1/initiatives/{r.json()['id']}", headers=kit.support())).json()
    assert record["entered_by"] == "support-TH-01"
    # Reviewers do not submit.
    assert (await c.post("/api/v1/initiatives", json=kit.body(), headers=auth("reviewer", "TH"))).status_code == 403


async def test_reading_is_scoped_and_never_leaks_existence(world: Any, kit: Any) -> None:
    c = world.client
    mine = (await c.post("/api/v1/initiatives", json=kit.body(), headers=kit.member())).json()["id"]
    path = f"/api/v1/initiatives/{mine}"
    assert (await c.get(path, headers=kit.member())).status_code == 200
    for headers in (kit.member("M-0002"), kit.support("HN"), auth("reviewer", "HN")):
        r = await c.get(path, headers=headers)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert (
        await c.get("/api/v1/initiatives/00000000-0000-0000-0000-000000000000", headers=kit.member())
    ).status_code == 404
    assert (await c.get(path, headers=kit.support("TH"))).status_code == 200
    assert (await c.get(path, headers=auth("operator", None))).status_code == 200


async def test_exact_duplicates_after_normalisation_get_409_with_the_existing_id(world: Any, kit: Any) -> None:
    c = world.client
    first = (await c.post("/api/v1/initiatives", json=kit.body(), headers=kit.member())).json()["id"]
    # Same title and solution modulo case, whitespace and Unicode form (NFD here).
    import unicodedata

    again = kit.body(title=unicodedata.normalize("NFD", "  CẢI TIẾN   khuôn định vị "), solution="thêm  chốt định VỊ")
    r = await c.post("/api/v1/initiatives", json=again, headers=kit.member())
    assert r.status_code == 409 and r.json()["error"]["details"]["existing_id"] == first
    # Another author with the same text is a different submission.
    other = kit.body(authors=[{"member_id": "M-0009", "full_name": "Lê C"}])
    assert (await c.post("/api/v1/initiatives", json=other, headers=kit.member("M-0009"))).status_code == 201
    # A different solution is not an exact duplicate.
    assert (
        await c.post("/api/v1/initiatives", json=kit.body(solution="Khác"), headers=kit.member())
    ).status_code == 201
    metrics = (await c.get("/metrics")).text
    assert 'sangkien_intake_initiatives_refused_total{reason="duplicate",service="intake"} 1.0' in metrics
    assert 'sangkien_intake_initiatives_accepted_total{service="intake",via="single"} 3.0' in metrics
