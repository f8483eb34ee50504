"""Migration 0003 fills ``member_units`` from the facts (and its downgrade rebuilds ``memberships`` from them and
the units' paths), on both dialects."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from tally.adapters.maintenance import recompute
from tally.adapters.orm import facts, units
from tally.app import MIGRATIONS

from shared.db import run_migrations
from shared.testing import engine_on

UNITS = [("VN", "/VN/", 0), ("TH", "/VN/TH/", 1), ("TH-1", "/VN/TH/TH-1/", 2), ("HN-1", "/VN/HN-1/", 1)]
# (id, phase, unit, authors, withdrawn, content_revision): Vietnamese member ids too.
FACTS = [
    ("i1", "P1", "TH-1", ["M-1", "Nguyễn-2"], False, 0),
    ("i2", "P1", "TH-1", ["M-1"], False, 1),
    ("i3", "P2", "HN-1", ["M-1"], False, -1),  # known from its review only: counted
    ("i4", "P2", "HN-1", ["M-3"], True, 0),  # withdrawn: not counted
    ("i5", None, "XX-9", ["Nguyễn-2"], False, 0),  # no phase, unknown unit
    ("i6", "P1", "TH", ["M-4"], False, -2),  # content not known yet: not counted
]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with engine_on(request.param, tmp_path) as engine:
        yield engine


async def test_0003_moves_participants_to_one_row_per_member_and_back(engine: AsyncEngine) -> None:
    await run_migrations(engine, MIGRATIONS, revision="0002")
    now = datetime(2026, 11, 24, tzinfo=UTC)
    async with engine.begin() as conn:
        # The plan and facts tables are the same at 0002 and now.
        await conn.execute(
            units.insert(),
            [{"code": c, "name": c, "kind": "grassroots", "path": p, "depth": d, "revision": 1} for c, p, d in UNITS],
        )
        await conn.execute(
            facts.insert(),
            [
                {
                    "initiative_id": iid,
                    "campaign": "1M",
                    "phase": phase,
                    "unit_code": unit,
                    "authors": authors,
                    "expected_benefit_vnd": 0,
                    "content_revision": revision,
                    "withdrawn": withdrawn,
                    "decision_seq": 0,
                    "submitted_at": now,
                }
                for iid, phase, unit, authors, withdrawn, revision in FACTS
            ],
        )

    await run_migrations(engine, MIGRATIONS)
    async with AsyncSession(engine) as session:
        stored = {
            (c, p, m): json.loads(held)
            for c, p, m, held in (
                await session.execute(text("SELECT campaign, phase, member_id, CAST(units AS TEXT) FROM member_units"))
            ).all()
        }
        expected = (await recompute(session)).members
    assert stored == expected
    assert stored[("1M", "*", "M-1")] == {"TH-1": 2, "HN-1": 1}
    assert stored[("1M", "P1", "Nguyễn-2")] == {"TH-1": 1}
    assert stored[("1M", "*", "Nguyễn-2")] == {"TH-1": 1, "XX-9": 1}
    assert ("1M", "*", "M-3") not in stored and ("1M", "*", "M-4") not in stored

    await run_migrations(engine, MIGRATIONS, revision="0002", down=True)
    async with engine.connect() as conn:
        rows = {
            (u, c, p, m): n
            for u, c, p, m, n in (
                await conn.execute(text("SELECT unit_code, campaign, phase, member_id, n FROM memberships"))
            ).all()
        }
    assert rows[("VN", "1M", "*", "M-1")] == 3
    assert rows[("TH", "1M", "*", "M-1")] == 2
    assert rows[("HN-1", "1M", "P2", "M-1")] == 1
    assert rows[("XX-9", "1M", "*", "Nguyễn-2")] == 1
    assert ("VN", "1M", "*", "M-3") not in rows
    assert len(rows) == 16
