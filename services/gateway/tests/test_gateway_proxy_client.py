"""The fast path over real sockets: pyreqwest's client against uvicorn and raw servers, redis-py against Redis."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
import redis.asyncio as aioredis
import uvloop
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from gateway.adapters.downstream import _MAX_CONNECTIONS, Downstream, DownstreamUnavailable
from gateway.adapters.ratelimit import RateLimiter
from gateway.app import create
from gateway.domain.breaker import CircuitBreaker
from gateway.domain.buckets import Limit
from gateway.metrics import GatewayMetrics
from gateway.settings import GatewaySettings

from shared.http import ApiError
from shared.testing import REDIS_URL, auth, running_app, unique

Served = Callable[[FastAPI], contextlib.AbstractAsyncContextManager[str]]  # the ``served`` fixture
Seen = list[tuple[str, str, dict[str, str], bytes]]
BIG = 3 * 1024 * 1024  # a large answer, written in 64 KiB pieces


def intake_app(seen: Seen, connections: set[tuple[str, int]]) -> FastAPI:
    app = FastAPI()

    @app.api_route("/api/v1/initiatives", methods=["POST", "GET"])
    @app.api_route("/api/v1/initiatives/{rest:path}", methods=["POST", "GET", "PATCH"])
    async def handler(request: Request) -> Response:
        body = await request.body()
        assert request.client is not None
        connections.add((request.client.host, request.client.port))
        seen.append((request.method, request.scope["raw_path"].decode(), dict(request.headers), body))
        if request.url.path.endswith("/slow"):
            await asyncio.sleep(2)
        if request.url.path.endswith("/stream"):

            async def parts() -> AsyncIterator[bytes]:
                for i in range(50):
                    yield f'{{"part":{i}}}\n'.encode()

            return StreamingResponse(parts(), media_type="application/x-ndjson", headers={"ETag": '"v1"'})
        if request.url.path.endswith("/big"):

            async def pieces() -> AsyncIterator[bytes]:
                for i in range(BIG // 65536):
                    yield bytes([65 + i % 26]) * 65536

            return StreamingResponse(pieces(), media_type="application/octet-stream")
        if request.url.path.endswith("/hop"):
            # hop-by-hop and service-private headers: none of them may reach the gateway's caller
            hop = {"Keep-Alive": "timeout=99", "Upgrade": "h2c", "Set-Cookie": "s=1", "X-Internal": "1"}
            return JSONResponse({"ok": True}, headers=hop)
        if request.method == "POST":
            return JSONResponse({"got": len(body), "q": request.url.query}, 201, headers={"Location": "/x/1"})
        return JSONResponse({"path": request.url.path, "q": request.url.query})

    return app


@contextlib.asynccontextmanager
async def gateway_over_http(
    served: Served, **overrides: object
) -> AsyncIterator[tuple[httpx.AsyncClient, Seen, set[tuple[str, int]]]]:
    seen: Seen = []
    connections: set[tuple[str, int]] = set()
    async with served(intake_app(seen, connections)) as url:
        settings = GatewaySettings(**{"redis_url": None, "log_json": False, "intake_url": url, **overrides})
        app = create(settings)
        async with running_app(app) as client:
            yield client, seen, connections


async def test_forward_over_a_kept_alive_connection_keeps_body_headers_and_path(served: Served) -> None:
    async with gateway_over_http(served) as (client, seen, connections):
        headers = {**auth("member", "HN-BD-001"), "X-Correlation-ID": "c-42", "Idempotency-Key": "k"}
        body = '{"title":"Cải tiến"}'.encode()
        for i in range(5):
            r = await client.post(f"/api/v1/initiatives?i={i}", content=body, headers=headers)
            assert r.status_code == 201
            assert r.json() == {"got": len(body), "q": f"i={i}"}
            assert r.headers["location"] == "/x/1"
            assert r.headers["x-correlation-id"] == "c-42"
        assert len(connections) == 1  # one kept-alive connection served all five
        method, raw_path, seen_headers, seen_body = seen[-1]
        assert (method, raw_path, seen_body) == ("POST", "/api/v1/initiatives", body)
        assert seen_headers["authorization"] == headers["Authorization"]
        assert seen_headers["x-correlation-id"] == "c-42"
        assert seen_headers["idempotency-key"] == "k"
        assert seen_headers["x-forwarded-for"] == "127.0.0.1"
        assert seen_headers["content-length"] == str(len(body))
        # the client's encoding of the path reaches the service as it was sent; a GET carries no body framing
        r = await client.get("/api/v1/initiatives/a%2Fb/x%20y", headers=headers)
        assert r.status_code == 200
        assert seen[-1][1] == "/api/v1/initiatives/a%2Fb/x%20y"
        assert "content-length" not in seen[-1][2] and "transfer-encoding" not in seen[-1][2]
        # without one, the gateway makes a correlation id, gives it to the service and echoes it
        made = set()
        for _ in range(2):
            r = await client.post("/api/v1/initiatives", content=b"{}", headers=auth("member", "HN"))
            corr = r.headers["x-correlation-id"]
            assert re.fullmatch(r"[0-9a-f]{32}", corr) and seen[-1][2]["x-correlation-id"] == corr
            made.add(corr)
        assert len(made) == 2
        text = (await client.get("/metrics")).text
        assert 'route="/api/v1/{rest:path}",service="gateway",status="201"} 7.0' in text


async def test_hop_by_hop_and_private_headers_stay_on_their_side(served: Served) -> None:
    async with gateway_over_http(served) as (client, seen, _connections):
        sent = {
            **auth("member", "HN"),
            "Connection": "keep-alive, X-Secret",
            "Keep-Alive": "timeout=5",
            "Upgrade": "websocket",
            "Proxy-Authorization": "Basic eDp5",
            "X-Secret": "1",
            "Cookie": "session=abc",
            "TE": "trailers",
        }
        r = await client.get("/api/v1/initiatives/x/hop", headers=sent)
        assert r.status_code == 200 and r.json() == {"ok": True}
        received = seen[-1][2]
        for name in ("keep-alive", "upgrade", "proxy-authorization", "x-secret", "cookie", "te"):
            assert name not in received, name
        assert received.get("connection", "keep-alive") == "keep-alive"  # the pool's own connection, not the caller's
        for name in ("keep-alive", "upgrade", "set-cookie", "x-internal"):
            assert name not in r.headers, name


async def test_chunked_and_large_answers_are_read_whole(served: Served) -> None:
    async with gateway_over_http(served) as (client, _seen, connections):
        r = await client.get("/api/v1/initiatives/x/stream", headers=auth("member", "HN"))
        assert r.status_code == 200
        assert r.text == "".join(f'{{"part":{i}}}\n' for i in range(50))
        assert r.headers["etag"] == '"v1"'
        assert r.headers["content-type"] == "application/x-ndjson"
        r = await client.get("/api/v1/initiatives/x/big", headers=auth("member", "HN"))
        assert r.status_code == 200 and len(r.content) == BIG
        assert r.headers["content-length"] == str(BIG)
        assert r.content[:1] == b"A" and r.content[-1:] == bytes([65 + (BIG // 65536 - 1) % 26])
        assert len(connections) == 1  # the connection survives both and is reused


async def test_an_idle_connection_closed_by_the_service_is_replaced(served: Served) -> None:
    async with gateway_over_http(served) as (client, _seen, connections):
        h = auth("member", "HN")
        assert (await client.post("/api/v1/initiatives", content=b"{}", headers=h)).status_code == 201
        await asyncio.sleep(1.6)  # uvicorn's keep-alive timeout (1 s here) closes it
        assert (await client.post("/api/v1/initiatives", content=b"{}", headers=h)).status_code == 201
        assert len(connections) == 2


async def test_a_slow_service_times_out_into_503_and_opens_the_breaker(served: Served) -> None:
    async with gateway_over_http(served, downstream_timeouts={"intake": 0.3}, breaker_failures=2) as (client, seen, _):
        h = auth("member", "HN")
        for _ in range(2):
            r = await client.get("/api/v1/initiatives/x/slow", headers=h)
            assert r.status_code == 503
            assert r.json()["error"]["details"] == {"service": "intake", "reason": "timeout"}
            assert r.headers["retry-after"] == "5"
        r = await client.get("/api/v1/initiatives/x/slow", headers=h)
        assert r.json()["error"]["details"] == {"service": "intake", "reason": "breaker_open"}
        assert len(seen) == 2


# ---- the pool against raw servers: answers and failures uvicorn does not produce ----------------

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}"


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return head + await reader.readexactly(int(line.split(b":")[1]))
    return head


def answering(*responses: bytes, close_after: bool = False) -> tuple[Handler, list[bytes]]:
    requests: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for response in responses:
            try:
                requests.append(await read_request(reader))
            except asyncio.IncompleteReadError:
                break
            writer.write(response)
            await writer.drain()
        if close_after:
            writer.close()
        else:
            with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
                await reader.read()
            writer.close()

    return handler, requests


@contextlib.asynccontextmanager
async def downstream(url: str, timeout_s: float = 2.0, failures: int = 5) -> AsyncIterator[Downstream]:
    d = Downstream("intake", url, timeout_s, CircuitBreaker(failures, 30), GatewayMetrics())
    try:
        yield d
    finally:
        await d.aclose()


async def test_chunked_with_trailers_split_writes_and_connection_close_framing() -> None:
    response = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n"
    )

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        for i in range(0, len(response), 7):  # the answer arrives in small pieces
            writer.write(response[i : i + 7])
            await writer.drain()
            await asyncio.sleep(0.001)
        await reader.read()

    async with raw_server(handler) as url, downstream(url) as d:
        resp = await d.forward("GET", b"/a", [], b"")
        assert (resp.status, resp.body) == (200, b"hello world")

    handler, requests = answering(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it", close_after=True)
    async with raw_server(handler) as url, downstream(url) as d:
        resp = await d.forward("POST", b"/p?q=1", [(b"x-a", b"1")], b"abc")
        assert (resp.status, resp.body, resp.header(b"content-type")) == (200, b"all of it", b"text/plain")
        assert requests[0].startswith(b"POST /p?q=1 HTTP/1.1\r\n")
        assert b"\r\nx-a: 1\r\n" in requests[0] and b"\r\ncontent-length: 3\r\n" in requests[0].lower()
        assert requests[0].endswith(b"\r\n\r\nabc")


@pytest.mark.parametrize(
    "answer",
    [
        b"garbage\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        # a smuggling attempt: both framings at once, or two different lengths
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
        b"",  # closed without a word
    ],
)
async def test_a_broken_answer_is_a_503_and_counts_against_the_breaker(answer: bytes) -> None:
    handler, _ = answering(answer, close_after=True)
    async with raw_server(handler) as url, downstream(url, failures=1) as d:
        with pytest.raises(DownstreamUnavailable) as caught:
            await d.forward("GET", b"/", [], b"")
        assert (caught.value.service, caught.value.reason) == ("intake", "connect")
        assert d.breaker.state == "open"


async def test_a_dead_service_is_refused_fast_and_a_silent_one_times_out() -> None:
    async with downstream("http://127.0.0.1:9") as d:
        with pytest.raises(DownstreamUnavailable, match="connect"):
            await d.forward("GET", b"/", [], b"")

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            await reader.read()
        writer.close()

    async with raw_server(silent) as url, downstream(url, timeout_s=0.2) as d:
        start = asyncio.get_running_loop().time()
        with pytest.raises(DownstreamUnavailable, match="timeout"):
            await d.forward("POST", b"/", [], b"{}")
        assert asyncio.get_running_loop().time() - start < 1.0


@pytest.mark.parametrize(
    ("target", "headers"),
    [
        (b"/a b", []),
        (b"/a\r\nX-Injected: 1", []),
        (b"/a", [(b"x-a", b"1\r\nX-Injected: 1")]),
        (b"/a", [(b"x-a\r\nX-Injected", b"1")]),
        (b"/a\x00", []),
        ("/á".encode(), []),
        # paths a URL parser would resolve into another path than the one the gateway routed and checked
        (b"/api/v1/initiatives/../units", []),
        (b"/api/v1/initiatives/%2E%2e/units?x=1", []),
        (b"/api/v1/initiatives/./x", []),
        (b"/api/v1/initiatives/x/..", []),
        (b"/api/v1/initiatives\\..\\units", []),
    ],
)
async def test_header_and_target_injection_is_refused_before_the_wire(
    target: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    handler, requests = answering(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    async with raw_server(handler) as url, downstream(url, failures=1) as d:
        with pytest.raises(ApiError) as caught:
            await d.forward("GET", target, headers, b"")
        assert caught.value.status == 400
        assert d.breaker.state == "closed"  # the caller's fault, not the service's
        await asyncio.sleep(0.05)
        assert requests == []


async def test_a_proxy_in_the_environment_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """Services are reached directly: HTTP_PROXY and friends (set for other tools of a host) are ignored."""
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    handler, requests = answering(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    async with raw_server(handler) as url, downstream(url.replace("127.0.0.1", "localhost")) as d:
        assert (await d.forward("GET", b"/a", [], b"")).body == b"ok"
        assert requests[0].startswith(b"GET /a HTTP/1.1\r\n")
    handler, requests = answering(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    async with raw_server(handler) as url, downstream(url.replace("127.0.0.1", "localhost")) as d:
        assert (await d.request("GET", "/b")).content == b"ok"  # the composed views' client
        assert requests[0].startswith(b"GET /b HTTP/1.1\r\n")


async def test_dots_that_are_not_dot_segments_pass_as_sent() -> None:
    handler, requests = answering(*[b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"] * 3)
    async with raw_server(handler) as url, downstream(url) as d:
        for target in (b"/a.b/c..d/...", b"/x/.hidden", b"/p?q=../..&r=%2e%2e"):
            assert (await d.forward("GET", target, [], b"")).status == 200
        assert [r.split(b" ")[1] for r in requests] == [b"/a.b/c..d/...", b"/x/.hidden", b"/p?q=../..&r=%2e%2e"]


async def test_callers_beyond_the_pool_wait_their_turn() -> None:
    active = 0
    most = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal active, most
        while True:
            try:
                await read_request(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            active += 1
            most = max(most, active)
            await asyncio.sleep(0.01)
            active -= 1
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
        writer.close()

    async with raw_server(handler) as url, downstream(url) as d:
        callers = _MAX_CONNECTIONS + 100
        results = await asyncio.gather(*(d.forward("GET", b"/", [], b"") for _ in range(callers)))
        assert [r.body for r in results] == [b"ok"] * callers
        assert 1 < most <= _MAX_CONNECTIONS  # concurrent, and never more connections than the pool allows


# ---- the rate limit through redis-py -------------------------------------------------------------


async def test_a_silent_redis_falls_back_within_its_timeout_and_is_retried_later() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            await reader.read()
        writer.close()

    metrics = GatewayMetrics()
    async with raw_server(silent) as url:
        client = aioredis.from_url(url.replace("http", "redis"), socket_connect_timeout=0.2, socket_timeout=0.2)
        limiter = RateLimiter(client, prefix="t:", fallback_counter=metrics.ratelimit_fallback, retry_after_s=60)
        checks = [("acct:a", Limit(1, 2))]
        start = asyncio.get_running_loop().time()
        verdicts = await asyncio.gather(*(limiter.take(checks) for _ in range(3)))
        assert asyncio.get_running_loop().time() - start < 1.5
        assert [v.allowed for v in verdicts] == [True, True, False]  # in-process buckets, same limit
        assert limiter.redis_healthy is False
        assert metrics.ratelimit_fallback._value.get() == 3
        await client.aclose()


@pytest.mark.integration
def test_the_fast_path_and_the_rate_limit_run_on_uvloop(served: Served) -> None:
    """uvicorn serves on uvloop when it is installed (as in bench/gateway.py and production)."""
    prefix = unique("sk:test:uvloop:") + ":"

    async def scenario() -> None:
        async with gateway_over_http(served, redis_url=REDIS_URL, rate_limit_key_prefix=prefix) as (client, seen, _):
            for _ in range(3):
                r = await client.post("/api/v1/initiatives", content=b"{}", headers=auth("member", "HN"))
                assert r.status_code == 201
            assert len(seen) == 3
            text = (await client.get("/metrics")).text
            assert (
                'sangkien_gateway_ratelimit_fallback_total{service="gateway"} 0.0' in text
            )  # the buckets were in Redis
        redis = aioredis.from_url(REDIS_URL)
        keys = [k async for k in redis.scan_iter(match=prefix + "*")]
        assert keys
        await redis.delete(*keys)
        await redis.aclose()

    uvloop.run(scenario())
