"""A TCP proxy on loopback that tests can cut and restore: an outage of a real server, made without
stopping it (the PostgreSQL, RabbitMQ and Redis of a shared machine keep serving everyone else).

``cut()`` aborts every connection through the proxy (both ends: each side sees its peer vanish) and
stops listening, so new connections are refused; ``restore()`` listens on the same port again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger("shared.tcpproxy")


class _Pipe(asyncio.Protocol):
    """One direction's receiving end; what it reads goes to ``peer`` (with back-pressure both ways)."""

    def __init__(self, proxy: TcpProxy) -> None:
        self.proxy = proxy
        self.transport: asyncio.Transport | None = None
        self.peer: _Pipe | None = None
        self._pending: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.proxy._open.add(self)

    def data_received(self, data: bytes) -> None:
        peer = self.peer
        if peer is None or peer.transport is None:
            self._pending.append(data)  # the upstream connection is still being made
            return
        peer.transport.write(data)

    def attach(self, peer: _Pipe) -> None:
        self.peer = peer
        if peer.transport is not None:
            for chunk in self._pending:
                peer.transport.write(chunk)
        self._pending.clear()

    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()

    def eof_received(self) -> bool:
        if self.peer is not None and self.peer.transport is not None and self.peer.transport.can_write_eof():
            self.peer.transport.write_eof()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.proxy._open.discard(self)
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()


class TcpProxy:
    """Forward ``127.0.0.1:<port>`` to ``target_host:target_port`` until cut."""

    def __init__(self, target_host: str, target_port: int, port: int = 0) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.port = port
        self._server: asyncio.Server | None = None
        self._open: set[_Pipe] = set()
        self._connecting: set[asyncio.Task[None]] = set()  # referenced until done (the loop keeps weak ones)
        self.connections_made = 0

    @property
    def is_cut(self) -> bool:
        return self._server is None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._accept, "127.0.0.1", self.port, reuse_address=True)
        self.port = int(self._server.sockets[0].getsockname()[1])

    def _accept(self) -> _Pipe:
        client = _Pipe(self)
        self.connections_made += 1
        task = asyncio.get_running_loop().create_task(self._connect_upstream(client))
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)
        return client

    async def _connect_upstream(self, client: _Pipe) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, upstream = await loop.create_connection(lambda: _Pipe(self), self.target_host, self.target_port)
        except OSError:
            if client.transport is not None:
                client.transport.abort()
            return
        if self.is_cut or client.transport is None or client.transport.is_closing():
            upstream.transport.abort()  # type: ignore[union-attr]
            return
        upstream.peer = client
        client.attach(upstream)

    async def cut(self) -> None:
        """Refuse new connections and drop every open one (an unreachable server, as clients see it)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for pipe in list(self._open):
            if pipe.transport is not None:
                pipe.transport.abort()
        self._open.clear()
        log.warning("proxy cut", extra={"port": self.port, "target": f"{self.target_host}:{self.target_port}"})

    async def restore(self) -> None:
        if self._server is None:
            await self.start()
            log.warning("proxy restored", extra={"port": self.port})

    async def close(self) -> None:
        await self.cut()

    def url(self, url: str) -> str:
        """``url`` (whose host:port is the target) pointed at this proxy instead."""
        parts = urlsplit(url)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@127.0.0.1:{self.port}" if userinfo else f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))


@contextlib.asynccontextmanager
async def proxy_for(url: str, default_port: int) -> AsyncIterator[TcpProxy]:
    """A running proxy in front of the server of ``url``; closed (every connection dropped) afterwards."""
    parts = urlsplit(url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or default_port)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()
