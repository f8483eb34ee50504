"""The fast path over real sockets: the gateway's own HTTP/1.1 client against uvicorn and raw servers."""

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
from gateway.adapters.http1 import ConnectError, Http1Pool, ProtocolError
from gateway.app import create
from gateway.settings import GatewaySettings

from shared.testing import REDIS_URL, auth, running_app, unique

Served = Callable[[FastAPI], contextlib.AbstractAsyncContextManager[str]]  # the ``served`` fixture


def intake_app(seen: list[tuple[str, str, dict[str, str], bytes]], connections: set[tuple[str, int]]) -> FastAPI:
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
        if request.method == "POST":
            return JSONResponse({"got": len(body), "q": request.url.query}, 201, headers={"Location": "/x/1"})
        return JSONResponse({"path": request.url.path, "q": request.url.query})

    return app


@contextlib.asynccontextmanager
async def gateway_over_http(
    served: Served,
    **overrides: object,
) -> AsyncIterator[tuple[httpx.AsyncClient, list[tuple[str, str, dict[str, str], bytes]], set[tuple[str, int]]]]:
    seen: list[tuple[str, str, dict[str, str], bytes]] = []
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
        # the client's encoding of the path reaches the service as it was sent
        r = await client.get("/api/v1/initiatives/a%2Fb/x%20y", headers=headers)
        assert r.status_code == 200
        assert seen[-1][1] == "/api/v1/initiatives/a%2Fb/x%20y"
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


async def test_chunked_responses_are_read_whole(served: Served) -> None:
    async with gateway_over_http(served) as (client, _seen, _connections):
        r = await client.get("/api/v1/initiatives/x/stream", headers=auth("member", "HN"))
        assert r.status_code == 200
        assert r.text == "".join(f'{{"part":{i}}}\n' for i in range(50))
        assert r.headers["etag"] == '"v1"'
        assert r.headers["content-type"] == "application/x-ndjson"


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
        r = await client.get("/api/v1/initiatives/x/slow", headers=h)
        assert r.json()["error"]["details"] == {"service": "intake", "reason": "breaker_open"}
        assert len(seen) == 2


# ---- the client against raw servers: framings and failures uvicorn does not produce -------------

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


async def test_chunked_with_trailers_and_split_writes() -> None:
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

    async with raw_server(handler) as url:
        pool = Http1Pool(url, timeout_s=2, connect_timeout_s=1)
        resp = await pool.request("GET", b"/a", [])
        assert (resp.status, resp.body) == (200, b"hello world")
        await pool.aclose()


async def test_body_to_the_end_of_the_connection_and_connection_close() -> None:
    handler, requests = answering(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it", close_after=True)
    async with raw_server(handler) as url:
        pool = Http1Pool(url, timeout_s=2, connect_timeout_s=1)
        resp = await pool.request("POST", b"/p?q=1", [(b"x-a", b"1")], b"abc")
        assert (resp.status, resp.body, resp.header(b"content-type")) == (200, b"all of it", b"text/plain")
        assert requests[0].startswith(b"POST /p?q=1 HTTP/1.1\r\n")
        assert b"\r\nx-a: 1\r\n" in requests[0] and b"\r\ncontent-length: 3\r\n" in requests[0]
        assert requests[0].endswith(b"\r\n\r\nabc")
        assert pool._open == 0 and pool._idle == []  # not reusable
        await pool.aclose()


async def test_head_and_204_have_no_body_and_keep_the_connection() -> None:
    handler, requests = answering(
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    )
    async with raw_server(handler) as url:
        pool = Http1Pool(url, timeout_s=2, connect_timeout_s=1)
        assert (await pool.request("HEAD", b"/", [])).body == b""
        assert (await pool.request("DELETE", b"/", [])).status == 204
        resp = await pool.request("PUT", b"/", [], b"x")
        assert (resp.status, resp.body) == (200, b"ok")
        assert len(requests) == 3 and pool._open == 1  # all on one connection
        await pool.aclose()


async def test_a_broken_answer_is_an_error_and_the_connection_is_dropped() -> None:
    for response in (
        b"garbage\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ):
        handler, _ = answering(response, close_after=True)
        async with raw_server(handler) as url:
            pool = Http1Pool(url, timeout_s=2, connect_timeout_s=1)
            with pytest.raises(ConnectError):
                await pool.request("GET", b"/", [])
            assert pool._open == 0
            await pool.aclose()
    handler, _ = answering(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nab")
    async with raw_server(handler) as url:
        pool = Http1Pool(url, timeout_s=2, connect_timeout_s=1)
        with pytest.raises(ProtocolError):
            await pool.request("GET", b"/", [])
        await pool.aclose()


async def test_refused_connection_and_bad_targets() -> None:
    pool = Http1Pool("http://127.0.0.1:9", timeout_s=1, connect_timeout_s=0.5)
    with pytest.raises(ConnectError):
        await pool.request("GET", b"/", [])
    with pytest.raises(ValueError):
        await pool.request("GET", b"/a b", [])
    assert pool._open == 0
    with pytest.raises(ValueError):
        Http1Pool("https://example.org", timeout_s=1, connect_timeout_s=1)


async def test_callers_beyond_max_connections_wait_their_turn() -> None:
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
            await asyncio.sleep(0.02)
            active -= 1
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
        writer.close()

    async with raw_server(handler) as url:
        pool = Http1Pool(url, timeout_s=5, connect_timeout_s=1, max_connections=3)
        results = await asyncio.gather(*(pool.request("GET", b"/", []) for _ in range(12)))
        assert [r.body for r in results] == [b"ok"] * 12
        assert most == 3 and pool._open == 3
        # a caller that cannot get a connection in time gets a timeout
        slow = [pool.request("GET", b"/", [], timeout_s=5) for _ in range(3)]
        waiting = asyncio.gather(*slow)
        await asyncio.sleep(0)
        with pytest.raises(TimeoutError):
            await pool.request("GET", b"/", [], timeout_s=0.001)
        await waiting
        await pool.aclose()


async def test_a_request_on_a_kept_alive_connection_the_service_dropped_is_sent_once_more() -> None:
    connections = 0
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        first = connections == 1
        await read_request(reader)
        writer.write(ok)
        await writer.drain()
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            await read_request(reader)
            if not first:
                writer.write(ok)
                await writer.drain()
                await reader.read()
        writer.close()  # the first connection drops its second request unanswered

    async with raw_server(handler) as url:
        pool = Http1Pool(url, timeout_s=2, connect_timeout_s=1)
        assert (await pool.request("POST", b"/", [], b"1")).body == b"ok"
        assert (await pool.request("POST", b"/", [], b"2")).body == b"ok"
        assert connections == 2
        await pool.aclose()


async def test_a_fresh_connection_that_breaks_is_not_retried() -> None:
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))
        writer.close()

    async with raw_server(handler) as url:
        pool = Http1Pool(url, timeout_s=2, connect_timeout_s=1)
        with pytest.raises(ConnectError):
            await pool.request("POST", b"/", [], b"once")
        assert len(seen) == 1 and pool._open == 0
        await pool.aclose()


@pytest.mark.integration
def test_the_fast_path_and_the_rate_limit_connection_run_on_uvloop(served: Served) -> None:
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
