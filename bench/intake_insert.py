"""What intake's one-statement insert of submitted initiatives costs this process, per group commit.

    ENVIRONMENT=development .venv/bin/python bench/intake_insert.py [--group 32] [--rounds 300] [--passes 5]

On a fresh PostgreSQL database with intake's migrations, ``--rounds`` transactions each write ``--group``
new initiatives (a group commit's size under a rush) with ``intake.adapters.store.insert_submitted``, as
the group-commit writer does after its seq and fingerprint steps. Printed: this process's CPU time
(``time.process_time``) per call and per initiative (a ``SELECT 1`` opening each transaction included),
the median of ``--passes`` passes, and the wall time.
The process is the only client and the loop does nothing else, so the figure is the adapter's own cost
(SQLAlchemy, asyncpg, the JSON and the events), not the load of the machine. Run it on two commits to
compare two ways of writing the statement (docs/benchmarks.md, "Intake: tricks re-measured").
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "services" / "intake")]
os.environ.setdefault("ENVIRONMENT", "development")

from intake.adapters.orm import metadata  # noqa: E402
from intake.adapters.store import insert_submitted  # noqa: E402
from intake.app import MIGRATIONS  # noqa: E402
from intake.domain.events import submitted_event  # noqa: E402
from sqlalchemy import literal, select  # noqa: E402  (after the path set-up)

from shared.db import make_engine, run_migrations  # noqa: E402
from shared.testing import pg_database  # noqa: E402


def records(group: int, seq: int) -> list[dict[str, Any]]:
    """``group`` records as ``intake.submission.prepared`` makes them (one campaign, unit and instant)."""
    at = datetime.now(UTC)
    return [
        {
            "id": str(uuid.uuid4()),
            "campaign": "2026",
            "phase": "P1",
            "unit_code": "TH-01-001",
            "field": "KT",
            "title": f"Sáng kiến cải tiến quy trình số {seq + i}",
            "problem": "Thực trạng " * 20,
            "solution": "Giải pháp " * 40,
            "effect": "Hiệu quả " * 10,
            "expected_benefit_vnd": 1_000_000,
            "applied_on": date(2026, 3, 1),
            "confidential": False,
            "authors": [{"member_id": f"M-{seq + i:06d}", "full_name": "Nguyễn Thị Ánh"}],
            "entered_by": "bench",
            "submitted_at": at,
            "revision": 0,
            "status": "submitted",
            "decision_seq": 0,
            "appraisal_seq": 0,
            "updated_at": at,
            "seq": seq + i,
        }
        for i in range(group)
    ]


async def one_pass(engine: Any, group: int, rounds: int, first_seq: int) -> tuple[float, float]:
    make_event = submitted_event("intake")
    batches = [records(group, first_seq + r * group) for r in range(rounds)]
    cpu, wall = time.process_time(), time.perf_counter()
    async with engine.connect() as conn:
        for batch in batches:
            async with conn.begin():
                # The transaction's first statement, as the fingerprint claim is in ``persist`` (asyncpg's
                # transaction starts with it): the same small cost in every variant.
                await conn.execute(select(literal(1)))
                await insert_submitted(conn, batch, make_event, datetime.now(UTC))
    return time.process_time() - cpu, time.perf_counter() - wall


async def main(options: argparse.Namespace) -> None:
    async with pg_database() as url:
        engine = await make_engine(url)
        try:
            await run_migrations(engine, MIGRATIONS, metadata)
            await one_pass(engine, options.group, 20, 0)  # warm: statements prepared, caches filled
            cpus, walls = [], []
            for n in range(options.passes):
                cpu, wall = await one_pass(engine, options.group, options.rounds, (n + 1) * 10_000_000)
                cpus.append(cpu)
                walls.append(wall)
        finally:
            await engine.dispose()
    calls = options.rounds
    cpu = statistics.median(cpus)
    print(
        f"insert_submitted, groups of {options.group}, {calls} per pass, median of {options.passes}: "
        f"{cpu / calls * 1e6:.0f} µs CPU per call, {cpu / (calls * options.group) * 1e6:.1f} µs per initiative; "
        f"wall {statistics.median(walls) / calls * 1e6:.0f} µs per call"
    )
    print("  CPU per call, each pass (µs): " + ", ".join(f"{c / calls * 1e6:.0f}" for c in cpus))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--group", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--passes", type=int, default=5)
    asyncio.run(main(parser.parse_args()))
