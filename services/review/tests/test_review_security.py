"""Issue 14: conflict of interest by ``sub`` (finding 9), reads wider than SPEC §6 (finding 10), scope (finding 5)."""

from __future__ import annotations

import asyncio

from review_testkit import Review, initiative

from shared.testing import auth


async def test_a_reviewer_whose_sub_is_an_authors_member_id_never_gets_that_initiative(review: Review) -> None:
    # The identity provider names the reviewer M-0001 by ``sub`` and gives no member_id claim.
    own = initiative("TH-01-001", authors=["M-0001"], seq=1)
    other = initiative("TH-01-001", authors=["M-0002"], seq=2)
    await review.submit(own, other)
    reviewer = auth("reviewer", "TH", sub="M-0001")
    r = await review.client.post("/api/v1/review/claims", json={"count": 10}, headers=reviewer)
    assert r.status_code == 200, r.text
    assert [i["initiative_id"] for i in r.json()["items"]] == [other["id"]]

    # Once valid, neither an appraisal nor a (re)decision under that ``sub`` is accepted.
    operator = auth("operator", "VN", sub="op-1")
    assert (await review.client.post("/api/v1/review/claims", json={"count": 1}, headers=operator)).status_code == 200
    r = await review.client.post(
        f"/api/v1/review/items/{own['id']}/decision", json={"outcome": "valid"}, headers=operator
    )
    assert r.status_code == 200, r.text
    body = {"novelty": 9, "applicability": 9, "effectiveness": 9, "scope": 9}
    r = await review.client.post(
        f"/api/v1/review/items/{own['id']}/appraisals", json=body, headers=auth("appraiser", "TH", sub="M-0001")
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "conflict_of_interest"
    r = await review.client.post(
        f"/api/v1/review/items/{own['id']}/decision", json={"outcome": "invalid", "reason": "spam"}, headers=reviewer
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "conflict_of_interest"
    batch = {"decisions": [{"initiative_id": own["id"], "outcome": "valid"}]}
    r = await review.client.post("/api/v1/review/decisions/batch", json=batch, headers=reviewer)
    assert r.json()["items"][0]["error"]["code"] == "conflict_of_interest"


async def test_the_conflict_check_comes_before_the_lease_check(review: Review) -> None:
    own = initiative("TH-01-001", authors=["M-0001"], seq=1)
    await review.submit(own)
    r = await review.client.post(
        f"/api/v1/review/items/{own['id']}/decision",
        json={"outcome": "valid"},
        headers=auth("reviewer", "TH", sub="M-0001"),
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "conflict_of_interest"


async def test_a_unit_admin_reads_figures_not_the_text_of_initiatives(review: Review) -> None:
    item = initiative("TH-01-001")
    await review.submit(item)
    admin = auth("unit_admin", "TH", sub="admin-th")
    r = await review.client.get(f"/api/v1/review/items/{item['id']}", headers=admin)
    assert r.status_code == 403, r.text
    assert "solution" not in r.text
    stats = await review.client.get("/api/v1/review/stats", headers=admin)
    assert stats.status_code == 200 and stats.json()["pending"] == 1


async def test_subtree_scope_is_case_sensitive_and_needs_a_unit(review: Review) -> None:
    item = initiative("TH-01-001")
    await review.submit(item)
    for headers in (auth("reviewer", "th", sub="rev-lower"), auth("reviewer", None, sub="rev-none")):
        r = await review.client.post("/api/v1/review/claims", json={"count": 10}, headers=headers)
        assert r.status_code in (200, 403), r.text
        assert r.status_code == 403 or r.json()["items"] == []
        r = await review.client.get("/api/v1/review/stats", headers=headers)
        assert r.status_code == 403, r.text


async def test_the_reviewers_fast_routes_answer_as_the_regular_stack(review: Review) -> None:
    """POST /review/claims and /review/decisions/batch are also served without FastAPI's routing
    (shared.fast_routes): the roles are checked there, what they decline gets the regular 401/422, and the
    decisions' events still go out."""
    item = initiative("TH-01-001", seq=1)
    await review.submit(item)
    claims, batch = "/api/v1/review/claims", "/api/v1/review/decisions/batch"
    c = review.client
    assert {("POST", claims), ("POST", batch)} <= review.app._fast_keys  # type: ignore[attr-defined]
    assert (await c.post(claims, json={"count": 1})).status_code == 401
    assert (await c.post(claims, json={"count": 1}, headers={"Authorization": "Bearer x"})).status_code == 401
    for path, body in (
        (claims, {"count": 1}),
        (batch, {"decisions": [{"initiative_id": item["id"], "outcome": "valid"}]}),
    ):
        r = await c.post(path, json=body, headers=auth("member", "TH", sub="M-0009"))
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", r.text
    reviewer = auth("reviewer", "TH", sub="rev-fast")
    for shape in ({"count": 0}, {"count": 1, "extra": 1}, {"count": "x"}):
        r = await c.post(claims, json=shape, headers=reviewer)
        assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error", (shape, r.text)
    r = await c.post(batch, json={"decisions": []}, headers=reviewer)
    assert r.status_code == 422, r.text
    r = await c.post(claims, json={"count": 5}, headers=reviewer)
    assert r.status_code == 200 and [i["title"] for i in r.json()["items"]] == [item["title"]], r.text
    assert r.headers["content-type"] == "application/json"
    body = {"decisions": [{"initiative_id": item["id"], "outcome": "invalid", "reason": "spam", "note": "Trùng lặp"}]}
    r = await c.post(batch, json=body, headers=reviewer)
    assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
    assert r.json()["items"][0]["decision"]["note"] == "Trùng lặp"
    for _ in range(200):
        if review.of("initiative.reviewed"):
            break
        await asyncio.sleep(0.01)
    (event,) = review.of("initiative.reviewed")
    assert event["initiative_id"] == item["id"] and event["outcome"] == "invalid"
