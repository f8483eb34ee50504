"""bench/pipeline.py and bench/replay.py at a tiny size, so that they cannot rot: the five processes of
scripts/run-distributed.sh on fresh databases and queues, entry, review, the figures checked, clean-up.
The two run side by side (about 30 s on a quiet machine); each exits 1 when anything is refused or differs."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from shared.testing import PG_ADMIN_DSN

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]


def bench_databases() -> set[str]:
    async def names() -> set[str]:
        admin = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            return {r[0] for r in await admin.fetch("SELECT datname FROM pg_database WHERE datname LIKE 'skbench_%'")}
        finally:
            await admin.close()

    return asyncio.run(names())


def test_pipeline_and_replay_benches_run_and_check_at_a_tiny_size(tmp_path: Path) -> None:
    pipeline = subprocess.Popen(
        [sys.executable, "bench/pipeline.py", "--n", "200", "--rates", "40", "--step-seconds", "1",
         "--echo-seconds", "0.5", "--limit-s", "150", "--drain-limit-s", "30", "--json", str(tmp_path / "p.json"),
         "--timeline"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    replay = subprocess.Popen(
        [sys.executable, "bench/replay.py", "--scale", "0.0005", "--limit-s", "150", "--drain-limit-s", "30",
         "--json", str(tmp_path / "r.json")],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        out_p, _ = pipeline.communicate(timeout=240)
        out_r, _ = replay.communicate(timeout=240)
    finally:
        for proc in (pipeline, replay):
            if proc.poll() is None:
                proc.terminate()  # SIGTERM: the bench stops its system and removes its databases and queues
                proc.wait(60)
    assert pipeline.returncode == 0, out_p[-4000:]
    assert replay.returncode == 0, out_r[-4000:]
    p = json.loads((tmp_path / "p.json").read_text())
    assert p["b"]["entered"] == p["b"]["decided"] == 200
    assert p["a"]["rps"] > 0 and p["b"]["initiatives_per_s"] > 0
    assert p["c"]["steps"][0]["accepted"] == 40
    cpu = p["b"]["cpu_us_per_initiative"]
    assert cpu["review"] > 0
    assert cpu["total without the load generator"] == pytest.approx(cpu["total"] - cpu["load generator (bench)"])
    # --timeline: a row a second of (b), each process's share of a core and the consumers' lag.
    rows = p["b"]["timeline"]
    assert rows and all(0 <= row["machine"] <= 2.5 and row["review behind"] >= 0 for row in rows)
    assert sum(row["review"] for row in rows) > 0
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["check"]["different"] == 0 and r["check"]["units_checked"] > 0
    assert r["check"]["tally_verify_rc"] == 0
    assert set(r["replay"]["peak_rss_kib"]) == {"gateway", "intake", "review", "tally", "awards"}
    assert all(kib > 10_000 for kib in r["replay"]["peak_rss_kib"].values())  # tens of MiB at least
    left = [db for db in bench_databases() if db.startswith((p["db_prefix"], r["db_prefix"]))]
    assert not left  # each bench dropped its databases


def test_the_review_lookups_bench_runs_and_finds_near_duplicates() -> None:
    """bench/review_lookups.py at a tiny size: every step is timed, and the generator's near-copies are found."""
    out = subprocess.run(
        [sys.executable, "bench/review_lookups.py", "--n", "400", "--batches", "50", "--rounds", "1"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-4000:]
    line = next(x for x in out.stdout.splitlines() if "batches of 50" in x)
    for step in ("shingles", "signatures", "shortlists", "exact scores", "loading"):
        assert step in line
    assert int(line.rsplit(";", 1)[1].split()[0]) > 0  # initiatives with near-duplicates


def test_the_lookups_bench_tells_what_each_sketch_margin_keeps() -> None:
    """``--margins``: a wider margin scores more candidates and finds at least as many of the pairs that reach the
    threshold, and lifting the margin finds them all."""
    out = subprocess.run(
        [sys.executable, "bench/review_lookups.py", "--n", "400", "--batches", "50", "--margins", "0.05,0.1875,1.0"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-4000:]
    rows = [x.split() for x in out.stdout.splitlines() if x.strip().startswith("margin ")]
    scored = [float(r[2]) for r in rows]
    found, reaching = [int(r[6]) for r in rows], [int(r[9]) for r in rows]
    assert scored == sorted(scored) and found == sorted(found)
    assert found[-1] == reaching[-1] > 0


def test_the_id_order_bench_runs_both_kinds_and_drops_its_database() -> None:
    """bench/id_order.py at a tiny size: a row of figures per step for both kinds of id, and no database left."""
    out = subprocess.run(
        [sys.executable, "bench/id_order.py", "--rows", "2000", "--step", "1000"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-4000:]
    assert sum("version 4 (random)" in x for x in out.stdout.splitlines()) == 2
    assert sum("version 7 (time)" in x for x in out.stdout.splitlines()) == 2
    table = out.stdout.split("ratio v7/v4", 1)[1].splitlines()[1:]
    assert [r.split()[0] for r in table] == ["1,000", "2,000"]
    assert not {d for d in bench_databases() if d.startswith("skbench_ids_")}
