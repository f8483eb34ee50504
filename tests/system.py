"""The five processes of distributed mode (one uvicorn each, on PostgreSQL, RabbitMQ and Redis), for the tests
that run them: the distributed walking skeleton, and the fault tests, which kill -9 and restart them one by one
and may reach PostgreSQL, RabbitMQ or Redis through a TCP proxy they can cut.

The real servers are shared with other work on the machine: an outage is a cut proxy, never a stopped server.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path

import httpx

from shared.tcpproxy import TcpProxy, proxy_for
from shared.testing import AMQP_URL, REDIS_URL, amqp_prefix, pg_database

REPO = Path(__file__).resolve().parents[1]
SERVICES = ("tally", "intake", "review", "awards")
CONSUMERS = ("tally", "review", "awards", "intake")
DEFAULT_PORTS = {"pg": 5432, "amqp": 5672, "redis": 6379}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_healthy(url: str, proc: asyncio.subprocess.Process, timeout_s: float = 90) -> None:
    """Until ``url``/health answers 200; RuntimeError if the process exits or the time runs out."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    async with httpx.AsyncClient(timeout=3) as client:
        while True:
            if proc.returncode is not None:
                raise RuntimeError(f"{url} exited with {proc.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{url}/health")).status_code == 200:
                    return
            if loop.time() > deadline:
                raise RuntimeError(f"{url} not healthy in {timeout_s} s")
            await asyncio.sleep(0.3)


def dump_logs(tmp_path: Path, tail: int = 3000) -> str:
    """The end of every ``*.log`` under ``tmp_path``, for a failed test's output."""
    return "\n".join(
        f"==== {path.name}\n{path.read_text(errors='replace')[-tail:]}" for path in sorted(tmp_path.glob("*.log"))
    )


class System:
    """Five uvicorn processes; ``proxies`` holds the cuttable path to each dependency the run asked for."""

    def __init__(self, tmp_path: Path, env: dict[str, str], dbs: dict[str, str], proxies: dict[str, TcpProxy]) -> None:
        self.tmp_path = tmp_path
        self.env = env
        self.dbs = dbs  # the services' databases, direct (the test reads them to check)
        self.proxies = proxies
        self.ports = {name: free_port() for name in (*SERVICES, "gateway")}
        self.urls = {name: f"http://127.0.0.1:{port}" for name, port in self.ports.items()}
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self._logs: list[object] = []

    def _env_of(self, name: str) -> dict[str, str]:
        env = {**self.env, **{f"{s.upper()}_URL": self.urls[s] for s in SERVICES}}
        if name in self.dbs:
            pg = self.proxies.get("pg")
            env["DATABASE_URL"] = pg.url(self.dbs[name]) if pg else self.dbs[name]
        return env

    async def start(self, name: str) -> None:
        log = (self.tmp_path / f"{name}.log").open("ab")
        self._logs.append(log)
        self.procs[name] = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "uvicorn",
            f"{name}.app:create",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.ports[name]),
            "--log-level",
            "warning",
            cwd=str(self.tmp_path),
            env=self._env_of(name),
            stdout=log,
            stderr=log,
        )

    async def wait_healthy(self, names: Iterable[str], timeout_s: float = 90) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        for name in names:
            await wait_healthy(self.urls[name], self.procs[name], max(0.0, deadline - loop.time()))

    async def kill(self, name: str) -> None:
        """kill -9: no shutdown of any kind (open transactions, unacknowledged messages, half-sent answers)."""
        proc = self.procs[name]
        if proc.returncode is None:
            proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(proc.wait(), 30)

    async def restart(self, name: str) -> None:
        await self.start(name)
        await self.wait_healthy([name])

    async def stop(self) -> None:
        for proc in self.procs.values():
            if proc.returncode is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        for log in self._logs:
            log.close()  # type: ignore[attr-defined]

    def dump_logs(self, tail: int = 3000) -> str:
        return dump_logs(self.tmp_path, tail)


@contextlib.asynccontextmanager
async def running_system(
    tmp_path: Path, proxied: Iterable[str] = (), env: Mapping[str, str] | None = None
) -> AsyncIterator[System]:
    """A fresh system (own databases, queue prefix and Redis key prefix); ``proxied`` ⊆ {"pg", "amqp", "redis"};
    ``env`` adds to (or overrides) every process's environment."""
    proxied = set(proxied)
    async with contextlib.AsyncExitStack() as stack:
        prefix = await stack.enter_async_context(amqp_prefix())
        dbs = {name: await stack.enter_async_context(pg_database()) for name in SERVICES}
        urls = {"pg": next(iter(dbs.values())), "amqp": AMQP_URL, "redis": REDIS_URL}
        proxies = {
            kind: await stack.enter_async_context(proxy_for(urls[kind], DEFAULT_PORTS[kind]))
            for kind in sorted(proxied)
        }
        environment = {
            **os.environ,
            "ENVIRONMENT": "development",
            "AMQP_URL": proxies["amqp"].url(AMQP_URL) if "amqp" in proxies else AMQP_URL,
            "AMQP_PREFIX": prefix,
            "REDIS_URL": proxies["redis"].url(REDIS_URL) if "redis" in proxies else REDIS_URL,
            "LOG_JSON": "true",
            "PYTHONPATH": os.pathsep.join([str(REPO), *(str(REPO / "services" / s) for s in (*SERVICES, "gateway"))]),
            "RATE_LIMIT_KEY_PREFIX": f"{prefix}rl:",
            **(env or {}),
        }
        system = System(tmp_path, environment, dbs, proxies)
        try:
            for name in (*SERVICES, "gateway"):
                await system.start(name)
            await system.wait_healthy((*SERVICES, "gateway"))
            yield system
        finally:
            await system.stop()
