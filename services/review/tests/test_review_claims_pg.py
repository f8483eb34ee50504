"""Claims on PostgreSQL: the same answers by both ways of finding a subtree's items, and an index, not a scan,
for a small subtree in a long national queue."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from review.adapters import claims
from review.adapters.orm import items
from review_testkit import Review
from sqlalchemy import text

from shared.auth import Principal
from shared.testing import auth

pytestmark = pytest.mark.integration


def item_row(n: int, unit_code: str, *, author: str | None = None, lease: datetime | None = None) -> dict[str, Any]:
    return {
        "initiative_id": str(uuid.uuid4()),
        "campaign": "1M",
        "phase": "P1",
        "unit_code": unit_code,
        "seq": n,
        "title": f"Sáng kiến số {n}",
        "expected_benefit_vnd": 0,
        "confidential": False,
        "authors": [{"member_id": author or f"M-{n}", "full_name": "Tác giả"}],
        "author_ids": f"|{author or f'M-{n}'}|",
        "revision": 0,
        "status": "pending",
        "decision_seq": 0,
        "similar": [],
        "appraisal_count": 0,
        "queued_at": datetime.now(UTC),
        "lease_holder": None if lease is None else "someone",
        "lease_expires_at": lease,
    }


# 2,000 grassroots units G-1 … G-2000 under the fixture's district TH-02.
GRASSROOTS_UNDER_TH02 = text(
    "INSERT INTO unit_replica (code, name, kind, parent_code, path, revision) "
    "SELECT 'G-' || g, 'CĐCS ' || g, 'grassroots', 'TH-02', '/VN/TH/TH-02/G-' || g || '/', 1 "
    "FROM generate_series(1, 2000) AS g"
)


# ``n`` pending items, seq 1..n, spread over the 2,000 units of GRASSROOTS_UNDER_TH02.
PENDING_ITEMS = text(
    "INSERT INTO review_item (initiative_id, campaign, phase, unit_code, seq, title,"
    ' expected_benefit_vnd, confidential, authors, author_ids, revision, status, decision_seq, "similar",'
    " appraisal_count) "
    "SELECT md5(n::text), '1M', 'P1', 'G-' || (n % 2000 + 1), n, 'Sáng kiến ' || n, 0, false,"
    " '[]', '|M-' || n || '|', 0, 'pending', 0, '[]', 0 FROM generate_series(1, CAST(:n AS integer)) AS n"
)


async def analysed_queue(r: Review, n: int) -> None:
    """The 2,000 units of GRASSROOTS_UNDER_TH02 with ``n`` pending items, and statistics taken of both."""
    async with r.app.state.ctx.engine.begin() as conn:
        await conn.execute(GRASSROOTS_UNDER_TH02)
        await conn.execute(PENDING_ITEMS, {"n": n})
        await conn.execute(text("ANALYZE review_item"))
        await conn.execute(text("ANALYZE unit_replica"))


@pytest.mark.parametrize("share", [1, 1000], ids=["per-unit", "queue-order"])
async def test_claims_take_the_oldest_claimable_in_scope_by_either_way(
    pg_review: Review, monkeypatch: pytest.MonkeyPatch, share: int
) -> None:
    monkeypatch.setattr(claims, "SHARE", share)
    now = datetime.now(UTC)
    rows = [
        item_row(1, "HN-001"),  # out of the TH reviewer's scope
        item_row(2, "TH-01-001", author="M-R1"),  # the reviewer's own
        item_row(3, "TH-02", lease=now + timedelta(minutes=5)),  # leased by another
        item_row(4, "TH-02", lease=now - timedelta(minutes=5)),  # a lease that has run out
        item_row(5, "TH-01-001"),
        item_row(6, "TH"),
        item_row(7, "TH-01"),
    ]
    async with pg_review.app.state.ctx.sessions() as session, session.begin():
        await session.execute(items.insert(), rows)
    reviewer = auth("reviewer", "TH", sub="rev-1", member_id="M-R1")
    r = await pg_review.client.post("/api/v1/review/claims", json={"count": 3}, headers=reviewer)
    assert [i["seq"] for i in r.json()["items"]] == [4, 5, 6]
    r = await pg_review.client.post("/api/v1/review/claims", json={"count": 3}, headers=reviewer)
    assert [i["seq"] for i in r.json()["items"]] == [7]
    assert set(r.json()["items"][0]) >= {"title", "authors", "similar", "submitted_at"}
    district = auth("reviewer", "TH-01", sub="rev-2")
    r = await pg_review.client.post("/api/v1/review/claims", json={"count": 10}, headers=district)
    assert [i["seq"] for i in r.json()["items"]] == [2]
    operator = auth("operator", "VN", sub="op-1")
    r = await pg_review.client.post("/api/v1/review/claims", json={"count": 10}, headers=operator)
    assert [i["seq"] for i in r.json()["items"]] == [1]
    unknown = auth("reviewer", "XX", sub="rev-3")
    r = await pg_review.client.post("/api/v1/review/claims", json={"count": 10}, headers=unknown)
    assert r.json()["items"] == []
    metrics = (await pg_review.client.get("/metrics")).text
    assert 'sangkien_review_leases_expired_total{service="review"} 1.0' in metrics


async def test_a_reviewers_own_initiatives_are_left_out_by_their_id_as_written_not_as_a_pattern(
    pg_review: Review,
) -> None:
    """``_`` and ``%`` in a member id are themselves in the claim's test, not LIKE's wildcards: "M_1%" leaves out
    the initiative of "M_1%" only, not that of "MX1abc"."""
    rows = [item_row(1, "TH-01-001", author="MX1abc"), item_row(2, "TH-01-001", author="M_1%")]
    async with pg_review.app.state.ctx.sessions() as session, session.begin():
        await session.execute(items.insert(), rows)
    reviewer = auth("reviewer", "TH", sub="rev-w", member_id="M_1%")
    r = await pg_review.client.post("/api/v1/review/claims", json={"count": 10}, headers=reviewer)
    assert [i["seq"] for i in r.json()["items"]] == [1]


async def test_a_small_subtree_claim_uses_the_index_in_a_long_queue(pg_review: Review) -> None:
    """200,000 pending items over 2,000 units; a grassroots reviewer's claim must read its unit's index
    entries, not the queue (the 2.5 M figure is in docs/benchmarks.md: bench/review.py --claims-queue)."""
    await analysed_queue(pg_review, 200_000)
    principal = Principal(sub="rev-g", name="rev-g", roles=frozenset({"reviewer"}), unit="G-7", member_id="M-x")
    now = datetime.now(UTC)
    async with pg_review.app.state.ctx.sessions() as session, session.begin():
        path, codes = await claims.subtree(session, "G-7", claims.MAX_CODES + 1)
        assert (path, codes) == ("/VN/TH/TH-02/G-7/", ["G-7"])
        # The root's path and its subtree's codes in one statement, the range read through the "C" path index.
        units_plan = await explain(session, claims._SUBTREE, {"code": "G-7", "limit": claims.MAX_CODES + 1})
        assert "ix_unit_replica_path_c" in units_plan and "Seq Scan" not in units_plan, units_plan
        scope, params = claims.lease_params(principal, 50, now, now, path, codes, floor=100_000)
        plan = await explain(session, claims.lease_statement(scope, 1), params)
        # A province's claim reads the queue in order from the floor: the index starts there (an index
        # condition), not at the first item ever queued.
        province = Principal(sub="rev-p", name="rev-p", roles=frozenset({"reviewer"}), unit="TH", member_id="M-p")
        scope_p, params_p = claims.lease_params(province, 50, now, now, "/VN/TH/", None, floor=150_000)
        await session.execute(claims.NO_SEQSCAN_NO_SORT)  # as lease() sets them for this shape
        plan_p = await explain(session, claims.lease_statement(scope_p, 1), params_p)
        rows, _ = await claims.lease(session, principal, 50, now, now + timedelta(minutes=15), 2000)
    # Per unit through an index on unit_code (the partial one, or the plain one where the unit's items are few),
    # never the whole queue.
    assert "Seq Scan on review_item" not in plan, plan
    assert "ix_review_item_claimable" in plan or "ix_review_item_unit" in plan, plan
    assert "ix_review_item_queue" not in plan, plan
    assert "ix_review_item_queue" in plan_p, plan_p
    queue_scan = plan_p.split("ix_review_item_queue", 1)[1]
    assert scope_p == "path" and "Index Cond" in queue_scan and "seq >=" in queue_scan.split("Filter", 1)[0], plan_p
    assert len(rows) == 50 and {r.unit_code for r in rows} == {"G-7"}
    assert sorted(r.seq for r in rows) == [2000 * k + 6 for k in range(50)]


async def test_a_large_subtree_claim_looks_each_items_unit_up_by_key_whatever_the_statistics(
    pg_review: Review,
) -> None:
    """A province's claim, with the statistics of a queue that grew after they were taken (as in the first minutes
    of a campaign): each item's unit path is read by primary key. As a join, the planner kept the subtree's units
    in memory and searched them for each item: in the full replay (3,690 units) 91,000 comparisons per claim, 8.4
    of its 9.7 ms of PostgreSQL."""
    await analysed_queue(pg_review, 20_000)
    province = Principal(sub="rev-p", name="rev-p", roles=frozenset({"reviewer"}), unit="TH", member_id="M-p")
    now = datetime.now(UTC)
    async with pg_review.app.state.ctx.sessions() as session, session.begin():
        scope, params = claims.lease_params(province, 50, now, now, "/VN/TH/", None, floor=20_000)
        await session.execute(claims.NO_SEQSCAN_NO_SORT)  # as lease() sets them for this shape
        plan = await explain(session, claims.lease_statement(scope, 1), params)
        rows, _ = await claims.lease(session, province, 50, now, now + timedelta(minutes=15), 2001, 20_000)
    assert scope == "path" and "unit_replica_pkey" in plan, plan
    assert "Join Filter" not in plan and "Materialize" not in plan, plan
    assert [r.seq for r in sorted(rows, key=lambda r: r.seq)] == list(range(19_000, 19_050))


async def explain(session: Any, stmt: Any, params: dict[str, Any]) -> str:
    """The plan PostgreSQL chooses for the statement as the service sends it (bound parameters)."""
    compiled = stmt.compile(dialect=session.bind.dialect)
    values = compiled.construct_params(params)
    positional = tuple(values[name] for name in compiled.positiontup)
    conn = await session.connection()
    result = await conn.exec_driver_sql("EXPLAIN " + compiled.string, positional)
    return "\n".join(r[0] for r in result.all())


def codes_read(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many codes each call of ``claims.subtree`` read, in order (it is counted from now on)."""
    read: list[int] = []
    subtree = claims.subtree

    async def counted(session: Any, root_code: str, limit: int) -> tuple[str | None, list[str]]:
        path, codes = await subtree(session, root_code, limit)
        read.append(len(codes))
        return path, codes

    monkeypatch.setattr(claims, "subtree", counted)
    return read


async def test_a_large_subtree_claim_reads_only_the_unit_codes_that_choose_its_plan(
    pg_review: Review, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A district of 2,000 units (and the fixture's) in a tree of about 2,001: one code more than 1/SHARE of the
    tree tells that its items are read in queue order; reading all 2,000 codes on every claim cost a province's
    reviewers 11% of review's CPU."""
    async with pg_review.app.state.ctx.engine.begin() as conn:
        await conn.execute(GRASSROOTS_UNDER_TH02)
    read = codes_read(monkeypatch)
    principal = Principal(sub="rev-d", name="rev-d", roles=frozenset({"reviewer"}), unit="TH-02", member_id="M-d")
    now = datetime.now(UTC)
    async with pg_review.app.state.ctx.sessions() as session, session.begin():
        rows, _ = await claims.lease(session, principal, 50, now, now + timedelta(minutes=15), 2001)
    assert rows == [] and read == [2001 // claims.SHARE + 1]


async def test_a_subtree_found_large_is_claimed_under_its_path_without_reading_its_codes_again(
    pg_review: Review, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once a claim has found a reviewer's subtree large (TH-02's 2,000 units in a tree of ~2,001: more than
    1/SHARE), the replica's next claims go straight to its path for ``LARGE_REFRESH_S``, taking only items under
    it; then the codes are read again. (At the national tree a VN reviewer's claim read 5,001 codes each time.)"""
    async with pg_review.app.state.ctx.engine.begin() as conn:
        await conn.execute(GRASSROOTS_UNDER_TH02)
    async with pg_review.app.state.ctx.sessions() as session, session.begin():
        rows = [item_row(1, "G-5"), item_row(2, "HN-001"), item_row(3, "TH-01-001"), item_row(4, "G-1999")]
        await session.execute(items.insert(), rows)
    read = codes_read(monkeypatch)
    principal = Principal(sub="rev-d", name="rev-d", roles=frozenset({"reviewer"}), unit="TH-02", member_id="M-d")
    large = claims.LargeSubtrees()

    async def claim_one() -> list[int]:
        now = datetime.now(UTC)
        async with pg_review.app.state.ctx.sessions() as session, session.begin():
            got, _ = await claims.lease(session, principal, 1, now, now + timedelta(minutes=15), 2001, None, large)
        return [r.seq for r in got]

    assert await claim_one() == [1] and read == [2001 // claims.SHARE + 1]
    assert large.path_of("TH-02") == "/VN/TH/TH-02/"
    assert await claim_one() == [4] and len(read) == 1  # the path remembered: no codes read
    assert await claim_one() == [] and len(read) == 1  # HN-001 and TH-01-001 are outside TH-02's subtree
    monkeypatch.setattr(claims, "LARGE_REFRESH_S", -1.0)  # the verdict is old
    assert large.path_of("TH-02") is None
    assert await claim_one() == [] and read == [101, 101]
    # A small subtree is never remembered: its claims read its codes each time.
    small = Principal(sub="rev-g", name="rev-g", roles=frozenset({"reviewer"}), unit="TH-01", member_id="M-g")
    now = datetime.now(UTC)
    async with pg_review.app.state.ctx.sessions() as session, session.begin():
        got, _ = await claims.lease(session, small, 5, now, now + timedelta(minutes=15), 2001, None, large)
    assert [r.seq for r in got] == [3] and large.path_of("TH-01") is None


async def test_the_subtree_is_read_through_the_path_index_even_on_a_generic_plan(
    pg_review: Review, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The subtree's read is prepared; after five executions PostgreSQL may keep a generic plan, whose unknown LIMIT
    made a scan of every unit with a join filter look cheap: 26 ms at 151,500 units against 0.05 through the path
    index, and a grassroots reviewer's claim cost 21 ms in a national tree. A claim turns sequential scans off
    before that read: the generic plan then takes the path index, and the setting is in force when the read runs."""
    async with pg_review.app.state.ctx.engine.begin() as conn:
        await conn.execute(GRASSROOTS_UNDER_TH02)
        await conn.execute(text("ANALYZE unit_replica"))
    async with pg_review.app.state.ctx.sessions() as session, session.begin():
        compiled = claims._SUBTREE.compile(dialect=session.bind.dialect)
        conn = await session.connection()
        await conn.exec_driver_sql("PREPARE subtree_read AS " + compiled.string)
        await conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")
        await session.execute(claims.NO_SEQSCAN)
        values = compiled.construct_params({"code": "G-7", "limit": 5001})
        args = ", ".join(repr(values[name]) for name in compiled.positiontup)  # the literals -1, 1, 1 and ours
        explained = await conn.exec_driver_sql(f"EXPLAIN EXECUTE subtree_read({args})", ())
        plan = "\n".join(r[0] for r in explained)
        await conn.exec_driver_sql("DEALLOCATE subtree_read")
    assert "ix_unit_replica_path_c" in plan and "Seq Scan" not in plan, plan
    settings: list[str] = []
    subtree = claims.subtree

    async def noted(session: Any, root_code: str, limit: int) -> tuple[str | None, list[str]]:
        settings.append((await session.execute(text("SELECT current_setting('enable_seqscan')"))).scalar_one())
        return await subtree(session, root_code, limit)

    monkeypatch.setattr(claims, "subtree", noted)
    principal = Principal(sub="rev-g", name="rev-g", roles=frozenset({"reviewer"}), unit="G-7", member_id="M-g")
    now = datetime.now(UTC)
    async with pg_review.app.state.ctx.sessions() as session, session.begin():
        await claims.lease(session, principal, 50, now, now + timedelta(minutes=15), 2001)
    assert settings == ["off"]


async def test_claims_start_at_the_floor_and_an_item_below_it_is_claimed_once_the_floor_is_read_again(
    pg_review: Review, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Claims read from ``SEQ_LAG`` below the lowest pending seq, read at most every ``FLOOR_REFRESH_S``: an item
    that becomes pending below it (a late arrival) waits for the next read, and is claimed then."""
    monkeypatch.setattr(claims, "SEQ_LAG", 0)
    runtime = pg_review.app.state.ctx.runtime
    reviewer = auth("reviewer", "TH", sub="rev-f", member_id="M-F")

    async def add(*seqs: int) -> None:
        async with pg_review.app.state.ctx.sessions() as session, session.begin():
            await session.execute(items.insert(), [item_row(n, "TH-01-001") for n in seqs])

    async def claim_one() -> list[int]:
        r = await pg_review.client.post("/api/v1/review/claims", json={"count": 1}, headers=reviewer)
        return [i["seq"] for i in r.json()["items"]]

    await add(10, 11)
    assert await claim_one() == [10]  # the floor is read: 10
    await add(3)
    assert await claim_one() == [11]  # 3 is below the floor read a moment ago
    assert await claim_one() == []
    runtime._floor = None  # FLOOR_REFRESH_S later
    assert await claim_one() == [3]
