"""The appraiser's reads: the worklist of valid initiatives to appraise and one initiative's earlier appraisals."""

from __future__ import annotations

from review_testkit import Review, initiative

from shared.testing import auth

REV_TH = auth("reviewer", "TH", sub="rev-th", member_id="M-9001")
AP_TH = auth("appraiser", "TH", sub="ap-th", member_id="M-7001")
AP_TH2 = auth("appraiser", "TH-01", sub="ap-th-2")
AP_HN = auth("appraiser", "HN", sub="ap-hn")
SCORES = {"novelty": 8, "applicability": 9, "effectiveness": 9, "scope": 8}


async def _validate(review: Review, *items: dict) -> None:
    await review.submit(*items)
    claimed = (await review.client.post("/api/v1/review/claims", json={"count": 50}, headers=REV_TH)).json()["items"]
    for it in claimed:
        r = await review.client.post(
            f"/api/v1/review/items/{it['initiative_id']}/decision", json={"outcome": "valid"}, headers=REV_TH
        )
        assert r.status_code == 200, r.text


async def test_worklist_lists_valid_initiatives_in_scope_not_own_and_pages(review: Review) -> None:
    a = initiative("TH-01-001", seq=101, title="Khuôn định vị cáp")
    b = initiative("TH-02", seq=102, title="Đặt lịch khám qua Zalo")
    own = initiative("TH-01-001", seq=103, authors=["M-7001"])
    pending = initiative("TH-01-001", seq=104)
    hanoi = initiative("HN-001", seq=105)
    await _validate(review, a, b, own)
    await review.submit(pending, hanoi)
    path = "/api/v1/review/appraisals"

    r = await review.client.get(path, headers=AP_TH)
    assert r.status_code == 200, r.text
    body = r.json()
    # only valid ones, of the subtree, never the appraiser's own; in seq order
    assert [i["initiative_id"] for i in body["items"]] == [a["id"], b["id"]]
    first = body["items"][0]
    assert first["title"] == "Khuôn định vị cáp" and first["mine"] is None and "similar" not in first
    assert first["appraisal"] == {"count": 0, "mean": None, "grade": None}

    page1 = (await review.client.get(path, params={"limit": 1}, headers=AP_TH)).json()
    assert [i["seq"] for i in page1["items"]] == [101] and page1["next_after"] == 101
    page2 = (await review.client.get(path, params={"limit": 1, "after": 101}, headers=AP_TH)).json()
    assert [i["seq"] for i in page2["items"]] == [102] and page2["next_after"] is None
    found = (await review.client.get(path, params={"q": "zalo"}, headers=AP_TH)).json()["items"]
    assert [i["seq"] for i in found] == [102]

    r = await review.client.post(f"/api/v1/review/items/{a['id']}/appraisals", json=SCORES, headers=AP_TH)
    assert r.status_code == 201
    todo = (await review.client.get(path, headers=AP_TH)).json()["items"]
    assert [i["seq"] for i in todo] == [102]
    done = (await review.client.get(path, params={"state": "done"}, headers=AP_TH)).json()["items"]
    assert [i["seq"] for i in done] == [101] and done[0]["mine"] == {**SCORES, "note": None}
    assert done[0]["appraisal"]["count"] == 1

    # the district appraiser sees only its district; Hà Nội's sees nothing of Thanh Hóa
    assert [i["seq"] for i in (await review.client.get(path, headers=AP_TH2)).json()["items"]] == [101, 103]
    assert (await review.client.get(path, headers=AP_HN)).json()["items"] == []
    r = await review.client.get(path, params={"unit": "TH"}, headers=AP_HN)
    assert r.status_code == 403 and r.json()["error"]["code"] == "out_of_scope"
    assert (await review.client.get(path, headers=REV_TH)).status_code == 403
    assert (await review.client.get(path)).status_code == 401


async def test_earlier_appraisals_of_one_initiative(review: Review) -> None:
    item = initiative("TH-01-001", seq=201)
    own = initiative("TH-01-001", seq=202, authors=["M-7001"])
    await _validate(review, item, own)
    path = f"/api/v1/review/items/{item['id']}/appraisals"
    r = await review.client.get(path, headers=AP_TH)
    assert r.status_code == 200 and r.json()["items"] == [] and r.json()["summary"]["count"] == 0
    await review.client.post(path, json={**SCORES, "note": "Tốt"}, headers=AP_TH)
    nines = {"novelty": 9, "applicability": 9, "effectiveness": 9, "scope": 9}
    await review.client.post(path, json=nines, headers=AP_TH2)
    got = (await review.client.get(path, headers=AP_TH)).json()
    assert [(a["novelty"], a["note"], a["mine"]) for a in got["items"]] == [(8, "Tốt", True), (9, None, False)]
    assert (got["summary"]["mean"], got["summary"]["grade"]) == (8.75, "excellent")
    assert (await review.client.get(path, headers=AP_HN)).status_code == 403
    r = await review.client.get(f"/api/v1/review/items/{own['id']}/appraisals", headers=AP_TH)
    assert r.status_code == 403 and r.json()["error"]["code"] == "conflict_of_interest"
    unknown = "/api/v1/review/items/00000000-0000-0000-0000-000000000000/appraisals"
    assert (await review.client.get(unknown, headers=AP_TH)).status_code == 404
    assert (await review.client.get(path, headers=REV_TH)).status_code == 403
