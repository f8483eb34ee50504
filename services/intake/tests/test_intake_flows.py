"""Idempotency, batch, listing, and the lifecycle driven by review events (revision, withdrawal)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from intake.adapters.orm import initiatives
from sqlalchemy import func, select

from shared.envelope import Envelope
from shared.testing import auth


async def _count(world: Any) -> int:
    async with world.ctx.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(initiatives))).scalar_one())


async def test_idempotent_replay_and_key_reuse(world: Any, kit: Any) -> None:
    c = world.client
    headers = kit.member() | {"Idempotency-Key": "k-1"}
    first = await c.post("/api/v1/initiatives", json=kit.body(), headers=headers)
    again = await c.post("/api/v1/initiatives", json=kit.body(), headers=headers)
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    reused = await c.post("/api/v1/initiatives", json=kit.body(title="Một sáng kiến khác"), headers=headers)
    assert reused.status_code == 422 and reused.json()["error"]["code"] == "idempotency_key_reused"
    # Keys belong to an account: another account's same key is a separate request.
    other = kit.body(authors=[{"member_id": "M-0002", "full_name": "B"}])
    r = await c.post("/api/v1/initiatives", json=other, headers=kit.member("M-0002") | {"Idempotency-Key": "k-1"})
    assert r.status_code == 201 and r.json()["id"] != first.json()["id"]
    assert await _count(world) == 2
    assert (
        'sangkien_intake_idempotent_replays_total{endpoint="single",service="intake"} 1.0'
        in (await c.get("/metrics")).text
    )


async def test_fifty_concurrent_requests_with_one_key_create_one_initiative(world: Any, kit: Any) -> None:
    headers = kit.member() | {"Idempotency-Key": "rush"}
    answers = await asyncio.gather(
        *(world.client.post("/api/v1/initiatives", json=kit.body(), headers=headers) for _ in range(50))
    )
    assert {r.status_code for r in answers} == {201}
    assert len({r.json()["id"] for r in answers}) == 1
    assert await _count(world) == 1


async def test_concurrent_submissions_get_unique_gapless_seq(world: Any, kit: Any) -> None:
    answers = await asyncio.gather(
        *(
            world.client.post("/api/v1/initiatives", json=kit.body(title=f"Sáng kiến số {i}"), headers=kit.member())
            for i in range(40)
        )
    )
    assert {r.status_code for r in answers} == {201}
    assert sorted(r.json()["seq"] for r in answers) == list(range(1, 41))
    metrics = (await world.client.get("/metrics")).text
    # Forty requests were written in fewer transactions than forty (group commit).
    count_line = next(
        x
        for x in metrics.splitlines()
        if x.startswith('sangkien_intake_batch_size_items_count{kind="group_commit",service="intake"}')
    )
    assert float(count_line.split()[-1]) < 40


async def test_batch_accepts_valid_items_and_explains_each_refusal(world: Any, kit: Any) -> None:
    c = world.client
    existing = (await c.post("/api/v1/initiatives", json=kit.body(title="Đã gửi trước"), headers=kit.member())).json()
    items = [
        kit.body(title="Sáng kiến lô 1"),
        kit.body(title="abc"),
        kit.body(title="Đã gửi trước"),
        kit.body(title="Sáng kiến lô 2", unit_code="HN-01-001"),
        {"nonsense": True},
        kit.body(title="Sáng kiến lô 3", field="safety"),
        kit.body(title="Sáng kiến lô 3", field="safety"),
    ]
    headers = kit.support("TH") | {"Idempotency-Key": "batch-1"}
    r = await c.post("/api/v1/initiatives/batch", json={"items": items}, headers=headers)
    assert r.status_code == 200, r.text
    out = r.json()
    results = out["items"]
    assert out["accepted"] == 2 and out["refused"] == 5
    assert results[0]["seq"] == 2 and results[5]["seq"] == 3
    assert results[1]["error"]["details"][0]["field"] == "title"
    assert (
        results[2]["error"]["code"] == "duplicate" and results[2]["error"]["details"]["existing_id"] == existing["id"]
    )
    assert results[3]["error"]["code"] == "out_of_scope"
    assert results[4]["error"]["code"] == "validation_error"
    assert results[6]["error"]["details"]["existing_id"] == results[5]["id"]
    again = await c.post("/api/v1/initiatives/batch", json={"items": items}, headers=headers)
    assert again.json() == out and await _count(world) == 3
    changed = await c.post("/api/v1/initiatives/batch", json={"items": items[:1]}, headers=headers)
    assert changed.status_code == 422 and changed.json()["error"]["code"] == "idempotency_key_reused"
    too_many = await c.post("/api/v1/initiatives/batch", json={"items": [kit.body()] * 1001}, headers=kit.support("TH"))
    assert too_many.status_code == 422


def _reviewed(initiative_id: str, outcome: str, seq: int, reason: str | None = None) -> Envelope:
    data = {"initiative_id": initiative_id, "outcome": outcome, "reason": reason, "decision_seq": seq, "campaign": "1M"}
    return Envelope(type="initiative.reviewed", producer="review", data=data)


async def _status(world: Any, kit: Any, initiative_id: str) -> str:
    r = await world.client.get(f"/api/v1/initiatives/{initiative_id}", headers=auth("operator", None))
    return str(r.json()["status"])


async def test_revision_cycle_emits_revised_and_ignores_stale_decisions(world: Any, kit: Any) -> None:
    c = world.client
    iid = (await c.post("/api/v1/initiatives", json=kit.body(), headers=kit.member())).json()["id"]
    path = f"/api/v1/initiatives/{iid}"
    r = await c.patch(path, json={"solution": "Giải pháp mới"}, headers=kit.member())
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_revision_requested"
    await world.publish(_reviewed(iid, "revision", 1))
    assert await _status(world, kit, iid) == "revision_requested"
    # Only an author or support in scope may revise; others do not even see it.
    assert (await c.patch(path, json={"solution": "x"}, headers=kit.member("M-0002"))).status_code == 404
    assert (await c.patch(path, json={"solution": "x"}, headers=auth("reviewer", "TH"))).status_code == 403
    bad = await c.patch(path, json={"applied_on": "2020-01-01"}, headers=kit.member())
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "applied_on"
    r = await c.patch(path, json={"solution": "Giải pháp mới", "effect": "Hiệu quả mới"}, headers=kit.member())
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "submitted" and r.json()["revision"] == 1 and r.json()["solution"] == "Giải pháp mới"
    [revised] = await world.wait_emitted("initiative.revised")
    assert revised.data["revision"] == 1 and revised.data["phase"] == "P1" and revised.data["id"] == iid
    assert revised.data["submitted_at"] == "2022-03-05T02:00:00+00:00" and revised.data["seq"] == 1
    # A late copy of the first decision changes nothing; the next decision does.
    await world.publish(_reviewed(iid, "revision", 1))
    assert await _status(world, kit, iid) == "submitted"
    await world.publish(_reviewed(iid, "valid", 2))
    assert await _status(world, kit, iid) == "valid"
    await world.publish(_reviewed(iid, "invalid", 1, "spam"))
    record = (await c.get(path, headers=kit.member())).json()
    assert record["status"] == "valid" and record["review"]["decision_seq"] == 2
    r = await c.post(f"{path}/withdraw", headers=kit.member())
    assert r.status_code == 409 and r.json()["error"]["code"] == "already_decided"


async def test_withdrawal_emits_withdrawn_and_later_reviews_are_ignored(world: Any, kit: Any) -> None:
    c = world.client
    iid = (await c.post("/api/v1/initiatives", json=kit.body(), headers=kit.member())).json()["id"]
    assert (await c.post(f"/api/v1/initiatives/{iid}/withdraw", headers=kit.member("M-0002"))).status_code == 404
    r = await c.post(f"/api/v1/initiatives/{iid}/withdraw", headers=kit.support("TH-01"))
    assert r.status_code == 200 and r.json() == {"id": iid, "status": "withdrawn"}
    [event] = await world.wait_emitted("initiative.withdrawn")
    assert set(event.data) == {"id", "campaign", "phase", "unit_code", "authors", "withdrawn_at"}
    await world.publish(_reviewed(iid, "valid", 1))
    assert await _status(world, kit, iid) == "withdrawn"
    # Withdrawn, it no longer blocks the same text from its author.
    assert (await c.post("/api/v1/initiatives", json=kit.body(), headers=kit.member())).status_code == 201


async def test_appraisal_grade_is_kept_newest_first(world: Any, kit: Any) -> None:
    iid = (await world.client.post("/api/v1/initiatives", json=kit.body(), headers=kit.member())).json()["id"]

    def appraised(seq: int, mean: float, grade: str) -> Envelope:
        data = {"initiative_id": iid, "appraisal_seq": seq, "mean": mean, "grade": grade}
        return Envelope(type="initiative.appraised", producer="review", data=data)

    await world.publish(appraised(2, 8.75, "excellent"), appraised(1, 6.0, "none"))
    record = (await world.client.get(f"/api/v1/initiatives/{iid}", headers=kit.member())).json()
    assert record["appraisal"] == {"mean": 8.75, "grade": "excellent"}


async def test_an_unreadable_review_event_is_dead_lettered_at_once_and_its_batch_still_applies(
    world: Any, kit: Any
) -> None:
    iid = (await world.client.post("/api/v1/initiatives", json=kit.body(), headers=kit.member())).json()["id"]
    no_outcome = _reviewed(iid, "valid", 3)
    no_outcome.data.pop("outcome")
    mean_as_words = Envelope(
        type="initiative.appraised",
        producer="review",
        data={"initiative_id": iid, "appraisal_seq": 1, "mean": "tám", "grade": "good"},
    )
    await world.publish(_reviewed(iid, "revision", 1), no_outcome, mean_as_words, _reviewed(iid, "valid", 2))
    record = (await world.client.get(f"/api/v1/initiatives/{iid}", headers=kit.member())).json()
    assert record["status"] == "valid" and record["review"]["decision_seq"] == 2
    assert record["appraisal"] is None
    letters = await world.ctx.bus.dead_letters("intake")
    assert [d.reason for d in letters] == [
        "invalid payload (InitiativeReviewed): outcome: Field required",
        "invalid payload (InitiativeAppraised): mean: Input should be a valid number,"
        " unable to parse string as a number",
    ]


async def test_listing_filters_scope_and_stable_cursor(world: Any, kit: Any) -> None:
    c = world.client
    for i in range(7):
        r = await c.post("/api/v1/initiatives", json=kit.body(title=f"Sáng kiến A{i}"), headers=kit.member())
        assert r.status_code == 201
    other = kit.body(title="Của người khác", unit_code="TH-01-002", authors=[{"member_id": "M-0002", "full_name": "B"}])
    assert (await c.post("/api/v1/initiatives", json=other, headers=kit.support("TH"))).status_code == 201
    hn = kit.body(title="Ở Hà Nội", unit_code="HN-01-001", authors=[{"member_id": "M-0100", "full_name": "C"}])
    assert (await c.post("/api/v1/initiatives", json=hn, headers=auth("operator", None))).status_code == 201

    async def all_pages(headers: dict[str, str], query: str) -> list[dict[str, Any]]:
        items, cursor = [], None
        while True:
            url = f"/api/v1/initiatives?limit=3&{query}" + (f"&cursor={cursor}" if cursor else "")
            r = await c.get(url, headers=headers)
            assert r.status_code == 200, r.text
            items.extend(r.json()["items"])
            cursor = r.json()["next_cursor"]
            if cursor is None:
                return items
            # Inserts between pages never repeat or skip what was already there.
            await c.post("/api/v1/initiatives", json=kit.body(title=f"Chen giữa {len(items)}"), headers=kit.member())

    mine = await all_pages(kit.member(), "campaign=1M")
    assert len({i["id"] for i in mine}) == len(mine) >= 7
    assert all(i["authors"][0]["member_id"] == "M-0001" for i in mine)
    th = await all_pages(kit.support("TH"), "status=submitted")
    assert {i["unit_code"] for i in th} == {"TH-01-001", "TH-01-002"}
    by_author = (await c.get("/api/v1/initiatives?author=M-0002", headers=kit.support("TH"))).json()["items"]
    assert [i["title"] for i in by_author] == ["Của người khác"]
    sub = (await c.get("/api/v1/initiatives?unit=TH-01-002", headers=kit.support("TH"))).json()["items"]
    assert len(sub) == 1
    assert (await c.get("/api/v1/initiatives?unit=HN", headers=kit.support("TH"))).status_code == 403
    window = "submitted_from=2022-03-05T01:00:00Z&submitted_to=2022-03-05T03:00:00Z"
    assert (
        len((await c.get(f"/api/v1/initiatives?{window}&limit=200", headers=auth("operator", None))).json()["items"])
        >= 9
    )
    assert (await c.get("/api/v1/initiatives?cursor=%%%", headers=kit.member())).status_code == 422
    assert (await c.get("/api/v1/initiatives", headers=auth("appraiser", "HN"))).json()["items"][0][
        "unit_code"
    ] == "HN-01-001"


async def test_requests_the_fast_paths_decline_get_the_regular_answers(world: Any, kit: Any) -> None:
    """POST /initiatives and /batch are also served by a pure-ASGI fast path (shared.fast_routes); whatever
    they do not take gets FastAPI's usual 401/422 answers, never a 500 or a half-read body."""
    c = world.client
    batch = "/api/v1/initiatives/batch"
    assert (await c.post(batch, json={"items": [kit.body()]})).status_code == 401
    bad_token = {"Authorization": "Bearer not-a-token"}
    assert (await c.post("/api/v1/initiatives", json=kit.body(), headers=bad_token)).status_code == 401
    for shape in ({"items": []}, {"items": [kit.body()], "extra": 1}, {"items": "x"}, [kit.body()], {"items": [1]}):
        r = await c.post(batch, json=shape, headers=kit.support("TH"))
        assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error", (shape, r.text)
    not_json = await c.post(batch, content=b"{items", headers=kit.support("TH") | {"Content-Type": "application/json"})
    assert not_json.status_code == 422
    long_key = kit.member() | {"Idempotency-Key": "k" * 201}
    r = await c.post("/api/v1/initiatives", json=kit.body(title="Khoá quá dài"), headers=long_key)
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "Idempotency-Key"
    invalid = await c.post("/api/v1/initiatives", json=kit.body(title="abc"), headers=kit.member())
    assert invalid.status_code == 422 and invalid.json()["error"]["details"][0]["field"] == "title"
    # The messages say what to do (issue 16), on the single route as in a batch.
    assert invalid.json()["error"]["details"][0]["message"] == "Tiêu đề cần ít nhất 5 ký tự"
    body = kit.body(title="", expected_benefit_vnd=-1)
    answer = (await c.post("/api/v1/initiatives", json=body, headers=kit.member())).json()["error"]["details"]
    assert {d["field"]: d["message"] for d in answer} == {
        "title": "Vui lòng nhập tiêu đề",
        "expected_benefit_vnd": "Giá trị làm lợi không được âm",
    }
    assert await _count(world) == 0
    # An idempotent batch through the fast path, replayed; a body that is not declared JSON is the
    # regular route's 422 (FastAPI reads only JSON bodies), not a replay.
    key = kit.support("TH") | {"Idempotency-Key": "both-paths"}
    items = {"items": [kit.body(title="Sáng kiến qua hai lối")]}
    first = await c.post(batch, json=items, headers=key)
    assert first.status_code == 200 and first.json()["accepted"] == 1
    again = await c.post(batch, content=orjson.dumps(items), headers=key | {"Content-Type": "text/plain"})
    assert again.status_code == 422 and again.json()["error"]["details"][0]["field"] == "body"
    replay = await c.post(batch, content=orjson.dumps(items), headers=key | {"Content-Type": "application/json"})
    assert replay.json() == first.json()
    assert await _count(world) == 1


async def test_events_carry_the_correlation_id_of_the_request_that_made_them(world: Any, kit: Any) -> None:
    """The group commit builds the events in a task of its own; each still carries its request's id."""
    c = world.client
    for n, corr in enumerate(("yeu-cau-1", "req-2")):
        headers = kit.member() | {"X-Correlation-Id": corr}
        r = await c.post("/api/v1/initiatives", json=kit.body(title=f"Theo dấu {n}"), headers=headers)
        assert r.status_code == 201 and r.headers["x-correlation-id"] == corr
    batch = [kit.body(title=f"Theo dấu lô {n}") for n in range(3)]
    r = await c.post(
        "/api/v1/initiatives/batch", json={"items": batch}, headers=kit.support("TH") | {"X-Correlation-Id": "lo-3"}
    )
    assert r.status_code == 200 and r.json()["accepted"] == 3
    events = await world.wait_emitted("initiative.submitted", 5)
    by_title = {e.data["title"]: e.correlation_id for e in events}
    assert by_title["Theo dấu 0"] == "yeu-cau-1" and by_title["Theo dấu 1"] == "req-2"
    assert {by_title[f"Theo dấu lô {n}"] for n in range(3)} == {"lo-3"}
