"""The fast path of plain forwards: pure ASGI, in front of FastAPI's routing.

Most traffic through the gateway is a plain forward (``POST /api/v1/initiatives`` above all). It
gets the same front door as every /api/v1 request (:func:`gateway.api.deps.admit_call`: token,
rate limit, role policy; then the body limit), the same correlation id and per-route metrics as
:class:`shared.http.ObservabilityMiddleware` gives the other routes, and the same answers in the
SPEC §8 error shape, but without FastAPI's routing, dependency injection and middleware per
request, and through pyreqwest's client rather than httpx (gateway.adapters.downstream). Requests it
does not take (composed views, pages, /health, unknown paths, other methods) go to FastAPI.
"""

from __future__ import annotations

import itertools
import logging
import re
import secrets
import time
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from gateway.adapters.downstream import DownstreamUnavailable
from gateway.api.deps import admit_call
from gateway.api.routes.proxy import unavailable
from gateway.context import GatewayContext
from gateway.domain.routing import route_for
from shared.http import ApiError, error_body
from shared.logs import correlation_id_var
from shared.metrics import ServiceMetrics

log = logging.getLogger("gateway.front")

ROUTE_TEMPLATE = "/api/v1/{rest:path}"  # the metrics label of FastAPI's catch-all route, kept for forwards
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
_WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# GETs the gateway composes itself (gateway.api.routes.compose) stay with FastAPI.
_COMPOSED_GET = re.compile(
    r"^/api/v1/(initiatives/[^/]+|units/[^/]+/overview|imports/template\.xlsx|imports/[^/]+/errors\.xlsx)$"
)
_FORWARD_REQUEST = frozenset(
    {b"content-type", b"accept", b"accept-language", b"idempotency-key", b"if-match", b"if-none-match"}
)
_FORWARD_RESPONSE = frozenset(
    {b"content-type", b"content-disposition", b"retry-after", b"location", b"etag", b"cache-control"}
)
_JSON = b"application/json"


def takes(scope: Scope) -> str | None:
    """The downstream service when the fast path handles this request, else None."""
    if scope["type"] != "http" or scope.get("root_path"):
        return None
    path: str = scope["path"]
    method: str = scope["method"]
    if not path.startswith("/api/v1/") or method not in _METHODS:
        return None
    if method == "GET" and _COMPOSED_GET.match(path):
        return None
    return route_for(path)


class FrontDoor:
    def __init__(self, metrics: ServiceMetrics) -> None:
        self.metrics = metrics
        # Correlation ids made here: a random prefix per process and a counter (32 hex digits like a
        # uuid4's; unique without a system call per request).
        self._corr_prefix = secrets.token_hex(8)
        self._corr_counter = itertools.count(1)
        self._counters: dict[tuple[str, int], Any] = {}
        self._timers: dict[str, Any] = {}

    async def __call__(
        self, ctx: GatewayContext | None, service: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        start = time.perf_counter()
        method: str = scope["method"]
        corr: str | None = None
        raw_auth: bytes | None = None
        previous_xff: bytes | None = None
        declared: bytes | None = None
        forwarded: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            if name in _FORWARD_REQUEST:
                forwarded.setdefault(name, value)
            elif name == b"authorization":
                raw_auth = raw_auth or value
            elif name == b"content-length":
                declared = declared or value
            elif name == b"x-correlation-id":
                corr = corr or value.decode("latin-1")[:100]
            elif name == b"x-forwarded-for":
                previous_xff = previous_xff or value
        corr = corr or f"{self._corr_prefix}{next(self._corr_counter):016x}"
        reset = correlation_id_var.set(corr)
        try:
            status, headers, body = await self._answer(
                ctx, service, scope, receive, method, corr, raw_auth, previous_xff, declared, forwarded
            )
        finally:
            correlation_id_var.reset(reset)
        headers.append((b"content-length", str(len(body)).encode("latin-1")))
        headers.append((b"x-correlation-id", corr.encode("latin-1")))
        try:
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        finally:
            self._observe(method, status, time.perf_counter() - start)

    async def _answer(
        self,
        ctx: GatewayContext | None,
        service: str,
        scope: Scope,
        receive: Receive,
        method: str,
        corr: str,
        raw_auth: bytes | None,
        previous_xff: bytes | None,
        declared: bytes | None,
        forwarded: dict[bytes, bytes],
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        try:
            if ctx is None:
                raise ApiError(503, "starting", "Cổng đang khởi động")
            token: str | None = None
            if raw_auth is not None:
                scheme, _, value = raw_auth.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer" and value.strip():
                    token = value.strip()
            client = scope.get("client")
            ip = client[0] if client else "unknown"
            principal = await admit_call(ctx, method, scope["path"], token, ip)
            body = b""
            if method in _WITH_BODY:
                body = await _read_body(receive, declared, ctx.settings.max_body_bytes)
            headers = list(forwarded.items())
            if principal is not None and token is not None:
                headers.append((b"authorization", b"Bearer " + token.encode("latin-1")))
            ip_bytes = ip.encode("latin-1")
            headers.append((b"x-forwarded-for", previous_xff + b", " + ip_bytes if previous_xff else ip_bytes))
            headers.append((b"x-correlation-id", corr.encode("latin-1")))
            target: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
            query: bytes = scope.get("query_string", b"")
            if query:
                target = target + b"?" + query
            try:
                resp = await ctx.downstreams[service].forward(method, target, headers, body)
            except DownstreamUnavailable as exc:
                raise unavailable(exc) from exc
            out = [(name, value) for name, value in resp.headers if name in _FORWARD_RESPONSE]
            return resp.status, out, resp.body
        except ApiError as exc:
            out = [(b"content-type", _JSON)]
            if exc.headers:
                out += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in exc.headers.items()]
            return exc.status, out, orjson.dumps(error_body(exc.code, exc.message, exc.details))
        except Exception:
            log.exception("unhandled error in a forwarded request")
            body = orjson.dumps(error_body("internal_error", "Lỗi hệ thống, vui lòng thử lại"))
            return 500, [(b"content-type", _JSON)], body

    def _observe(self, method: str, status: int, elapsed: float) -> None:
        counter = self._counters.get((method, status))
        if counter is None:
            m = self.metrics
            counter = self._counters[(method, status)] = m.http_requests.labels(
                m.service, method, ROUTE_TEMPLATE, str(status)
            )
        counter.inc()
        timer = self._timers.get(method)
        if timer is None:
            m = self.metrics
            timer = self._timers[method] = m.http_latency.labels(m.service, method, ROUTE_TEMPLATE)
        timer.observe(elapsed)


async def _read_body(receive: Receive, declared: bytes | None, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` bytes (as ``deps.read_body``)."""
    if declared is not None:
        if not declared.strip().isdigit():
            raise ApiError(400, "bad_request", "Content-Length không hợp lệ")
        if int(declared) > limit:
            raise ApiError(413, details={"max_bytes": limit})
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ApiError(400, "bad_request", "Yêu cầu bị ngắt giữa chừng")
        chunk: bytes = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise ApiError(413, details={"max_bytes": limit})
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
