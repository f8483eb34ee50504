"""The rate limiter's own Redis connection (RESP2, pipelined) against the real Redis and raw servers."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
import redis.asyncio as aioredis
from gateway.adapters.resp import RedisReplyError, RespConnectionError, RespScript, _Parser, encode

from shared.testing import REDIS_URL, unique

pytestmark = pytest.mark.integration


def test_parser_reads_replies_split_anywhere() -> None:
    data = b"*2\r\n:1\r\n$3\r\n0.5\r\n+OK\r\n-NOSCRIPT No matching script\r\n$-1\r\n*0\r\n:-7\r\n"
    for cut in range(len(data) + 1):
        parser = _Parser()
        parser.feed(data[:cut])
        got = parser.replies()
        parser.feed(data[cut:])
        got += parser.replies()
        assert [g if not isinstance(g, RedisReplyError) else str(g) for g in got] == [
            [1, b"0.5"],
            b"OK",
            "NOSCRIPT No matching script",
            None,
            [],
            -7,
        ]
    assert encode(b"GET", "k", 1, 0.5) == b"*4\r\n$3\r\nGET\r\n$1\r\nk\r\n$1\r\n1\r\n$3\r\n0.5\r\n"


async def test_concurrent_calls_get_their_own_replies_and_an_unknown_script_is_sent_whole() -> None:
    # a script Redis has never seen (unique comment): the first EVALSHA meets NOSCRIPT and EVAL follows
    script = RespScript(REDIS_URL, f"-- {unique('s')}\nreturn {{KEYS[1], ARGV[1]}}")
    got = await asyncio.gather(*(script([f"k{i}"], [i]) for i in range(300)))
    assert got == [[f"k{i}".encode(), str(i).encode()] for i in range(300)]
    await script.aclose()


async def test_database_from_the_url_and_errors_from_the_script() -> None:
    key = unique("sk:test:resp:")
    base = REDIS_URL.rsplit("/", 1)[0]
    script = RespScript(f"{base}/3", "redis.call('SET', KEYS[1], ARGV[1]) return 1")
    assert await script([key], [42]) == 1
    check = aioredis.from_url(f"{base}/3")
    try:
        assert await check.get(key) == b"42"
    finally:
        await check.delete(key)
        await check.aclose()
    failing = RespScript(REDIS_URL, "return redis.error_reply('nope')")
    with pytest.raises(RedisReplyError, match="nope"):
        await failing([], [])
    assert await failing._send(failing._conn, encode(b"PING")) == b"PONG"  # the connection stays usable
    await script.aclose()
    await failing.aclose()


async def test_refused_and_silent_servers_fail_within_the_timeout() -> None:
    with pytest.raises(RespConnectionError):
        await RespScript("redis://127.0.0.1:9/0", "return 1", timeout_s=0.3)([], [])

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            await reader.read()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        script = RespScript(f"redis://127.0.0.1:{port}/0", "return 1", timeout_s=0.2)
        start = asyncio.get_running_loop().time()
        results = await asyncio.gather(*(script([], []) for _ in range(3)), return_exceptions=True)
        assert all(isinstance(r, RespConnectionError) for r in results)
        assert asyncio.get_running_loop().time() - start < 1.0
        await script.aclose()
    with pytest.raises(ValueError):
        RespScript("rediss://127.0.0.1:6379/0", "return 1")
