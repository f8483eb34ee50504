"""The benchmarks' HTTP client: one keep-alive connection per simulated client, through aiohttp.

The load generator shares the two cores with the servers it measures, so it should spend little CPU
per request, and it should not carry a protocol implementation of its own. aiohttp's client (llhttp,
in C) costs about a third of httpcore's for one connection (docs/benchmarks.md, Gateway).

A failure surfaces as the standard exceptions the benchmarks handle: ``TimeoutError`` when the server
does not answer within ``timeout_s``, ``ConnectionError`` when the connection breaks or the answer is
not HTTP. The next request on the same ``Conn`` opens a new connection.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson

_CLOSING: set[asyncio.Task[None]] = set()  # sessions being closed by ``Conn.close``
_JSON = {"Content-Type": "application/json"}
_NOWHERE = "/loadgen/connect"


class Conn:
    """One simulated client: a bearer token (optional) and one kept-alive connection to ``127.0.0.1:port``."""

    def __init__(self, port: int, auth: str | None = None, timeout_s: float = 120.0) -> None:
        self.port = port
        self.timeout_s = timeout_s  # per request: a server that never answers fails the run, never hangs it
        self._base = f"http://127.0.0.1:{port}"
        self._headers = {"Authorization": f"Bearer {auth}"} if auth else {}
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                self._base,
                connector=aiohttp.TCPConnector(limit=1),
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                headers=self._headers,
                skip_auto_headers=("User-Agent", "Accept-Encoding"),
            )
        return self._session

    async def connect(self) -> None:
        """Open the connection now (before a clock starts) rather than on the first request.

        aiohttp opens a connection only for a request: this one asks for a path no server here has (404,
        answered by the server itself; ``/health`` would make the gateway call every service, hundreds of
        times at once when a pool of connections is opened).
        """
        await self.request("GET", _NOWHERE)

    async def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        try:
            async with self._client().request(
                method, path, data=body, headers=None if body is None else _JSON, allow_redirects=False
            ) as resp:
                return resp.status, await resp.read()
        except TimeoutError:
            self.close()
            raise
        except aiohttp.ClientError as exc:
            self.close()
            raise ConnectionError(f"127.0.0.1:{self.port} {method} {path}: {exc!r}") from exc

    async def json(self, method: str, path: str, payload: Any = None) -> tuple[int, Any]:
        status, data = await self.request(method, path, None if payload is None else orjson.dumps(payload))
        return status, (orjson.loads(data) if data else None)

    def close(self) -> None:
        """Drop the connection (closed in the background); the next request opens a new one."""
        session, self._session = self._session, None
        if session is not None:
            task = asyncio.get_running_loop().create_task(session.close())
            _CLOSING.add(task)
            task.add_done_callback(_CLOSING.discard)
