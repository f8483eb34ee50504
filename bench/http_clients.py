"""The client's own CPU per proxied request: pyreqwest (the gateway's), aiohttp's client and httpcore's pool.

    flock /tmp/sangkien-bench.lock .venv/bin/python bench/http_clients.py [--requests 4000] [--rounds 3]

The choice behind gateway/adapters/downstream.py. A tiny ASGI app under uvicorn (one worker, another
process) answers every POST with 201 and a 60-byte JSON body; this process sends the gateway's kind of
request (a 1.5 kB JSON body, bearer token, correlation id) on uvloop, at 1 and at 16 requests in flight,
through each client with a pool of 64 connections, and reports the CPU time of this process alone per
request (the best of ``--rounds``), so the server's cost and the machine's other load stay out of it.
pyreqwest runs hyper on a thread of its own: that thread's CPU is this process's too, so it is counted.
``httpcore, sniffio=None`` repeats httpcore with ``sys.modules["sniffio"] = None`` (the gateway's former
trick: httpcore then skips sniffio's check of the running library on every request).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from importlib.metadata import version
from typing import Any

import aiohttp
import httpcore
import uvloop
import yarl
from pyreqwest.client import ClientBuilder
from pyreqwest.http import Url

BODY = b'{"title":"' + b"x" * 1500 + b'"}'
HEADERS = [
    (b"content-type", b"application/json"),
    (b"authorization", b"Bearer " + b"t" * 300),
    (b"x-correlation-id", b"c" * 32),
]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The downstream: reads the body, answers 201."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"60")]
    await send({"type": "http.response.start", "status": 201, "headers": headers})
    await send({"type": "http.response.body", "body": b'{"id":"' + b"0" * 51 + b'"}'})


def clients(port: int) -> dict[str, tuple[Callable[[], Awaitable[int]], Callable[[], Awaitable[None]]]]:
    pool = httpcore.AsyncConnectionPool(max_connections=64, max_keepalive_connections=64, retries=0)
    core_url = httpcore.URL(scheme=b"http", host=b"127.0.0.1", port=port, target=b"/api/v1/initiatives")
    timeouts = {"timeout": dict.fromkeys(("connect", "read", "write", "pool"), 10.0)}

    async def via_httpcore() -> int:
        resp = await pool.request(b"POST", core_url, headers=HEADERS, content=BODY, extensions=timeouts)
        return resp.status

    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=64, limit_per_host=64),
        timeout=aiohttp.ClientTimeout(total=10),
        skip_auto_headers=("Accept", "Accept-Encoding", "User-Agent", "Content-Type"),
    )
    aio_url = yarl.URL(f"http://127.0.0.1:{port}/api/v1/initiatives", encoded=True)
    aio_headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in HEADERS]

    async def via_aiohttp() -> int:
        async with session.request("POST", aio_url, headers=aio_headers, data=BODY) as resp:
            await resp.read()
            return resp.status

    pyreqwest_client = (
        ClientBuilder().max_connections(64).timeout(timedelta(seconds=10)).http1_lower_case_headers().build()
    )
    pyreqwest_url = Url(f"http://127.0.0.1:{port}/api/v1/initiatives")
    pyreqwest_headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in HEADERS]

    async def via_pyreqwest() -> int:
        request = pyreqwest_client.request("POST", pyreqwest_url).headers(pyreqwest_headers).body_bytes(BODY)
        resp = await request.build().send()
        await resp.bytes()
        return resp.status

    return {
        "pyreqwest": (via_pyreqwest, pyreqwest_client.close),
        "aiohttp": (via_aiohttp, session.close),
        "httpcore": (via_httpcore, pool.aclose),
        "httpcore, sniffio=None": (via_httpcore, pool.aclose),
    }


async def cpu_per_request(send: Callable[[], Awaitable[int]], requests: int, in_flight: int) -> float:
    async def worker(n: int) -> None:
        for _ in range(n):
            if await send() != 201:
                raise RuntimeError("the downstream did not answer 201")

    each = requests // in_flight
    start = time.process_time()
    await asyncio.gather(*(worker(each) for _ in range(in_flight)))
    return (time.process_time() - start) / (each * in_flight) * 1e6


async def main(opts: argparse.Namespace, port: int) -> None:
    made = clients(port)
    print(f"client CPU per request (µs), best of {opts.rounds} rounds of {opts.requests}; pyreqwest "
          f"{version('pyreqwest')}, aiohttp {aiohttp.__version__}, httpcore {httpcore.__version__}")  # fmt: skip
    for name, (send, _) in made.items():
        if "sniffio=None" in name:
            sys.modules["sniffio"] = None  # type: ignore[assignment]
        for in_flight in (1, 16):
            await cpu_per_request(send, 400, in_flight)  # warm-up: connections opened
            best = min([await cpu_per_request(send, opts.requests, in_flight) for _ in range(opts.rounds)])
            print(f"  {name:<24} {in_flight:>2} in flight: {best:6.0f}")
    for _, close in made.values():
        await close()


def serve(port: int) -> subprocess.Popen[bytes]:
    code = f"import uvicorn, runpy; uvicorn.run(runpy.run_path({__file__!r})['app'], port={port}, log_level='warning')"
    proc = subprocess.Popen([sys.executable, "-c", code])
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.1)
    proc.terminate()
    raise RuntimeError("the downstream did not start")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    server = serve(free)
    try:
        uvloop.run(main(options, free))
    finally:
        server.terminate()
        server.wait(10)
