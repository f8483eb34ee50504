"""HTTP clients of the four services, each with its own timeout and circuit breaker.

Plain forwards (:mod:`gateway.api.front`), most of the gateway's traffic, go through **pyreqwest**, Python's
binding of reqwest and hyper (Rust): the pool, the HTTP/1.1 framing and the parsing of the answer run in hyper,
off the event loop's Python code. Measured against aiohttp's client, the gateway's previous one, client CPU only
(bench/http_clients.py): 28 against 57 µs per request at 16 in flight; in the whole pipeline (bench/pipeline.py
(c), docs/benchmarks.md, "pyreqwest and rate-limit leases"), the gateway's CPU per single submission 216–223 against
276–280 µs. httpcore's pool (under httpx) was measured before: 885 µs at 16 in flight, because each request walks
every pooled connection and polls each idle one's socket.
The composed views and the FastAPI catch-all, far fewer, keep httpx (query parameters, JSON).
In-process transports (embedded mode, tests' fakes) replace both with httpx.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from pyreqwest.client import Client, ClientBuilder
from pyreqwest.exceptions import BuilderError, RequestError, RequestTimeoutError
from pyreqwest.http import Url

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
# A request target is visible ASCII (RFC 9112 §3.2): a space or CR/LF would split the request line. A backslash
# or a dot segment (".", "..", percent-encoded or not) in the path would be resolved by the client's URL parser
# (WHATWG rules), so the service would get another path than the one the gateway routed and checked: all of them
# are refused before anything is written.
_NOT_IN_TARGET = re.compile(rb"[^\x21-\x7e]")
_RESOLVED_IN_PATH = re.compile(rb"\\|(?:^|/)(?:\.|%2e){1,2}(?:/|$)", re.IGNORECASE)
# reqwest always sends a User-Agent (this one) and, when the caller sent no Accept, ``Accept: */*`` (what an absent
# Accept means anyway, RFC 9110 §12.5.1); every other header of a forward is the caller's (gateway.api.front's list).
_USER_AGENT = "sangkien-gateway"


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
        # One client carries every user's requests: no cookie store (a cookie one answer sets must never ride along
        # on another user's request), no decompression (a body passes through as the service encoded it), no
        # redirects followed (the caller gets the service's answer), no HTTP(S)_PROXY from the environment (the
        # services are reached directly, as aiohttp's client did by default).
        self.pool: Client | None = (
            ClientBuilder()
            .no_proxy()
            .max_connections(_MAX_CONNECTIONS)
            .pool_max_idle_per_host(_MAX_CONNECTIONS)
            .pool_idle_timeout(timedelta(seconds=_KEEPALIVE_S))
            # the whole exchange, waiting for a pooled connection included
            .timeout(timedelta(seconds=timeout_s))
            .pool_timeout(timedelta(seconds=timeout_s))
            .connect_timeout(timedelta(seconds=min(timeout_s, 2.0)))
            .follow_redirects(False)
            .default_cookie_store(False)
            .gzip(False)
            .brotli(False)
            .zstd(False)
            .deflate(False)
            .user_agent(_USER_AGENT)
            .http1_lower_case_headers()
            .http1_only()
            .build()
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
            trust_env=False,  # no proxy from the environment either
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
        if _NOT_IN_TARGET.search(target) is not None or _RESOLVED_IN_PATH.search(target.partition(b"?")[0]):
            raise ApiError(400, "bad_request", "Đường dẫn không hợp lệ")
        start = time.perf_counter()
        try:
            if self.pool is not None:
                resp = await self._forward_pooled(method, target, headers, body)
            else:
                resp = await self._forward_httpx(method, target, headers, body)
        except (BuilderError, ValueError, httpx.LocalProtocolError, httpx.InvalidURL) as exc:
            # the client library refused to build the request (a control character in a header, a target that
            # is no URL): the caller's fault, not the service's
            raise ApiError(400, "bad_request", "Yêu cầu không hợp lệ") from exc
        except (TimeoutError, RequestTimeoutError, httpx.TimeoutException) as exc:
            self.breaker.failure()
            self.metrics_fail("timeout")
            raise DownstreamUnavailable(self.name, "timeout") from exc
        except (RequestError, httpx.TransportError) as exc:  # a broken or missing answer, a refused connection
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
        assert self.pool is not None
        request = self.pool.request(method, Url(self._origin + target.decode("ascii")))
        if headers:
            request = request.headers([(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers])
        if body:
            request = request.body_bytes(body)
        resp = await request.build().send()
        content = bytes(await resp.bytes())
        return ForwardedResponse(
            resp.status, [(k.encode("latin-1"), v.encode("latin-1")) for k, v in resp.headers.items()], content
        )

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
            await self.pool.close()
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
