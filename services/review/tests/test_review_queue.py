"""The queue on SQLite with the in-process bus: scope, leases, decisions, revision loop, events in any order."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from review.adapters.similar_store import Entry, RecentSets, sets_within
from review.app import create
from review_testkit import TOPOLOGY, Review, initiative, review_settings, start_review

from shared.bus.memory import InMemoryBroker
from shared.testing import auth, eventually

REV_TH = auth("reviewer", "TH", sub="rev-th", member_id="M-9001")
REV_TH2 = auth("reviewer", "TH", sub="rev-th-2", member_id="M-9002")
REV_HN = auth("reviewer", "HN", sub="rev-hn", member_id="M-9003")
OP = auth("operator", "VN", sub="op-1")


async def claim(r: Review, headers: dict[str, str], count: int = 10) -> list[dict[str, Any]]:
    resp = await r.client.post("/api/v1/review/claims", json={"count": count}, headers=headers)
    assert resp.status_code == 200, resp.text
    return resp.json()["items"]


async def decide(r: Review, iid: str, headers: dict[str, str], **body: Any) -> Any:
    return await r.client.post(f"/api/v1/review/items/{iid}/decision", json=body, headers=headers)


async def test_claims_take_the_oldest_in_scope_and_never_the_reviewers_own(review: Review) -> None:
    own = initiative("TH-01-001", authors=["M-0005", "M-9001"], seq=1)
    a, b = initiative("TH-01-001", seq=3), initiative("TH-02", seq=2)
    hanoi = initiative("HN-001", seq=4)
    await review.submit(own, a, b, hanoi)

    items = await claim(review, REV_TH)
    assert [i["initiative_id"] for i in items] == [b["id"], a["id"]]
    assert items[0]["title"] == b["title"] and items[0]["authors"][0]["member_id"] == "M-0001"
    # The second Thanh Hóa reviewer gets what the first does not hold: only the one the first authored.
    assert [i["initiative_id"] for i in await claim(review, REV_TH2)] == [own["id"]]
    assert [i["initiative_id"] for i in await claim(review, REV_HN)] == [hanoi["id"]]

    r = await review.client.post("/api/v1/review/claims", json={"count": 10})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    r = await review.client.post("/api/v1/review/claims", json={"count": 10}, headers=auth("member", "TH"))
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    r = await review.client.post("/api/v1/review/claims", json={"count": 51}, headers=REV_TH)
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "count"
    # Out of scope, unknown, conflict of interest.
    assert (await decide(review, hanoi["id"], REV_TH, outcome="valid")).status_code == 403
    r = await decide(review, "00000000-0000-0000-0000-000000000000", REV_TH, outcome="valid")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = await decide(review, own["id"], REV_TH, outcome="valid")
    assert r.status_code == 403 and r.json()["error"]["code"] == "conflict_of_interest"


async def test_decisions_need_the_lease_and_follow_the_reason_rules(review: Review) -> None:
    item = initiative()
    await review.submit(item)
    iid = item["id"]
    r = await decide(review, iid, REV_TH, outcome="valid")
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_lease_holder"
    await claim(review, REV_TH)
    r = await decide(review, iid, REV_TH2, outcome="valid")
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_lease_holder"
    r = await decide(review, iid, REV_TH, outcome="invalid")
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "reason"
    r = await decide(review, iid, REV_TH, outcome="invalid", reason="lazy")
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "reason"
    r = await decide(review, iid, REV_TH, outcome="revision", note="  ")
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "note"
    r = await decide(review, iid, REV_TH, outcome="maybe")
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "outcome"

    r = await decide(review, iid, REV_TH, outcome="invalid", reason="duplicate", note="Trùng với #12")
    assert r.status_code == 200 and r.json()["decision_seq"] == 1
    r = await decide(review, iid, REV_TH, outcome="valid")
    assert r.status_code == 409 and r.json()["error"]["code"] == "already_decided"
    # The operator's re-decision is the next decision and is kept in the history.
    r = await decide(review, iid, OP, outcome="valid", verified_benefit_vnd=90_000_000)
    assert r.status_code == 200 and r.json()["redecision"] is True and r.json()["decision_seq"] == 2

    await eventually(lambda: _count(review, "initiative.reviewed", 2))
    first, second = review.of("initiative.reviewed")
    assert (first["outcome"], first["reason"], first["decision_seq"]) == ("invalid", "duplicate", 1)
    assert (second["outcome"], second["verified_benefit_vnd"], second["decision_seq"]) == ("valid", 90_000_000, 2)
    assert second["campaign"] == "1M" and second["unit_code"] == "TH-01-001" and second["seq"] == item["seq"]
    assert second["authors"] == item["authors"] and second["expected_benefit_vnd"] == 150_000_000
    assert second["submitted_at"] == item["submitted_at"] and second["decided_by"] == "op-1"

    got = (await review.client.get(f"/api/v1/review/items/{iid}", headers=REV_TH)).json()
    assert got["status"] == "valid"
    assert [(d["outcome"], d["decided_by"], d["redecision"]) for d in got["decisions"]] == [
        ("invalid", "rev-th", False),
        ("valid", "op-1", True),
    ]
    assert got["decisions"][0]["note"] == "Trùng với #12"
    metrics = (await review.client.get("/metrics")).text
    assert 'sangkien_review_decisions_total{outcome="invalid",reason="duplicate",service="review"} 1.0' in metrics
    assert 'sangkien_review_submission_to_decision_seconds_count{service="review"} 2.0' in metrics


async def _count(r: Review, event_type: str, n: int) -> bool:
    return len(r.of(event_type)) >= n


async def test_expired_leases_return_to_the_queue(tmp_path: Path) -> None:
    broker = InMemoryBroker(TOPOLOGY, delivery_limit=3)
    app = create(
        review_settings(f"sqlite+aiosqlite:///{tmp_path}/r.db", lease_minutes=0), broker=broker, topology=TOPOLOGY
    )
    async with start_review(app) as r:
        item = initiative()
        await r.submit(item)
        assert [i["initiative_id"] for i in await claim(r, REV_TH)] == [item["id"]]
        # A lease of zero minutes is over at once: the holder may no longer decide, another may claim.
        assert (await decide(r, item["id"], REV_TH, outcome="valid")).status_code == 409
        assert [i["initiative_id"] for i in await claim(r, REV_TH2)] == [item["id"]]
        assert 'sangkien_review_leases_expired_total{service="review"} 1.0' in (await r.client.get("/metrics")).text


async def test_release_gives_items_back(review: Review) -> None:
    a, b = initiative(), initiative()
    await review.submit(a, b)
    assert len(await claim(review, REV_TH)) == 2
    assert await claim(review, REV_TH2) == []
    r = await review.client.post("/api/v1/review/claims/release", json={"initiative_ids": [a["id"]]}, headers=REV_TH)
    assert r.json() == {"released": 1}
    assert [i["initiative_id"] for i in await claim(review, REV_TH2)] == [a["id"]]
    r = await review.client.post("/api/v1/review/claims/release", json={}, headers=REV_TH)
    assert r.json() == {"released": 1}


async def test_revision_loop_reenters_the_queue_and_ends_valid(review: Review) -> None:
    item = initiative()
    await review.submit(item)
    await claim(review, REV_TH)
    r = await decide(review, item["id"], REV_TH, outcome="revision", note="Bổ sung số liệu hiệu quả")
    assert r.status_code == 200 and r.json()["status"] == "revision_requested"
    assert await claim(review, REV_TH) == []
    # Intake's PATCH emits initiative.revised.v1 with revision 1: the initiative is pending again.
    revised = {**item, "revision": 1, "effect": "Giảm phế phẩm 45%, tiết kiệm 200 triệu"}
    await review.send("initiative.revised", revised)
    items = await claim(review, REV_TH2)
    assert [(i["initiative_id"], i["effect"], i["revision"]) for i in items] == [(item["id"], revised["effect"], 1)]
    r = await decide(review, item["id"], REV_TH2, outcome="valid")
    assert r.status_code == 200 and r.json()["decision_seq"] == 2
    await eventually(lambda: _count(review, "initiative.reviewed", 2))
    assert [(e["outcome"], e["decision_seq"]) for e in review.of("initiative.reviewed")] == [
        ("revision", 1),
        ("valid", 2),
    ]


async def test_withdrawal_removes_from_the_queue_even_before_the_submission_arrives(review: Review) -> None:
    a, b = initiative(), initiative()
    await review.submit(a)
    withdrawn = {k: a[k] for k in ("id", "campaign", "phase", "unit_code", "authors")}
    await review.send("initiative.withdrawn", withdrawn)
    # b's withdrawal overtakes its submission; the late submission must not bring it back.
    await review.send("initiative.withdrawn", {k: b[k] for k in ("id", "campaign", "phase", "unit_code", "authors")})
    await review.submit(b)
    assert await claim(review, REV_TH) == []
    assert (await decide(review, a["id"], OP, outcome="valid")).json()["error"]["code"] == "withdrawn"
    stats = (await review.client.get("/api/v1/review/stats", headers=REV_TH)).json()
    assert stats["withdrawn"] == 2 and stats["pending"] == 0


async def test_duplicated_and_out_of_order_events_keep_the_newest_revision(review: Review) -> None:
    item = initiative()
    newer = {**item, "revision": 2, "title": "Cải tiến khuôn định vị (bản 2)"}
    await review.send("initiative.revised", newer)
    await review.submit(item)  # revision 0, late: ignored
    await review.send("initiative.revised", {**item, "revision": 1, "title": "bản 1"})  # late too
    env_id = "a1b2c3d4-0000-0000-0000-000000000001"
    first = initiative()
    await review.send("initiative.submitted", first, event_id=env_id)
    # A redelivery (another batch): its revision is not newer, so the item stays as the first delivery made it.
    await review.send("initiative.submitted", {**first, "title": "bản khác"}, event_id=env_id)
    items = await claim(review, REV_TH)
    assert len(items) == 2
    mine = next(i for i in items if i["initiative_id"] == item["id"])
    assert (mine["title"], mine["revision"]) == (newer["title"], 2)
    assert next(i for i in items if i["initiative_id"] == first["id"])["title"] == first["title"]


async def test_batch_decisions_report_each_item(review: Review) -> None:
    a, b, c = initiative(), initiative(), initiative("HN-001")
    await review.submit(a, b, c)
    await claim(review, REV_TH)
    body = {
        "decisions": [
            {"initiative_id": a["id"], "outcome": "valid"},
            {"initiative_id": b["id"], "outcome": "invalid", "reason": "spam"},
            {"initiative_id": c["id"], "outcome": "valid"},
            {"initiative_id": a["id"], "outcome": "valid"},
        ]
    }
    r = await review.client.post("/api/v1/review/decisions/batch", json=body, headers=REV_TH)
    assert r.status_code == 200
    got = r.json()
    assert (got["accepted"], got["refused"]) == (2, 2)
    assert [i["status"] for i in got["items"]] == [200, 200, 403, 409]
    await eventually(lambda: _count(review, "initiative.reviewed", 2))


async def test_stats_count_the_subtree_and_its_children(review: Review) -> None:
    await review.submit(initiative("TH-01-001"), initiative("TH-01-001"), initiative("TH-02"), initiative("HN-001"))
    items = await claim(review, REV_TH, count=1)
    await decide(review, items[0]["initiative_id"], REV_TH, outcome="valid")
    await claim(review, REV_TH, count=1)
    s = (await review.client.get("/api/v1/review/stats", headers=REV_TH)).json()
    assert (s["pending"], s["leased"], s["decided"]["valid"], s["decided_today_by_me"]) == (1, 1, 1, 1)
    assert s["oldest_pending_age_s"] is not None and s["oldest_pending_age_s"] >= 0
    children = {c["unit"]["code"]: c for c in s["children"]}
    assert children["TH-01"]["decided"]["valid"] == 1 and children["TH-01"]["leased"] == 1
    assert children["TH-02"]["pending"] == 1
    assert (await review.client.get("/api/v1/review/stats?unit=HN", headers=REV_TH)).status_code == 403
    whole = (await review.client.get("/api/v1/review/stats", headers=OP)).json()
    assert whole["pending"] + whole["leased"] == 3


async def test_appraisals_grade_from_two_on(review: Review) -> None:
    item = initiative()
    await review.submit(item)
    iid = item["id"]
    path = f"/api/v1/review/items/{iid}/appraisals"
    scores = {"novelty": 8, "applicability": 9, "effectiveness": 9, "scope": 8}
    ap1 = auth("appraiser", "TH", sub="ap-1", member_id="M-7001")
    ap2 = auth("appraiser", "TH-01", sub="ap-2")
    r = await review.client.post(path, json=scores, headers=ap1)
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_valid"
    await claim(review, REV_TH)
    await decide(review, iid, REV_TH, outcome="valid")
    r = await review.client.post(path, json=scores, headers=REV_TH)
    assert r.status_code == 403
    r = await review.client.post(path, json={**scores, "scope": 11}, headers=ap1)
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "scope"
    r = await review.client.post(path, json=scores, headers=auth("appraiser", "HN", sub="ap-hn"))
    assert r.status_code == 403
    r = await review.client.post(path, json=scores, headers=auth("appraiser", "TH", sub="ap-a", member_id="M-0001"))
    assert r.status_code == 403 and r.json()["error"]["code"] == "conflict_of_interest"
    r = await review.client.post(path, json=scores, headers=ap1)
    assert r.status_code == 201 and r.json()["appraisal"] == {"count": 1, "mean": None, "grade": None}
    assert (await review.client.post(path, json=scores, headers=ap1)).json()["error"]["code"] == "already_appraised"
    r = await review.client.post(
        path, json={"novelty": 9, "applicability": 9, "effectiveness": 9, "scope": 9}, headers=ap2
    )
    assert r.json()["appraisal"] == {"count": 2, "mean": 8.75, "grade": "excellent"}
    r = await review.client.post(
        path,
        json={"novelty": 0, "applicability": 0, "effectiveness": 0, "scope": 0},
        headers=auth("appraiser", "VN", sub="ap-3"),
    )
    assert r.json()["appraisal"] == {"count": 3, "mean": 5.83, "grade": "none"}
    await eventually(lambda: _count(review, "initiative.appraised", 2))
    first, second = review.of("initiative.appraised")
    assert (first["appraisal_count"], first["mean"], first["grade"], first["appraisal_seq"]) == (
        2,
        8.75,
        "excellent",
        1,
    )
    assert first["criteria_mean"] == {"novelty": 8.5, "applicability": 9.0, "effectiveness": 9.0, "scope": 8.5}
    assert (second["grade"], second["appraisal_seq"]) == ("none", 2)
    got = (
        await review.client.get(f"/api/v1/review/items/{iid}", headers=auth("member", "TH-01-001", member_id="M-0001"))
    ).json()
    assert got["appraisal"] == {"count": 3, "mean": 5.83, "grade": "none"}
    r = await review.client.get(f"/api/v1/review/items/{iid}", headers=auth("member", "TH-01-001", member_id="M-0404"))
    assert r.status_code == 403


async def test_claim_shows_earlier_near_duplicates(review: Review) -> None:
    text = (
        "Tổ bảo trì đã thiết kế lại băng tải ở ca đêm, giúp giảm thời gian chờ đáng kể 30 phần trăm. "
        "Phân xưởng cơ khí đã lắp đặt cảm biến nhiệt độ tại kho số hai, giúp tiết kiệm điện năng mỗi tháng."
    )
    original = initiative(title="Thiết kế lại băng tải", solution=text, seq=100)
    copy = initiative(
        "TH-02", title="THIET KE LAI BANG TAI", solution=text.replace("đáng kể", "rõ rệt").replace("đ", "d"), seq=101
    )
    other = initiative(title="Số hoá sổ theo dõi ca", solution="Phần mềm chấm công qua điện thoại thông minh", seq=102)
    await review.submit(original, copy, other)
    items = {i["initiative_id"]: i for i in await claim(review, REV_TH)}
    assert items[original["id"]]["similar"] == []
    similar = items[copy["id"]]["similar"]
    assert [s["initiative_id"] for s in similar] == [original["id"]]
    assert similar[0]["title"] == original["title"] and similar[0]["score"] >= 0.5
    assert items[other["id"]]["similar"] == []
    # The index is persisted: a second instance on the same database rebuilds it at start-up.
    url = review.app.state.ctx.settings.database_url
    again = create(review_settings(url), broker=InMemoryBroker(TOPOLOGY), topology=TOPOLOGY)
    async with again.router.lifespan_context(again):
        index = again.state.ctx.runtime.similarity.indexes["1M"]
        assert len(index) == 3
        # The memory given to similarity (SIMILARITY_MEMORY_MB) sizes the sets kept beside the index it loaded.
        store = again.state.ctx.runtime.similarity
        assert store.memory_bytes == review_settings(url).similarity_memory_mb << 20
        assert store.recent.limit == sets_within(store.memory_bytes, 3)
        probe = Entry(str(uuid.uuid4()), "1M", 101, copy["title"], copy["solution"], None, True)
        async with again.state.ctx.sessions() as session:
            found = await again.state.ctx.runtime.similarity.lookup_batch(session, [probe])
        assert [m.initiative_id for m in found[probe.initiative_id].matches] == [original["id"]]
        # With no shingle set kept in memory, the candidate's is read from review_signature: the same match.
        store.recent = RecentSets(limit=0)
        async with again.state.ctx.sessions() as session:
            again_found = await store.lookup_batch(session, [probe])
        assert again_found[probe.initiative_id].matches == found[probe.initiative_id].matches


async def test_item_view_follows_the_internal_contract_and_the_scope(review: Review) -> None:
    secret = {**initiative(), "confidential": True, "problem": None, "solution": None, "effect": "Tóm tắt ngắn"}
    await review.submit(secret)
    path = f"/api/v1/review/items/{secret['id']}"
    got = (await review.client.get(path, headers=REV_TH)).json()
    assert (got["initiative_id"], got["status"], got["decisions"], got["appraisal"]) == (
        secret["id"],
        "pending",
        [],
        None,
    )
    assert (got["confidential"], got["problem"], got["solution"], got["effect"]) == (True, None, None, "Tóm tắt ngắn")
    assert (await review.client.get(path, headers=REV_HN)).status_code == 403
    assert (await review.client.get(path)).status_code == 401
    r = await review.client.get("/api/v1/review/items/not-there", headers=REV_TH)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    # A withdrawal seen before its submission leaves no visible item behind.
    ghost = initiative()
    await review.send(
        "initiative.withdrawn", {k: ghost[k] for k in ("id", "campaign", "phase", "unit_code", "authors")}
    )
    assert (await review.client.get(f"/api/v1/review/items/{ghost['id']}", headers=OP)).status_code == 404


async def test_queue_depth_gauge_follows_the_queue(tmp_path: Path) -> None:
    broker = InMemoryBroker(TOPOLOGY, delivery_limit=3)
    settings = review_settings(f"sqlite+aiosqlite:///{tmp_path}/r.db", queue_gauge_interval_s=0.05)
    async with start_review(create(settings, broker=broker, topology=TOPOLOGY)) as r:
        await r.submit(initiative(), initiative(), initiative("HN-001"))

        async def depth_is(n: int) -> bool:
            return f'sangkien_review_queue_depth{{service="review"}} {n}.0' in (await r.client.get("/metrics")).text

        await eventually(lambda: depth_is(3))
        item = (await claim(r, REV_TH, count=1))[0]
        await decide(r, item["initiative_id"], REV_TH, outcome="valid")
        await eventually(lambda: depth_is(2))
