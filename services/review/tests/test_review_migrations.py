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
