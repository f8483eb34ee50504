"""shared.service.FastRoutes: a hot route answered without FastAPI's machinery, and handed back to the
regular route (body replayed) whenever its handler declines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter
from starlette.responses import Response

from shared.http import ApiError, JsonResponse
from shared.service import ContextDep, FastRequest, PrincipalDep, ServiceContext, ServiceDefinition, create_app
from shared.settings import ServiceSettings
from shared.testing import auth, running_app
from shared.tests.demo.app import MIGRATIONS, metadata

router = APIRouter()
calls: list[str] = []


@router.post("/api/v1/echo/{kind}")
async def echo_param(kind: str) -> dict[str, Any]:
    return {"kind": kind}


@router.post("/api/v1/echo")
async def echo(body: dict[str, Any], ctx: ContextDep, principal: PrincipalDep) -> dict[str, Any]:
    calls.append("regular")
    return {"via": "regular", "body": body, "sub": principal.sub, "service": ctx.name}


async def fast_echo(ctx: ServiceContext, request: FastRequest) -> Response | None:
    calls.append("fast")
    body = orjson.loads(request.body)
    if body.get("crash"):
        raise RuntimeError("a bug in a fast handler")
    if body.get("refuse"):
        raise ApiError(409, "refused", "Bị từ chối", {"why": body["refuse"]})
    if not body.get("fast"):
        return None
    return JsonResponse({"via": "fast", "body": body, "service": ctx.name, "ct": request.header(b"content-type")}, 201)


DEFINITION = ServiceDefinition(
    name="demo_producer",
    metadata=metadata,
    migrations=MIGRATIONS,
    routers=[router],
    fast_routes={("POST", "/api/v1/echo"): fast_echo},
)


def _app(tmp_path: Path) -> Any:
    settings = ServiceSettings(database_url=f"sqlite+aiosqlite:///{tmp_path}/fast.db", log_json=False)
    return create_app(DEFINITION, settings, topology={})


async def test_fast_handler_answers_and_declined_requests_reach_the_route_with_their_body(tmp_path: Path) -> None:
    app = _app(tmp_path)
    async with running_app(app) as client:
        calls.clear()
        fast = await client.post(
            "/api/v1/echo", json={"fast": True, "tên": "Nguyễn Thị Ánh"}, headers={"X-Correlation-ID": "c-1"}
        )
        assert fast.status_code == 201
        assert fast.json() == {
            "via": "fast",
            "body": {"fast": True, "tên": "Nguyễn Thị Ánh"},
            "service": "demo_producer",
            "ct": "application/json",
        }
        assert fast.headers["x-correlation-id"] == "c-1"
        assert calls == ["fast"]

        calls.clear()
        declined = await client.post("/api/v1/echo", json={"fast": False, "n": 1}, headers=auth("member", sub="m-1"))
        assert declined.status_code == 200
        assert declined.json()["via"] == "regular"
        assert declined.json()["body"] == {"fast": False, "n": 1}  # the body the fast handler read, replayed
        assert calls == ["fast", "regular"]

        # Declined without a token: the regular route answers its usual 401.
        assert (await client.post("/api/v1/echo", json={"fast": False})).status_code == 401

        refused = await client.post("/api/v1/echo", json={"refuse": "trùng"})
        assert refused.status_code == 409
        assert refused.json() == {"error": {"code": "refused", "message": "Bị từ chối", "details": {"why": "trùng"}}}

        crashed = await client.post("/api/v1/echo", json={"crash": True})
        assert crashed.status_code == 500
        assert crashed.json()["error"]["code"] == "internal_error" and "Traceback" not in crashed.text

        # Other paths and methods never see the fast handler.
        calls.clear()
        assert (await client.post("/api/v1/echo/x")).json() == {"kind": "x"}
        assert (await client.get("/api/v1/echo")).status_code == 405
        assert calls == []

        metrics = (await client.get("/metrics")).text
    # Fast and declined answers are labelled with the route's template, and each request is counted once.
    for status in ("201", "200", "401", "409", "500"):
        labels = f'method="POST",route="/api/v1/echo",service="demo_producer",status="{status}"'
        line = f"sangkien_demo_producer_http_requests_total{{{labels}}}"
        assert f"{line} 1.0" in metrics, status


async def test_a_body_over_the_bound_goes_to_the_regular_route_untouched(tmp_path: Path) -> None:
    app = _app(tmp_path)
    async with running_app(app) as client:
        calls.clear()
        big = {"fast": True, "text": "ư" * (1 << 20)}
        r = await client.post("/api/v1/echo", json=big, headers=auth("member"))
        assert r.status_code == 200
        assert r.json()["via"] == "regular" and len(r.json()["body"]["text"]) == 1 << 20
        assert calls == ["regular"]
