"""A small pooled keep-alive HTTP/1.1 client on asyncio protocols, for the gateway's proxied calls.

httpx's general client (URL models, header models, a pool that scans every connection per request)
cost more CPU per proxied request than the downstream spent answering it (bench/gateway.py). The
proxy needs much less: send one request with a known body on a kept-alive loopback/LAN connection
and read one response framed by Content-Length, chunked encoding, or the end of the connection.

- Connections are reused LIFO; at most ``max_connections`` are open, further callers wait in turn.
- ``timeout_s`` bounds the whole exchange (send and complete response); connecting is bounded by
  ``connect_timeout_s``. A timed-out connection is closed, never reused.
- A request sent on a *reused* connection that the server had already closed (an idle keep-alive
  connection closed by the server, before a single byte of response came back) is sent once more
  on a fresh connection; any other failure is raised as :class:`ConnectError` or ``TimeoutError``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import cast
from urllib.parse import urlsplit

_CRLF2 = b"\r\n\r\n"


class ConnectError(Exception):
    """The connection could not be made, or broke before the response was complete."""


class ProtocolError(ConnectError):
    """The server's answer was not valid HTTP/1.1."""


class RawResponse:
    """Status, header lines (lower-case names, as received) and the complete body."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection; one exchange at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.buf = bytearray()
        self.waiter: asyncio.Future[RawResponse] | None = None
        self.head_request = False
        self.received_any = False
        # parse state of the current response
        self._status = 0
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_done = False
        self._length = -1  # -1: to the end of the connection; -2: chunked
        self._keep_alive = True
        self._chunks: list[bytes] = []

    # -- asyncio.Protocol ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not registered as asyncio.Transport subclasses: no isinstance check
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        waiter = self.waiter
        if waiter is None or waiter.done():
            # bytes nobody asked for: the connection is out of step, never reuse it
            self.close()
            return
        self.received_any = True
        self.buf += data
        try:
            response = self._parse(eof=False)
        except ProtocolError as exc:
            self.close()
            waiter.set_exception(exc)
            return
        if response is not None:
            self.waiter = None
            waiter.set_result(response)

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        self.waiter = None
        try:
            response = self._parse(eof=True) if self.received_any else None
        except ProtocolError as perr:
            waiter.set_exception(perr)
            return
        if response is not None:
            waiter.set_result(response)
        else:
            waiter.set_exception(ConnectError(f"server closed the connection{': ' + str(exc) if exc else ''}"))

    # -- exchange -----------------------------------------------------------------------------
    def send(self, data: bytes, head_request: bool) -> asyncio.Future[RawResponse]:
        assert self.transport is not None
        self.buf.clear()
        self.received_any = False
        self._status = 0
        self._headers = []
        self._head_done = False
        self._length = -1
        self._keep_alive = True
        self._chunks = []
        self.head_request = head_request
        self.waiter = self.loop.create_future()
        self.transport.write(data)
        return self.waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    @property
    def reusable(self) -> bool:
        return not self.closed and self._keep_alive and self.waiter is None

    # -- parsing ------------------------------------------------------------------------------
    def _parse(self, *, eof: bool) -> RawResponse | None:
        buf = self.buf
        if not self._head_done:
            end = buf.find(_CRLF2)
            if end < 0:
                if eof or len(buf) > 65536:
                    raise ProtocolError("incomplete or oversized response head")
                return None
            self._read_head(bytes(buf[:end]))
            del buf[: end + 4]
            if 100 <= self._status < 200:  # interim answer (100 Continue): the real one follows
                self._head_done = False
                self._headers = []
                return self._parse(eof=eof)
        if self._length == -2:
            return self._parse_chunked(eof)
        if self._length >= 0:
            if len(buf) < self._length:
                if eof:
                    raise ProtocolError("response body shorter than its Content-Length")
                return None
            if len(buf) > self._length:
                raise ProtocolError("bytes after the response body")
            return RawResponse(self._status, self._headers, bytes(buf))
        if not eof:  # framed by the end of the connection
            return None
        self._keep_alive = False
        return RawResponse(self._status, self._headers, bytes(buf))

    def _read_head(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError("bad status line")
        self._status = int(parts[1])
        http10 = parts[0] == b"HTTP/1.0"
        headers: list[tuple[bytes, bytes]] = []
        length = -1
        chunked = False
        keep_alive = not http10
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep:
                raise ProtocolError("bad header line")
            name = name.strip().lower()
            value = value.strip()
            headers.append((name, value))
            if name == b"content-length":
                if not value.isdigit():
                    raise ProtocolError("bad Content-Length")
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = value.lower().endswith(b"chunked")
            elif name == b"connection":
                tokens = value.lower()
                if b"close" in tokens:
                    keep_alive = False
                elif b"keep-alive" in tokens:
                    keep_alive = True
        self._headers = headers
        self._head_done = True
        self._keep_alive = keep_alive
        if self.head_request or self._status in (204, 304):
            self._length = 0
        elif chunked:
            self._length = -2
        else:
            self._length = length
        if self._length == -1:
            self._keep_alive = False

    def _parse_chunked(self, eof: bool) -> RawResponse | None:
        buf = self.buf
        pos = 0
        while True:
            line_end = buf.find(b"\r\n", pos)
            if line_end < 0:
                break
            size_text = bytes(buf[pos:line_end]).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError as exc:
                raise ProtocolError("bad chunk size") from exc
            if size == 0:
                end = buf.find(_CRLF2, line_end)  # the empty line after the (ignored) trailers
                if end < 0:
                    break
                if len(buf) > end + 4:
                    raise ProtocolError("bytes after the response body")
                return RawResponse(self._status, self._headers, b"".join(self._chunks))
            start = line_end + 2
            if len(buf) < start + size + 2:
                break
            if buf[start + size : start + size + 2] != b"\r\n":
                raise ProtocolError("bad chunk framing")
            self._chunks.append(bytes(buf[start : start + size]))
            pos = start + size + 2
        del buf[:pos]
        if eof:
            raise ProtocolError("chunked body cut short")
        return None


class Http1Pool:
    """Keep-alive connections to one origin (``http://host:port``)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float,
        connect_timeout_s: float,
        max_connections: int = 64,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"only http://host[:port] origins are supported: {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.host_header = (parts.netloc or self.host).encode("ascii")
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.max_connections = max(1, max_connections)
        self._idle: list[_Connection] = []
        self._open = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closing = False

    async def request(
        self,
        method: str,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes = b"",
        timeout_s: float | None = None,
    ) -> RawResponse:
        """Send ``method target`` (an origin-form path and query, already encoded) and read the answer."""
        if b" " in target or b"\r" in target or b"\n" in target:
            raise ValueError("bad request target")
        parts = [method.encode("ascii"), b" ", target, b" HTTP/1.1\r\nhost: ", self.host_header, b"\r\n"]
        for name, value in headers:
            parts += (name, b": ", value, b"\r\n")
        if body or method in ("POST", "PUT", "PATCH"):
            parts += (b"content-length: ", str(len(body)).encode("ascii"), b"\r\n")
        parts.append(b"\r\n")
        parts.append(body)
        data = b"".join(parts)
        loop = asyncio.get_running_loop()
        timeout = self.timeout_s if timeout_s is None else timeout_s
        deadline = loop.time() + timeout
        conn, reused = await self._acquire(loop, deadline)
        try:
            response = await self._exchange(loop, conn, data, method == "HEAD", deadline)
        except ConnectError:
            self._discard(conn)
            if not reused or conn.received_any:
                raise
            # the server had closed this idle connection before reading the request: once more, on a new one
            conn, _ = await self._acquire(loop, deadline, fresh=True)
            try:
                response = await self._exchange(loop, conn, data, method == "HEAD", deadline)
            except BaseException:
                self._discard(conn)
                raise
        except BaseException:
            self._discard(conn)
            raise
        self._release(conn)
        return response

    async def _exchange(
        self, loop: asyncio.AbstractEventLoop, conn: _Connection, data: bytes, head: bool, deadline: float
    ) -> RawResponse:
        waiter = conn.send(data, head)
        timer = loop.call_at(deadline, _expire, waiter)
        try:
            return await waiter
        finally:
            timer.cancel()
            conn.waiter = None

    async def _acquire(
        self, loop: asyncio.AbstractEventLoop, deadline: float, fresh: bool = False
    ) -> tuple[_Connection, bool]:
        if self._closing:
            raise ConnectError("client closed")
        while not fresh and self._idle:
            conn = self._idle.pop()
            if conn.reusable:
                return conn, True
            conn.close()
            self._open -= 1
        while self._open >= self.max_connections:
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append(waiter)
            timer = loop.call_at(deadline, _expire, waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                    self._wake()  # woken but leaving: pass the turn on
                raise
            finally:
                timer.cancel()
            if not fresh and self._idle:
                conn = self._idle.pop()
                if conn.reusable:
                    return conn, True
                conn.close()
                self._open -= 1
        self._open += 1
        try:
            timeout = max(0.0, min(self.connect_timeout_s, deadline - loop.time()))
            async with asyncio.timeout(timeout):
                _, conn = await loop.create_connection(lambda: _Connection(loop), self.host, self.port)
        except TimeoutError:
            self._open -= 1
            self._wake()
            raise
        except OSError as exc:
            self._open -= 1
            self._wake()
            raise ConnectError(f"connect to {self.host}:{self.port}: {exc}") from exc
        except BaseException:
            self._open -= 1
            self._wake()
            raise
        return conn, False

    def _release(self, conn: _Connection) -> None:
        if conn.reusable and not self._closing:
            self._idle.append(conn)
        else:
            conn.close()
            self._open -= 1
        self._wake()

    def _discard(self, conn: _Connection) -> None:
        conn.close()
        self._open -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def aclose(self) -> None:
        self._closing = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
            self._open -= 1


def _expire(fut: asyncio.Future[object]) -> None:
    if not fut.done():
        fut.set_exception(TimeoutError())
