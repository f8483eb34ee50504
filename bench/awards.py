"""What a nomination costs, against a plain Python computation of the same list, in one run.

    .venv/bin/python bench/awards.py [--units 20000] [--initiatives 20000] [--rounds 3] [--pg]

The awards app runs in-process (SQLite file, or a fresh PostgreSQL database with ``--pg``) with a
fake of tally's snapshot API (the documented contract, fixed data) as its "tally" transport. For
each round it measures:

- collective, first computation: snapshot read from tally page by page, frozen, ranked, stored;
- collective, recomputation: from the frozen inputs;
- individual, first computation: member figures derived from the per-initiative facts as of the
  snapshot instant, frozen, ranked, stored;
- individual, recomputation;

and, in the same process on the same data, the reference: a plain Python filter + sort + JSON
encoding of the same list (no HTTP, no database). Reported: medians in ms and the ratio
endpoint / reference.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve()
REPO = HERE.parents[1]
sys.path[:0] = [str(REPO), str(REPO / "services" / "awards"), str(REPO / "services" / "awards" / "tests")]

from awards_testkit import harness, reviewed, unit_item  # noqa: E402

from shared.testing import pg_database  # noqa: E402

TAKEN_AT = "2023-08-31T00:00:00+00:00"


def reference_collective(units: list[dict[str, Any]]) -> bytes:
    ok = [u for u in units if (u["figures"]["achievement_pct"] or 0) >= 100]
    ok.sort(key=lambda u: (-u["figures"]["valid"], u["unit"]["code"]))
    return orjson.dumps([{"rank": i, "unit": u["unit"], "figures": u["figures"]} for i, u in enumerate(ok[:500], 1)])


def reference_individual(facts: list[tuple[list[str], int]]) -> bytes:
    per: dict[str, list[int]] = {}
    for authors, benefit in facts:
        for m in authors:
            acc = per.setdefault(m, [0, 0])
            acc[0] += 1
            acc[1] += benefit
    ok = sorted(((m, v) for m, v in per.items() if v[0] >= 3), key=lambda x: (-x[1][0], -x[1][1], x[0]))
    return orjson.dumps(
        [{"rank": i, "member_id": m, "valid": v[0], "benefit": v[1]} for i, (m, v) in enumerate(ok[:500], 1)]
    )


async def timed(fn: Callable[[], Awaitable[Any]]) -> float:
    t0 = time.perf_counter()
    await fn()
    return (time.perf_counter() - t0) * 1000


async def run(args: argparse.Namespace, database_url: str | None, tmp: Path) -> dict[str, list[float]]:
    rng = random.Random(7)
    results: dict[str, list[float]] = {}
    async with harness(tmp, database_url=database_url) as h:
        units = [
            unit_item(f"GR-{n:06d}", f"K{n % 50:02d}", rng.randint(0, 200), rng.choice([0, 50, 100]), 10, 10**6)
            for n in range(args.units)
        ]
        facts: list[tuple[list[str], int]] = []
        envs = []
        for i in range(args.initiatives):
            authors = [f"M-{rng.randint(0, args.initiatives // 3):06d}"]
            benefit = rng.randint(0, 100) * 100_000
            facts.append((authors, benefit))
            envs.append(reviewed(f"ini-{i:07d}", [(a, f"Đoàn viên {a}") for a in authors], benefit=benefit, phase=None))
        for k in range(0, len(envs), 2000):
            await h.publish(*envs[k : k + 2000])
        base = {"campaign": "1M", "phase": None, "max_recipients": 500}
        await h.put_scheme(
            "COL",
            {
                **base,
                "name": "Tập thể",
                "recipient": "collective",
                "unit_kind": "grassroots",
                "rule": {"min_achievement_pct": 100},
                "order_by": ["valid"],
            },
        )
        await h.put_scheme(
            "IND",
            {
                **base,
                "name": "Cá nhân",
                "recipient": "individual",
                "rule": {"min_valid": 3},
                "order_by": ["valid", "benefit_vnd"],
            },
        )
        for r in range(args.rounds):
            sid = f"S{r}"
            h.tally.add(sid, "1M", None, TAKEN_AT, units)
            for label, code in (("collective", "COL"), ("individual", "IND")):
                first = await timed(lambda c=code, s=sid: h.nominate(c, s))
                again = await timed(lambda c=code, s=sid: h.nominate(c, s))
                results.setdefault(f"{label} first", []).append(first)
                results.setdefault(f"{label} recompute", []).append(again)
            results.setdefault("reference collective", []).append(await timed(_async(reference_collective, units)))
            results.setdefault("reference individual", []).append(await timed(_async(reference_individual, facts)))
    return results


def _async(fn: Callable[..., Any], *a: Any) -> Callable[[], Awaitable[Any]]:
    async def call() -> Any:
        return fn(*a)

    return call


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--units", type=int, default=20_000)
    parser.add_argument("--initiatives", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pg", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        if args.pg:
            async with pg_database() as url:
                res = await run(args, url, Path(d))
        else:
            res = await run(args, None, Path(d))
    med = {k: statistics.median(v) for k, v in res.items()}
    store = "PostgreSQL" if args.pg else "SQLite"
    print(f"awards nominations, {args.units} units, {args.initiatives} initiatives, {store}, median of {args.rounds}")
    for label in ("collective", "individual"):
        ref = med[f"reference {label}"]
        print(f"  reference {label:<10} {ref:9.1f} ms")
        for phase in ("first", "recompute"):
            v = med[f"{label} {phase}"]
            print(f"  {label:<10} {phase:<9}  {v:9.1f} ms   ratio {v / ref:6.1f}x")


if __name__ == "__main__":
    asyncio.run(main())
