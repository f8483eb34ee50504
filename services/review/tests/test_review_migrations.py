"""Migration 0003 recomputes every stored MinHash signature with the multiply-add family the index now uses (and
its downgrade gives back the old ones, byte for byte), on both dialects."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from review.adapters.orm import signatures
from review.adapters.similar_store import SimilarityStore
from review.app import MIGRATIONS
from review.domain.similarity import NUM_PERM, shingles, signature
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from shared.db import run_migrations
from shared.testing import engine_on

TEXTS = [
    "Cải tiến khuôn định vị bằng thép tận dụng phế liệu cho dây chuyền hàn",
    "Cải tiến khuôn định vị bằng thép tận dụng phế liệu cho dây chuyền hàn ống",
    "Ứng dụng phần mềm quản lý hồ sơ đoàn viên công đoàn cơ sở",
    "",
]


def old_signature(shingle_set: np.ndarray) -> np.ndarray:
    """MinHash as review computed it before 0003: (a·x + b) mod (2**32 + 15), from the same seeded draws."""
    rng = np.random.RandomState(20210108)
    a = rng.randint(1, 2**31 - 1, size=NUM_PERM, dtype=np.int64).astype(np.uint64)
    b = rng.randint(0, 2**31 - 1, size=NUM_PERM, dtype=np.int64).astype(np.uint64)
    prime = np.uint64(4294967311)
    if shingle_set.size == 0:
        return np.full(NUM_PERM, int(prime), dtype=np.uint64)
    return ((np.outer(a, shingle_set.astype(np.uint64)) + b[:, None]) % prime).min(axis=1)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with engine_on(request.param, tmp_path) as engine:
        yield engine


async def stored(engine: AsyncEngine) -> dict[str, bytes]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(signatures.c.initiative_id, signatures.c.signature))
        return {iid: bytes(sig) for iid, sig in rows.all()}


async def test_0003_recomputes_stored_signatures_and_its_downgrade_restores_them(engine: AsyncEngine) -> None:
    await run_migrations(engine, MIGRATIONS, revision="0002")
    sets = [shingles(t) for t in TEXTS]
    before = {f"i{n}": old_signature(s).tobytes() for n, s in enumerate(sets)}
    async with engine.begin() as conn:
        await conn.execute(
            signatures.insert(),
            [
                {"initiative_id": f"i{n}", "campaign": "1M", "seq": n + 1, "shingles": s.tobytes(), "signature": sig}
                for n, (s, sig) in enumerate(zip(sets, before.values(), strict=True))
            ],
        )

    await run_migrations(engine, MIGRATIONS)
    after = await stored(engine)
    assert after == {f"i{n}": signature(s).tobytes() for n, s in enumerate(sets)}
    assert all(after[k] != before[k] for k in before)
    # The index rebuilt from the migrated rows finds the near-copy, as one built from fresh signatures does.
    store = SimilarityStore(0.5)
    async with AsyncSession(engine) as session:
        await store.sync(session)
        found = store.index("1M").similar(
            sets[1], lambda ids: [sets[int(i[1:])] for i in ids], before_seq=99, exclude="i1"
        )
    assert [m.initiative_id for m in found] == ["i0"]

    await run_migrations(engine, MIGRATIONS, revision="0002", down=True)
    assert await stored(engine) == before


def _item(n: int) -> dict[str, object]:
    """A pending item of the pipeline bench's size (~1.6 KB: a title and three Vietnamese paragraphs)."""
    paragraph = f"Cải tiến số {n}: thay khuôn định vị bằng thép tận dụng phế liệu, giảm thời gian gá lắp. " * 5
    return {
        "initiative_id": f"00000000-0000-7000-8000-{n:012d}",
        "campaign": "1M",
        "phase": "P1",
        "unit_code": "TH-01-001",
        "seq": n + 1,
        "title": f"Sáng kiến {n}: khuôn định vị cho dây chuyền hàn",
        "problem": paragraph,
        "solution": paragraph,
        "effect": paragraph,
        "expected_benefit_vnd": 1_000_000,
        "confidential": False,
        "authors": [{"member_id": f"M-{n}", "full_name": "Nguyễn Thị Ánh"}],
        "author_ids": f"|M-{n}|",
        "revision": 0,
        "status": "pending",
        "decision_seq": 0,
        "similar": [],
        "appraisal_count": 0,
    }


async def _claim_counts(engine: AsyncEngine) -> tuple[int, int]:
    """Claim 50 items as an operator; the rows the claim updated, and how many of those were heap-only."""
    from datetime import UTC, datetime, timedelta

    from review.adapters import claims
    from sqlalchemy import text

    from shared.auth import Principal

    operator = Principal("op-1", "Vận hành", frozenset({"operator"}), None)
    now = datetime.now(UTC)
    async with AsyncSession(engine) as session, session.begin():
        rows, _ = await claims.lease(session, operator, 50, now, now + timedelta(minutes=30), 1)
        counts = await session.execute(
            text(
                "SELECT pg_stat_get_xact_tuples_updated('review_item'::regclass),"
                " pg_stat_get_xact_tuples_hot_updated('review_item'::regclass)"
            )
        )
        updated, hot = counts.one()
    assert len(rows) == 50
    return int(updated), int(hot)


@pytest.mark.integration
async def test_0004_makes_every_claim_a_heap_only_update(tmp_path: Path) -> None:
    """Migration 0004: with room on review_item's pages, a claim's 50 leases are all heap-only updates (no new
    index entries); at fill factor 80 most were not. It also drops the decisions' index that duplicated the
    unique key's prefix."""
    from review.adapters.orm import items
    from sqlalchemy import inspect as sa_inspect

    for revision, all_heap_only in (("0003", False), ("0004", True)):
        async with engine_on("postgresql", tmp_path) as engine:
            await run_migrations(engine, MIGRATIONS, revision=revision)
            async with engine.begin() as conn:
                await conn.execute(items.insert(), [_item(n) for n in range(200)])
                indexes = await conn.run_sync(lambda s: sa_inspect(s).get_indexes("review_decision"))
            updated, hot = await _claim_counts(engine)
            assert updated == 50
            assert (hot == 50) is all_heap_only, (revision, hot)
            assert ("ix_review_decision_initiative_id" in {i["name"] for i in indexes}) is not all_heap_only
            if revision == "0004":
                await run_migrations(engine, MIGRATIONS, revision="0003", down=True)
                async with engine.connect() as conn:
                    indexes = await conn.run_sync(lambda s: sa_inspect(s).get_indexes("review_decision"))
                assert "ix_review_decision_initiative_id" in {i["name"] for i in indexes}
