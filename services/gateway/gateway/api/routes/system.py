"""/health, /metrics, the merged OpenAPI (/api/v1/openapi.json, /docs) and development sign-in."""

from __future__ import annotations

import asyncio
import copy
import ipaddress
from typing import Any

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.responses import HTMLResponse, Response

from gateway.adapters.downstream import DownstreamUnavailable
from gateway.api.deps import ContextDep, admit
from gateway.context import GatewayContext
from gateway.domain.routing import SERVICES
from shared.auth import mint_token
from shared.http import ApiError, JsonResponse
from shared.metrics import CONTENT_TYPE_LATEST

router = APIRouter()


@router.get("/health", tags=["ops"])
async def health(ctx: ContextDep) -> JsonResponse:
    """The gateway is up; each downstream's /health and Redis are reported beside it."""

    async def probe(name: str) -> tuple[str, Any]:
        try:
            resp = await asyncio.wait_for(ctx.downstreams[name].request("GET", "/health", timeout_s=1.5), 2)
            body = resp.json() if resp.headers.get("content-type", "").startswith("application/json") else None
            return name, {"ok": resp.status_code == 200, "status": resp.status_code, "body": body}
        except (DownstreamUnavailable, TimeoutError, ValueError) as exc:
            return name, {"ok": False, "error": str(exc)}

    results = dict(await asyncio.gather(*(probe(n) for n in SERVICES)))
    checks: dict[str, Any] = {"downstreams": results}
    if ctx.redis is not None:
        try:
            checks["redis"] = bool(await asyncio.wait_for(ctx.redis.ping(), 1.5))
        except Exception:
            checks["redis"] = False
    ok = all(r["ok"] for r in results.values()) and checks.get("redis", True) is not False
    breakers = {n: ctx.downstreams[n].breaker.state for n in SERVICES}
    body = {"status": "ok" if ok else "degraded", "service": "gateway", "checks": checks, "breakers": breakers}
    # The gateway itself answers: 200 even when degraded, so a load balancer keeps it in rotation.
    return JsonResponse(body, 200)


@router.get("/health/live", tags=["ops"])
async def live() -> JsonResponse:
    """The process answers; an orchestrator restarts it only when this fails."""
    return JsonResponse({"status": "ok", "service": "gateway"})


@router.get("/health/ready", tags=["ops"])
async def ready(request: Request) -> JsonResponse:
    """Takes traffic once started and until it stops; a downstream that is down degrades composed views,
    it does not take the gateway out of rotation."""
    if getattr(request.app.state, "ctx", None) is None:
        return JsonResponse({"status": "unready", "service": "gateway"}, 503)
    return JsonResponse({"status": "ok", "service": "gateway"})


@router.get("/metrics", tags=["ops"])
async def metrics(ctx: ContextDep) -> Response:
    return Response(ctx.metrics.base.render(), media_type=CONTENT_TYPE_LATEST)


# ---- one OpenAPI for the public API -------------------------------------------------------------


def _rename_refs(doc: Any, renames: dict[str, str]) -> Any:
    if not renames:
        return doc
    raw = orjson.dumps(doc).decode()
    for old, new in renames.items():
        raw = raw.replace(f'"#/components/schemas/{old}"', f'"#/components/schemas/{new}"')
    return orjson.loads(raw)


ERROR_SCHEMA: dict[str, Any] = {
    "title": "ApiError",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "details": {}},
        }
    },
}
_ERROR_RESPONSE = {
    "description": "Lỗi (SPEC §8): {error: {code, message, details}}",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ApiError"}}},
}


def _document_errors(op: dict[str, Any]) -> None:
    """Every operation answers its errors in the SPEC §8 shape: FastAPI's own 422 schema (``detail``) is not
    what the services send, and 4xx/503 were not documented at all."""
    responses = op.setdefault("responses", {})
    responses["422"] = _ERROR_RESPONSE
    responses.setdefault("4XX", _ERROR_RESPONSE)
    responses.setdefault("503", _ERROR_RESPONSE)


def merge_openapi(own: dict[str, Any], services: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The services' own schemas, paths under /api/v1 only; the gateway's composed routes win on a clash."""
    merged: dict[str, Any] = {
        "openapi": own.get("openapi", "3.1.0"),
        "info": {
            "title": "Sáng kiến — public API",
            "version": own.get("info", {}).get("version", "1"),
            "description": "Merged at runtime from the services' own OpenAPI documents and the gateway's routes.",
        },
        "paths": {},
        "components": {"schemas": {}, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
    }
    schemas: dict[str, Any] = merged["components"]["schemas"]
    schemas["ApiError"] = ERROR_SCHEMA
    for name, doc in [*services.items(), ("gateway", own)]:
        theirs = (doc.get("components") or {}).get("schemas") or {}
        renames = {k: f"{name}__{k}" for k, v in theirs.items() if k in schemas and schemas[k] != v}
        doc = _rename_refs(doc, renames)
        # The schema itself under its new name too: before, only the references were renamed, so review's
        # batch of decisions pointed at nothing and readers fell back on intake's ``items`` (issue 14).
        for key, schema in ((doc.get("components") or {}).get("schemas") or {}).items():
            schemas.setdefault(renames.get(key, key), schema)
        for path, item in (doc.get("paths") or {}).items():
            if not path.startswith("/api/v1/"):
                continue
            tagged = copy.deepcopy(item)
            for op in tagged.values():
                if isinstance(op, dict):
                    op.setdefault("tags", [name])
                    _document_errors(op)
            if name == "gateway":
                merged["paths"].setdefault(path, {}).update(tagged)
            else:
                target = merged["paths"].setdefault(path, {})
                for method, op in tagged.items():
                    target.setdefault(method, op)
    return merged


async def _service_docs(ctx: GatewayContext) -> tuple[dict[str, dict[str, Any]], list[str]]:
    loop = asyncio.get_running_loop()
    cache = ctx.openapi_cache
    if (
        cache.get("at") is not None
        and loop.time() - cache["at"] < ctx.settings.openapi_cache_s
        and not cache["missing"]
    ):
        return cache["docs"], cache["missing"]

    async def fetch(name: str) -> tuple[str, dict[str, Any] | None]:
        try:
            t = ctx.settings.openapi_fetch_timeout_s
            resp = await asyncio.wait_for(ctx.downstreams[name].request("GET", "/openapi.json", timeout_s=t), t)
            return name, resp.json() if resp.status_code == 200 else None
        except (DownstreamUnavailable, TimeoutError, ValueError):
            return name, None

    fetched = dict(await asyncio.gather(*(fetch(n) for n in SERVICES)))
    previous: dict[str, dict[str, Any]] = cache.get("docs", {})
    docs = {n: d if d is not None else previous.get(n) for n, d in fetched.items()}
    docs_ok = {n: d for n, d in docs.items() if d is not None}
    missing = [n for n in SERVICES if n not in docs_ok]
    cache.update(at=loop.time(), docs=docs_ok, missing=missing)
    return docs_ok, missing


@router.get("/api/v1/openapi.json", include_in_schema=False)
async def openapi(request: Request, ctx: ContextDep) -> JsonResponse:
    docs, missing = await _service_docs(ctx)
    merged = merge_openapi(request.app.openapi(), docs)
    merged["x-missing-services"] = missing
    return JsonResponse(merged)


@router.get("/docs", include_in_schema=False)
async def docs_page() -> HTMLResponse:
    from gateway.web.docs import DOCS_HTML

    return HTMLResponse(DOCS_HTML)


# ---- development sign-in --------------------------------------------------------------------------
# Registered only when ENVIRONMENT=development (gateway.app), and answered only to loopback clients: the
# development secret is in the repository, so these tokens must never be handed out over a network.

dev_router = APIRouter(tags=["development"])


class DevTokenRequest(BaseModel):
    account: str = Field(min_length=1, max_length=40)


def _loopback_only(request: Request, ctx: GatewayContext) -> None:
    host = request.client.host if request.client else ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if ctx.settings.environment != "development" or not loopback:
        raise ApiError(403, "forbidden", "Chỉ dùng được trên máy phát triển (127.0.0.1)")


@dev_router.get("/api/v1/dev/accounts")
async def dev_accounts(request: Request, ctx: ContextDep) -> dict[str, Any]:
    _loopback_only(request, ctx)
    return {"items": [a.model_dump() for a in ctx.settings.demo_accounts()], "campaign": ctx.settings.demo_campaign}


@dev_router.post("/api/v1/dev/token")
async def dev_token(body: DevTokenRequest, request: Request, ctx: ContextDep) -> dict[str, Any]:
    """Mint an HS256 token for a demo account (SPEC §6, development only)."""
    _loopback_only(request, ctx)
    if not ctx.settings.jwt_secret:
        raise ApiError(404)
    await admit(request, ctx, public=True)  # rate limited like everything else
    accounts = {a.key: a for a in ctx.settings.demo_accounts()}
    account = accounts.get(body.account)
    if account is None:
        raise ApiError(422, "validation_error", "Dữ liệu không hợp lệ", [{"field": "account", "message": "Không có"}])
    token = mint_token(
        ctx.settings.jwt_secret,
        sub=account.member_id or f"demo-{account.key}",
        roles=account.roles,
        unit=account.unit,
        name=account.name,
        member_id=account.member_id,
        ttl_s=ctx.settings.dev_token_ttl_s,
    )
    return {"token": token, "account": account.model_dump(), "expires_in": ctx.settings.dev_token_ttl_s}
