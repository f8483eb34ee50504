"""The ``sangkien`` command: run the whole system embedded, serve one service, seed a demo, mint a token.

- ``sangkien run``: the gateway and the four services in ONE process, SQLite files under ./var,
  the in-process bus, a seeded demo; prints the URL. Needs no server.
- ``sangkien serve <intake|review|tally|awards|gateway>``: one service per process (distributed
  mode), configured from the environment (DATABASE_URL, AMQP_URL, REDIS_URL, JWT_SECRET...).
- ``sangkien seed --url URL``: load the demo plan and a few initiatives through the gateway.
- ``sangkien token --roles operator --unit VN``: print a development token (needs JWT_SECRET
  or the development default).
- ``sangkien tally verify|rebuild``: recompute tally's counters from its facts.
- ``sangkien migrate <service> [--wait]``: apply a service's Alembic migrations (the Kubernetes
  migration Job), or wait until another process has (the Deployment's init container).
- ``sangkien ops …``: operators' views of a live deployment through the gateway (``sangkien_ops``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import os
import sys
from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

SERVICES = ("intake", "review", "tally", "awards")
PORTS = {"gateway": 8000, "intake": 8001, "review": 8002, "tally": 8003, "awards": 8004}

log = logging.getLogger("sangkien")


def _settings_class(name: str) -> Any:
    module = importlib.import_module(f"{name}.settings")
    return getattr(module, f"{name.capitalize()}Settings")


def build_embedded(var_dir: Path, **overrides: Any) -> tuple[FastAPI, dict[str, FastAPI]]:
    """The four services on one in-process broker with SQLite files, and a gateway calling them in-process."""
    from shared.bus.memory import InMemoryBroker

    broker = InMemoryBroker()
    services: dict[str, FastAPI] = {}
    for name in ("tally", "intake", "review", "awards"):
        settings = _settings_class(name)(
            database_url=f"sqlite+aiosqlite:///{var_dir}/{name}.db",
            amqp_url=None,
            redis_url=None,
            **overrides,
        )
        module = importlib.import_module(f"{name}.app")
        kwargs: dict[str, Any] = {"broker": broker}
        if name == "awards":
            kwargs["http_transports"] = {"tally": httpx.ASGITransport(app=services["tally"])}
        services[name] = module.create(settings, **kwargs)
    gateway_settings = _settings_class("gateway")(redis_url=None, **overrides)
    transports: Mapping[str, httpx.AsyncBaseTransport] = {
        name: httpx.ASGITransport(app=app) for name, app in services.items()
    }
    gateway = importlib.import_module("gateway.app").create(gateway_settings, transports=transports)
    return gateway, services


async def run_embedded(host: str, port: int, var_dir: Path, seed: bool) -> None:
    import uvicorn

    # The embedded run is the demo: development tokens and the demo sign-in, whatever the shell says.
    gateway, services = build_embedded(var_dir, environment="development")
    async with contextlib.AsyncExitStack() as stack:
        for app in services.values():
            await stack.enter_async_context(app.router.lifespan_context(app))
        config = uvicorn.Config(
            gateway, host=host, port=port, log_level="info", lifespan="on", access_log=access_log_wanted()
        )
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve())
        while not server.started:
            if serving.done():
                await serving
                return
            await asyncio.sleep(0.05)
        url = f"http://{host}:{port}"
        if seed:
            try:
                await seed_demo(url)
            except Exception as exc:  # the system still runs; say what failed
                print(f"demo seed incomplete: {exc!r}", file=sys.stderr)
        print(f"\nSáng kiến is running (embedded mode): {url}/\n  API docs: {url}/docs\n", flush=True)
        await serving


# ---- the demo -----------------------------------------------------------------------------------

DEMO_UNITS: list[dict[str, Any]] = [
    {"code": "VN", "name": "Tổng Liên đoàn Lao động Việt Nam", "kind": "national", "parent_code": None},
    {"code": "HN", "name": "LĐLĐ Thành phố Hà Nội", "kind": "province", "parent_code": "VN", "cluster": "C1"},
    {"code": "TH", "name": "LĐLĐ tỉnh Thanh Hóa", "kind": "province", "parent_code": "VN", "cluster": "C1"},
    {"code": "HN-BD", "name": "LĐLĐ quận Ba Đình", "kind": "district", "parent_code": "HN"},
    {"code": "HN-CG", "name": "LĐLĐ quận Cầu Giấy", "kind": "district", "parent_code": "HN"},
    {"code": "TH-01", "name": "LĐLĐ thành phố Thanh Hóa", "kind": "district", "parent_code": "TH"},
    {
        "code": "HN-BD-001",
        "name": "CĐCS Công ty Điện lực Ba Đình",
        "kind": "grassroots",
        "parent_code": "HN-BD",
        "member_count": 420,
    },
    {
        "code": "HN-BD-002",
        "name": "CĐCS Bệnh viện Xanh Pôn",
        "kind": "grassroots",
        "parent_code": "HN-BD",
        "member_count": 310,
    },
    {
        "code": "HN-CG-001",
        "name": "CĐCS Trường THPT Cầu Giấy",
        "kind": "grassroots",
        "parent_code": "HN-CG",
        "member_count": 95,
    },
    {
        "code": "TH-01-001",
        "name": "CĐCS Công ty Xi măng Nghi Sơn",
        "kind": "grassroots",
        "parent_code": "TH-01",
        "member_count": 780,
    },
]

DEMO_FIELDS = [
    {"code": "production", "name": "Sản xuất kinh doanh"},
    {"code": "safety", "name": "An toàn vệ sinh lao động, môi trường"},
    {"code": "admin", "name": "Cải cách hành chính, quản lý"},
    {"code": "community", "name": "Cộng đồng (y tế, giáo dục)"},
    {"code": "digital", "name": "Chuyển đổi số"},
]

DEMO_INITIATIVES = [
    (
        "HN-BD-001",
        "M-0001",
        "Nguyễn Văn An",
        "production",
        "Cải tiến khuôn định vị cáp ngầm",
        "Lắp đặt cáp mất nhiều thời gian căn chỉnh.",
        "Thiết kế khuôn định vị bằng thép tái chế.",
        "Giảm 30% thời gian thi công mỗi tuyến cáp.",
        150_000_000,
    ),
    (
        "HN-BD-002",
        "M-0002",
        "Trần Thị Bình",
        "community",
        "Đặt lịch khám qua tin nhắn Zalo",
        "Người bệnh xếp hàng từ sáng sớm.",
        "Kết nối hệ thống đặt lịch với Zalo OA của bệnh viện.",
        "Giảm thời gian chờ trung bình từ 2 giờ xuống 25 phút.",
        80_000_000,
    ),
    (
        "HN-CG-001",
        "M-0003",
        "Lê Minh Châu",
        "digital",
        "Số hóa sổ điểm và học bạ",
        "Giáo viên nhập điểm hai lần, dễ sai sót.",
        "Biểu mẫu trực tuyến đồng bộ với phần mềm quản lý.",
        "Tiết kiệm 4 giờ mỗi giáo viên mỗi học kỳ.",
        20_000_000,
    ),
    (
        "TH-01-001",
        "M-0004",
        "Phạm Đức Dũng",
        "safety",
        "Che chắn băng tải clinker",
        "Bụi clinker phát tán tại khu vực băng tải.",
        "Lắp tấm che và hệ thống phun sương.",
        "Giảm 60% bụi, không còn sự cố mất an toàn.",
        300_000_000,
    ),
]


def demo_campaign(today: date) -> dict[str, Any]:
    p1_open, p1_close = today - timedelta(days=60), today + timedelta(days=30)
    return {
        "name": "01 triệu sáng kiến — nỗ lực vượt khó, sáng tạo",
        "fields": DEMO_FIELDS,
        "application_window": {
            "from": (today - timedelta(days=365)).isoformat(),
            "to": (today + timedelta(days=200)).isoformat(),
        },
        "phases": [
            {"code": "P1", "name": "Giai đoạn 1", "opens_on": p1_open.isoformat(), "closes_on": p1_close.isoformat()},
            {
                "code": "P2",
                "name": "Giai đoạn 2",
                "opens_on": (p1_close + timedelta(days=1)).isoformat(),
                "closes_on": (today + timedelta(days=200)).isoformat(),
            },
        ],
        "milestones": [100_000 * i for i in range(1, 11)],
    }


def _secret() -> str:
    from shared.settings import DEV_JWT_SECRET

    return os.environ.get("JWT_SECRET") or DEV_JWT_SECRET


def dev_token(
    roles: list[str], unit: str, *, sub: str | None = None, member_id: str | None = None, name: str | None = None
) -> str:
    from shared.auth import mint_token

    return mint_token(
        _secret(), sub=sub or f"{roles[0]}-{unit}", roles=roles, unit=unit, member_id=member_id, name=name
    )


async def seed_demo(url: str, today: date | None = None, timeout_s: float = 30.0) -> None:
    """Idempotent: units and campaign are upserts; initiatives carry Idempotency-Keys."""
    today = today or date.today()
    op = {"Authorization": f"Bearer {dev_token(['operator'], 'VN', sub='demo-operator', name='Quản trị viên')}"}
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        r = await client.put("/api/v1/units", json=DEMO_UNITS, headers=op)
        r.raise_for_status()
        r = await client.put("/api/v1/campaigns/1M", json=demo_campaign(today), headers=op)
        r.raise_for_status()
        quotas = [
            {"unit_code": "HN", "phase": "P1", "assigned": 10, "self_set": 15},
            {"unit_code": "TH", "phase": "P1", "assigned": 8, "self_set": 8},
            {"unit_code": "HN-BD-001", "phase": "P1", "assigned": 3, "self_set": 5},
            {"unit_code": "HN-BD-002", "phase": "P1", "assigned": 3, "self_set": 3},
            {"unit_code": "HN-CG-001", "phase": "P1", "assigned": 2, "self_set": 2},
            {"unit_code": "TH-01-001", "phase": "P1", "assigned": 4, "self_set": 6},
        ]
        r = await client.put("/api/v1/campaigns/1M/quotas", json=quotas, headers=op)
        r.raise_for_status()
        loop = asyncio.get_running_loop()
        for unit, member, name, field, title, problem, solution, effect, benefit in DEMO_INITIATIVES:
            body = {
                "campaign": "1M",
                "unit_code": unit,
                "field": field,
                "title": title,
                "problem": problem,
                "solution": solution,
                "effect": effect,
                "expected_benefit_vnd": benefit,
                "applied_on": (today - timedelta(days=20)).isoformat(),
                "confidential": False,
                "authors": [{"member_id": member, "full_name": name}],
            }
            headers = {
                "Authorization": f"Bearer {dev_token(['member'], unit, sub=member, member_id=member, name=name)}",
                "Idempotency-Key": f"demo-{member}",
            }
            deadline = loop.time() + timeout_s
            while True:  # the plan reaches intake through the bus: wait for it
                r = await client.post("/api/v1/initiatives", json=body, headers=headers)
                if r.status_code in (200, 201, 409) or loop.time() > deadline:
                    break
                await asyncio.sleep(0.3)
            if r.status_code not in (200, 201, 409):
                raise RuntimeError(f"demo initiative refused: {r.status_code} {r.text}")


# ---- entry point --------------------------------------------------------------------------------


# On SIGTERM uvicorn stops listening and lets the requests in flight finish for this long; then the
# service's own drain runs (SHUTDOWN_DRAIN_S). Both fit in the orchestrator's grace period (45 s in deploy/k8s).
GRACEFUL_REQUESTS_S = 20


def access_log_wanted(environ: Mapping[str, str] = os.environ) -> bool:
    """uvicorn's access log (one plain-text line per request, ``sangkien serve`` and the embedded run) only when
    ``ACCESS_LOG`` asks for it.

    Each service already counts and times every request by route and status (``sangkien_<service>_http_*``) and
    logs every failure as JSON with its correlation id; the access lines carry neither the JSON shape nor the
    correlation id, and writing them cost the gateway ~7% of its CPU under load (a py-spy profile during
    bench/pipeline.py (c); docs/benchmarks.md, "The same load generator on both sides")."""
    return environ.get("ACCESS_LOG", "").strip().lower() in {"1", "true", "yes", "on"}


def serve(service: str, host: str, port: int | None) -> None:
    import uvicorn

    uvicorn.run(
        f"{service}.app:create",
        factory=True,
        host=host,
        port=port or PORTS[service],
        log_level="info",
        access_log=access_log_wanted(),
        proxy_headers=True,
        timeout_graceful_shutdown=GRACEFUL_REQUESTS_S,
    )


def _migrations(service: str) -> tuple[Path, Any]:
    app_module = importlib.import_module(f"{service}.app")
    metadata = importlib.import_module(f"{service}.adapters.orm").metadata
    return Path(app_module.__file__).resolve().parents[1] / "migrations", metadata  # type: ignore[arg-type]


async def migrate(service: str, *, wait: bool = False, timeout_s: float = 900) -> int:
    """Apply the migrations of ``service`` to DATABASE_URL; with ``wait``, only wait (polling) until the
    database is at the head of this code's migrations. 0 when it is, 1 at the timeout."""
    from alembic.script import ScriptDirectory
    from sqlalchemy import text

    from shared.db import make_engine, run_migrations

    directory, metadata = _migrations(service)
    settings = _settings_class(service)()
    engine = await make_engine(settings.database_url, pool_size=1)
    try:
        if not wait:
            await run_migrations(engine, directory, metadata)
            print(f"{service}: migrated to head")
            return 0
        head = ScriptDirectory(str(directory)).get_current_head()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            try:
                async with engine.connect() as conn:
                    current = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
            except Exception:
                current = None  # no database or no alembic_version yet
            if current == head:
                print(f"{service}: database at head {head}")
                return 0
            if loop.time() > deadline:
                print(f"{service}: database at {current}, not at head {head}", file=sys.stderr)
                return 1
            await asyncio.sleep(2)
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sangkien", description="Sáng kiến campaign system")
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="the whole system in one process (SQLite, in-process bus)")
    p_run.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    p_run.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    p_run.add_argument("--var", default=os.environ.get("SANGKIEN_VAR", "./var"))
    p_run.add_argument("--no-seed", action="store_true")
    p_serve = sub.add_parser("serve", help="one service per process (distributed mode)")
    p_serve.add_argument("service", choices=(*SERVICES, "gateway"))
    p_serve.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    p_serve.add_argument("--port", type=int, default=None)
    p_seed = sub.add_parser("seed", help="load the demo through a running gateway")
    p_seed.add_argument("--url", default="http://127.0.0.1:8000")
    p_token = sub.add_parser("token", help="print a development token")
    p_token.add_argument("--roles", default="operator")
    p_token.add_argument("--unit", default="VN")
    p_token.add_argument("--sub", default=None)
    p_token.add_argument("--member-id", default=None)
    p_tally = sub.add_parser("tally", help="tally maintenance: verify or rebuild counters")
    p_tally.add_argument("action", choices=("verify", "rebuild"))
    p_migrate = sub.add_parser("migrate", help="apply a service's migrations (DATABASE_URL), or wait for them")
    p_migrate.add_argument("service", choices=SERVICES)
    p_migrate.add_argument("--wait", action="store_true", help="only wait until the database is at head")
    p_migrate.add_argument("--timeout", type=float, default=900, help="seconds to wait (--wait)")
    p_ops = sub.add_parser("ops", help="operators: queues, dead letters, outbox, tally verify (through the gateway)")
    importlib.import_module("sangkien_ops").add_arguments(p_ops)
    args = parser.parse_args(argv)

    if args.command == "run":
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run_embedded(args.host, args.port, Path(args.var).resolve(), not args.no_seed))
        return 0
    if args.command == "serve":
        serve(args.service, args.host, args.port)
        return 0
    if args.command == "seed":
        asyncio.run(seed_demo(args.url))
        print("demo loaded")
        return 0
    if args.command == "token":
        print(dev_token(args.roles.split(","), args.unit, sub=args.sub, member_id=args.member_id))
        return 0
    if args.command == "tally":
        return int(importlib.import_module("tally.cli").main([args.action]) or 0)
    if args.command == "migrate":
        return asyncio.run(migrate(args.service, wait=args.wait, timeout_s=args.timeout))
    if args.command == "ops":
        return int(importlib.import_module("sangkien_ops").run(args))
    return 2


if __name__ == "__main__":
    sys.exit(main())
