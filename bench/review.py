"""What review costs at national scale, each figure against a reference measured in the same run.

  .venv/bin/python bench/review.py [--n 1000000] [--texts 20000] [--queries 1000] [--items 6000] [--reviewers 8]

1. indexing: ``--texts`` generated Vietnamese initiatives (title + 4–7 sentences) through the whole
   pipeline of ``SimilarityIndex`` (normalise, shingles, MinHash, LSH insert). Reference: the same texts
   into a plain exact-duplicate index (CRC-32 of the raw text into a dict);
2. the index filled to ``--n`` initiatives. To stay within minutes the fill composes each initiative from
   5 sentences of a pool of pre-shingled generated sentences: its shingle set is the union of theirs and
   its MinHash the element-wise minimum of theirs (exact for a union); vocabulary and shingle statistics
   are those of step 1. Ids are UUIDs, as intake's; ``--fill-batch`` initiatives per ``add_many`` (500 is
   about what review's consumer adds a batch). Then the index's memory (RSS, its peak, its own arrays) and the
   shortlists of 200 signatures a call, as the consumer asks for them;
3. lookup at ``--n``: ``--queries`` lookups (half altered copies of indexed initiatives: diacritics removed,
   sentences shuffled, ~10% of words replaced; half unrelated new texts), timed from raw text to the top 5,
   p50/p99, plus the recall of the copies. Reference: a brute-force exact Jaccard scan of the first
   10,000 indexed initiatives (what a service without an index would do, on 1% of the data);
4. claim+decide through the HTTP API: the real service (``uvicorn review.app:create --factory``, one worker)
   on a fresh PostgreSQL database with ``--items`` pending initiatives; ``--reviewers`` concurrent reviewers
   loop ``POST /review/claims {count: 50}`` then ``POST /review/decisions/batch`` (50 decisions, each with
   its outbox event). Also one decision per request (``POST /review/items/{id}/decision``). Reference: a bare
   FastAPI POST endpoint (separate uvicorn, same client, same concurrency), requests/s. With ``--only-api``,
   only this step, with the machine CPU per decision of the service, its PostgreSQL backends, RabbitMQ and the
   client. The relay publishes the decisions' events to the loopback RabbitMQ (a fresh prefix, its queues deleted
   afterwards), as in production: an in-process bus would decode each event once per queue bound to it;
5. ``--claims-queue N`` (alone): claims in a national-size queue of N pending items over ``--claims-units``
   grassroots units (under units/100 districts of one province): the median time of claiming 50 (then
   releasing them) for a grassroots union's reviewer, a district's and the province's; reference: the same
   claims when the queue held 10,000.

  .venv/bin/python bench/review.py --only-api [--items 6000] [--batch-only]
  .venv/bin/python bench/review.py --claims-queue 2500000 [--claims-units 150000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import random
import socket
import subprocess
import sys
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import numpy as np
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "services" / "review"), str(REPO / "services" / "review" / "tests")]

from review.domain.similarity import SimilarityIndex, jaccard, shingles, signature, text_of  # noqa: E402
from review_corpus import _sentence, altered, initiative  # noqa: E402

from shared.auth import mint_token  # noqa: E402
from shared.settings import DEV_JWT_SECRET  # noqa: E402
from shared.testing import AMQP_URL, amqp_prefix, pg_database, pg_url  # noqa: E402

BARE_APP = """
from fastapi import FastAPI
app = FastAPI()
@app.post("/bare")
async def bare(body: dict) -> dict:
    return {"ok": True, "n": len(body)}
"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ---- 1–3: the index ------------------------------------------------------------------------------


def rss_bytes(field: str = "VmRSS") -> int:
    """This process's resident memory (or its peak, ``VmHWM``), from /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def doc_id(d: int) -> str:
    """The id of the bench's ``d``-th initiative, a UUID as intake's ids are (the index keeps those in 16 bytes)."""
    return f"00000000-0000-7000-8000-{d:012x}"


def doc_of(initiative_id: str) -> int:
    return int(initiative_id[24:], 16)


def index_bytes(index: SimilarityIndex) -> dict[str, int]:
    """What the index's own objects take: the sketches, the ids with their positions (16 bytes each and a table of
    sorted runs of 8-byte entries; an id that is not a UUID as its string), the seqs and the band
    tables (sorted runs, with their directories)."""
    sketches = sum(b.nbytes for b in index._sketches)
    seqs = sys.getsizeof(index.seqs)
    if hasattr(index, "_bands"):
        ids = index.ids.nbytes() + sum(sys.getsizeof(i) for i in index.ids._other.values())
        bands = index._bands.nbytes()
    else:  # the index before 45416af, for runs of this bench against older code: arrays, a list and a dict
        ids = sys.getsizeof(index.ids) + sum(sys.getsizeof(i) for i in index.ids) + sys.getsizeof(index.positions)
        ids += sum(sys.getsizeof(p) for p in index.positions.values() if p > 256)
        bands = sum(run.nbytes for run in index._runs)
    out = {"sketches": sketches, "ids and positions": ids, "seqs": seqs, "band tables": bands}
    out["total"] = sum(out.values())
    return out


def bench_index(n: int, n_texts: int, n_queries: int, seed: int, fill_batch: int = 50_000) -> dict[str, Any]:
    rng = random.Random(seed)
    texts = [initiative(rng) for _ in range(n_texts)]
    raw = [text_of(t, s) for t, s in texts]

    start = time.perf_counter()
    exact: dict[int, int] = {}
    for i, text in enumerate(raw):
        exact.setdefault(zlib.crc32(text.encode()), i)
    ref_rate = n_texts / (time.perf_counter() - start)

    gc.collect()
    rss_before = rss_bytes()
    index = SimilarityIndex()
    start = time.perf_counter()
    for i, text in enumerate(raw):
        index.add(doc_id(i), i, signature(shingles(text)))
    rate = n_texts / (time.perf_counter() - start)
    print(f"indexing: {rate:,.0f} initiatives/s; reference (CRC-32 into a dict) {ref_rate:,.0f}/s", flush=True)

    # The fill: initiatives composed of pre-shingled sentences.
    pool_size = 50_000
    rss_pool = rss_bytes()
    pool_text = [_sentence(rng) for _ in range(pool_size)]
    pool_sets = [shingles(s) for s in pool_text]
    pool_sigs = np.stack([signature(s) for s in pool_sets])
    rss_pool = rss_bytes() - rss_pool  # the bench's own pool, not the index: subtracted below
    fill = max(0, n - n_texts)
    np_rng = np.random.default_rng(seed)
    composed: dict[int, np.ndarray] = {}
    # The shingle sets stay out of the index (the service reads a candidate's from review_signature): the bench
    # keeps each composed initiative's sentence picks instead, and rebuilds a set when a lookup asks for it.
    all_picks = np_rng.integers(0, pool_size, size=(fill, 5), dtype=np.int32)
    start = time.perf_counter()
    chunk = fill_batch
    for base in range(0, fill, chunk):
        picks = all_picks[base : base + chunk]
        sigs = pool_sigs[picks].min(axis=1)
        docs = range(n_texts + base, n_texts + base + picks.shape[0])
        index.add_many([doc_id(d) for d in docs], list(docs), sigs)
        for j, doc in enumerate(docs):
            if len(composed) >= 2 * n_queries:
                break
            composed[doc] = picks[j]
    fill_s = time.perf_counter() - start
    print(f"filled to {len(index):,} in {fill_s:.1f} s ({fill / max(fill_s, 1e-9):,.0f}/s)", flush=True)
    # Shortlists a consumed batch at a time, as review's consumer asks for them: 200 composed signatures a call.
    batch_sigs = pool_sigs[np_rng.integers(0, pool_size, size=(2_000, 5))].min(axis=1)
    rounds = []
    for _ in range(3):
        start = time.perf_counter()
        for b in range(0, 2_000, 200):
            index.shortlist_many(batch_sigs[b : b + 200], [None] * 200, [None] * 200)
        rounds.append((time.perf_counter() - start) / 10)
    batch_ms = sorted(rounds)[1] * 1e3
    print(f"shortlists of a batch of 200 at {len(index):,}: {batch_ms:.1f} ms (median of 3 rounds of 10)", flush=True)
    gc.collect()
    memory = {"rss_before": rss_before, "rss_after": rss_bytes(), "rss_peak": rss_bytes("VmHWM"), "pool": rss_pool,
              "own": index_bytes(index)}  # fmt: skip
    memory["index_rss"] = memory["rss_after"] - rss_before - rss_pool - all_picks.nbytes

    def sets_of(ids: list[str]) -> list[np.ndarray]:
        docs = [doc_of(i) for i in ids]
        return [
            shingles(raw[d])
            if d < n_texts
            else np.unique(np.concatenate([pool_sets[p] for p in all_picks[d - n_texts]]))
            for d in docs
        ]

    own = memory["own"]
    print(
        f"memory at {len(index):,}: process RSS {rss_before / 2**20:,.0f} MiB before the index, "
        f"{memory['rss_after'] / 2**20:,.0f} MiB after the fill (peak {memory['rss_peak'] / 2**20:,.0f} MiB); "
        f"the index's share {memory['index_rss'] / 2**20:,.0f} MiB (less the bench's sentence pool, "
        f"{rss_pool / 2**20:,.0f} MiB, and picks, {all_picks.nbytes / 2**20:,.0f} MiB); "
        f"its own objects {own['total'] / 2**20:,.0f} MiB: "
        + ", ".join(f"{k} {v / 2**20:,.0f}" for k, v in own.items() if k != "total"),
        flush=True,
    )

    # Lookups from raw text: altered copies (half from step 1, half composed) and unrelated texts.
    queries: list[tuple[str, str | None]] = []
    copy_sources = [(doc_id(i), raw[i]) for i in rng.sample(range(n_texts), n_queries // 4)]
    copy_sources += [
        (doc_id(doc), ". ".join(pool_text[p].rstrip(".") for p in picks) + ".")
        for doc, picks in list(composed.items())[: n_queries // 2 - len(copy_sources)]
    ]
    for source, text in copy_sources:
        title, _, body = text.partition("\n")
        queries.append((text_of(*altered(rng, title, body or title)), source))
    while len(queries) < n_queries:
        queries.append((text_of(*initiative(rng)), None))
    rng.shuffle(queries)
    latencies: list[float] = []
    found = copies = unrelated_hits = 0
    for text, source in queries:
        start = time.perf_counter()
        matches = index.similar(shingles(text), sets_of, before_seq=len(index) + 1)
        latencies.append(time.perf_counter() - start)
        if source is None:
            unrelated_hits += len(matches)
        else:
            copies += 1
            found += any(m.initiative_id == source for m in matches)

    brute_lat: list[float] = []
    sample = sets_of([doc_id(d) for d in range(10_000)])
    for text, _source in queries[:20]:
        start = time.perf_counter()
        sh = shingles(text)
        scores = sorted((jaccard(sh, s) for s in sample), reverse=True)[:5]
        brute_lat.append(time.perf_counter() - start)
        del scores
    p50, p99 = pct(latencies, 0.5) * 1e3, pct(latencies, 0.99) * 1e3
    brute_p99 = pct(brute_lat, 0.99) * 1e3
    print(
        f"lookup at {len(index):,}: p50 {p50:.2f} ms, p99 {p99:.2f} ms; reference brute-force scan of 10,000 "
        f"p99 {brute_p99:.1f} ms; copies found {found}/{copies}, unrelated above threshold {unrelated_hits}",
        flush=True,
    )
    return {
        "memory": memory,
        "index_rate": rate,
        "index_ref_rate": ref_rate,
        "size": len(index),
        "fill_s": fill_s,
        "batch_shortlist_ms": batch_ms,
        "p50_ms": p50,
        "p99_ms": p99,
        "brute_p99_ms": brute_p99,
        "recall": found / max(copies, 1),
        "unrelated_hits": unrelated_hits,
    }


# ---- 4: claim + decide through the API -----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


TICK = os.sysconf("SC_CLK_TCK")
PG = "review's PostgreSQL"
RABBIT = "RabbitMQ"


def beam_pids() -> list[int]:
    """RabbitMQ's Erlang VM (shared with whatever else uses the broker)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/comm").read_text().startswith("beam"):
                    out.append(int(entry))
            except OSError:
                continue
    return out


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


async def backend_pids(dsn: str, datname: str) -> list[int]:
    conn = await asyncpg.connect(dsn)
    try:
        query = "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()"
        rows = await conn.fetch(query, datname)
        return [r["pid"] for r in rows]
    finally:
        await conn.close()


@contextlib.contextmanager
def uvicorn(args: list[str], env: dict[str, str], port: int, pids: list[int] | None = None) -> Iterator[str]:
    cmd = [sys.executable, "-m", "uvicorn", *args, "--port", str(port), "--log-level", "warning", "--no-access-log"]
    proc = subprocess.Popen(cmd, env={**os.environ, **env}, cwd=REPO)
    if pids is not None:
        pids.append(proc.pid)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health" if "review" in args[-1] else f"{base}/docs", timeout=1).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"{args} did not start")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(10)


async def seed(dsn: str, n_items: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.executemany(
            "INSERT INTO unit_replica (code, name, kind, parent_code, path, revision) VALUES ($1, $2, $3, $4, $5, 1)",
            [
                ("VN", "Tổng LĐLĐ Việt Nam", "national", None, "/VN/"),
                ("TH", "LĐLĐ tỉnh Thanh Hóa", "province", "VN", "/VN/TH/"),
                *[(f"TH-{d:02d}", f"Huyện {d}", "district", "TH", f"/VN/TH/TH-{d:02d}/") for d in range(10)],
            ],
        )
        now = datetime.now(UTC)
        # The texts of bench/pipeline.py's initiatives (bench/province.py): a problem of one sentence, a solution of
        # 4–6 (~1 KB), an effect. Without them a row is ~300 bytes where a real item's is ~1.6 KB, and a claim's lease
        # and a decision rewrite the whole row: the figures would understate both.
        rng = random.Random(20261130)
        pool = [_sentence(rng) for _ in range(2_000)]
        rows = [
            (
                str(uuid.uuid4()),
                "1M",
                "P1",
                f"TH-{n % 10:02d}",
                n,
                f"Sáng kiến số {n}",
                pool[n % len(pool)],
                " ".join(rng.choice(pool) for _ in range(4 + n % 3)),
                f"Giảm {10 + n % 50}% thời gian, tiết kiệm chi phí vật tư mỗi quý.",
                1_000_000,
                False,
                f'[{{"member_id": "M-{n}", "full_name": "Tác giả"}}]',
                f"|M-{n}|",
                0,
                "pending",
                0,
                "[]",
                0,
                now,
                now,
            )
            for n in range(1, n_items + 1)
        ]
        await conn.copy_records_to_table(
            "review_item",
            records=rows,
            columns=[
                "initiative_id",
                "campaign",
                "phase",
                "unit_code",
                "seq",
                "title",
                "problem",
                "solution",
                "effect",
                "expected_benefit_vnd",
                "confidential",
                "authors",
                "author_ids",
                "revision",
                "status",
                "decision_seq",
                "similar",
                "appraisal_count",
                "queued_at",
                "submitted_at",
            ],
        )
    finally:
        await conn.close()


async def hammer(base: str, reviewers: int, per_item: bool, stop_after: int) -> tuple[int, float]:
    done = 0

    async def reviewer(k: int, client: httpx.AsyncClient) -> None:
        nonlocal done
        tok = mint_token(DEV_JWT_SECRET, sub=f"bench-{per_item}-{k}", roles=["reviewer"], unit="TH", ttl_s=3600)
        headers = {"Authorization": f"Bearer {tok}"}
        while done < stop_after:
            r = await client.post(f"{base}/api/v1/review/claims", json={"count": 50}, headers=headers)
            ids = [i["initiative_id"] for i in r.json()["items"]]
            if not ids:
                return
            if per_item:
                for iid in ids:
                    d = await client.post(
                        f"{base}/api/v1/review/items/{iid}/decision", json={"outcome": "valid"}, headers=headers
                    )
                    assert d.status_code == 200, d.text
                    done += 1
            else:
                body = {"decisions": [{"initiative_id": i, "outcome": "valid"} for i in ids]}
                d = await client.post(f"{base}/api/v1/review/decisions/batch", json=body, headers=headers)
                assert d.status_code == 200 and d.json()["accepted"] == len(ids), d.text
                done += len(ids)

    limits = httpx.Limits(max_connections=reviewers * 2)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        start = time.perf_counter()
        await asyncio.gather(*(reviewer(k, client) for k in range(reviewers)))
        return done, time.perf_counter() - start


async def bare_rate(base: str, concurrency: int, total: int) -> float:
    per = total // concurrency
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=concurrency * 2), timeout=60) as client:

        async def worker() -> None:
            for _ in range(per):
                r = await client.post(f"{base}/bare", json={"outcome": "valid"})
                assert r.status_code == 200

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return per * concurrency / (time.perf_counter() - start)


@dataclass
class Service:
    base: str
    pid: int
    dsn: str
    datname: str

    async def cpu_s(self) -> dict[str, float]:
        """CPU seconds so far of the service process, its PostgreSQL backends, RabbitMQ and this client process."""
        backends = await backend_pids(self.dsn, self.datname)
        return {
            "review": proc_cpu_s(self.pid),
            PG: sum(proc_cpu_s(p) for p in backends),
            RABBIT: sum(proc_cpu_s(p) for p in beam_pids()),
            "client": time.process_time(),
        }


@contextlib.asynccontextmanager
async def review_service(n_items: int) -> AsyncIterator[Service]:
    async with pg_database() as url, amqp_prefix() as prefix:
        env = {
            "DATABASE_URL": url,
            "AMQP_URL": AMQP_URL,
            "AMQP_PREFIX": prefix,
            "PYTHONPATH": f"{REPO}:{REPO / 'services' / 'review'}",
            "LOG_LEVEL": "WARNING",
            "JWT_SECRET": DEV_JWT_SECRET,
            "ENVIRONMENT": "development",
        }
        pids: list[int] = []
        with uvicorn(["--factory", "review.app:create"], env, free_port(), pids) as base:
            datname = make_url(url).database or ""
            dsn = pg_url(datname)
            await seed(dsn, n_items)
            yield Service(base, pids[0], dsn, datname)


QUEUE_UNITS = """
INSERT INTO unit_replica (code, name, kind, parent_code, path, revision)
SELECT 'D-' || d, 'Huyện ' || d, 'district', 'TH', '/VN/TH/D-' || d || '/', 1 FROM generate_series(1, $1::int) AS d
UNION ALL
SELECT 'G-' || g, 'CĐCS ' || g, 'grassroots', 'D-' || (g % $1::int + 1),
    '/VN/TH/D-' || (g % $1::int + 1) || '/G-' || g || '/', 1
FROM generate_series(1, $2::int) AS g
"""
QUEUE_ITEMS = """
INSERT INTO review_item (initiative_id, campaign, phase, unit_code, seq, title, expected_benefit_vnd, confidential,
    authors, author_ids, revision, status, decision_seq, "similar", appraisal_count, queued_at)
SELECT md5(n::text), '1M', 'P1', 'G-' || (n % $2::int + 1), n, 'Sáng kiến số ' || n, 1000000, false,
    ('[{"member_id": "M-' || n || '", "full_name": "Tác giả"}]')::json, '|M-' || n || '|', 0, 'pending', 0, '[]',
    0, now()
FROM generate_series($1::int, $1::int + $3::int - 1) AS n
"""


async def claim_times(base: str, unit: str, rounds: int) -> float:
    """Median wall time (ms) of claiming (up to) 50 and giving them back, for a reviewer of ``unit``."""
    tok = mint_token(DEV_JWT_SECRET, sub=f"q-{unit}", roles=["reviewer"], unit=unit, ttl_s=3600)
    headers = {"Authorization": f"Bearer {tok}"}
    times = []
    async with httpx.AsyncClient(timeout=60) as client:
        for _ in range(rounds):
            start = time.perf_counter()
            r = await client.post(f"{base}/api/v1/review/claims", json={"count": 50}, headers=headers)
            times.append(time.perf_counter() - start)
            assert r.status_code == 200, r.text[:300]  # a grassroots union may hold fewer than 50
            await client.post(f"{base}/api/v1/review/claims/release", json={}, headers=headers)
    return pct(times, 0.5) * 1000


async def bench_claims_queue(n_items: int, n_units: int, rounds: int) -> dict[str, Any]:
    """5. claims in a national-size queue: a grassroots union's reviewer, a district's and the province's, each
    claiming 50 (and releasing them) ``rounds`` times; reference: the same claims in a queue of 10,000."""
    districts = max(1, n_units // 100)
    out: dict[str, Any] = {}
    async with review_service(0) as svc:
        conn = await asyncpg.connect(svc.dsn)
        try:
            await conn.execute(QUEUE_UNITS, districts, n_units)
            await conn.execute(QUEUE_ITEMS, 1, n_units, 10_000)
            await conn.execute("ANALYZE")
            small = {
                kind: await claim_times(svc.base, unit, rounds)
                for kind, unit in (("grassroots", "G-7"), ("district", "D-3"), ("province", "TH"))
            }
            start = time.perf_counter()
            for first in range(10_001, n_items + 1, 500_000):
                await conn.execute(QUEUE_ITEMS, first, n_units, min(500_000, n_items - first + 1))
            await conn.execute("ANALYZE")
            seeded = time.perf_counter() - start
        finally:
            await conn.close()
        large = {
            kind: await claim_times(svc.base, unit, rounds)
            for kind, unit in (("grassroots", "G-7"), ("district", "D-3"), ("province", "TH"))
        }
    print(
        f"claims, queue of {n_items:,} pending over {n_units:,} units (seeded in {seeded:.0f} s); median ms "
        "per claim of 50, at 10,000 → at the full queue:",
        flush=True,
    )
    for kind in small:
        print(f"  {kind:10} {small[kind]:7.2f} → {large[kind]:7.2f} ms ({large[kind] / small[kind]:.2f} x)", flush=True)
        out[kind] = {"at_10k_ms": small[kind], "at_n_ms": large[kind]}
    return out


def cpu_per(before: dict[str, float], after: dict[str, float], n: int) -> dict[str, float]:
    """µs of CPU per unit of work, by process."""
    return {k: (after[k] - before[k]) * 1e6 / max(n, 1) for k in before}


async def bench_api(n_items: int, reviewers: int, single: bool = True) -> dict[str, Any]:
    bare_dir = Path("/tmp") / f"review_bench_{os.getpid()}"
    bare_dir.mkdir(exist_ok=True)
    (bare_dir / "bare_app.py").write_text(BARE_APP)
    with uvicorn(["bare_app:app"], {"PYTHONPATH": str(bare_dir)}, free_port()) as bare:
        ref = await bare_rate(bare, reviewers, 4000)
    print(f"reference bare FastAPI POST: {ref:,.0f} requests/s", flush=True)
    async with review_service(n_items) as svc:
        await asyncio.sleep(1)  # the service's start-up work (index load, gauges) out of the figures
        before = await svc.cpu_s()
        batch_n, batch_s = await hammer(svc.base, reviewers, per_item=False, stop_after=n_items // 2)
        await asyncio.sleep(1)  # the relay publishes the decisions' events (and deletes their outbox rows)
        cpu = cpu_per(before, await svc.cpu_s(), batch_n)
        print(
            "claim+decide batch, µs of CPU per decision: "
            + ", ".join(f"{k} {v:,.0f}" for k, v in cpu.items())
            + f"; service side (review, its PostgreSQL, RabbitMQ) {cpu['review'] + cpu[PG] + cpu[RABBIT]:,.0f}",
            flush=True,
        )
        single_n, single_s = 0, 1.0
        if single:
            single_n, single_s = await hammer(svc.base, reviewers, per_item=True, stop_after=n_items // 2 - 500)
    batch_rate, single_rate = batch_n / batch_s, single_n / single_s
    print(
        f"claim+decide: batch {batch_rate:,.0f} decisions/s ({batch_n} in {batch_s:.1f} s), "
        f"one per request {single_rate:,.0f} decisions/s ({single_n} in {single_s:.1f} s)",
        flush=True,
    )
    return {"ref_rps": ref, "batch_rate": batch_rate, "single_rate": single_rate, "cpu": cpu}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000, help="initiatives in the index for the lookup figures")
    ap.add_argument("--texts", type=int, default=20_000, help="texts through the full indexing pipeline")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--items", type=int, default=6000, help="pending initiatives for the API figures")
    ap.add_argument("--reviewers", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--skip-api", action="store_true")
    ap.add_argument(
        "--fill-batch", type=int, default=50_000, help="initiatives per add_many of the fill (review's consumer: ~500)"
    )
    ap.add_argument("--only-api", action="store_true", help="only step 4 (claim+decide through the HTTP API)")
    ap.add_argument("--batch-only", action="store_true", help="step 4 without the decisions one per request")
    ap.add_argument("--claims-queue", type=int, default=0, help="only step 5: claims in a queue of this many items")
    ap.add_argument("--claims-units", type=int, default=150_000, help="grassroots units of step 5's queue")
    args = ap.parse_args()
    t0 = time.perf_counter()
    if args.claims_queue:
        asyncio.run(bench_claims_queue(args.claims_queue, args.claims_units, 20))
        return
    if args.only_api:
        asyncio.run(bench_api(args.items, args.reviewers, not args.batch_only))
        return
    idx = bench_index(args.n, args.texts, args.queries, args.seed, args.fill_batch)
    api = None if args.skip_api else asyncio.run(bench_api(args.items, args.reviewers))
    print("\nsummary")
    ratio = idx["index_rate"] / idx["index_ref_rate"]
    print(f"  indexing            {idx['index_rate']:,.0f}/s = {ratio:.4f} x reference")
    print(
        f"  lookup at {idx['size']:,}  p50 {idx['p50_ms']:.2f} ms, p99 {idx['p99_ms']:.2f} ms = "
        f"{idx['p99_ms'] / idx['brute_p99_ms']:.3f} x brute-force-10k p99; recall {idx['recall']:.3f}, "
        f"unrelated hits {idx['unrelated_hits']}"
    )
    if api:
        print(
            f"  claim+decide        batch {api['batch_rate']:,.0f}/s = {api['batch_rate'] / api['ref_rps']:.3f} x bare "
            f"req/s; single {api['single_rate']:,.0f}/s = {api['single_rate'] / api['ref_rps']:.3f} x bare req/s"
        )
    mem = idx["memory"]
    print(
        f"  memory at {idx['size']:,}  index {mem['index_rss'] / 2**30:.2f} GiB of RSS, own objects "
        f"{mem['own']['total'] / 2**30:.2f} GiB; process RSS {mem['rss_after'] / 2**30:.2f} GiB "
        f"(peak {mem['rss_peak'] / 2**30:.2f} GiB); issue 13 target <= 2 GB per replica"
    )
    print(f"  total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
