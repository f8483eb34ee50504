"""What intake's hot path costs, against a bare FastAPI endpoint, in one run with one load generator.

    .venv/bin/python bench/intake.py [--seconds 6] [--concurrency 64] [--rate 1000] [--no-rabbitmq]

Two uvicorn processes (one worker each, no access log) on loopback ports:
  (a) a bare FastAPI app whose POST /api/v1/initiatives validates intake's own request model
      (``intake.domain.models.InitiativeCreate``) and writes nothing;
  (b) the real intake (``uvicorn intake.app:create --factory``) on a fresh PostgreSQL database and
      the loopback RabbitMQ (a unique prefix, deleted afterwards; its outbox relay publishes every
      event with confirms), its plan (units, campaign) loaded through its own event handlers.
The same keep-alive load generator (bench/loadgen.py, httpcore) drives both:
  1. closed loop, ``--concurrency`` connections, ``--rounds`` alternating rounds of ``--seconds``/2 each:
     requests/s of (a) and (b), the ratio (b)/(a) per round and its median;
  2. open loop at ``--rate`` requests/s for ``--seconds`` over 256 keep-alive connections opened
     beforehand: latency measured from each request's scheduled send time (no coordinated omission),
     p50/p99 of (b) and of (a);
  3. POST /api/v1/initiatives/batch with 1,000 items, 4 connections: initiatives/s.
For each closed-loop round, the CPU the whole machine spent per answered request (from /proc, by group:
the server under test, PostgreSQL, RabbitMQ, the load generator, kernel threads, other processes): the
cores are shared by everything, so this is where a ratio below 1 comes from.
Every request carries a distinct title, so none is refused as a duplicate; non-2xx answers are counted.
Batch bodies are serialised from a template (the same JSON as one dict per item, at ~1 µs per item of the
load generator's CPU instead of ~2.7), and the wait for the relay to drain polls the outbox's first id, not
count(*) (which read every deleted row again, autovacuum being off here, and was charged to the phase).
Both servers run one uvicorn worker for every phase: tried for (c), two workers answered fewer
initiatives/s (16,900-17,800 against 19,800 in the same runs, 01:17 UTC), the two cores being busy anyway.
The load generator runs with Python's cyclic garbage collector off (it allocates a task and a few lists
per request; a full collection in it would stall the clock of every request in flight and be counted as
server latency, for (a) and (b) alike).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "services" / "intake")]

from intake.domain.models import InitiativeCreate  # noqa: E402  (after the path set-up)
from loadgen import Conn  # noqa: E402  (bench/, the script's own folder)

PATH = "/api/v1/initiatives"


# ---- (a): the bare endpoint -----------------------------------------------------------------------


def bare_app() -> Any:
    app = FastAPI()
    state = {"seq": 0}

    @app.post(PATH, status_code=201)
    async def submit(body: InitiativeCreate) -> dict[str, Any]:
        state["seq"] += 1
        return {"id": str(uuid.uuid4()), "seq": state["seq"], "status": "submitted"}

    return app


# ---- servers --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def server(cmd: list[str], port: int, env: dict[str, str]) -> AsyncIterator[asyncio.subprocess.Process]:
    proc = await asyncio.create_subprocess_exec(
        *cmd, cwd=REPO, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.returncode is not None:
                err = await proc.stderr.read() if proc.stderr else b""
                raise RuntimeError(f"server exited: {err.decode()[-2000:]}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def drained(database_url: str, limit_s: float = 120.0) -> None:
    """Wait until intake's outbox is empty: each phase starts with the relay idle, as (a)'s server is."""
    import asyncpg

    conn = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            # The primary key's first entry, not count(*): the relay's deleted rows stay in the table until
            # a vacuum (autovacuum is off here), and counting them all cost PostgreSQL ~35 ms per poll, CPU
            # that was then charged to the phase being measured.
            if await conn.fetchval("SELECT min(id) FROM outbox") is None:
                return
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


async def seed_plan(database_url: str) -> None:
    """Units and a campaign open today, through intake's own migrations and event handlers."""
    from intake.adapters.orm import metadata
    from intake.app import MIGRATIONS
    from intake.handlers.plan import on_campaign_upserted, on_unit_upserted
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from shared.db import make_engine, run_migrations
    from shared.envelope import Envelope

    engine = await make_engine(database_url)
    await run_migrations(engine, MIGRATIONS, metadata)
    units = [
        ("BENCH", "province", None, ["BENCH"]),
        ("BENCH-01", "district", "BENCH", ["BENCH", "BENCH-01"]),
        ("BENCH-01-001", "grassroots", "BENCH-01", ["BENCH", "BENCH-01", "BENCH-01-001"]),
    ]
    campaign = {
        "code": "BM",
        "name": "Bench",
        "fields": [{"code": "production", "name": "Sản xuất kinh doanh"}],
        "application_window": {"from": "2020-01-01", "to": "2035-12-31"},
        "phases": [{"code": "P1", "opens_on": "2020-01-01", "closes_on": "2035-12-31"}],
        "revision": 1,
    }
    async with async_sessionmaker(engine)() as session, session.begin():
        for code, kind, parent, path in units:
            data = {"code": code, "name": code, "kind": kind, "parent_code": parent, "path": path, "revision": 1}
            await on_unit_upserted(session, Envelope(type="unit.upserted", producer="bench", data=data))
        await on_campaign_upserted(session, Envelope(type="campaign.upserted", producer="bench", data=campaign))
    await engine.dispose()


# ---- request bodies -------------------------------------------------------------------------------


class Bodies:
    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.n = 0
        self._parts: tuple[bytes, bytes, bytes, bytes] | None = None

    def item(self) -> dict[str, Any]:
        self.n += 1
        return {
            "campaign": "BM",
            "unit_code": "BENCH-01-001",
            "field": "production",
            "title": f"Sáng kiến đo tải {self.tag} số {self.n}",
            "problem": "Thực trạng: dây chuyền dừng máy nhiều lần mỗi ca",
            "solution": f"Giải pháp {self.n}: thêm cảm biến và lịch bảo trì dự phòng",
            "effect": "Giảm 30% thời gian dừng máy",
            "expected_benefit_vnd": 150_000_000,
            "applied_on": "2024-03-01",
            "confidential": False,
            "authors": [{"member_id": f"M-{self.n % 5000:05d}", "full_name": "Nguyễn Văn A"}],
        }

    def one(self) -> bytes:
        return orjson.dumps(self.item())

    def batch(self, size: int) -> bytes:
        """``size`` items, as ``item`` makes them, serialised from a template: the load generator shares the
        machine's two cores with the server under test, and a dict per item costs it ~2 µs (measured)."""
        if self._parts is None:
            marked = self.item() | {"title": "\x01", "solution": "\x02", "authors": [{"member_id": "\x03",
                                    "full_name": "Nguyễn Văn A"}]}  # fmt: skip
            self.n -= 1
            raw = orjson.dumps(marked)
            head, rest = raw.split(b'"\\u0001"')
            mid, rest = rest.split(b'"\\u0002"')
            mid2, tail = rest.split(b'"\\u0003"')
            self._parts = (head, mid, mid2, tail)
        head, mid, mid2, tail = self._parts
        items = []
        for _ in range(size):
            self.n += 1
            n = self.n
            title = f'"Sáng kiến đo tải {self.tag} số {n}"'.encode()
            solution = f'"Giải pháp {n}: thêm cảm biến và lịch bảo trì dự phòng"'.encode()
            items.append(b"".join((head, title, mid, solution, mid2, b'"M-%05d"' % (n % 5000), tail)))
        return b'{"items":[' + b",".join(items) + b"]}"


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_by_process(server_pid: int) -> dict[int, tuple[str, float]]:
    """CPU seconds so far of every process on the machine, with its group: the server under test,
    PostgreSQL, RabbitMQ, this load generator, kernel threads and the rest (other users of the machine)."""
    out: dict[int, tuple[str, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        seconds = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        pid, ppid = int(entry), int(fields[1])
        if pid == server_pid:
            group = "server"
        elif name.startswith("postgres"):
            group = "postgres"
        elif name.startswith("beam"):
            group = "rabbitmq"
        elif pid == os.getpid():
            group = "load generator"
        elif ppid == 2 or pid == 2:
            group = "kernel"
        else:
            group = "other"
        out[pid] = (group, seconds)
    return out


async def measured(
    server_pid: int, run: Coroutine[Any, Any, dict[str, Any]], settle: Coroutine[Any, Any, None] | None = None
) -> dict[str, Any]:
    """``run``'s figures plus the machine's CPU per answered request, by group (µs), counted until
    ``settle`` (the relay's publishing of what ``run`` stored) is done."""
    before = cpu_by_process(server_pid)
    result = await run
    if settle is not None:
        await settle
    after = cpu_by_process(server_pid)
    answered = max(1.0, result["answered"])
    spent = dict.fromkeys(("server", "postgres", "rabbitmq", "load generator", "kernel", "other"), 0.0)
    for pid, (group, seconds) in after.items():  # a process that ended in between is not counted
        spent[group] += seconds - before.get(pid, (group, 0.0))[1]
    result["cpu_us"] = {k: v / answered * 1e6 for k, v in spent.items()}
    return result


def cpu_line(result: dict[str, Any]) -> str:
    cpu = result["cpu_us"]
    return ", ".join(f"{k} {v:.0f}" for k, v in cpu.items()) + f"; total {sum(cpu.values()):.0f} µs"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def closed_loop(
    port: int, auth: str, path: str, make_body: Callable[[], bytes], concurrency: int, seconds: float
) -> dict[str, float]:
    conns = [Conn(port, auth) for _ in range(concurrency)]
    ok = errors = 0
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def run(conn: Conn) -> None:
        nonlocal ok, errors
        while time.perf_counter() < stop:
            body = make_body()
            t0 = time.perf_counter()
            status, _ = await conn.request("POST", path, body)
            latencies.append(time.perf_counter() - t0)
            if 200 <= status < 300:
                ok += 1
            else:
                errors += 1

    start = time.perf_counter()
    await asyncio.gather(*(run(c) for c in conns))
    elapsed = time.perf_counter() - start
    for c in conns:
        c.close()
    return {"rps": ok / elapsed, "errors": errors, "p50_ms": percentile(latencies, 0.5) * 1000,
            "p99_ms": percentile(latencies, 0.99) * 1000, "answered": ok + errors}  # fmt: skip


async def open_loop(
    port: int, auth: str, make_body: Callable[[], bytes], rate: float, seconds: float, pool: int = 256
) -> dict[str, float]:
    """Requests sent on a fixed schedule; latency counts from the scheduled time, queueing included."""
    idle: asyncio.Queue[Conn] = asyncio.Queue()
    conns = [Conn(port, auth) for _ in range(pool)]
    # Keep-alive connections opened before the clock starts (as a gateway's or browser's pool would be).
    await asyncio.gather(*(c.connect() for c in conns))
    for c in conns:
        idle.put_nowait(c)
    latencies: list[float] = []
    errors = 0
    total = int(rate * seconds)
    start = time.perf_counter()

    async def one(scheduled: float) -> None:
        nonlocal errors
        conn = await idle.get()
        try:
            status, _ = await conn.request("POST", PATH, make_body())
        finally:
            idle.put_nowait(conn)
        latencies.append(time.perf_counter() - scheduled)
        if not 200 <= status < 300:
            errors += 1

    tasks = []
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(scheduled)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    for c in conns:
        c.close()
    return {"offered": rate, "achieved": len(latencies) / elapsed, "errors": errors,
            "p50_ms": percentile(latencies, 0.5) * 1000, "p99_ms": percentile(latencies, 0.99) * 1000}  # fmt: skip


# ---- the run --------------------------------------------------------------------------------------


async def main(opts: argparse.Namespace) -> None:
    from shared.testing import AMQP_URL, amqp_prefix, pg_database, token

    auth = token("support", "BENCH", sub="bench-support", ttl_s=7200)
    env = dict(os.environ)
    env["ENVIRONMENT"] = "development"  # the benchmark signs its tokens with the development secret
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "services" / "intake")])
    port_a, port_b = free_port(), free_port()
    async with pg_database() as url, amqp_prefix() if opts.rabbitmq else contextlib.nullcontext("") as prefix:
        await seed_plan(url)
        env_b = env | {"DATABASE_URL": url, "LOG_LEVEL": "WARNING", "OUTBOX_POLL_INTERVAL_S": "0.2"}
        if opts.rabbitmq:
            # The outbox relay really publishes (with confirms) to the loopback RabbitMQ, on a unique prefix.
            env_b |= {"AMQP_URL": AMQP_URL, "AMQP_PREFIX": prefix}
        uvicorn = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--no-access-log", "--log-level", "warning"]
        async with (
            server([sys.executable, __file__, "--serve-bare", str(port_a)], port_a, env) as proc_a,
            server([*uvicorn, "--port", str(port_b), "--factory", "intake.app:create"], port_b, env_b) as proc_b,
        ):
            a_bodies, b_bodies = Bodies("a"), Bodies("b")
            # Warm-up (imports, pools, JIT-free but caches).
            await closed_loop(port_a, auth, PATH, a_bodies.one, 8, 1.0)
            await closed_loop(port_b, auth, PATH, b_bodies.one, 8, 1.0)
            # Alternating short rounds: the machine is shared, so each ratio compares neighbours in time.
            rounds_a, rounds_b = [], []
            half, n = opts.seconds / 2, opts.concurrency
            for _ in range(opts.rounds):
                for port, pid, bodies, rounds in (
                    (port_a, proc_a.pid, a_bodies, rounds_a),
                    (port_b, proc_b.pid, b_bodies, rounds_b),
                ):
                    # CPU counted until the relay has published the round's events too.
                    rounds.append(await measured(pid, closed_loop(port, auth, PATH, bodies.one, n, half), drained(url)))
            ratios = sorted(rb["rps"] / ra["rps"] for ra, rb in zip(rounds_a, rounds_b, strict=True))
            a = max(rounds_a, key=lambda r: r["rps"])
            b = max(rounds_b, key=lambda r: r["rps"])
            b_open = await open_loop(port_b, auth, b_bodies.one, opts.rate, opts.seconds)
            await drained(url)
            a_open = await open_loop(port_a, auth, a_bodies.one, opts.rate, opts.seconds)
            c = await measured(
                proc_b.pid,
                closed_loop(port_b, auth, f"{PATH}/batch", lambda: b_bodies.batch(1000), 4, opts.seconds),
                drained(url),
            )
    print(f"(a) bare FastAPI, {opts.concurrency} clients, best of {opts.rounds} rounds: {a['rps']:.0f} req/s, "
          f"p50 {a['p50_ms']:.1f} ms, "
          f"p99 {a['p99_ms']:.1f} ms, errors {a['errors']:.0f}")  # fmt: skip
    print(f"(b) intake POST /initiatives on PostgreSQL, {opts.concurrency} clients, best round: {b['rps']:.0f} req/s, "
          f"p50 {b['p50_ms']:.1f} ms, p99 {b['p99_ms']:.1f} ms, errors {b['errors']:.0f}")  # fmt: skip
    print(f"    machine CPU per request, (a)'s best round (µs): {cpu_line(a)}")
    print(f"    machine CPU per request, (b)'s best round (µs): {cpu_line(b)}")
    print(f"    ratio (b)/(a) requests/s per round: {', '.join(f'{r:.2f}' for r in ratios)}; "
          f"median {ratios[len(ratios) // 2]:.2f}  (target >= 0.6)")  # fmt: skip
    print(f"(b) open loop at {opts.rate:.0f} req/s offered: achieved {b_open['achieved']:.0f}/s, "
          f"p50 {b_open['p50_ms']:.1f} ms, p99 {b_open['p99_ms']:.1f} ms (target < 50 ms), "
          f"errors {b_open['errors']:.0f}")  # fmt: skip
    print(f"(a) open loop at {opts.rate:.0f} req/s offered: achieved {a_open['achieved']:.0f}/s, "
          f"p50 {a_open['p50_ms']:.1f} ms, p99 {a_open['p99_ms']:.1f} ms")  # fmt: skip
    print(f"(c) batch of 1,000, 4 clients: {c['rps'] * 1000:.0f} initiatives/s (target >= 20,000), "
          f"p50 {c['p50_ms']:.0f} ms per batch, errors {c['errors']:.0f}; "
          f"= {c['rps'] * 1000 / a['rps']:.1f} x (a)'s requests/s")  # fmt: skip
    per_item = {k: v / 1000 for k, v in c["cpu_us"].items()}
    print(f"    machine CPU per initiative (µs): {cpu_line({'cpu_us': per_item})}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--rounds", type=int, default=3, help="alternating (a)/(b) closed-loop rounds")
    parser.add_argument(
        "--no-rabbitmq", dest="rabbitmq", action="store_false", help="in-process bus instead of RabbitMQ for (b)"
    )
    parser.add_argument("--serve-bare", type=int, default=0, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if not options.serve_bare:
        import gc

        gc.disable()
    if options.serve_bare:
        import uvicorn

        uvicorn.run(bare_app(), host="127.0.0.1", port=options.serve_bare, access_log=False, log_level="warning")
    else:
        asyncio.run(main(options))
