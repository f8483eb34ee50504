"""HTTP clients of the four services, each with its own timeout and circuit breaker.

Plain forwards (:mod:`gateway.api.front`), most of the gateway's traffic, go through aiohttp's client:
its keep-alive pool hands out a connection in constant time and its HTTP/1.1 parser is llhttp, in C.
httpcore's pool (under httpx) was measured against it (bench/http_clients.py, docs/benchmarks.md,
Gateway): 885 µs of the client's CPU per request against aiohttp's 80 µs at 16 requests in flight,
because each request walks every pooled connection and polls each idle one's socket.
The composed views and the FastAPI catch-all, far fewer, keep httpx (query parameters, JSON).
In-process transports (embedded mode, tests' fakes) replace both with httpx.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx
import yarl

from gateway.domain.breaker import CircuitBreaker
from gateway.metrics import GatewayMetrics
from gateway.settings import GatewaySettings
from shared.http import ApiError
from shared.logs import correlation_id_var

# Kept-alive connections to each service. Intake commits the submissions that arrive together in one transaction,
# so the more requests reach it at once the less each costs: with 64, the pool was full under the pipeline bench's
# single submissions (requests waited in the gateway, intake's commits were small). Two rounds each of
# bench/pipeline.py (c) at 600 then 900/s: 64 → 502 and 548/s achieved at 900, 3,970 and 3,799 µs of machine CPU
# per submission; 256 → 595 and 650/s, 3,666 and 3,568 µs (intake 572/541 → 488/477 µs).
_MAX_CONNECTIONS = 256
# Below uvicorn's own keep-alive timeout (5 s by default): the gateway drops an idle connection before
# the service would, so a request is never written onto a connection the service is closing.
_KEEPALIVE_S = 4.0
# aiohttp would add these; a forward carries only what the caller sent (gateway.api.front's list).
_NOT_ADDED = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")
# A request target is visible ASCII (RFC 9112 §3.2). aiohttp writes an already-encoded URL as given, so a
# space or CR/LF here would split the request line: refused before anything is written.
_NOT_IN_TARGET = re.compile(rb"[^\x21-\x7e]")


@dataclass(slots=True)
class ForwardedResponse:
    """A service's complete answer: status, header lines (names in lower case) and body."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def header(self, name: bytes) -> bytes | None:
        return next((value for key, value in self.headers if key == name), None)


class DownstreamUnavailable(Exception):
    """The service could not answer: connection refused, timeout, 5xx, or its breaker is open."""

    def __init__(self, service: str, reason: str) -> None:
        super().__init__(f"{service}: {reason}")
        self.service = service
        self.reason = reason


class Downstream:
    def __init__(
        self,
        name: str,
        base_url: str,
        timeout_s: float,
        breaker: CircuitBreaker,
        metrics: GatewayMetrics,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self.breaker = breaker
        self.metrics = metrics
        self.timeout_s = timeout_s
        self._latency = metrics.downstream_latency.labels(name)
        self._origin = base_url.rstrip("/")
        self.session = (
            aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=_MAX_CONNECTIONS, limit_per_host=_MAX_CONNECTIONS, keepalive_timeout=_KEEPALIVE_S
                ),
                # ``total`` bounds the whole exchange, waiting for a pooled connection included
                timeout=aiohttp.ClientTimeout(total=timeout_s, connect=min(timeout_s, 2.0)),
                skip_auto_headers=_NOT_ADDED,
                # One session carries every user's requests: a cookie one answer sets must never ride along on
                # another user's request, and a body passes through as the service encoded it.
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
            )
            if transport is None
            else None
        )
        limits = httpx.Limits(max_connections=_MAX_CONNECTIONS, max_keepalive_connections=_MAX_CONNECTIONS)
        self.client = httpx.AsyncClient(
            base_url=base_url if transport is None else f"http://{name}",
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 2.0)),
            transport=transport,
            limits=limits,
            follow_redirects=False,
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        timeout_s: float | None = None,
    ) -> httpx.Response:
        if not self.breaker.allow():
            self.metrics_fail("breaker_open")
            raise DownstreamUnavailable(self.name, "breaker_open")
        hdrs = dict(headers or {})
        corr = correlation_id_var.get()
        if corr and "x-correlation-id" not in {k.lower() for k in hdrs}:
            hdrs["X-Correlation-ID"] = corr
        start = time.perf_counter()
        try:
            kwargs: dict[str, Any] = {"params": params, "headers": hdrs, "content": content}
            if timeout_s is not None:
                kwargs["timeout"] = httpx.Timeout(timeout_s, connect=min(timeout_s, 2.0))
            resp = await self.client.request(method, path, **kwargs)
        except httpx.InvalidURL as exc:  # the caller's path or query, not the service's fault
            raise ApiError(400, "bad_request", "Đường dẫn không hợp lệ") from exc
        except httpx.TimeoutException as exc:
            self.breaker.failure()
            self.metrics_fail("timeout")
            raise DownstreamUnavailable(self.name, "timeout") from exc
        except httpx.TransportError as exc:
            self.breaker.failure()
            self.metrics_fail("connect")
            raise DownstreamUnavailable(self.name, "connect") from exc
        finally:
            self.metrics.downstream_latency.labels(self.name).observe(time.perf_counter() - start)
        if resp.status_code in (502, 503, 504):
            self.breaker.failure()
        else:
            self.breaker.success()
        return resp

    async def forward(
        self, method: str, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> ForwardedResponse:
        """One proxied call: ``target`` is the raw path and query; ``headers`` exclude Host and Content-Length."""
        if not self.breaker.allow():
            self.metrics_fail("breaker_open")
            raise DownstreamUnavailable(self.name, "breaker_open")
        if _NOT_IN_TARGET.search(target) is not None:
            raise ApiError(400, "bad_request", "Đường dẫn không hợp lệ")
        start = time.perf_counter()
        try:
            if self.session is not None:
                resp = await self._forward_aiohttp(method, target, headers, body)
            else:
                resp = await self._forward_httpx(method, target, headers, body)
        except (ValueError, httpx.LocalProtocolError, httpx.InvalidURL) as exc:
            # the client library refused to write the request (a control character in the target or a
            # header; aiohttp.InvalidURL is a ValueError too): the caller's fault, not the service's
            raise ApiError(400, "bad_request", "Yêu cầu không hợp lệ") from exc
        except (TimeoutError, httpx.TimeoutException) as exc:
            self.breaker.failure()
            self.metrics_fail("timeout")
            raise DownstreamUnavailable(self.name, "timeout") from exc
        except (aiohttp.ClientError, httpx.TransportError) as exc:
            self.breaker.failure()
            self.metrics_fail("connect")
            raise DownstreamUnavailable(self.name, "connect") from exc
        finally:
            self._latency.observe(time.perf_counter() - start)
        if resp.status in (502, 503, 504):
            self.breaker.failure()
        else:
            self.breaker.success()
        return resp

    async def _forward_aiohttp(
        self, method: str, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> ForwardedResponse:
        assert self.session is not None
        # encoded=True: the path and query go out as the caller encoded them
        url = yarl.URL(self._origin + target.decode("latin-1"), encoded=True)
        async with self.session.request(
            method,
            url,
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers],
            data=body or None,
            allow_redirects=False,
        ) as resp:
            content = await resp.read()
            return ForwardedResponse(resp.status, [(k.lower(), v) for k, v in resp.raw_headers], content)

    async def _forward_httpx(
        self, method: str, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> ForwardedResponse:
        # raw_path keeps the client's own encoding; httpx would re-encode a str path
        url = self.client.base_url.copy_with(raw_path=target)
        resp = await self.client.request(method, url, headers=headers, content=body or None)
        return ForwardedResponse(resp.status_code, [(k.lower(), v) for k, v in resp.headers.raw], resp.content)

    def metrics_fail(self, reason: str) -> None:
        self.metrics.downstream_failures.labels(self.name, reason).inc()

    async def aclose(self) -> None:
        if self.session is not None:
            await self.session.close()
        await self.client.aclose()


class Downstreams:
    def __init__(
        self,
        settings: GatewaySettings,
        metrics: GatewayMetrics,
        transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    ) -> None:
        transports = transports or {}
        self.by_name: dict[str, Downstream] = {
            name: Downstream(
                name,
                url,
                settings.timeout_for(name),
                CircuitBreaker(settings.breaker_failures, settings.breaker_cooldown_s),
                metrics,
                transports.get(name),
            )
            for name, url in settings.service_urls().items()
        }

    def __getitem__(self, name: str) -> Downstream:
        return self.by_name[name]

    async def aclose(self) -> None:
        for d in self.by_name.values():
            await d.aclose()
