"""The front door every /api/v1 request passes: token, rate limit, role policy, body limit."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from gateway.context import GatewayContext
from gateway.domain.routing import allowed, is_public
from shared.auth import AuthError, Principal
from shared.http import ApiError


async def get_context(request: Request) -> GatewayContext:
    ctx: GatewayContext | None = getattr(request.app.state, "ctx", None)
    if ctx is None:
        raise ApiError(503, "starting", "Cổng đang khởi động")
    return ctx


ContextDep = Annotated[GatewayContext, Depends(get_context)]


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def admit(request: Request, ctx: GatewayContext, *, public: bool | None = None) -> Principal | None:
    """Verify the token, take from the rate-limit buckets, and apply the role policy.

    On a public route a bad token is ignored (the reader is anonymous); elsewhere it is a 401.
    """
    return await admit_call(ctx, request.method, request.url.path, bearer(request), client_ip(request), public=public)


async def admit_call(
    ctx: GatewayContext, method: str, path: str, raw: str | None, ip: str, *, public: bool | None = None
) -> Principal | None:
    """:func:`admit` on the parts of a request (the ASGI fast path has no ``Request``)."""
    public = is_public(method, path) if public is None else public
    principal: Principal | None = None
    auth_error: AuthError | None = None
    if raw is not None:
        try:
            principal = await ctx.verifier.verify(raw)
        except AuthError as exc:
            auth_error = exc
    checks = [("ip:" + ip, ctx.ip_limit)]
    if principal is not None:
        checks.append(("acct:" + principal.sub, ctx.account_limit))
    verdict = await ctx.limiter.take(checks)
    if not verdict.allowed:
        ctx.metrics.rate_limited.inc()
        retry = max(1, int(verdict.retry_after_s + 0.999))
        raise ApiError(429, headers={"Retry-After": str(retry)}, details={"retry_after_s": retry})
    if public:
        return principal
    if principal is None:
        if auth_error is not None:
            raise auth_error.api_error()
        raise ApiError(401, "unauthorized", "Cần đăng nhập", headers={"WWW-Authenticate": "Bearer"})
    if not allowed(principal, method, path):
        raise ApiError(403)
    return principal


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise ApiError(413, details={"max_bytes": limit})
        except ValueError as exc:
            raise ApiError(400, "bad_request", "Content-Length không hợp lệ") from exc
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, details={"max_bytes": limit})
        chunks.append(chunk)
    return b"".join(chunks)


async def principal_dep(request: Request, ctx: ContextDep) -> Principal:
    principal = await admit(request, ctx, public=False)
    assert principal is not None  # admit raises 401 otherwise
    return principal


PrincipalDep = Annotated[Principal, Depends(principal_dep)]
