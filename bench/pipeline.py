"""The whole system end to end: the five processes of ``make run-distributed`` on PostgreSQL and RabbitMQ, a
province-shaped campaign entered and decided through the gateway, in one run (issue 13, item 3).

    flock /tmp/sangkien-bench.lock .venv/bin/python bench/pipeline.py [--n 20000] [--rates 300,600,900,1200,1500]
        [--step-seconds 10] [--reviewers 8] [--entry-clients 4] [--json out.json]

One run:
  * starts ``scripts/run-distributed.sh`` itself, with its overrides: databases ``skbench_<hex>_<service>``
    (created by the script, dropped afterwards), a fresh AMQP prefix (queues deleted afterwards), free loopback
    ports, the gateway's rate limits raised out of the way (a Redis key prefix of its own);
  * loads the plan through the gateway as an operator (``PUT /units``, ``/campaigns/{code}``, ``/quotas``): a
    province of the Thanh Hóa shape (bench/province.py) scaled to ``--n`` initiatives, phase P1 open today;
  * (a) a bare FastAPI echo (uvicorn, one worker) under the same load generator, closed loop, 64 connections:
    requests/s, the reference;
  * (b) ``--n`` initiatives through ``POST /api/v1/initiatives/batch`` (1,000 items, intake's limit) by
    ``--entry-clients`` support accounts at once, decided meanwhile by ``--reviewers`` scripted reviewers
    (``POST /review/claims`` count 50, then ``POST /review/decisions/batch``; 85% valid, the rest invalid with
    a reason; a reviewer whose claim comes back empty waits 0.25 s doubling to 2 s, one whose claim was not
    full 0.25 s: claims cost review CPU): initiatives/s from the first submission until every decision is
    accepted (review held them all) and tally counts every one submitted and decided (its figures polled
    through the gateway), and the ratio to (a);
  * (c) single ``POST /api/v1/initiatives`` through the gateway, open loop, at each of ``--rates`` for
    ``--step-seconds``, every service's queue depth sampled each second (aio-pika passive declare:
    ``message_count``, the messages *ready*; one message carries up to 100 events), the events each service is
    behind (from the services' /metrics: published to its queue less consumed, over the types it has handled
    at least once; unlike ``message_count`` this counts what sits delivered but unacknowledged in a consumer's
    prefetch, up to thousands of events) and
    each outbox: the highest rate after which all of them are back to 0 within 10 s of the load's end, with
    every request accepted. It stops at the first rate that fails (``--all-rates`` runs them all);
  * (d) the machine's CPU per initiative (from /proc, utime+stime, every second) of each service process, each
    service's PostgreSQL backends (pids mapped to databases through pg_stat_activity), PostgreSQL's shared
    processes (postmaster, WAL writer, checkpointer, ...), RabbitMQ (beam.smp; shared with other users of the
    broker), and the load generator itself (its rusage), over (b) until every queue and outbox is drained, and
    over (c). Other databases' backends and the other processes on the machine are reported apart.

The load generator is aiohttp's client on uvloop, one keep-alive connection per simulated client
(bench/loadgen.py); it shares the two cores with what it measures, and its CPU is reported apart in (d). Its
cyclic GC is off during the run. ``--services-from DIR`` runs another checkout's services (for instance
``git archive <commit>`` unpacked in DIR, with a ``.venv`` link) under this same load generator, so two versions
of the system are compared with nothing else changed.
Every loop is bounded in count and time; only loopback addresses are used.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import gc
import json
import os
import re
import resource
import signal
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
import uvloop

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), *(str(REPO / "services" / s) for s in ("tally", "review", "intake"))]
sys.path.append(str(REPO / "bench"))

from loadgen import Conn  # noqa: E402  (one keep-alive connection per client, through aiohttp)
from province import REASON_NOTES, REASONS, Province, Shape  # noqa: E402

from shared.auth import mint_token  # noqa: E402
from shared.settings import DEV_JWT_SECRET  # noqa: E402
from shared.topology import QUEUES, queue_name  # noqa: E402

SERVICES = ("intake", "review", "tally", "awards")
PG_DSN = os.environ.get("TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
TITLE_INDEX = re.compile(r"\(số (\d+)\)$")


def token(roles: str, unit: str, sub: str) -> str:
    return mint_token(os.environ.get("JWT_SECRET") or DEV_JWT_SECRET, sub=sub, roles=[roles], unit=unit,
                      ttl_s=6 * 3600)  # fmt: skip


def log(msg: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def commit() -> str:
    import subprocess

    out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()  # fmt: skip
    return out.stdout.strip() + (" (with uncommitted changes)" if dirty else "")


def command_line() -> str:
    """The command line as typed from the repository (the interpreter relative to it)."""
    return " ".join([os.path.relpath(sys.executable, REPO), *sys.argv])


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def closed_loop(conns: list[Conn], path: str, body: Callable[[], bytes], seconds: float) -> dict[str, float]:
    ok = errors = 0
    stop = time.perf_counter() + seconds

    async def run(conn: Conn) -> None:
        nonlocal ok, errors
        while time.perf_counter() < stop:
            status, _ = await conn.request("POST", path, body())
            if 200 <= status < 300:
                ok += 1
            else:
                errors += 1

    start = time.perf_counter()
    await asyncio.gather(*(run(c) for c in conns))
    return {"rps": ok / (time.perf_counter() - start), "errors": errors, "answered": ok + errors}


async def open_loop(conns: list[Conn], path: str, body: Callable[[], bytes], rate: float, seconds: float) -> dict:
    """Requests on a fixed schedule over a pool opened beforehand; latency from each scheduled send time."""
    idle: asyncio.Queue[Conn] = asyncio.Queue()
    for c in conns:
        idle.put_nowait(c)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    total = int(rate * seconds)
    start = time.perf_counter()

    async def one(scheduled: float, payload: bytes) -> None:
        conn = await idle.get()
        try:
            status, _ = await conn.request("POST", path, payload)
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            status = 599
        finally:
            idle.put_nowait(conn)
        latencies.append(time.perf_counter() - scheduled)
        statuses[status] = statuses.get(status, 0) + 1

    tasks = []
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(scheduled, body())))
    sent_in = time.perf_counter() - start
    await asyncio.wait_for(asyncio.gather(*tasks), 120)
    elapsed = time.perf_counter() - start
    accepted = sum(n for s, n in statuses.items() if 200 <= s < 300)
    return {"offered": rate, "sent": total, "send_s": round(sent_in, 2), "accepted": accepted,
            "achieved": accepted / elapsed, "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "p50_ms": percentile(latencies, 0.5) * 1000, "p99_ms": percentile(latencies, 0.99) * 1000}  # fmt: skip


# ---- (a): the bare FastAPI echo ---------------------------------------------------------------------


def echo_app() -> Any:
    from fastapi import FastAPI

    app = FastAPI()

    @app.post("/echo")
    async def echo(body: dict[str, Any]) -> dict[str, Any]:
        return body

    return app


async def measure_echo(body: Callable[[], bytes], seconds: float, concurrency: int = 64) -> dict[str, float]:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--serve-echo", str(port), cwd=REPO, stdout=asyncio.subprocess.DEVNULL
    )
    try:
        await wait_port(port, proc, 30)
        conns = [Conn(port) for _ in range(concurrency)]
        await closed_loop(conns, "/echo", body, 1.0)  # warm-up
        result = await closed_loop(conns, "/echo", body, seconds)
        for c in conns:
            c.close()
        return result
    finally:
        await stop_process(proc)


async def wait_port(port: int, proc: asyncio.subprocess.Process, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while True:
        if proc.returncode is not None:
            raise RuntimeError(f"process on port {port} exited with {proc.returncode}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def stop_process(proc: asyncio.subprocess.Process, limit_s: float = 20) -> None:
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), limit_s)
        except TimeoutError:
            proc.kill()
            await proc.wait()


# ---- the system, started as `make run-distributed` starts it ------------------------------------------


@dataclass
class System:
    ports: dict[str, int]
    db_prefix: str
    amqp_prefix: str
    proc: asyncio.subprocess.Process
    logfile: Path
    pids: dict[str, int] = field(default_factory=dict)

    @property
    def gateway(self) -> int:
        return self.ports["gateway"]

    def dsn(self, service: str) -> str:
        return PG_DSN.rsplit("/", 1)[0] + f"/{self.db_prefix}{service}"

    def database(self, service: str) -> str:
        return f"{self.db_prefix}{service}"


def peak_memory(system: System) -> dict[str, int]:
    """Each service process's peak resident memory so far (VmHWM, KiB), from /proc."""
    peaks: dict[str, int] = {}
    for name, pid in system.pids.items():
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peaks[name] = int(line.split()[1])
    return peaks


def children_of(pid: int) -> dict[str, int]:
    """The service processes the script started: ``sangkien serve <name>`` among its children."""
    found: dict[str, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            if int(stat[stat.rindex(")") + 2 :].split()[1]) != pid:
                continue
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if b"serve" in argv:
            found[argv[argv.index(b"serve") + 1].decode()] = int(entry)
    return found


@contextlib.asynccontextmanager
async def running_system(workdir: Path, services_from: Path = REPO) -> AsyncIterator[System]:
    """scripts/run-distributed.sh with fresh databases, prefix and ports; everything removed afterwards.

    ``services_from`` is the checkout whose five services run (its own script, modules first on the path): the
    same load generator and measurement then compare two versions of the system, and nothing else.
    """
    import asyncpg

    tag = uuid.uuid4().hex[:8]
    ports = {name: free_port() for name in ("gateway", *SERVICES)}
    db_prefix, prefix = f"skbench_{tag}_", f"skbench.{tag}."
    env = {
        **os.environ,
        "BIN": str(Path(sys.executable).parent),
        "DB_PREFIX": db_prefix,
        "AMQP_PREFIX": prefix,
        "AMQP_URL": AMQP_URL,
        **{f"{name.upper()}_PORT": str(port) for name, port in ports.items()},
        # Out of the way: the bench's few accounts send thousands of requests a second.
        "RATE_ACCOUNT_PER_S": "1000000",
        "RATE_ACCOUNT_BURST": "1000000",
        "RATE_IP_PER_S": "1000000",
        "RATE_IP_BURST": "1000000",
        "RATE_LIMIT_KEY_PREFIX": f"sk:bench:{tag}:",
    }
    if services_from != REPO:
        env["PYTHONPATH"] = os.pathsep.join(
            [str(services_from), *(str(services_from / "services" / s) for s in (*SERVICES, "gateway"))]
        )
    logfile = workdir / f"pipeline-{tag}.log"
    out = logfile.open("wb")
    proc = await asyncio.create_subprocess_exec(
        "bash", str(services_from / "scripts" / "run-distributed.sh"), cwd=services_from, env=env, stdout=out,
        stderr=out, start_new_session=True,
    )  # fmt: skip
    system = System(ports, db_prefix, prefix, proc, logfile)
    try:
        async with asyncio.timeout(120):
            for name in ("gateway", *SERVICES):
                await wait_healthy(ports[name], proc)
        system.pids = children_of(proc.pid)
        if set(system.pids) != {"gateway", *SERVICES}:
            raise RuntimeError(f"service processes not found: {system.pids}")
        yield system
    except BaseException:
        print(logfile.read_text(errors="replace")[-6000:], file=sys.stderr)
        raise
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)  # the script's trap stops the five processes
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                os.killpg(proc.pid, signal.SIGKILL)  # the group the bench started, and nothing else
                await proc.wait()
        out.close()
        admin = await asyncpg.connect(PG_DSN)
        try:
            for service in SERVICES:
                await admin.execute(f'DROP DATABASE IF EXISTS "{db_prefix}{service}" WITH (FORCE)')
        finally:
            await admin.close()
        from shared.bus.rabbitmq import RabbitMQBus

        await RabbitMQBus(AMQP_URL, prefix=prefix, topology=QUEUES).delete_topology()
        if not os.environ.get("PIPELINE_KEEP_LOG"):
            logfile.unlink(missing_ok=True)


async def wait_healthy(port: int, proc: asyncio.subprocess.Process) -> None:
    conn = Conn(port, timeout_s=5.0)
    for _ in range(1200):
        if proc.returncode is not None:
            raise RuntimeError(f"run-distributed.sh exited with {proc.returncode}")
        with contextlib.suppress(OSError, asyncio.IncompleteReadError, ValueError, IndexError, TimeoutError):
            status, _ = await conn.request("GET", "/health")
            if status == 200:
                conn.close()
                return
        conn.close()
        await asyncio.sleep(0.1)
    raise RuntimeError(f"port {port} not healthy in time")


# ---- measurement: CPU per process group, queue depths, outboxes ---------------------------------------


async def cancel(task: asyncio.Task[Any] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def proc_cpu(pid: int) -> float | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (all cores), from /proc/stat."""
    parts = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in parts[:8])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


SHARED_PG = "PostgreSQL, shared processes"
OTHER_PG = "PostgreSQL, other databases (not counted)"
MONITOR_PG = "PostgreSQL, the bench's monitor (not counted)"
RABBIT = "RabbitMQ (beam.smp)"
LOADGEN = "load generator (bench)"
UNCOUNTED = (OTHER_PG, MONITOR_PG)
SYSTEM_TOTAL = "total without the load generator"
# Each service's, as sangkien_<service>_<counter>{service="<service>",type="..."}.
EVENT_COUNTERS = ("events_published_total", "events_consumed_total", "events_dead_lettered_total")


class CpuMeter:
    """Every second: pg_stat_activity maps backends to databases; /proc gives each tracked pid's utime+stime.
    A pid first seen at the meter's first poll counts from then; one seen later was born since, and counts
    from 0. A process that ended keeps what was read at its last poll (at most a second is lost)."""

    def __init__(self, system: System) -> None:
        self.system = system
        self.group: dict[int, str] = {pid: name for name, pid in system.pids.items()}
        self.dbs = {system.database(s): f"{s}'s PostgreSQL" for s in SERVICES}
        self.last: dict[int, float] = {}
        self.acc: dict[str, float] = {}
        self.started = False
        self.conn: Any = None
        self.monitor_pid = 0
        self.task: asyncio.Task[None] | None = None
        self.lock = asyncio.Lock()
        self.history: list[tuple[float, dict[str, float]]] = []  # (monotonic time, ``acc``) at every poll

    async def __aenter__(self) -> CpuMeter:
        import asyncpg

        self.conn = await asyncpg.connect(PG_DSN)
        self.monitor_pid = await self.conn.fetchval("SELECT pg_backend_pid()")
        await self.poll()
        self.started = True
        self.task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await cancel(self.task)
        await self.conn.close()

    async def _run(self) -> None:
        for _ in range(10**6):  # bounded: about 11 days at one poll a second
            await asyncio.sleep(1.0)
            await self.poll()

    async def poll(self) -> None:
        async with self.lock:  # the background poller and a snapshot share the connection
            await self._poll()

    async def _poll(self) -> None:
        rows = await self.conn.fetch("SELECT pid, datname, backend_type FROM pg_stat_activity")
        for pid, datname, _backend_type in rows:
            if pid in self.group:
                continue
            if pid == self.monitor_pid:
                self.group[pid] = MONITOR_PG
            elif datname in self.dbs:
                self.group[pid] = self.dbs[datname]
            elif datname is None:
                self.group[pid] = SHARED_PG
            else:
                self.group[pid] = OTHER_PG
        for entry in os.listdir("/proc"):  # the postmaster and processes pg_stat_activity does not list
            if entry.isdigit() and int(entry) not in self.group:
                try:
                    with open(f"/proc/{entry}/comm") as f:  # noqa: ASYNC230 (procfs: no disk)
                        comm = f.read().strip()
                except OSError:
                    continue
                if comm == "postgres" or comm.startswith("postgres:"):
                    self.group[int(entry)] = SHARED_PG
                elif comm.startswith("beam"):
                    self.group[int(entry)] = RABBIT
        for pid, group in self.group.items():
            now = proc_cpu(pid)
            if now is None:
                continue
            before = self.last.get(pid, 0.0 if self.started else now)
            self.acc[group] = self.acc.get(group, 0.0) + now - before
            self.last[pid] = now
        ru = resource.getrusage(resource.RUSAGE_SELF)
        self.acc[LOADGEN] = ru.ru_utime + ru.ru_stime
        self.acc["machine"] = machine_busy()
        self.history.append((time.monotonic(), dict(self.acc)))

    def timeline(self, since: float, until: float) -> list[tuple[float, dict[str, float]]]:
        """Per interval between polls within [since, until]: its end (s after ``since``) and each group's share
        of a core over it (1.0 = one core busy the whole interval)."""
        polls = [(t, acc) for t, acc in self.history if since <= t <= until]
        out = []
        for (t0, a0), (t1, a1) in zip(polls, polls[1:], strict=False):
            out.append((t1 - since, {k: (v - a0.get(k, 0.0)) / (t1 - t0) for k, v in a1.items()}))
        return out

    async def snapshot(self) -> dict[str, float]:
        await self.poll()
        return dict(self.acc)


def cpu_per_item(start: dict[str, float], end: dict[str, float], items: int) -> dict[str, float]:
    """µs of CPU per initiative by group, the counted total, and the rest of the machine."""
    spent = {k: end.get(k, 0.0) - start.get(k, 0.0) for k in end}
    machine = spent.pop("machine", 0.0)
    order = ["gateway", *SERVICES, *(f"{s}'s PostgreSQL" for s in SERVICES), SHARED_PG, RABBIT, LOADGEN]
    out = {k: spent.get(k, 0.0) / items * 1e6 for k in order}
    out["total"] = sum(out.values())
    # The figure ("machine CPU per initiative over its whole life") is the system's: without the bench's own.
    out[SYSTEM_TOTAL] = out["total"] - out[LOADGEN]
    for k in UNCOUNTED:
        out[k] = spent.get(k, 0.0) / items * 1e6
    counted = sum(spent.get(k, 0.0) for k in order) + sum(spent.get(k, 0.0) for k in UNCOUNTED)
    out["other processes on the machine (not counted)"] = max(0.0, machine - counted) / items * 1e6
    return out


class Depths:
    """Every second, for each service: its queue's depth (messages *ready*, from a passive declare), the events it
    is behind (published to its queue by the producers' ``sangkien_<producer>_events_published_total`` less its
    own ``sangkien_<service>_events_consumed_total`` and ``..._dead_lettered_total``, from each service's /metrics:
    this counts the messages delivered to the consumer but not yet acknowledged too, which ``message_count`` does
    not) and whether its outbox holds anything."""

    def __init__(self, system: System) -> None:
        self.system = system
        self.samples: list[tuple[float, dict[str, int]]] = []
        self.task: asyncio.Task[None] | None = None
        self.connection: Any = None
        self.pg: dict[str, Any] = {}
        self.metrics = {s: Conn(system.ports[s]) for s in SERVICES}
        self.lock = asyncio.Lock()
        self.stopping = False

    async def __aenter__(self) -> Depths:
        import aio_pika
        import asyncpg

        self.connection = await aio_pika.connect(AMQP_URL)
        for s in SERVICES:
            self.pg[s] = await asyncpg.connect(self.system.dsn(s))
        self.task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        # A cancellation that lands inside aio-pika's channel close can be swallowed there, and the sampler went
        # on forever (the bench hung after its report was ready): the loop also stops on this flag.
        self.stopping = True
        await cancel(self.task)
        await self.connection.close()
        for c in self.pg.values():
            await c.close()
        for m in self.metrics.values():
            m.close()

    async def depths(self) -> dict[str, int]:
        channel = await self.connection.channel()
        try:
            out = {}
            for s in SERVICES:
                queue = await channel.declare_queue(queue_name(s, self.system.amqp_prefix), passive=True)
                out[s] = int(queue.declaration_result.message_count or 0)
            return out
        finally:
            await channel.close()

    async def behind(self) -> dict[str, int]:
        published: dict[str, float] = {}
        handled: dict[str, dict[str, float]] = {}
        for s, conn in self.metrics.items():
            _, text = await conn.request("GET", "/metrics")
            handled[s] = {}
            for line in text.decode().splitlines():
                name, _, rest = line.partition(f'{{service="{s}",type="')
                counter = name.removeprefix(f"sangkien_{s}_")
                if counter not in EVENT_COUNTERS:
                    continue
                etype, _, value = rest.partition('"} ')
                if counter == "events_published_total":
                    published[etype] = published.get(etype, 0.0) + float(value)
                else:
                    handled[s][etype] = handled[s].get(etype, 0.0) + float(value)
        out = {}
        for s in SERVICES:
            # Only the types the service has handled at least once: a queue also receives types the service
            # does not handle, which its dispatcher acknowledges without counting (the tolerant reader).
            types = {key.rsplit(".", 1)[0] for key in QUEUES[s]} & set(handled[s])  # "x.y.v1" -> "x.y"
            out[s] = max(0, int(sum(published.get(t, 0.0) - handled[s][t] for t in types)))
        return out

    async def outboxes(self) -> dict[str, bool]:
        # The primary key's first entry, not count(*) (deleted rows stay until a vacuum; bench/intake.py).
        return {s: await c.fetchval("SELECT min(id) FROM outbox") is not None for s, c in self.pg.items()}

    async def sample(self) -> dict[str, int]:
        async with self.lock:  # the sampler and a waiter share the connections
            d = await self.depths()
            d |= {f"{s} behind": v for s, v in (await self.behind()).items()}
            d |= {f"{s} outbox": int(v) for s, v in (await self.outboxes()).items()}
            return d

    async def _run(self) -> None:
        for _ in range(10**6):
            if self.stopping:
                return
            t = time.monotonic()
            with contextlib.suppress(Exception):
                self.samples.append((t, await self.sample()))
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - t)))

    async def drained(self) -> bool:
        return not any((await self.sample()).values())

    async def wait_drained(self, limit_s: float, settle: int = 2) -> float | None:
        """Seconds until every queue, consumer and outbox reads 0 ``settle`` times in a row, or None after
        ``limit_s``."""
        start = time.monotonic()
        zero = 0
        while time.monotonic() - start < limit_s:
            zero = zero + 1 if await self.drained() else 0
            if zero >= settle:
                return time.monotonic() - start
            await asyncio.sleep(0.5)
        return None

    def peak(self, since: float, until: float) -> dict[str, int]:
        out: dict[str, int] = {}
        for t, d in self.samples:
            if since <= t <= until:
                for k, v in d.items():
                    out[k] = max(out.get(k, 0), v)
        return out


# ---- the plan, through the gateway as an operator -------------------------------------------------------


async def load_plan(system: System, provinces: list[Province], today: date, national: list[dict] | None = None) -> None:
    op = Conn(system.gateway, token("operator", "VN", "bench-operator"))
    units = (national or []) + [u for p in provinces for u in p.units]
    for i in range(0, len(units), 20_000):  # parents come before their children
        status, body = await op.json("PUT", "/api/v1/units", units[i : i + 20_000])
        if status != 200:
            raise RuntimeError(f"PUT /units: {status} {body}")
    await put_campaign(op, provinces[0], today, "P1")
    rows = [r for p in provinces for r in p.quota_rows()]
    # 10,000 a request, each well within the gateway's 15 s at national size (docs/benchmarks.md, "At a quarter").
    for i in range(0, len(rows), 10_000):
        status, body = await op.json("PUT", f"/api/v1/campaigns/{provinces[0].campaign}/quotas", rows[i : i + 10_000])
        if status != 200:
            raise RuntimeError(f"PUT /quotas: {status} {body}")
    op.close()
    await wait_plan(system, len(units), provinces[0], today, "P1")


async def put_campaign(op: Conn, province: Province, today: date, phase: str) -> None:
    status, body = await op.json("PUT", f"/api/v1/campaigns/{province.campaign}", province.campaign_body(today, phase))
    if status != 200:
        raise RuntimeError(f"PUT /campaigns: {status} {body}")


async def wait_plan(system: System, n_units: int, province: Province, today: date, phase: str) -> None:
    """Until intake and review hold every unit and intake has the campaign with ``phase`` open today (read in
    their databases), then until every queue and outbox is empty."""
    import asyncpg

    phases = province.campaign_body(today, phase)["phases"]
    opens = next(p["opens_on"] for p in phases if p["code"] == phase)
    conns = {s: await asyncpg.connect(system.dsn(s)) for s in ("intake", "review")}
    try:
        for _ in range(3000):
            n_intake = await conns["intake"].fetchval("SELECT count(*) FROM unit_replica")
            n_review = await conns["review"].fetchval("SELECT count(*) FROM unit_replica")
            row = await conns["intake"].fetchval(
                "SELECT phases FROM campaign_replica WHERE code = $1", province.campaign
            )
            got = json.loads(row) if isinstance(row, str) else row
            if n_intake >= n_units and n_review >= n_units and got:
                if any(p["code"] == phase and str(p["opens_on"]) == opens for p in got):
                    return
            await asyncio.sleep(0.2)
        raise RuntimeError("the plan did not reach intake and review in 10 minutes")
    finally:
        for c in conns.values():
            await c.close()


# ---- (b): batch entry and scripted reviewers ----------------------------------------------------------


@dataclass
class Progress:
    expected: int
    entered: int = 0
    refused: int = 0
    decided: int = 0
    decision_refusals: int = 0
    claims: int = 0
    empty_claims: int = 0
    first_submission: float = 0.0
    entry_done: float = 0.0
    all_decided: float = 0.0
    errors: list[str] = field(default_factory=list)


def decision_for(title: str, province: Province) -> dict[str, Any]:
    """The generator's intended decision, from the index its title carries ("… (số 123)")."""
    m = TITLE_INDEX.search(title)
    if m is None:
        raise ValueError(f"title without an index: {title!r}")
    i = int(m.group(1)) - 1
    if province.outcomes[i]:
        return {"outcome": "valid"}
    reason = REASONS[i % len(REASONS)]
    return {"outcome": "invalid", "reason": reason, "note": REASON_NOTES[reason]}


async def enter_batches(
    system: System, spans: Iterable[tuple[Province, int, int]], unit: str, clients: int, progress: Progress,
    size: int = 1000,
) -> None:  # fmt: skip
    """Items ``a``..``b`` of each span's generator, 1,000 a request (intake's limit), by ``clients`` support
    accounts of ``unit`` at once, each on its own keep-alive connection."""
    queue: asyncio.Queue[tuple[Province, int, int]] = asyncio.Queue()
    for province, start, stop in spans:
        for i in range(start, stop, size):
            queue.put_nowait((province, i, min(stop, i + size)))

    async def client(n: int) -> None:
        conn = Conn(system.gateway, token("support", unit, f"bench-support-{unit}-{n}"))
        try:
            while not queue.empty():
                province, a, b = queue.get_nowait()
                body = b'{"items":[' + b",".join(orjson.dumps(province.body(it)) for it in province.items(a, b)) + b"]}"
                if not progress.first_submission:
                    progress.first_submission = time.monotonic()
                for attempt in range(5):
                    try:
                        status, data = await conn.request("POST", "/api/v1/initiatives/batch", body)
                        break
                    except (asyncio.IncompleteReadError, ConnectionError, TimeoutError) as exc:
                        if attempt == 4:
                            raise
                        progress.errors.append(f"batch {a}: {exc!r}, retried")
                if status != 200:
                    progress.errors.append(f"batch {a}: {status} {data[:300]!r}")
                    progress.refused += b - a
                    continue
                result = orjson.loads(data)
                progress.entered += result["accepted"]
                if result["refused"]:
                    progress.refused += result["refused"]
                    first = next(r for r in result["items"] if "error" in r)
                    progress.errors.append(f"batch {a}: {result['refused']} refused, e.g. {first}")
                    log(progress.errors[-1][:500])
        finally:
            conn.close()

    await asyncio.gather(*(client(n) for n in range(clients)))
    progress.entry_done = time.monotonic()


async def reviewers(
    system: System, provinces: list[Province], unit: str, n: int, progress: Progress, limit_s: float, count: int = 50
) -> None:
    """``n`` reviewers of ``unit``'s subtree: claim ``count``, decide them in one batch, until ``expected``
    decisions are accepted (or ``limit_s``)."""
    by_code = {p.shape.code: p for p in provinces}
    deadline = time.monotonic() + limit_s

    def province_of(unit_code: str) -> Province:
        return by_code[unit_code.split("-", 1)[0]]

    async def reviewer(k: int) -> None:
        conn = Conn(system.gateway, token("reviewer", unit, f"bench-reviewer-{k}"))
        idle = 0
        try:
            while progress.decided < progress.expected and time.monotonic() < deadline:
                status, claim = await conn.json("POST", "/api/v1/review/claims", {"count": count})
                progress.claims += 1
                if status != 200:
                    progress.errors.append(f"claim: {status} {claim}")
                    await asyncio.sleep(0.5)
                    continue
                items = claim["items"]
                if not items:  # nothing pending yet: back off (0.25 s doubling to 2 s), claims cost review CPU
                    progress.empty_claims += 1
                    idle = min(idle + 1, 4)
                    await asyncio.sleep(0.25 * 2 ** (idle - 1))
                    continue
                idle = 0
                decisions = [
                    {"initiative_id": it["initiative_id"], **decision_for(it["title"], province_of(it["unit_code"]))}
                    for it in items
                ]
                status, result = await conn.json("POST", "/api/v1/review/decisions/batch", {"decisions": decisions})
                if status != 200:
                    progress.errors.append(f"decisions: {status} {str(result)[:300]}")
                    continue
                progress.decided += result["accepted"]
                if len(items) < count:  # the queue is empty for now: the next claim would likely be too
                    await asyncio.sleep(0.25)
                if result["refused"]:
                    progress.decision_refusals += result["refused"]
                    refusals = [r for r in result["items"] if r["status"] != 200]
                    progress.errors.append(f"decisions refused: {refusals[:2]}")
            if progress.decided >= progress.expected and not progress.all_decided:
                progress.all_decided = time.monotonic()
        finally:
            conn.close()

    await asyncio.gather(*(reviewer(k) for k in range(n)))


async def tally_figures(conn: Conn, unit: str, campaign: str, phase: str | None = None) -> dict[str, Any]:
    path = f"/api/v1/tally/units/{unit}?campaign={campaign}" + (f"&phase={phase}" if phase else "")
    status, body = await conn.json("GET", path)
    if status != 200:
        raise RuntimeError(f"GET {path}: {status} {body}")
    return body


async def wait_counted(system: System, unit: str, campaign: str, submitted: int, decided: int, limit_s: float) -> float:
    """Poll tally's figures of ``unit`` through the gateway (twice a second) until it counts ``submitted``
    initiatives and ``decided`` decisions; the time it first did."""
    conn = Conn(system.gateway, token("operator", "VN", "bench-watcher"))
    try:
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            f = (await tally_figures(conn, unit, campaign))["figures"]
            if f["submitted"] >= submitted and f["valid"] + f["invalid"] >= decided:
                return time.monotonic()
            await asyncio.sleep(0.5)
        raise TimeoutError(f"tally did not count {submitted} submitted / {decided} decided in {limit_s:.0f} s: {f}")
    finally:
        conn.close()


async def enter_and_review(
    system: System, provinces: list[Province], entry: Callable[[], Awaitable[None]], unit: str,
    opts: argparse.Namespace, progress: Progress, counted: tuple[int, int],
) -> float:  # fmt: skip
    """``entry`` (batch entry) with the reviewers of ``unit`` working meanwhile, until tally counts ``counted``
    (submitted, decided) at ``unit``; answers the time tally first did."""
    limit = opts.limit_s
    review_task = asyncio.create_task(reviewers(system, provinces, unit, opts.reviewers, progress, limit))
    try:
        await entry()
    except BaseException:
        await cancel(review_task)
        raise
    if progress.refused:  # the reviewers and tally then wait only for what was accepted
        log(f"warning: {progress.refused} initiatives refused at entry")
        progress.expected -= progress.refused
        counted = (counted[0] - progress.refused, counted[1] - progress.refused)
    await review_task
    if progress.decided < progress.expected:
        raise RuntimeError(f"reviewers decided {progress.decided} of {progress.expected} in {limit:.0f} s")
    return await wait_counted(system, unit, provinces[0].campaign, *counted, limit)


# ---- the run -------------------------------------------------------------------------------------------


def single_bodies(province: Province, start: int) -> Callable[[], bytes]:
    items = province.items(start)

    def body() -> bytes:
        return orjson.dumps(province.body(next(items)))

    return body


def table(rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v:>12}" for k, v in rows)


TIMELINE_CPU = ("gateway", *SERVICES, "PostgreSQL", RABBIT, LOADGEN, "machine")
TIMELINE_DEPTHS = ("review behind", "tally behind", "intake behind", "awards behind")


def timeline(meter: CpuMeter, depths: Depths, since: float, until: float) -> list[dict[str, float]]:
    """(b) second by second: each process's share of a core (every service's PostgreSQL backends and the
    shared ones together) and the consumers' lag, to see which process bounds the run when."""
    rows = []
    sampled_at = [t for t, _ in depths.samples]  # in time order
    for at, shares in meter.timeline(since, until):
        shares["PostgreSQL"] = sum(v for g, v in shares.items() if g.endswith("'s PostgreSQL") or g == SHARED_PG)
        row = {"s": round(at, 1)} | {k: round(shares.get(k, 0.0), 2) for k in TIMELINE_CPU}
        # The consumers' lag at the interval's end: the last depth sample taken by then.
        last = bisect.bisect_right(sampled_at, since + at) - 1
        row |= {k: depths.samples[last][1].get(k, 0) if last >= 0 else 0 for k in TIMELINE_DEPTHS}
        rows.append(row)
    return rows


def timeline_table(rows: list[dict[str, float]]) -> str:
    keys = ["s", *TIMELINE_CPU, *TIMELINE_DEPTHS]
    names = [k.replace(" (beam.smp)", "").replace(" (bench)", "") for k in keys]
    lines = ["  ".join(f"{n:>13}" for n in names)]
    lines += ["  ".join(f"{row[k]:>13,}" for k in keys) for row in rows]
    return "\n".join(lines)


def cpu_table(cpu: dict[str, float]) -> str:
    return table([(k, f"{v:,.0f}") for k, v in cpu.items()])


async def main(opts: argparse.Namespace) -> dict[str, Any]:
    gc.disable()
    rates = [float(r) for r in opts.rates.split(",") if r]
    shape = Shape().scaled(opts.n / Shape().submissions)
    extra = int(sum(rates) * opts.step_seconds) + 1000  # the single submissions of (c) come after (b)'s
    shape = Shape(**{**shape.__dict__, "submissions": opts.n + extra,
                     "valid": round(opts.valid * (opts.n + extra)), "p1_share": 1.0})  # fmt: skip
    province = Province(shape)
    code = shape.code
    report: dict[str, Any] = {
        "command": command_line(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit(),
        "load_before": loadavg(),
        "load_generator": "aiohttp, one keep-alive connection per client (bench/loadgen.py Conn), cyclic GC off",
        "shape": {"grassroots": shape.grassroots, "members": shape.members, "districts": shape.districts},
    }
    log(f"province: {shape.grassroots} grassroots under {shape.districts} districts, {shape.members} members")
    sample = single_bodies(province, shape.submissions - 1000)
    fixed = sample()
    log("(a) bare FastAPI echo")
    a = await measure_echo(lambda: fixed, opts.echo_seconds)
    report["a"] = a
    log(f"(a) {a['rps']:.0f} requests/s")
    workdir = Path(os.environ.get("TMPDIR", "/tmp"))
    today = date.today()
    services_from = opts.services_from or REPO
    report["services_from"] = str(services_from)
    async with running_system(workdir, services_from) as system:
        log(f"system up: ports {system.ports}, databases {system.db_prefix}*, prefix {system.amqp_prefix}")
        report["db_prefix"], report["amqp_prefix"] = system.db_prefix, system.amqp_prefix
        await load_plan(system, [province], today)
        async with Depths(system) as depths, CpuMeter(system) as meter:
            if await depths.wait_drained(120) is None:
                log("warning: queues not empty after loading the plan")
            # (b)
            log(f"(b) {opts.n} initiatives by batch, {opts.reviewers} reviewers")
            progress = Progress(expected=opts.n)
            cpu0 = await meter.snapshot()
            t_load0 = time.monotonic()
            spans = [(province, 0, opts.n)]
            t_counted = await enter_and_review(
                system,
                [province],
                lambda: enter_batches(system, spans, code, opts.entry_clients, progress),
                code,
                opts,
                progress,
                (opts.n, opts.n),
            )
            t0 = progress.first_submission
            elapsed = max(t_counted, progress.all_decided) - t0
            drain = await depths.wait_drained(opts.drain_limit_s)
            cpu1 = await meter.snapshot()
            t_load1 = time.monotonic()
            b = {
                "n": opts.n,
                "entered": progress.entered,
                "refused": progress.refused,
                "decided": progress.decided,
                "decision_refusals": progress.decision_refusals,
                "claims": progress.claims,
                "empty_claims": progress.empty_claims,
                "entry_s": round(progress.entry_done - t0, 2),
                "all_decided_s": round(progress.all_decided - t0, 2),
                "tally_counted_s": round(t_counted - t0, 2),
                "end_to_end_s": round(elapsed, 2),
                "initiatives_per_s": opts.n / elapsed,
                "ratio_to_a": opts.n / elapsed / a["rps"],
                "drained_after_s": None if drain is None else round(drain, 1),
                "peak_depths": depths.peak(t_load0, t_load1),
                "errors": progress.errors[:20],
                "cpu_us_per_initiative": cpu_per_item(cpu0, cpu1, opts.n),
                "load_after": loadavg(),
            }
            if opts.timeline:
                b["timeline"] = timeline(meter, depths, t0, t_load1)
            report["b"] = b
            log(f"(b) {b['initiatives_per_s']:.0f} initiatives/s end to end ({elapsed:.1f} s), "
                f"drained {b['drained_after_s']} s later; errors {len(progress.errors)}")  # fmt: skip
            # (c)
            report["c"] = await single_steps(system, province, depths, meter, rates, opts, opts.n)
    report["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    report["ok"] = not (b["refused"] or b["decision_refusals"] or b["entered"] != opts.n)
    report["load_after"] = loadavg()
    print_report(report)
    if opts.json:
        Path(opts.json).write_text(json.dumps(report, ensure_ascii=False, indent=2, default=str))  # noqa: ASYNC240
    return report


async def single_steps(
    system: System, province: Province, depths: Depths, meter: CpuMeter, rates: list[float],
    opts: argparse.Namespace, start: int,
) -> dict[str, Any]:  # fmt: skip
    code = province.shape.code
    body = single_bodies(province, start)
    accounts = [token("support", code, f"bench-single-{k}") for k in range(opts.single_accounts)]
    conns = [Conn(system.gateway, accounts[k % len(accounts)]) for k in range(opts.pool)]
    await asyncio.gather(*(c.connect() for c in conns))
    steps = []
    cpu0 = await meter.snapshot()
    accepted = 0
    for rate in rates:
        log(f"(c) {rate:.0f}/s offered for {opts.step_seconds:.0f} s")
        t_start = time.monotonic()
        r = await open_loop(conns, "/api/v1/initiatives", body, rate, opts.step_seconds)
        t_stop = time.monotonic()
        accepted += r["accepted"]
        back = await depths.wait_drained(10.0, settle=1)
        r["peak_depths"] = depths.peak(t_start, time.monotonic())
        r["back_to_0_s"] = None if back is None else round(back, 1)
        # Bounded: back to 0 within 10 s, (nearly) every request accepted, and the offered rate sustained (an
        # open loop whose answers lag piles its requests up in the HTTP path, which no queue depth shows).
        r["bounded"] = back is not None and r["accepted"] >= 0.99 * r["sent"] and r["achieved"] >= 0.95 * rate
        r["load_after"] = loadavg()
        steps.append(r)
        log(f"(c) {rate:.0f}/s: achieved {r['achieved']:.0f}/s, p99 {r['p99_ms']:.0f} ms, {peaks(r['peak_depths'])}, "
            f"back to 0 in {r['back_to_0_s']} s (now {time.monotonic() - t_stop:.0f} s after the load)")  # fmt: skip
        if not r["bounded"] and not opts.all_rates:
            break
    for c in conns:
        c.close()
    drain = await depths.wait_drained(opts.drain_limit_s)
    cpu1 = await meter.snapshot()
    bounded = [s["offered"] for s in steps if s["bounded"]]
    return {
        "steps": steps,
        "highest_bounded_rate": max(bounded) if bounded and steps[0]["bounded"] else None,
        "drained_after_s": None if drain is None else round(drain, 1),
        "accepted": accepted,
        "cpu_us_per_initiative": cpu_per_item(cpu0, cpu1, max(1, accepted)),
    }


def peaks(d: dict[str, int]) -> str:
    """The highest depths of a span, per service: messages ready / events behind (and outbox, if ever non-empty)."""
    return ", ".join(
        f"{s} {d.get(s, 0):,}/{d.get(f'{s} behind', 0):,}" + (" (outbox)" if d.get(f"{s} outbox") else "")
        for s in SERVICES
    )


def print_report(r: dict[str, Any]) -> None:
    a, b, c = r["a"], r["b"], r["c"]
    print(f"\nbench/pipeline.py, commit {r['commit']}, {r['started']} → {r['finished']}, "
          f"load average {r['load_before']} → {r['load_after']}")  # fmt: skip
    print(f"(a) bare FastAPI echo, 64 connections: {a['rps']:,.0f} requests/s")
    print(f"(b) {b['n']:,} initiatives by batch, reviewed and counted: {b['initiatives_per_s']:,.0f} initiatives/s "
          f"end to end ({b['end_to_end_s']} s: entry {b['entry_s']} s, all decided {b['all_decided_s']} s, "
          f"tally counted all {b['tally_counted_s']} s), ratio to (a) {b['ratio_to_a']:.3f}; "
          f"every queue and outbox drained {b['drained_after_s']} s after that")  # fmt: skip
    print(f"    refused entries {b['refused']}, refused decisions {b['decision_refusals']}, "
          f"claims {b['claims']} ({b['empty_claims']} empty); highest depths (messages ready / events behind) "
          f"{peaks(b['peak_depths'])}")  # fmt: skip
    print("(d) machine CPU per initiative over (b), µs:")
    print(cpu_table(b["cpu_us_per_initiative"]))
    if "timeline" in b:
        print("(b) second by second: cores busy per process (s: since the first submission), then events behind")
        print(timeline_table(b["timeline"]))
    print("(c) single POST /initiatives through the gateway, open loop:")
    for s in c["steps"]:
        print(f"    {s['offered']:>6,.0f}/s offered: {s['achieved']:,.0f}/s accepted, p50 {s['p50_ms']:.0f} ms, "
              f"p99 {s['p99_ms']:.0f} ms, statuses {s['statuses']}, highest depths {peaks(s['peak_depths'])}, "
              f"back to 0 {s['back_to_0_s']} s after the load" if s["bounded"] else
              f"    {s['offered']:>6,.0f}/s offered: {s['achieved']:,.0f}/s accepted, p50 {s['p50_ms']:.0f} ms, "
              f"p99 {s['p99_ms']:.0f} ms, statuses {s['statuses']}, highest depths {peaks(s['peak_depths'])}, "
              f"NOT bounded (queues not back to 0 in 10 s, requests refused, or under 95% of the rate)")  # fmt: skip
    print(f"    highest offered rate sustained with every queue back to 0 within 10 s: {c['highest_bounded_rate']}; "
          f"all drained {c['drained_after_s']} s after the last step")  # fmt: skip
    print(f"(d) machine CPU per accepted single submission over (c), µs ({c['accepted']:,} accepted):")
    print(cpu_table(c["cpu_us_per_initiative"]))


def run_main(coro: Any) -> Any:
    """Run ``coro``; SIGTERM or SIGINT cancels it, so the system is stopped and its databases and queues removed."""

    async def guarded() -> Any:
        task = asyncio.ensure_future(coro)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        return await task

    # On uvloop (installed with uvicorn[standard]), as the services run: the load generator's CPU per request is
    # reported in (d) and should stay small beside the services'.
    return uvloop.run(guarded())


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=20_000, help="initiatives of (b)")
    p.add_argument("--valid", type=float, default=0.85)
    p.add_argument("--reviewers", type=int, default=8)
    p.add_argument("--entry-clients", type=int, default=4)
    p.add_argument("--rates", default="300,600,900,1200,1500", help="offered rates of (c), per second")
    p.add_argument("--step-seconds", type=float, default=10.0)
    p.add_argument("--all-rates", action="store_true", help="go on after a rate whose queues did not return to 0")
    p.add_argument("--pool", type=int, default=256, help="keep-alive connections of (c)")
    p.add_argument(
        "--single-accounts",
        type=int,
        default=8,
        help="support accounts sending (c)'s submissions, spread over its connections",
    )
    p.add_argument("--echo-seconds", type=float, default=5.0)
    p.add_argument("--limit-s", type=float, default=3600.0, help="bound on (b)'s wait for reviewers and tally")
    p.add_argument("--drain-limit-s", type=float, default=600.0, help="bound on each wait for the queues to drain")
    p.add_argument("--json", default=None, help="also write the figures to this file")
    p.add_argument("--timeline", action="store_true", help="(b) second by second: CPU per process, consumers' lag")
    p.add_argument("--services-from", default=None,
                   help="run the services of this checkout (e.g. an older commit's `git archive`) under this load "
                        "generator")  # fmt: skip
    p.add_argument("--serve-echo", type=int, default=0, help=argparse.SUPPRESS)
    return p


if __name__ == "__main__":
    options = parser().parse_args()
    options.services_from = Path(options.services_from).resolve() if options.services_from else None
    if options.serve_echo:
        import uvicorn

        uvicorn.run(echo_app(), host="127.0.0.1", port=options.serve_echo, access_log=False, log_level="warning")
    else:
        sys.exit(0 if run_main(main(options))["ok"] else 1)
