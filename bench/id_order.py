"""What the order of ids costs PostgreSQL: inbox rows keyed by random (version 4) against time-ordered (version 7)
UUIDs, as a consumer writes them (``shared.messaging.Dispatcher._claim``: batches of 100, one statement each).

    flock /tmp/sangkien-bench.lock .venv/bin/python bench/id_order.py [--rows 3000000] [--step 500000]

For each kind, a fresh ``inbox`` table in a database of its own (created, then dropped) is filled to ``--rows``;
after every ``--step`` rows it prints the CPU of the PostgreSQL backend (``/proc``, utime+stime) and the wall time,
per row. The version-4 run is the reference; the figure is the ratio of the two at each step.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.ids import new_ids  # noqa: E402

DSN = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
DB = f"skbench_ids_{os.getpid()}"
CLAIM = (
    "INSERT INTO inbox (event_id, handler, processed_at) SELECT unnest($1::varchar[]), unnest($2::varchar[]), now() "
    "ON CONFLICT DO NOTHING RETURNING event_id, handler"
)
TABLE = (
    "CREATE TABLE inbox (event_id varchar(36), handler varchar(200), processed_at timestamptz NOT NULL, "
    "PRIMARY KEY (event_id, handler))"
)
BATCH = 100


def random_ids(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


def backend_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def fill(kind: str, make: Callable[[int], list[str]], rows: int, step: int) -> list[tuple[float, float]]:
    """Per-row µs (PostgreSQL CPU, wall) of each ``step`` rows."""
    conn = await asyncpg.connect(f"{DSN}/{DB}")
    try:
        await conn.execute("DROP TABLE IF EXISTS inbox")
        await conn.execute(TABLE)
        pid, handlers = conn.get_server_pid(), ["initiative.submitted.v1"] * BATCH
        out: list[tuple[float, float]] = []
        cpu0, wall0 = backend_cpu_s(pid), time.perf_counter()
        for done in range(BATCH, rows + 1, BATCH):
            await conn.fetch(CLAIM, make(BATCH), handlers)
            if done % step == 0:
                cpu1, wall1 = backend_cpu_s(pid), time.perf_counter()
                out.append((1e6 * (cpu1 - cpu0) / step, 1e6 * (wall1 - wall0) / step))
                cpu0, wall0 = cpu1, wall1
                print(f"  {kind} {done:>10,}: {out[-1][0]:5.1f} µs CPU, {out[-1][1]:5.1f} µs wall per row", flush=True)
        return out
    finally:
        await conn.close()


async def main(rows: int, step: int) -> None:
    admin = await asyncpg.connect(f"{DSN}/postgres")
    await admin.execute(f'CREATE DATABASE "{DB}"')
    try:
        v4 = await fill("version 4 (random)", random_ids, rows, step)
        v7 = await fill("version 7 (time)  ", new_ids, rows, step)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        await admin.close()
    print("rows        v4 CPU  v7 CPU  ratio v7/v4 (PostgreSQL CPU per row, µs)")
    for i, ((c4, _), (c7, _)) in enumerate(zip(v4, v7, strict=True)):
        ratio = f"{c7 / c4:.2f}" if c4 else "n/a (below the clock tick)"
        print(f"{(i + 1) * step:>10,}  {c4:6.1f}  {c7:6.1f}  {ratio}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=3_000_000)
    ap.add_argument("--step", type=int, default=500_000)
    args = ap.parse_args()
    if args.rows < args.step or args.step % BATCH:
        ap.error(f"--rows must be at least --step, and --step a multiple of {BATCH}")
    asyncio.run(main(args.rows, args.step))
