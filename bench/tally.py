"""What tally costs at national scale, each figure against a reference measured in the same run.

    .venv/bin/python bench/tally.py [--full] [--workers N] [--pack-size N] [--grassroots N] [--events N] [--drain N]
                                    [--preload N] [--review-lag L] [--sustain-seconds S [--offered R]]

The default run (30,000 grassroots, 20,000 + 40,000 events, 200,000 preloaded initiatives) takes a few minutes;
``--full`` is the issue's size (150,000 grassroots, 30,000 + 60,000 events, 1,000,000 initiatives).

Against a fresh PostgreSQL database and a fresh RabbitMQ prefix on loopback:
  1. the plan: 63 provinces (+ the national root), 693 districts and ``--grassroots`` grassroots units
     loaded through ``PUT /api/v1/units`` of the real service (``uvicorn tally.app:create --factory``,
     one worker); its unit.upserted outbox is drained before going on;
  2. consumption, two ways, of initiative events (half submitted, half reviewed valid, random grassroots,
     1–3 authors; every event a new one for the figures; each review right after its own submission, or with
     ``--review-lag L`` after the submission L initiatives later; events go out in packs of ``--pack-size``):
     (i) concurrent: ``--events`` events published to RabbitMQ by this process while the service consumes;
         rate = events / (first publish → the national figures show them all). The publisher (a Python
         client) competes with the service for the same cores;
     (ii) backlog drain: the service is stopped, ``--drain`` events are published into its queue, the
         service is started again; rate = events / (its consumer starts taking from the queue → the
         national figures show them all). The start is when the queue's ready count first drops.
     Reference for both: the raw publish rate of the same events into a queue with no consumer (same broker,
     same client, same run);
     (iii) with ``--sustain-seconds S``: events offered at a steady ``--offered`` rate (default 5,000/s) for S
         seconds while the service consumes: each second, how many published events the national figures do
         not show yet (bounded, or growing?), and how long after the last publish they show them all;
  3. ``--preload`` more initiatives bulk-loaded straight into the facts and counters tables (COPY), the
     counters computed from the generated facts (members' rows are not preloaded: the reads below do not
     use them);
  4. ``GET /api/v1/tally/units/{province}`` and ``GET /api/v1/tally/rankings`` (kind=province and
     kind=district, metric=valid) p50/p99 over ``--requests`` sequential keep-alive requests each, against a
     bare FastAPI endpoint returning a constant JSON body (separate uvicorn, same client);
  5. the service's resident memory (VmRSS) after all of it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "services" / "tally")]

from tally.adapters.facts import COLUMNS as FACT_COLUMNS  # noqa: E402

from shared.bus.rabbitmq import RabbitMQBus  # noqa: E402
from shared.envelope import Envelope  # noqa: E402
from shared.testing import AMQP_URL, amqp_prefix, auth, pg_database  # noqa: E402
from shared.topology import queue_name  # noqa: E402

OP = auth("operator", "VN")
PY = str(REPO / ".venv" / "bin" / "python")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


BARE = """
from fastapi import FastAPI
app = FastAPI()
@app.get("/bare")
async def bare() -> dict:
    return {"unit": {"code": "TH"}, "figures": {"submitted": 1, "valid": 1}}
"""


def start(cmd: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    env = {**os.environ, "ENVIRONMENT": "development", **env}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def wait_up(url: str, proc: subprocess.Popen[bytes], limit_s: float = 60) -> None:
    deadline = time.monotonic() + limit_s
    async with httpx.AsyncClient() as c:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server died: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
            try:
                if (await c.get(url)).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} not up")


def tree(grassroots: int) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    units: list[dict[str, Any]] = [
        {"code": "VN", "name": "Tổng LĐLĐ Việt Nam", "kind": "national", "parent_code": None}
    ]
    provinces = [f"P{p:02d}" for p in range(1, 64)]
    districts: list[str] = []
    for i, p in enumerate(provinces):
        units.append(
            {"code": p, "name": f"LĐLĐ tỉnh {p}", "kind": "province", "parent_code": "VN", "cluster": f"K{i % 7}"}
        )
        for d in range(11):
            code = f"{p}-{d:02d}"
            districts.append(code)
            units.append({"code": code, "name": f"LĐLĐ huyện {code}", "kind": "district", "parent_code": p})
    leaves = []
    for g in range(grassroots):
        d = districts[g % len(districts)]
        code = f"{d}-{g:06d}"
        leaves.append(code)
        units.append({"code": code, "name": f"CĐCS {code}", "kind": "grassroots", "parent_code": d, "member_count": 50})
    return units, provinces, leaves


CAMPAIGN = {
    "name": "01 triệu sáng kiến",
    "phases": [
        {"code": "P1", "name": "Giai đoạn 1", "opens_on": "2022-01-08", "closes_on": "2022-05-31"},
        {"code": "P2", "name": "Giai đoạn 2", "opens_on": "2022-06-01", "closes_on": "2023-09-01"},
    ],
}


def events(n: int, leaves: list[str], rng: random.Random, review_lag: int = 0) -> list[Envelope]:
    """``n`` events: a submission and its review (valid) per initiative. With ``review_lag`` 0 each review follows
    its own submission; with ``review_lag`` L it follows the submission L initiatives later (reviews come after
    the rush, not in the same instant: the consumers then rarely hold one initiative at the same time)."""
    out = _events(n, leaves, rng)
    if not review_lag:
        return out
    submitted, reviewed = out[0::2], out[1::2]
    mixed: list[Envelope] = []
    for k, env in enumerate(submitted):
        mixed.append(env)
        if k >= review_lag:
            mixed.append(reviewed[k - review_lag])
    mixed.extend(reviewed[max(0, len(submitted) - review_lag) :])
    return mixed


def _events(n: int, leaves: list[str], rng: random.Random) -> list[Envelope]:
    out = []
    for k in range(n // 2):
        iid = str(uuid.uuid4())
        unit = rng.choice(leaves)
        authors = [{"member_id": f"{unit}-m{rng.randrange(50)}", "full_name": "A"} for _ in range(rng.randint(1, 3))]
        phase = "P1" if k % 2 else "P2"
        base = {
            "campaign": "1M",
            "phase": phase,
            "unit_code": unit,
            "authors": authors,
            "expected_benefit_vnd": 1000,
            "submitted_at": "2022-06-05T02:00:00+00:00",
        }
        out.append(
            Envelope(
                type="initiative.submitted",
                producer="bench",
                data={"id": iid, "seq": k, "revision": 0, "title": "Sáng kiến", **base},
            )
        )
        out.append(
            Envelope(
                type="initiative.reviewed",
                producer="bench",
                data={
                    "initiative_id": iid,
                    "outcome": "valid",
                    "decision_seq": 1,
                    "decided_at": "2022-06-07T02:00:00+00:00",
                    **base,
                },
            )
        )
    return out


async def sustained(
    client: httpx.AsyncClient,
    *,
    args: argparse.Namespace,
    leaves: list[str],
    rng: random.Random,
    want: int,
    prefix: str,
) -> int:
    """(iii) Events offered at a steady ``--offered`` rate for ``--sustain-seconds``: every second, how many
    published events the national figures do not show yet (the backlog: queued, prefetched or in a batch), and,
    after the last publish, how long until they show every event. Returns the submissions the figures now hold."""
    n = args.offered * args.sustain_seconds
    evs = events(n, leaves, rng, args.review_lag)
    bus = RabbitMQBus(AMQP_URL, prefix=prefix, pack_size=args.pack_size)
    await bus.start()
    base_submitted = base_valid = want

    async def backlog(published: int) -> int:
        r = await client.get("/api/v1/tally/units/VN", params={"campaign": "1M"}, headers=OP)
        f = r.json()["figures"]
        sent = evs[:published]
        subs = sum(1 for e in sent if e.type == "initiative.submitted")
        return (subs - (f["submitted"] - base_submitted)) + (len(sent) - subs - (f["valid"] - base_valid))

    lags: list[int] = []
    tick = 0.1
    per_tick = max(1, int(args.offered * tick))
    t0 = time.perf_counter()
    next_probe = t0 + 1
    published = 0
    for k, i in enumerate(range(0, len(evs), per_tick)):
        await bus.publish(evs[i : i + per_tick])
        published = min(len(evs), i + per_tick)
        if time.perf_counter() >= next_probe:
            lags.append(await backlog(published))
            next_probe += 1
        delay = t0 + (k + 1) * tick - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
    t_last = time.perf_counter()
    offered = len(evs) / (t_last - t0)
    await bus.close()
    want += n // 2
    while True:
        if await backlog(len(evs)) <= 0:
            break
        await asyncio.sleep(0.1)
    catch_up = time.perf_counter() - t_last
    third = max(1, len(lags) // 3)
    print(
        f"consumption (iii) sustained: {len(evs):,} events offered at {offered:,.0f} events/s for "
        f"{t_last - t0:.0f} s; events published but not yet counted, read each second: max {max(lags[:third])} in "
        f"the first third, {max(lags[-third:])} in the last third (mean {sum(lags[-third:]) / third:,.0f}); "
        f"all counted {catch_up:.1f} s after the last publish (effective {len(evs) / (t_last - t0 + catch_up):,.0f} "
        f"events/s)",
        flush=True,
    )
    return want


async def percentiles(
    client: httpx.AsyncClient, url: str, n: int, headers: dict[str, str] | None = None
) -> tuple[float, float]:
    for _ in range(20):
        (await client.get(url, headers=headers)).raise_for_status()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        r = await client.get(url, headers=headers)
        times.append(time.perf_counter() - t)
        r.raise_for_status()
    times.sort()
    return times[len(times) // 2] * 1000, times[min(len(times) - 1, int(len(times) * 0.99))] * 1000


async def preload(db_url: str, leaves: list[str], count: int, rng: random.Random) -> None:
    """Facts + counters for ``count`` more initiatives, by COPY; counters computed from the same rows."""
    from datetime import UTC, datetime

    dsn = db_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        parents = dict(await conn.fetch("SELECT code, path FROM units"))
        paths = {code: [p for p in path.split("/") if p] for code, path in parents.items()}
        agg: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        members: dict[tuple[str, str], set[str]] = defaultdict(set)
        rows = []
        when = datetime(2022, 6, 5, 2, tzinfo=UTC)
        for k in range(count):
            unit = leaves[k % len(leaves)] if k < len(leaves) else rng.choice(leaves)
            phase = "P1" if k % 2 else "P2"
            outcome = rng.choice(("valid", "valid", "valid", "invalid", None))
            author = f"{unit}-m{rng.randrange(50)}"
            rows.append(
                (
                    str(uuid.uuid4()),
                    "1M",
                    phase,
                    unit,
                    f'["{author}"]',
                    1000,
                    0,
                    False,
                    1 if outcome else 0,
                    outcome,
                    None,
                    when,
                    when if outcome else None,
                )
            )
            for ph in ("*", phase):
                a = agg[(unit, ph)]
                a[0] += 1
                a[1] += outcome == "valid"
                a[2] += outcome == "invalid"
                a[3] += 1000 if outcome == "valid" else 0
                members[(unit, ph)].add(author)
        await conn.copy_records_to_table(
            "facts",
            records=rows,
            columns=list(FACT_COLUMNS),
        )
        rolled: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
        for (unit, ph), a in agg.items():
            for anc in paths[unit]:
                r = rolled[(anc, ph)]
                for i in range(4):
                    r[i] += a[i]
                r[4] += len(members[(unit, ph)])  # members belong to one grassroots: sums stay exact
        async with conn.transaction():
            await conn.execute("CREATE TEMP TABLE pre (LIKE counters) ON COMMIT DROP")
            await conn.copy_records_to_table(
                "pre",
                records=[(u, "1M", ph, *v) for (u, ph), v in rolled.items()],
                columns=[
                    "unit_code",
                    "campaign",
                    "phase",
                    "submitted",
                    "valid",
                    "invalid",
                    "benefit_vnd",
                    "participants",
                ],
            )
            await conn.execute(
                "INSERT INTO counters SELECT * FROM pre ON CONFLICT (unit_code, campaign, phase) DO UPDATE SET "
                "submitted = counters.submitted + excluded.submitted, valid = counters.valid + excluded.valid, "
                "invalid = counters.invalid + excluded.invalid, "
                "benefit_vnd = counters.benefit_vnd + excluded.benefit_vnd, "
                "participants = counters.participants + excluded.participants"
            )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


def rss_mib(pid: int) -> float:
    """Resident memory of a process and its children (uvicorn's workers), MiB."""
    total = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            total += int(line.split()[1]) / 1024
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            total += rss_mib(int(child))
    return total


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--grassroots", type=int, default=30_000)
    ap.add_argument("--events", type=int, default=20_000, help="events published while the service consumes")
    ap.add_argument("--drain", type=int, default=40_000, help="events drained from a backlog")
    ap.add_argument("--preload", type=int, default=200_000)
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--batch", type=int, default=1000, help="consumer batch size (prefetch: 4 batches)")
    ap.add_argument("--workers", type=int, default=1, help="uvicorn workers of the service (consumer replicas)")
    ap.add_argument("--pack-size", type=int, default=100, help="events per AMQP message (1: no packs)")
    ap.add_argument("--review-lag", type=int, default=0, help="a review follows the submission this many later")
    ap.add_argument("--offered", type=int, default=5000, help="(iii): events/s offered at a steady pace")
    ap.add_argument("--sustain-seconds", type=int, default=0, help="(iii): for this long (0: skip (iii))")
    ap.add_argument(
        "--full", action="store_true", help="the issue's size: 150,000 grassroots, 90,000 events, 1M initiatives"
    )
    args = ap.parse_args()
    if args.full:
        args.grassroots, args.events, args.drain, args.preload = 150_000, 30_000, 60_000, 1_000_000
    rng = random.Random(7)
    units, provinces, leaves = tree(args.grassroots)
    print(f"tree: {len(units)} units ({len(provinces)} provinces, {len(leaves)} grassroots)", flush=True)
    async with pg_database() as db_url, amqp_prefix() as prefix:
        port, bare_port = free_port(), free_port()
        env = {
            "DATABASE_URL": db_url,
            "AMQP_URL": AMQP_URL,
            "AMQP_PREFIX": prefix,
            "LOG_LEVEL": "WARNING",
            "CONSUMER_BATCH_SIZE": str(args.batch),
            "CONSUMER_PREFETCH": str(args.batch * 4),
            "CONSUMER_BATCH_WAIT_MS": "20",
            "AMQP_PACK_SIZE": str(args.pack_size),
            "PYTHONPATH": f"{REPO}:{REPO / 'services' / 'tally'}",
        }
        svc_cmd = [
            PY,
            "-m",
            "uvicorn",
            "tally.app:create",
            "--factory",
            "--port",
            str(port),
            "--workers",
            str(args.workers),
            "--no-access-log",
            "--log-level",
            "warning",
        ]
        svc = start(svc_cmd, env)
        bare_file = Path("/tmp") / f"tally_bench_bare_{os.getpid()}.py"
        bare_file.write_text(BARE)
        bare = start(
            [
                PY,
                "-m",
                "uvicorn",
                f"{bare_file.stem}:app",
                "--app-dir",
                "/tmp",
                "--port",
                str(bare_port),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            {},
        )
        try:
            base = f"http://127.0.0.1:{port}"
            await wait_up(f"{base}/health", svc)
            await wait_up(f"http://127.0.0.1:{bare_port}/bare", bare)
            async with httpx.AsyncClient(base_url=base, timeout=600) as client:
                t = time.perf_counter()
                r = await client.put("/api/v1/units", json=units, headers=OP)
                r.raise_for_status()
                plan_s = time.perf_counter() - t
                (await client.put("/api/v1/campaigns/1M", json=CAMPAIGN, headers=OP)).raise_for_status()
                print(f"plan: {len(units)} units upserted in {plan_s:.1f} s", flush=True)
                admin = await asyncpg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://"))
                t = time.perf_counter()
                while True:
                    if not await admin.fetchval("SELECT count(*) FROM outbox"):
                        break
                    await asyncio.sleep(0.5)
                print(f"plan: unit.upserted outbox drained to RabbitMQ in {time.perf_counter() - t:.1f} s", flush=True)

                evs = events(args.events, leaves, rng, args.review_lag)
                backlog = events(args.drain, leaves, rng, args.review_lag)
                # Reference: raw publish rate into a queue nobody consumes.
                ref_prefix = prefix + "ref."
                ref_bus = RabbitMQBus(
                    AMQP_URL,
                    prefix=ref_prefix,
                    topology={"sink": ("initiative.submitted.v1", "initiative.reviewed.v1")},
                    pack_size=args.pack_size,
                )
                await ref_bus.start()
                t = time.perf_counter()
                for i in range(0, len(evs), 1000):
                    await ref_bus.publish(evs[i : i + 1000])
                for i in range(0, len(backlog), 1000):
                    await ref_bus.publish(backlog[i : i + 1000])
                publish_rate = (len(evs) + len(backlog)) / (time.perf_counter() - t)
                await ref_bus.delete_topology()
                await ref_bus.close()
                print(f"reference: raw publish {publish_rate:,.0f} events/s", flush=True)

                async def national() -> dict[str, Any]:
                    r = await client.get("/api/v1/tally/units/VN", params={"campaign": "1M"}, headers=OP)
                    r.raise_for_status()
                    return dict(r.json()["figures"])

                # (i) concurrent publish + consume
                bus = RabbitMQBus(AMQP_URL, prefix=prefix, pack_size=args.pack_size)
                await bus.start()
                t = time.perf_counter()
                for i in range(0, len(evs), 1000):
                    await bus.publish(evs[i : i + 1000])
                publish_s = time.perf_counter() - t
                want = args.events // 2
                while True:
                    f = await national()
                    if f["submitted"] == want and f["valid"] == want:
                        break
                    await asyncio.sleep(0.1)
                consume_s = time.perf_counter() - t
                consume_rate = len(evs) / consume_s
                print(
                    f"consumption (i) concurrent: {len(evs):,} events in {consume_s:.1f} s = {consume_rate:,.0f} "
                    f"events/s (publishing alone took {publish_s:.1f} s); raw publish reference "
                    f"{publish_rate:,.0f} events/s; ratio {consume_rate / publish_rate:.3f}",
                    flush=True,
                )

                # (ii) backlog drain: stop the service, fill its queue, start it again
                svc.terminate()
                svc.wait(30)
                t = time.perf_counter()
                for i in range(0, len(backlog), 1000):
                    await bus.publish(backlog[i : i + 1000])
                fill_s = time.perf_counter() - t
                await bus.close()
                probe = await aio_pika.connect(AMQP_URL)
                probe_channel = await probe.channel()
                tally_queue = queue_name("tally", prefix)
                ready = (await probe_channel.declare_queue(tally_queue, passive=True)).declaration_result
                queued = ready.message_count
                svc = start(svc_cmd, env)
                t_proc = time.perf_counter()
                t_start: float | None = None
                want += args.drain // 2
                while True:
                    if t_start is None:
                        q = await probe_channel.declare_queue(tally_queue, passive=True)
                        if q.declaration_result.message_count < queued:
                            t_start = time.perf_counter()
                    else:
                        try:
                            f = await national()
                        except httpx.HTTPError:
                            f = {}
                        if f.get("submitted") == want and f.get("valid") == want:
                            break
                    # Every poll is a request the service serves too: 0.1 s keeps that under ~2 % of its time.
                    await asyncio.sleep(0.02 if t_start is None else 0.1)
                t_end = time.perf_counter()
                await probe.close()
                drain_rate = len(backlog) / (t_end - t_start)
                print(
                    f"consumption (ii) backlog drain: {len(backlog):,} events ({queued:,} in the queue; filled in "
                    f"{fill_s:.1f} s = {len(backlog) / fill_s:,.0f} events/s) drained in {t_end - t_start:.1f} s = "
                    f"{drain_rate:,.0f} events/s ({t_end - t_proc:.1f} s from the service's process start = "
                    f"{len(backlog) / (t_end - t_proc):,.0f} events/s); raw publish reference {publish_rate:,.0f} "
                    f"events/s; ratio {drain_rate / publish_rate:.3f}",
                    flush=True,
                )
                rss_after_consume = rss_mib(svc.pid)

                if args.sustain_seconds:
                    want = await sustained(client, args=args, leaves=leaves, rng=rng, want=want, prefix=prefix)
                    rss_after_consume = rss_mib(svc.pid)

                t = time.perf_counter()
                await preload(db_url, leaves, args.preload, rng)
                print(
                    f"preload: {args.preload:,} initiatives bulk-loaded in {time.perf_counter() - t:.1f} s", flush=True
                )
                total = (await client.get("/api/v1/tally/units/VN", params={"campaign": "1M"}, headers=OP)).json()
                print(f"national figures now: {total['figures']}", flush=True)
                await admin.close()

            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{bare_port}") as bc:
                bare50, bare99 = await percentiles(bc, "/bare", args.requests)
            async with httpx.AsyncClient(base_url=base, timeout=60) as client:
                unit50, unit99 = await percentiles(
                    client, f"/api/v1/tally/units/{provinces[37]}?campaign=1M", args.requests, OP
                )
                unitp50, unitp99 = await percentiles(
                    client, f"/api/v1/tally/units/{provinces[5]}?campaign=1M&phase=P2", args.requests, OP
                )
                rank50, rank99 = await percentiles(
                    client, "/api/v1/tally/rankings?campaign=1M&kind=province&metric=valid&limit=63", args.requests
                )
                drank50, drank99 = await percentiles(
                    client, "/api/v1/tally/rankings?campaign=1M&kind=district&metric=valid&limit=10", args.requests
                )
                arank50, arank99 = await percentiles(
                    client,
                    "/api/v1/tally/rankings?campaign=1M&kind=province&metric=participants&cluster=K3&limit=10",
                    args.requests,
                )
            rss = rss_mib(svc.pid)
            print(f"bare FastAPI reference: p50 {bare50:.2f} ms, p99 {bare99:.2f} ms")
            for label, p50, p99 in [
                ("GET /tally/units/{province} (11 children)", unit50, unit99),
                ("GET /tally/units/{province}?phase=P2", unitp50, unitp99),
                ("GET /tally/rankings kind=province limit=63", rank50, rank99),
                ("GET /tally/rankings kind=district limit=10", drank50, drank99),
                ("GET /tally/rankings kind=province cluster metric=participants", arank50, arank99),
            ]:
                print(f"{label}: p50 {p50:.2f} ms, p99 {p99:.2f} ms; p99 ratio to bare {p99 / bare99:.1f}x")
            print(f"service RSS: {rss_after_consume:.0f} MiB after consumption, {rss:.0f} MiB at the end")
        finally:
            for proc in (svc, bare):
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
            bare_file.unlink(missing_ok=True)


if __name__ == "__main__":
    asyncio.run(main())
