"""HTTP clients of the four services, each with its own timeout and circuit breaker."""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Mapping
from typing import Any

import httpx

from gateway.adapters.http1 import ConnectError, Http1Pool, RawResponse
from gateway.domain.breaker import CircuitBreaker
from gateway.metrics import GatewayMetrics
from gateway.settings import GatewaySettings
from shared.http import ApiError
from shared.logs import correlation_id_var

if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
    # httpcore tries ``import sniffio`` on every request; without the package each try scans the whole
    # sys.path (16% of the gateway's CPU in bench/gateway.py). A None entry makes the import fail at once,
    # and httpcore then assumes asyncio, which is what runs here.
    sys.modules["sniffio"] = None  # type: ignore[assignment]


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
        # Proxied calls over plain HTTP go through the lean pooled client; in-process transports
        # (embedded mode, tests' fakes) and https:// services through httpx.
        self.pool = (
            Http1Pool(base_url, timeout_s=timeout_s, connect_timeout_s=min(timeout_s, 2.0))
            if transport is None and base_url.startswith("http://")
            else None
        )
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
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

    async def forward(self, method: str, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes) -> RawResponse:
        """One proxied call: ``target`` is the raw path and query; ``headers`` exclude Host and Content-Length."""
        if not self.breaker.allow():
            self.metrics_fail("breaker_open")
            raise DownstreamUnavailable(self.name, "breaker_open")
        start = time.perf_counter()
        try:
            if self.pool is not None:
                resp = await self.pool.request(method, target, headers, body)
            else:
                resp = await self._forward_httpx(method, target, headers, body)
        except (TimeoutError, httpx.TimeoutException) as exc:
            self.breaker.failure()
            self.metrics_fail("timeout")
            raise DownstreamUnavailable(self.name, "timeout") from exc
        except (ConnectError, httpx.TransportError) as exc:
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

    async def _forward_httpx(
        self, method: str, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> RawResponse:
        # raw_path keeps the client's own encoding; httpx would re-encode a str path
        url = self.client.base_url.copy_with(raw_path=target)
        resp = await self.client.request(method, url, headers=headers, content=body or None)
        return RawResponse(resp.status_code, [(k.lower(), v) for k, v in resp.headers.raw], resp.content)

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
