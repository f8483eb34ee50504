"""Everything under /api/v1 that the gateway does not compose itself goes to its service (docs/events.md)."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.responses import Response

from gateway.adapters.downstream import DownstreamUnavailable
from gateway.api.deps import ContextDep, admit, bearer, client_ip, read_body
from gateway.context import GatewayContext
from gateway.domain.routing import route_for
from shared.http import ApiError

router = APIRouter()

_FORWARD_REQUEST = ("content-type", "accept", "accept-language", "idempotency-key", "if-match", "if-none-match")
_FORWARD_RESPONSE = ("content-type", "content-disposition", "retry-after", "location", "etag", "cache-control")


def forward_headers(request: Request, *, with_auth: bool) -> dict[str, str]:
    headers = {name: request.headers[name] for name in _FORWARD_REQUEST if name in request.headers}
    token = bearer(request)
    if with_auth and token:
        headers["Authorization"] = f"Bearer {token}"
    previous = request.headers.get("x-forwarded-for")
    ip = client_ip(request)
    headers["X-Forwarded-For"] = f"{previous}, {ip}" if previous else ip
    return headers


def unavailable(exc: DownstreamUnavailable) -> ApiError:
    return ApiError(
        503,
        "service_unavailable",
        f"Dịch vụ {exc.service} tạm thời không sẵn sàng",
        {"service": exc.service, "reason": exc.reason},
        headers={"Retry-After": "5"},
    )


async def proxy(request: Request, ctx: GatewayContext, service: str) -> Response:
    principal = await admit(request, ctx)
    body = b""
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        body = await read_body(request, ctx.settings.max_body_bytes)
    headers = forward_headers(request, with_auth=principal is not None)
    # The path as the client sent it (still percent-encoded): decoded, a control character in it is not a URL.
    path = request.scope.get("raw_path", b"").decode("latin-1") or quote(request.url.path)
    try:
        resp = await ctx.downstreams[service].request(
            request.method,
            f"{path}?{request.url.query}" if request.url.query else path,
            headers=headers,
            content=body or None,
        )
    except DownstreamUnavailable as exc:
        raise unavailable(exc) from exc
    out = {name: resp.headers[name] for name in _FORWARD_RESPONSE if name in resp.headers}
    return Response(resp.content, status_code=resp.status_code, headers=out)


@router.api_route("/api/v1/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
async def route_to_service(rest: str, request: Request, ctx: ContextDep) -> Response:
    service = route_for(request.url.path)
    if service is None:
        raise ApiError(404)
    return await proxy(request, ctx, service)
