"""Issue 2's skeleton in distributed mode: five uvicorn processes, one PostgreSQL database each,
RabbitMQ (a run-unique prefix) and Redis; everything through the gateway over real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from shared.testing import AMQP_URL, REDIS_URL, amqp_prefix, pg_database
from tests.flow import walking_skeleton

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
SERVICES = ("tally", "intake", "review", "awards")

# Each under the service's own name: sangkien_<service>_<metric>.
REQUIRED_METRICS = (
    "http_requests_total",
    "http_request_duration_seconds_bucket",
    "events_published_total",
    "events_consumed_total",
    "events_failed_total",
    "outbox_backlog_events",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _wait_healthy(url: str, proc: asyncio.subprocess.Process, timeout_s: float = 60) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    async with httpx.AsyncClient(timeout=2) as client:
        while loop.time() < deadline:
            if proc.returncode is not None:
                raise RuntimeError(f"{url} exited with {proc.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{url}/health")).status_code == 200:
                    return
            await asyncio.sleep(0.3)
    raise RuntimeError(f"{url} not healthy in time")


@contextlib.asynccontextmanager
async def five_processes(tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    ports = {name: _free_port() for name in (*SERVICES, "gateway")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    async with contextlib.AsyncExitStack() as stack:
        prefix = await stack.enter_async_context(amqp_prefix())
        dbs = {name: await stack.enter_async_context(pg_database()) for name in SERVICES}
        base_env = {
            **os.environ,
            "ENVIRONMENT": "development",
            "AMQP_URL": AMQP_URL,
            "AMQP_PREFIX": prefix,
            "REDIS_URL": REDIS_URL,
            "LOG_JSON": "true",
            "PYTHONPATH": os.pathsep.join([str(REPO), *(str(REPO / "services" / s) for s in (*SERVICES, "gateway"))]),
            **{f"{name.upper()}_URL": urls[name] for name in SERVICES},
            "RATE_LIMIT_KEY_PREFIX": f"{prefix}rl:",
        }
        procs: dict[str, asyncio.subprocess.Process] = {}
        try:
            for name in (*SERVICES, "gateway"):
                env = dict(base_env)
                if name in dbs:
                    env["DATABASE_URL"] = dbs[name]
                log = (tmp_path / f"{name}.log").open("wb")
                stack.callback(log.close)
                procs[name] = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "uvicorn",
                    f"{name}.app:create",
                    "--factory",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(ports[name]),
                    "--log-level",
                    "warning",
                    cwd=str(tmp_path),
                    env=env,
                    stdout=log,
                    stderr=log,
                )
            for name, proc in procs.items():
                await _wait_healthy(urls[name], proc)
            yield urls
        finally:
            for proc in procs.values():
                if proc.returncode is None:
                    proc.terminate()
            for proc in procs.values():
                try:
                    await asyncio.wait_for(proc.wait(), 15)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()


async def test_walking_skeleton_across_five_processes_on_rabbitmq_and_postgres(tmp_path: Path) -> None:
    try:
        async with five_processes(tmp_path) as urls:
            async with httpx.AsyncClient(base_url=urls["gateway"], timeout=30) as client:
                await walking_skeleton(client)
            async with httpx.AsyncClient(timeout=10) as client:
                for name in SERVICES:
                    health = (await client.get(f"{urls[name]}/health")).json()
                    assert health["checks"] == {"database": True, "broker": True, "redis": True}, (name, health)
                    text = (await client.get(f"{urls[name]}/metrics")).text
                    for metric in REQUIRED_METRICS:
                        assert f"sangkien_{name}_{metric}" in text, (name, metric)
                    assert 'route="/health"' in text
                # Every event was published from an outbox and consumed somewhere.
                tally = (await client.get(f"{urls['tally']}/metrics")).text
                assert 'sangkien_tally_events_consumed_total{service="tally",type="initiative.submitted"} 1.0' in tally
                assert 'sangkien_tally_events_consumed_total{service="tally",type="initiative.reviewed"} 1.0' in tally
                intake = (await client.get(f"{urls['intake']}/metrics")).text
                published = 'sangkien_intake_events_published_total{service="intake",type="initiative.submitted"} 1.0'
                assert published in intake
                gateway = (await client.get(f"{urls['gateway']}/metrics")).text
                assert "sangkien_gateway_http_requests_total{" in gateway
            await _operator_view(urls["gateway"])
    except BaseException:
        _dump_logs(tmp_path)
        raise


async def _operator_view(gateway: str) -> None:
    """``sangkien ops status`` through the real gateway: each service's queue as RabbitMQ reports it."""
    import argparse
    import json

    import sangkien_ops
    from shared.testing import token

    parser = argparse.ArgumentParser()
    sangkien_ops.add_arguments(parser)
    args = parser.parse_args(["--url", gateway, "--token", token("operator", "VN"), "--json", "status"])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert await sangkien_ops.call(args) == 0
    for status in json.loads(out.getvalue()):
        queue = status["queue"]
        assert queue["broker_reached"] and queue["consumers"] == 1, status
        assert status["dead_letters"] == 0 and status["db_pool"]["max"] == 20, status


def _dump_logs(tmp_path: Path) -> None:
    for log in sorted(tmp_path.glob("*.log")):
        print(f"==== {log.name}\n{log.read_text(errors='replace')[-4000:]}")
