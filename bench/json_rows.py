"""What PostgreSQL spends reading a batch's rows out of one JSON document (shared/bulk.py), as json and as jsonb.

    .venv/bin/python bench/json_rows.py [--url postgresql+asyncpg://postgres@127.0.0.1/postgres] [--rounds 7]

Every set-based write of the services sends its rows as one JSON array of row arrays and reads column ``i`` of
each row with ``->> i``. This runs that read alone (``SELECT`` of every column, summed so that none is skipped)
over two shapes: review's items (500 rows of 30 columns, two ~600-character Vietnamese texts, the authors and
the near-duplicates as JSON: bench/province.py's texts) and tally's counters (3,500 rows of 8 short columns).
It reports the best of ``--rounds`` wall times per statement, each shape read as ``json`` (the document
re-parsed from the row's start for every ``->> i``) and as ``jsonb`` (parsed once into a binary array).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import String, bindparam, cast, column, func, literal, select
from sqlalchemy.dialects.postgresql import JSON, JSONB
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

sys.path[:0] = [str(Path(__file__).resolve().parent)]
from province import Province, Shape  # noqa: E402


def review_rows(n: int) -> list[list[Any]]:
    province = Province(Shape().scaled(n / Shape().submissions))
    rows = []
    for item in province.items(0, n):
        b = province.body(item)
        similar = [{"initiative_id": str(uuid.uuid4()), "seq": 5, "title": b["title"], "score": 0.61}] * 5
        rows.append([
            str(uuid.uuid4()), b["campaign"], "P1", b["unit_code"], item.index + 1, b["field"], b["title"],
            b["problem"], b["solution"], b["effect"], b["expected_benefit_vnd"], b["applied_on"], b["confidential"],
            b["authors"], "|x|", "support-1", "2026-11-29T10:00:00Z", 1, "pending", None, None, 0, None, None, None,
            similar, 0, None, None, "2026-11-29T10:00:00Z",
        ])  # fmt: skip
    return rows


def counter_rows(n: int) -> list[list[Any]]:
    return [[f"TH-01-{i:05d}", "TH23", "P1", i, 2 * i, 3 * i, 1_000_000 + i, 5] for i in range(n)]


def read_all(kind: str, columns: int) -> Any:
    """``SELECT sum(length(r.value ->> 0) + …)`` over the document's rows, read as ``kind`` (json or jsonb)."""
    type_ = JSONB if kind == "jsonb" else JSON
    elements = func.jsonb_array_elements if kind == "jsonb" else func.json_array_elements
    value = elements(cast(bindparam("rows", type_=String), type_)).table_valued(column("value", type_)).c.value
    lengths = [func.coalesce(func.length(value[i].astext), literal(0)) for i in range(columns)]
    total = lengths[0]
    for length in lengths[1:]:
        total = total + length
    return select(func.sum(total))


async def best_ms(conn: AsyncConnection, kind: str, rows: list[list[Any]], rounds: int) -> float:
    statement, document = read_all(kind, len(rows[0])), orjson.dumps(rows).decode()
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        (await conn.execute(statement, {"rows": document})).scalar_one()
        best = min(best, time.perf_counter() - start)
    return best * 1000


async def main(opts: argparse.Namespace) -> None:
    engine = create_async_engine(opts.url)
    try:
        async with engine.connect() as conn:
            for name, rows in (("review items, 500 × 30 columns", review_rows(500)),
                               ("tally counters, 3,500 × 8", counter_rows(3500))):  # fmt: skip
                json_ms = await best_ms(conn, "json", rows, opts.rounds)
                jsonb_ms = await best_ms(conn, "jsonb", rows, opts.rounds)
                print(f"{name}: json {json_ms:.1f} ms, jsonb {jsonb_ms:.1f} ms ({json_ms / jsonb_ms:.1f}×)")
    finally:
        await engine.dispose()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="postgresql+asyncpg://postgres@127.0.0.1/postgres")
    p.add_argument("--rounds", type=int, default=7)
    asyncio.run(main(p.parse_args()))
