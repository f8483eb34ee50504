"""One pipelined Redis connection (RESP2) for the rate-limit script: the gateway's hot Redis call.

redis-py's asyncio client takes a pooled connection, packs and parses in pure Python and returns
it for every command; for one ``EVALSHA`` per proxied request that cost more CPU than the rest of
the front door (bench/gateway.py). Here every caller writes its command to the same connection and
waits for its reply in order (Redis answers a connection's commands in the order they came), so
concurrent requests share one socket and often one write.

Only ``redis://`` URLs (host, port, optional user/password and database) are handled; anything else
(TLS, unix sockets) is left to redis-py by :class:`gateway.adapters.ratelimit.RateLimiter`.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import deque
from typing import Any, cast
from urllib.parse import unquote, urlsplit


class RedisReplyError(Exception):
    """Redis answered with an error (``-ERR ...``)."""


class RespConnectionError(ConnectionError):
    """The connection to Redis failed, broke, or a reply did not come in time."""


Reply = int | bytes | None | list[Any] | RedisReplyError


def encode(*args: bytes | str | int | float) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class _Parser:
    """Incremental RESP2 reply parser."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.pos = 0

    def feed(self, data: bytes) -> None:
        self.buf += data

    def replies(self) -> list[Reply]:
        out: list[Reply] = []
        while True:
            start = self.pos
            try:
                reply = self._one()
            except IndexError:  # incomplete: wait for more bytes
                self.pos = start
                break
            out.append(reply)
        if self.pos:
            del self.buf[: self.pos]
            self.pos = 0
        return out

    def _line(self) -> bytes:
        end = self.buf.find(b"\r\n", self.pos)
        if end < 0:
            raise IndexError
        line = bytes(self.buf[self.pos : end])
        self.pos = end + 2
        return line

    def _one(self) -> Reply:
        line = self._line()
        if not line:
            raise RespConnectionError("empty reply line")
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            return RedisReplyError(rest.decode("utf-8", "replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            end = self.pos + size
            if len(self.buf) < end + 2:
                raise IndexError
            data = bytes(self.buf[self.pos : end])
            self.pos = end + 2
            return data
        if kind == b"*":
            count = int(rest)
            if count < 0:
                return None
            return [self._one() for _ in range(count)]
        raise RespConnectionError(f"unexpected reply type {kind!r}")


class _Protocol(asyncio.Protocol):
    def __init__(self, on_lost: Any, loop: asyncio.AbstractEventLoop, timeout_s: float) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = _Parser()
        self.waiting: deque[asyncio.Future[Reply]] = deque()
        self.on_lost = on_lost
        self.closed = False
        self.loop = loop
        self.timeout_s = timeout_s
        # Commands of one event-loop turn go out in one write, watched by one timer.
        self._pending: list[bytes] = []
        self._batch: list[asyncio.Future[Reply]] = []

    def submit(self, command: bytes) -> asyncio.Future[Reply]:
        fut: asyncio.Future[Reply] = self.loop.create_future()
        self.waiting.append(fut)
        if not self._pending:
            self.loop.call_soon(self._flush)
        self._pending.append(command)
        self._batch.append(fut)
        return fut

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        batch, self._batch = self._batch, []
        if self.closed or self.transport is None:
            return  # their futures were failed with the connection
        self.transport.write(pending[0] if len(pending) == 1 else b"".join(pending))
        self.loop.call_later(self.timeout_s, _expire, self, batch)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not registered as asyncio.Transport subclasses: no isinstance check
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.parser.feed(data)
        try:
            replies = self.parser.replies()
        except (RespConnectionError, ValueError) as exc:
            self.fail(RespConnectionError(f"bad reply from Redis: {exc}"))
            return
        waiting = self.waiting
        for reply in replies:
            if not waiting:
                self.fail(RespConnectionError("a reply nobody asked for"))
                return
            fut = waiting.popleft()
            if not fut.done():
                fut.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail_waiting(RespConnectionError(f"connection to Redis lost{': ' + str(exc) if exc else ''}"))
        self.on_lost(self)

    def fail(self, exc: Exception) -> None:
        self.closed = True
        self._fail_waiting(exc)
        if self.transport is not None:
            self.transport.close()

    def _fail_waiting(self, exc: Exception) -> None:
        while self.waiting:
            fut = self.waiting.popleft()
            if not fut.done():
                fut.set_exception(exc)


class RespScript:
    """A Lua script run with ``EVALSHA`` (``EVAL`` when Redis does not know it yet) on one connection."""

    def __init__(self, url: str, script: str, *, timeout_s: float = 0.5, connect_timeout_s: float = 0.5) -> None:
        parts = urlsplit(url)
        if parts.scheme != "redis" or not parts.hostname:
            raise ValueError(f"only redis://host[:port][/db] URLs are supported: {url!r}")
        self.host = parts.hostname
        self.port = parts.port or 6379
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        path = parts.path.strip("/")
        self.db = int(path) if path else 0
        self.script = script.encode()
        self.sha = hashlib.sha1(self.script).hexdigest().encode()
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self._commands: dict[tuple[str | float | int | None, ...], bytes] = {}
        self._conn: _Protocol | None = None
        self._connecting: asyncio.Future[_Protocol] | None = None

    async def __call__(self, keys: list[str], args: list[float | int]) -> Reply:
        conn = self._conn
        if conn is None or conn.closed:
            conn = await self._connect()
        # The same caller (account, IP) sends the same command every time: encode it once.
        cache_key = (*keys, None, *args)
        command = self._commands.get(cache_key)
        if command is None:
            if len(self._commands) >= 10_000:
                self._commands.clear()
            command = self._commands[cache_key] = encode(b"EVALSHA", self.sha, len(keys), *keys, *args)
        reply = await self._send(conn, command)
        if isinstance(reply, RedisReplyError) and str(reply).startswith("NOSCRIPT"):
            reply = await self._send(conn, encode(b"EVAL", self.script, len(keys), *keys, *args))
        if isinstance(reply, RedisReplyError):
            raise reply
        return reply

    async def _send(self, conn: _Protocol, command: bytes) -> Reply:
        if conn.closed or conn.transport is None:
            raise RespConnectionError("connection to Redis closed")
        return await conn.submit(command)

    async def _connect(self) -> _Protocol:
        if self._connecting is not None:
            return await asyncio.shield(self._connecting)
        loop = asyncio.get_running_loop()
        self._connecting = loop.create_future()
        try:
            conn = await self._open(loop)
        except BaseException as exc:
            error = exc if isinstance(exc, Exception) else RespConnectionError("connect cancelled")
            if not isinstance(error, RespConnectionError):
                error = RespConnectionError(f"connect to Redis {self.host}:{self.port}: {error}")
            self._connecting.set_exception(error)
            self._connecting.exception()  # retrieved: no "never retrieved" warning when nobody else waits
            self._connecting = None
            raise error from exc
        self._conn = conn
        self._connecting.set_result(conn)
        self._connecting = None
        return conn

    async def _open(self, loop: asyncio.AbstractEventLoop) -> _Protocol:
        async with asyncio.timeout(self.connect_timeout_s):
            _, conn = await loop.create_connection(
                lambda: _Protocol(self._lost, loop, self.timeout_s), self.host, self.port
            )
        try:
            if self.password is not None:
                auth = (b"AUTH", self.username, self.password) if self.username else (b"AUTH", self.password)
                await self._expect_ok(conn, encode(*auth))
            if self.db:
                await self._expect_ok(conn, encode(b"SELECT", self.db))
        except BaseException:
            conn.fail(RespConnectionError("setup failed"))
            raise
        return conn

    async def _expect_ok(self, conn: _Protocol, command: bytes) -> None:
        reply = await self._send(conn, command)
        if isinstance(reply, RedisReplyError):
            raise RespConnectionError(str(reply))

    def _lost(self, conn: _Protocol) -> None:
        if self._conn is conn:
            self._conn = None

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and conn.transport is not None:
            conn.transport.close()


def _expire(conn: _Protocol, batch: list[asyncio.Future[Reply]]) -> None:
    if not conn.closed and not all(fut.done() for fut in batch):
        # Redis is stuck or gone: drop the connection and fail everyone waiting on it (the limiter falls back)
        conn.fail(RespConnectionError("Redis did not answer in time"))
