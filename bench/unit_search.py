"""The unit pickers' search (tally ``GET /units?q=``) on PostgreSQL over a national tree of ~150,000 units.

    ENVIRONMENT=development .venv/bin/python bench/unit_search.py

A fresh database (dropped afterwards), migrated to head; 63 provinces × 12 districts × 198 grassroots unions
with generated Vietnamese names; the median of 20 calls of ``search_units`` (the route's query) for queries
an operator, a province and a district account type.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# bench/tally.py would shadow the tally package: the service's folder comes first.
sys.path[:0] = [str(REPO), str(REPO / "services" / "tally")]

from sqlalchemy.ext.asyncio import AsyncSession  # noqa: E402
from tally.adapters.orm import units  # noqa: E402
from tally.adapters.unit_search import search_key, search_units  # noqa: E402
from tally.app import DEFINITION  # noqa: E402

from shared.db import make_engine, run_migrations  # noqa: E402
from shared.testing import pg_database  # noqa: E402

SYLLABLES = "an bình cường dũng giang hải hưng khánh lâm minh nam phong quang sơn tân thanh trung việt xuân yên".split()
QUERIES = (  # label, query, root unit (None: the operator's whole tree)
    ("operator 'cong ty minh son'", "cong ty minh son", None),
    ("operator 'P17-03-1' (a code)", "P17-03-1", None),
    ("operator '' (the top of the tree)", "", None),
    ("operator 'zzz' (no match)", "zzz", None),
    ("province 'quang'", "quang", "P17"),
    ("province '' (the top of its subtree)", "", "P17"),
    ("district 'cong ty' (nearly every union)", "cong ty", "P17-03"),
)


def tree(rng: random.Random) -> list[dict[str, object]]:
    def unit(code: str, name: str, kind: str, path: str, depth: int) -> dict[str, object]:
        return {"code": code, "name": name, "kind": kind, "path": path, "depth": depth, "revision": 1}

    def words(n: int) -> str:
        return " ".join(rng.choice(SYLLABLES) for _ in range(n))

    rows = [unit("VN", "Tổng LĐLĐ Việt Nam", "national", "/VN/", 0)]
    for p in range(63):
        pc = f"P{p:02d}"
        rows.append(unit(pc, f"LĐLĐ tỉnh {words(2)}", "province", f"/VN/{pc}/", 1))
        for d in range(12):
            dc = f"{pc}-{d:02d}"
            rows.append(unit(dc, f"LĐLĐ huyện {words(2)}", "district", f"/VN/{pc}/{dc}/", 2))
            for g in range(198):
                gc = f"{dc}-{g:03d}"
                rows.append(unit(gc, f"CĐCS Công ty {words(2)} {g}", "grassroots", f"/VN/{pc}/{dc}/{gc}/", 3))
    for row in rows:
        row["search_key"] = search_key(str(row["code"]), str(row["name"]))
    return rows


async def main() -> None:
    async with pg_database() as url:
        engine = await make_engine(url)
        try:
            await run_migrations(engine, DEFINITION.migrations)
            rows = tree(random.Random(7))
            async with engine.begin() as conn:
                for i in range(0, len(rows), 5000):
                    await conn.execute(units.insert(), rows[i : i + 5000])
                await conn.exec_driver_sql("ANALYZE units")
            print(f"{len(rows):,} units")
            async with AsyncSession(engine) as session:
                for label, query, root in QUERIES:
                    times = []
                    for _ in range(20):
                        start = time.perf_counter()
                        items, more = await search_units(session, query, root=root, everywhere=root is None, limit=20)
                        times.append(time.perf_counter() - start)
                    print(f"{label}: {len(items)} units, more={more}, median {statistics.median(times) * 1000:.1f} ms")
        finally:
            await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
