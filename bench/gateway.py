"""What the gateway costs: POST /api/v1/initiatives through the gateway vs. straight to the downstream, in one run.

    .venv/bin/python bench/gateway.py [--target intake|minimal] [--requests 3000] [--concurrency 16] [--rounds 3]

Two processes on loopback, each served by uvicorn (one worker): a downstream answering
``POST /api/v1/initiatives`` and the gateway (``uvicorn gateway.app:create --factory``, token check,
rate limit in the real Redis through redis-py, body limit, proxy through pyreqwest) in front of it. The
load generator (bench/loadgen.py: one kept-alive aiohttp connection per client) alternates
direct and gateway rounds in ABBA order (direct, gateway, gateway, direct, ...), each started once
the downstream is idle again, and reports, for the same workload, throughput and latency, and the
ratios gateway/direct, plus the server CPU spent per request (from /proc), which the noise of a
shared machine disturbs far less than wall-clock throughput.

Downstreams: ``--target intake`` (default) runs the real intake (``uvicorn intake.app:create``) on a
fresh PostgreSQL database and a RabbitMQ prefix of its own, its plan (units, campaign) published
as ``unit.upserted.v1`` / ``campaign.upserted.v1`` events; ``--target minimal`` is a FastAPI app that
validates the SPEC §9 request model and answers 201 {id, seq, status} without a database (the
gateway's own cost against the cheapest possible service).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, Field

REPO = Path(__file__).resolve().parents[1]


class Author(BaseModel):
    member_id: str = Field(min_length=1, max_length=64)
    full_name: str = Field(min_length=1, max_length=200)


class InitiativeCreate(BaseModel):
    """The SPEC §9 request model of POST /initiatives."""

    campaign: str = Field(max_length=64)
    unit_code: str = Field(max_length=64)
    field: str = Field(max_length=64)
    title: str = Field(min_length=5, max_length=300)
    problem: str | None = Field(None, max_length=20000)
    solution: str | None = Field(None, max_length=20000)
    effect: str | None = Field(None, max_length=20000)
    expected_benefit_vnd: int = Field(ge=0)
    applied_on: date
    confidential: bool = False
    authors: list[Author] = Field(min_length=1, max_length=20)


def downstream_app() -> Any:
    from fastapi import FastAPI

    app = FastAPI()
    counter = {"seq": 0}

    @app.post("/api/v1/initiatives", status_code=201)
    async def submit(body: InitiativeCreate) -> dict[str, Any]:
        counter["seq"] += 1
        return {"id": str(uuid.uuid4()), "seq": counter["seq"], "status": "submitted"}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def wait_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    import httpx

    async with httpx.AsyncClient() as client:
        for _ in range(200):
            if proc.poll() is not None:
                raise RuntimeError(f"{url} exited: {proc.stderr.read().decode() if proc.stderr else ''}")
            try:
                if (await client.get(url + "/health")).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not start")


BODY = {
    "campaign": "1M",
    "unit_code": "HN-BD-001",
    "field": "production",
    "title": "Cải tiến khuôn định vị cáp ngầm",
    "problem": "Lắp đặt cáp mất nhiều thời gian căn chỉnh. " * 10,
    "solution": "Thiết kế khuôn định vị bằng thép tái chế. " * 10,
    "effect": "Giảm 30% thời gian thi công mỗi tuyến cáp. " * 10,
    "expected_benefit_vnd": 150_000_000,
    "applied_on": "2026-01-15",
    "confidential": False,
    "authors": [{"member_id": "M-0001", "full_name": "Nguyễn Văn An"}],
}


async def load(port: int, auth: str, n: int, concurrency: int) -> tuple[float, list[float]]:
    """``n`` submissions over ``concurrency`` kept-alive connections (bench/loadgen.py): (req/s, latencies)."""
    from loadgen import Conn

    latencies: list[float] = []
    remaining = n
    conns = [Conn(port, auth, timeout_s=30) for _ in range(concurrency)]

    async def worker(conn: Conn) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            # a new title each time: intake refuses an author's second identical initiative (409)
            body = orjson.dumps({**BODY, "title": f"{BODY['title']} {uuid.uuid4().hex[:12]}"})
            t0 = time.perf_counter()
            status, data = await conn.request("POST", "/api/v1/initiatives", body)
            latencies.append(time.perf_counter() - t0)
            if status != 201:
                raise RuntimeError(f"127.0.0.1:{port}: {status} {data[:200]!r}")

    start_t = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = time.perf_counter() - start_t
    for c in conns:
        c.close()
    return n / elapsed, latencies


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), robust to other load on a shared machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def wait_accepting(url: str, headers: dict[str, str], timeout_s: float = 60) -> None:
    """Until the plan has reached intake through the bus, a submission is refused (422)."""
    import httpx

    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        while True:
            body = {**BODY, "title": f"{BODY['title']} {uuid.uuid4().hex[:12]}"}
            r = await client.post("/api/v1/initiatives", json=body, headers=headers)
            if r.status_code == 201:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"intake never accepted the submission: {r.status_code} {r.text[:300]}")
            await asyncio.sleep(0.5)


async def settle(pid: int, timeout_s: float = 10.0) -> None:
    """Until the process has been idle (< 5 ms of CPU) for 200 ms, at most ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last = cpu_seconds(pid)
    while time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        now = cpu_seconds(pid)
        if now - last < 0.005:
            return
        last = now


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--target", choices=("intake", "minimal"), default="intake")
    parser.add_argument("--redis-url", default=os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()

    sys.path[:0] = [str(REPO), str(REPO / "services" / "gateway"), str(REPO / "services" / "intake")]
    from shared.testing import token

    async with contextlib.AsyncExitStack() as stack:
        return await run(args, stack, token)


async def publish_plan(amqp_url: str, prefix: str, today: date) -> None:
    """The demo plan, as tally would publish it, so the real intake accepts submissions."""
    from sangkien_cli import DEMO_UNITS, demo_campaign
    from shared.bus.rabbitmq import RabbitMQBus
    from shared.envelope import new_event

    paths: dict[str, list[str]] = {}
    for unit in DEMO_UNITS:
        parent = unit.get("parent_code")
        paths[unit["code"]] = [*(paths[parent] if parent else []), unit["code"]]
    events = [
        new_event(
            "unit.upserted",
            {"cluster": None, "member_count": None, **u, "path": paths[u["code"]], "revision": 1},
            producer="tally",
        )
        for u in DEMO_UNITS
    ]
    events.append(
        new_event("campaign.upserted", {"code": "1M", **demo_campaign(today), "revision": 1}, producer="tally")
    )
    bus = RabbitMQBus(amqp_url, prefix=prefix)
    await bus.start()
    try:
        await bus.publish(events)
    finally:
        await bus.close()


async def run(args: argparse.Namespace, stack: contextlib.AsyncExitStack, token: Any) -> int:
    from shared.testing import AMQP_URL

    py = sys.executable
    down_port, gw_port = free_port(), free_port()
    env = {
        **os.environ,
        "ENVIRONMENT": "development",
        "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "services" / "gateway")]),
        "LOG_LEVEL": "WARNING",
        "INTAKE_URL": f"http://127.0.0.1:{down_port}",
        "REDIS_URL": args.redis_url,
        "RATE_ACCOUNT_PER_S": "1000000",
        "RATE_ACCOUNT_BURST": "1000000",
        "RATE_IP_PER_S": "1000000",
        "RATE_IP_BURST": "1000000",
        "RATE_LIMIT_KEY_PREFIX": f"sk:bench:{uuid.uuid4().hex[:8]}:",
    }
    today = date.today()
    BODY["applied_on"] = (today - timedelta(days=20)).isoformat()
    prefix = ""
    if args.target == "intake":
        from shared.testing import amqp_prefix, pg_database

        prefix = await stack.enter_async_context(amqp_prefix())
        db_url = await stack.enter_async_context(pg_database())
        intake_env = {**env, "DATABASE_URL": db_url, "AMQP_URL": AMQP_URL, "AMQP_PREFIX": prefix}
        intake_env["PYTHONPATH"] += os.pathsep + str(REPO / "services" / "intake")
        down = start(
            [py, "-m", "uvicorn", "intake.app:create", "--factory", "--host", "127.0.0.1", "--port", str(down_port)]
            + ["--log-level", "warning", "--no-access-log"],
            intake_env,
        )
    else:
        down = start(
            [
                py,
                "-c",
                f"import runpy,uvicorn; m=runpy.run_path({str(Path(__file__))!r}); "
                f"uvicorn.run(m['downstream_app'](), host='127.0.0.1', port={down_port}, log_level='warning', "
                "access_log=False)",
            ],
            env,
        )
    gw = start(
        [
            py,
            "-m",
            "uvicorn",
            "gateway.app:create",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(gw_port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env,
    )
    try:
        direct_url, gw_url = f"http://127.0.0.1:{down_port}", f"http://127.0.0.1:{gw_port}"
        await wait_up(direct_url, down)
        await wait_up(gw_url, gw)
        auth = token("member", "HN-BD-001", sub="M-0001", member_id="M-0001")
        headers = {"Authorization": f"Bearer {auth}"}
        if args.target == "intake":
            await publish_plan(AMQP_URL, prefix, today)
            await wait_accepting(direct_url, headers)
        await load(down_port, auth, 300, args.concurrency)  # warm-up
        await load(gw_port, auth, 300, args.concurrency)
        results: dict[str, list[tuple[float, list[float]]]] = {"direct": [], "gateway": []}
        cpu = {"direct": 0.0, "gateway": 0.0, "gateway_downstream": 0.0}
        ports = {"direct": down_port, "gateway": gw_port}
        for i in range(args.rounds):
            # ABBA order (direct, gateway, gateway, direct, ...): a drift over the run (a growing table,
            # the machine's other load) weighs on both sides alike.
            for name in ("direct", "gateway") if i % 2 == 0 else ("gateway", "direct"):
                await settle(down.pid)  # the downstream's background work of the previous round is done
                d0, g0 = cpu_seconds(down.pid), cpu_seconds(gw.pid)
                results[name].append(await load(ports[name], auth, args.requests, args.concurrency))
                d1, g1 = cpu_seconds(down.pid), cpu_seconds(gw.pid)
                if name == "direct":
                    cpu["direct"] += d1 - d0
                else:
                    cpu["gateway"] += g1 - g0
                    cpu["gateway_downstream"] += d1 - d0
                print(f"round {i + 1} {name:<8} {results[name][-1][0]:7.0f} req/s", file=sys.stderr)
    finally:
        for proc in (gw, down):
            proc.terminate()
            proc.wait(10)

    def summary(name: str) -> dict[str, float]:
        rounds = results[name]
        lat = [x for _, lats in rounds for x in lats]
        return {
            "rps": statistics.median(r for r, _ in rounds),
            "p50_ms": pct(lat, 0.5) * 1000,
            "p95_ms": pct(lat, 0.95) * 1000,
        }

    d, g = summary("direct"), summary("gateway")
    from importlib.metadata import version

    import redis

    print(f"gateway's clients: pyreqwest {version('pyreqwest')} (HTTP), redis-py {redis.__version__} (Redis)")
    print(
        f"downstream: {args.target}; POST /api/v1/initiatives, {args.rounds} rounds x {args.requests} requests, "
        f"concurrency {args.concurrency}"
    )
    print("                req/s   p50 ms   p95 ms")
    for name, s in (("direct", d), ("gateway", g)):
        print(f"{name:<12}{s['rps']:>9.0f}{s['p50_ms']:>9.2f}{s['p95_ms']:>9.2f}")
    n = args.rounds * args.requests
    per = {k: v / n * 1e6 for k, v in cpu.items()}
    print(
        f"server CPU per request: downstream alone {per['direct']:.0f} us; via the gateway "
        f"{per['gateway'] + per['gateway_downstream']:.0f} us (gateway {per['gateway']:.0f} us)"
    )
    print(
        "CPU cost of the gateway per request, relative to the downstream's own: "
        f"{(per['gateway'] + per['gateway_downstream']) / per['direct'] - 1:.0%}"
    )
    cost = d["rps"] / g["rps"] - 1
    print(f"throughput cost of the gateway (direct req/s / gateway req/s - 1): {cost * 100:.0f}%")
    print(f"latency ratio gateway/direct: p50 {g['p50_ms'] / d['p50_ms']:.2f}x, p95 {g['p95_ms'] / d['p95_ms']:.2f}x")
    print(f"added latency: p50 +{g['p50_ms'] - d['p50_ms']:.2f} ms, p95 +{g['p95_ms'] - d['p95_ms']:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
