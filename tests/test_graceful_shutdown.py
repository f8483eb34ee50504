"""Issue 17 (5): graceful shutdown. tally and intake run as processes on PostgreSQL and RabbitMQ; while a
burst of batches goes into intake, tally (consuming) and then intake (accepting, publishing) get SIGTERM.

Each exits within the grace period, having settled what it held: nothing is lost (tally counts every
initiative intake stored, and intake's outbox is empty when it has gone), and nothing is redelivered
at all (the tally that comes back is given no event a second time: ``events_redelivered`` stays absent)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from shared.testing import AMQP_URL, amqp_prefix, auth, eventually, pg_database
from tests.flow import UNITS
from tests.system import REPO, dump_logs, free_port, wait_healthy

pytestmark = pytest.mark.integration

GRACE_S = 30  # what an orchestrator would give (deploy/k8s: 45 s, with a 5 s preStop pause)
BATCH = 100


class Service:
    """One uvicorn process of a service, restartable on the same port, database and queue prefix."""

    def __init__(self, name: str, env: dict[str, str], tmp_path: Path) -> None:
        self.name, self.env, self.tmp_path = name, env, tmp_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: asyncio.subprocess.Process | None = None
        self.runs = 0

    async def start(self) -> None:
        self.runs += 1
        log = (self.tmp_path / f"{self.name}-{self.runs}.log").open("wb")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "uvicorn", f"{self.name}.app:create", "--factory", "--host", "127.0.0.1"),
            *("--port", str(self.port), "--log-level", "warning", "--timeout-graceful-shutdown", "20"),
            cwd=str(self.tmp_path),
            env=self.env,
            stdout=log,
            stderr=log,
        )
        log.close()
        await wait_healthy(self.url, self.proc, 60)

    async def terminate(self) -> tuple[int, float]:
        """SIGTERM; the exit code and the seconds it took."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(self.proc.wait(), GRACE_S)
        return code, time.monotonic() - started

    def log(self, run: int) -> str:
        return (self.tmp_path / f"{self.name}-{run}.log").read_text(errors="replace")

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


@contextlib.asynccontextmanager
async def tally_and_intake(tmp_path: Path) -> AsyncIterator[tuple[Service, Service, dict[str, str]]]:
    async with contextlib.AsyncExitStack() as stack:
        prefix = await stack.enter_async_context(amqp_prefix())
        dbs = {name: await stack.enter_async_context(pg_database()) for name in ("tally", "intake")}
        base = {
            **os.environ,
            "ENVIRONMENT": "development",
            "AMQP_URL": AMQP_URL,
            "AMQP_PREFIX": prefix,
            "LOG_JSON": "true",
            "OPS_SAMPLE_INTERVAL_S": "1",
            "SHUTDOWN_DRAIN_S": "10",
            "PYTHONPATH": os.pathsep.join([str(REPO), *(str(REPO / "services" / s) for s in ("tally", "intake"))]),
        }
        base.pop("REDIS_URL", None)
        services = {name: Service(name, {**base, "DATABASE_URL": dbs[name]}, tmp_path) for name in ("tally", "intake")}
        try:
            for service in services.values():
                await service.start()
            yield services["tally"], services["intake"], dbs
        except BaseException:
            print(dump_logs(tmp_path))
            raise
        finally:
            for service in services.values():
                await service.kill()


# uvicorn finishes its graceful shutdown, then raises the signal again with the default handler, so a
# clean exit after SIGTERM is "terminated by SIGTERM"; what it did before is in its log ("service drained").
CLEAN_EXIT = (0, -signal.SIGTERM)


def _item(n: int, today: date) -> dict[str, Any]:
    member = f"M-{n:06d}"
    return {
        "campaign": "1M",
        "unit_code": "TH-01-001",
        "field": "production",
        "title": f"Sáng kiến số {n} về cải tiến dây chuyền",
        "problem": f"Vấn đề {n}",
        "solution": f"Giải pháp {n}",
        "effect": f"Hiệu quả {n}",
        "expected_benefit_vnd": n,
        "applied_on": (today - timedelta(days=5)).isoformat(),
        "confidential": False,
        "authors": [{"member_id": member, "full_name": f"Tác giả {n}"}],
    }


async def _plan(tally: Service, intake: Service) -> None:
    today = date.today()
    operator = auth("operator", "VN")
    async with httpx.AsyncClient(timeout=30) as client:
        assert (await client.put(f"{tally.url}/api/v1/units", json=UNITS, headers=operator)).status_code == 200
        campaign = {
            "name": "01 triệu sáng kiến",
            "fields": [{"code": "production", "name": "Sản xuất kinh doanh"}],
            "application_window": {"from": (today - timedelta(days=300)).isoformat(), "to": today.isoformat()},
            "phases": [
                {
                    "code": "P1",
                    "name": "Giai đoạn 1",
                    "opens_on": (today - timedelta(days=30)).isoformat(),
                    "closes_on": (today + timedelta(days=30)).isoformat(),
                }
            ],
        }
        put = await client.put(f"{tally.url}/api/v1/campaigns/1M", json=campaign, headers=operator)
        assert put.status_code == 200, put.text

        async def intake_knows_the_campaign() -> bool:
            r = await client.post(
                f"{intake.url}/api/v1/initiatives/batch", json={"items": [_item(0, today)]}, headers=operator
            )
            return r.status_code == 200 and r.json()["accepted"] == 1

        await eventually(intake_knows_the_campaign, timeout_s=30, interval_s=0.3)


async def _burst(intake: Service, start: int, stop: asyncio.Event, accepted: list[int]) -> None:
    """Batches of BATCH initiatives from 4 clients until ``stop`` is set or intake stops answering."""
    today = date.today()
    operator = auth("operator", "VN")
    counter = iter(range(start, 10**9, BATCH))

    async def client_loop() -> None:
        async with httpx.AsyncClient(timeout=30) as client:
            while not stop.is_set():
                first = next(counter)
                items = [_item(n, today) for n in range(first, first + BATCH)]
                try:
                    r = await client.post(
                        f"{intake.url}/api/v1/initiatives/batch", json={"items": items}, headers=operator
                    )
                except httpx.HTTPError:
                    return  # intake has stopped listening
                if r.status_code != 200:
                    return
                accepted.append(r.json()["accepted"])

    await asyncio.gather(*(client_loop() for _ in range(4)))


async def _count(dsn: str, query: str) -> int:
    conn = await asyncpg.connect(dsn.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return int(await conn.fetchval(query))
    finally:
        await conn.close()


async def test_sigterm_during_a_burst_loses_nothing_and_redelivers_nothing(tmp_path: Path) -> None:
    async with tally_and_intake(tmp_path) as (tally, intake, dbs):
        await _plan(tally, intake)
        accepted: list[int] = []
        stop = asyncio.Event()
        burst = asyncio.create_task(_burst(intake, 1, stop, accepted))

        async def accepted_at_least(n: int) -> bool:
            return sum(accepted) >= n or burst.done()

        # tally stops while it consumes the burst.
        await eventually(lambda: accepted_at_least(1_500), timeout_s=60, interval_s=0.05)
        code, took = await tally.terminate()
        print(f"tally: SIGTERM after {sum(accepted)} accepted, exited {code} in {took:.2f} s")
        assert code in CLEAN_EXIT and took < GRACE_S, (code, took)
        assert '"consumer_settled":true' in tally.log(1), tally.log(1)[-2000:]
        await tally.start()

        # intake stops while requests are in flight and its outbox relay publishes.
        target = sum(accepted) + 1_500
        await eventually(lambda: accepted_at_least(target), timeout_s=60, interval_s=0.05)
        code, took = await intake.terminate()
        print(f"intake: SIGTERM after {sum(accepted)} accepted, exited {code} in {took:.2f} s")
        assert code in CLEAN_EXIT and took < GRACE_S, (code, took)
        stop.set()
        await burst
        assert '"outbox_rows":0' in intake.log(1), intake.log(1)[-2000:]

        # Nothing lost: every initiative intake stored was published (its outbox is empty) and counted once.
        stored = await _count(dbs["intake"], "SELECT count(*) FROM initiative")
        assert stored >= sum(accepted) >= 3_000
        assert await _count(dbs["intake"], "SELECT count(*) FROM outbox") == 0
        operator = auth("operator", "VN")
        async with httpx.AsyncClient(timeout=30) as client:

            async def counted() -> bool:
                r = await client.get(f"{tally.url}/api/v1/tally/units/VN", params={"campaign": "1M"}, headers=operator)
                return r.status_code == 200 and r.json()["figures"]["submitted"] == stored

            await eventually(counted, timeout_s=90, interval_s=0.5)
            print(f"stored {stored}, acknowledged to clients {sum(accepted)}, counted by tally {stored}")
            assert await _count(dbs["tally"], "SELECT count(*) FROM facts") == stored
            # Nothing redelivered: the second tally was given no event a second time (the first settled all it held).
            metrics = (await client.get(f"{tally.url}/metrics")).text
            again = ("sangkien_tally_events_redelivered_total{", "sangkien_tally_events_duplicate_total{")
            redelivered = [line for line in metrics.splitlines() if line.startswith(again)]
            assert redelivered == [], redelivered
            status = await client.get(f"{tally.url}/api/v1/ops/tally/status", headers=operator)
            assert status.json()["queue"]["unacked_here"] == 0 and status.json()["dead_letters"] == 0
