"""HTTP clients of the four services, each with its own timeout and circuit breaker.

Plain forwards (:mod:`gateway.api.front`) go through httpcore's connection pool: HTTP/1.1 framing,
keep-alive and the refusal of malformed requests and answers are h11's, a maintained parser. The
composed views and the FastAPI catch-all use httpx (query parameters, JSON), which wraps the same
httpcore. In-process transports (embedded mode, tests' fakes) replace both with httpx.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from gateway.domain.breaker import CircuitBreaker
from gateway.metrics import GatewayMetrics
from gateway.settings import GatewaySettings
from shared.http import ApiError
from shared.logs import correlation_id_var

_MAX_CONNECTIONS = 64
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


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
        self._origin = httpx.URL(base_url)
        connect_s = min(timeout_s, 2.0)
        # httpcore bounds each step (connect, each write, each read, waiting for a pooled connection).
        self._timeouts = {"timeout": {"connect": connect_s, "read": timeout_s, "write": timeout_s, "pool": timeout_s}}
        self.pool = (
            httpcore.AsyncConnectionPool(
                max_connections=_MAX_CONNECTIONS, max_keepalive_connections=_MAX_CONNECTIONS, retries=0
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
        start = time.perf_counter()
        try:
            if self.pool is not None:
                resp = await self._forward_pooled(method, target, headers, body)
            else:
                resp = await self._forward_httpx(method, target, headers, body)
        except (httpcore.LocalProtocolError, httpx.LocalProtocolError, httpx.InvalidURL) as exc:
            # h11 refused to write the request (a control character in the target or a header): the caller's fault
            raise ApiError(400, "bad_request", "Yêu cầu không hợp lệ") from exc
        except (httpcore.TimeoutException, httpx.TimeoutException) as exc:
            self.breaker.failure()
            self.metrics_fail("timeout")
            raise DownstreamUnavailable(self.name, "timeout") from exc
        except (httpcore.NetworkError, httpcore.RemoteProtocolError, httpx.TransportError) as exc:
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

    async def _forward_pooled(
        self, method: str, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> ForwardedResponse:
        origin = self._origin
        content = body if body or method in _WITH_BODY else None  # no "Content-Length: 0" on a GET
        url = httpcore.URL(scheme=origin.raw_scheme, host=origin.raw_host, port=origin.port, target=target)
        # request() adds Host and Content-Length, reads the whole answer and returns the connection to the pool
        resp = await self.pool.request(  # type: ignore[union-attr]
            method.encode("ascii"), url, headers=headers, content=content, extensions=self._timeouts
        )
        return ForwardedResponse(resp.status, [(k.lower(), v) for k, v in resp.headers], resp.content)

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
        if self.pool is not None:
            await self.pool.aclose()
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
