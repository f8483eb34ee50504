"""shared.fast_routes: a route written once, as a FastAPI route, answered without FastAPI's routing when the
request is the plain case, and handed to the regular stack (body replayed) otherwise."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, FastAPI, Header, Request
from pydantic import BaseModel, ConfigDict
from starlette.types import Receive, Scope, Send

from shared.fast_routes import MAX_BODY
from shared.http import JsonResponse
from shared.service import ContextDep, PrincipalDep, ServiceDefinition, create_app
from shared.settings import ServiceSettings
from shared.testing import auth, running_app
from shared.tests.demo.app import MIGRATIONS, metadata

router = APIRouter()


class EchoIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str
    refuse: str | None = None
    crash: bool = False


class Refused(Exception):
    pass


@router.post("/api/v1/echo/{kind}")
async def echo_param(kind: str) -> dict[str, Any]:
    return {"kind": kind}


@router.post("/api/v1/echo", status_code=201)
async def echo(
    body: EchoIn,
    ctx: ContextDep,
    principal: PrincipalDep,
    key: Annotated[str | None, Header(alias="X-Key", min_length=1, max_length=5)] = None,
) -> JsonResponse:
    if body.crash:
        raise RuntimeError("a bug in the route")
    if body.refuse:
        raise Refused(body.refuse)
    return JsonResponse({"text": body.text, "sub": principal.sub, "service": ctx.name, "key": key}, 201)


def _app(tmp_path: Path) -> tuple[FastAPI, list[str]]:
    definition = ServiceDefinition(
        name="demo_producer", metadata=metadata, migrations=MIGRATIONS, routers=[router], fast_routes=[echo]
    )
    settings = ServiceSettings(database_url=f"sqlite+aiosqlite:///{tmp_path}/fast.db", log_json=False)
    app = create_app(definition, settings, topology={})

    async def refused(_request: Request, exc: Exception) -> JsonResponse:
        return JsonResponse({"error": {"code": "refused", "message": "Bị từ chối", "details": str(exc)}}, 409)

    app.add_exception_handler(Refused, refused)
    # Which requests the fast path handed on: the regular stack it calls, observed.
    handed: list[str] = []
    fast_routes = app._fast.app  # type: ignore[attr-defined]  # ObservabilityMiddleware(FastRoutes)
    regular = fast_routes.regular

    async def counted(scope: Scope, receive: Receive, send: Send) -> None:
        handed.append(scope["path"])
        await regular(scope, receive, send)

    fast_routes.regular = counted
    return app, handed


async def test_the_route_is_answered_fast_and_what_it_declines_gets_the_regular_answer(tmp_path: Path) -> None:
    app, handed = _app(tmp_path)
    member = auth("member", sub="m-1")
    async with running_app(app) as client:
        fast = await client.post(
            "/api/v1/echo", json={"text": "Nguyễn Thị Ánh"}, headers=member | {"X-Key": "k1", "X-Correlation-ID": "c-1"}
        )
        assert fast.status_code == 201
        assert fast.json() == {"text": "Nguyễn Thị Ánh", "sub": "m-1", "service": "demo_producer", "key": "k1"}
        assert fast.headers["x-correlation-id"] == "c-1"
        assert handed == []

        # No token, a bad body, a header over its bound, a body not declared JSON: the regular route's answers.
        assert (await client.post("/api/v1/echo", json={"text": "a"})).status_code == 401
        bad = await client.post("/api/v1/echo", json={"text": "a", "extra": 1}, headers=member)
        assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "extra"
        long_key = await client.post("/api/v1/echo", json={"text": "a"}, headers=member | {"X-Key": "k" * 6})
        assert long_key.status_code == 422 and long_key.json()["error"]["details"][0]["field"] == "X-Key"
        plain = await client.post(
            "/api/v1/echo", content=b'{"text": "a"}', headers=member | {"Content-Type": "text/plain"}
        )
        assert plain.status_code == 422
        assert handed == ["/api/v1/echo"] * 4

        # What the route raises is answered by the app's own handlers, as in the regular stack.
        refused = await client.post("/api/v1/echo", json={"text": "a", "refuse": "trùng"}, headers=member)
        assert refused.status_code == 409 and refused.json()["error"]["details"] == "trùng"
        crashed = await client.post("/api/v1/echo", json={"text": "a", "crash": True}, headers=member)
        assert crashed.status_code == 500
        assert crashed.json()["error"]["code"] == "internal_error" and "Traceback" not in crashed.text
        assert len(handed) == 4

        # Other paths never see the fast path.
        assert (await client.post("/api/v1/echo/x")).json() == {"kind": "x"}
        assert len(handed) == 4
        metrics = (await client.get("/metrics")).text
    # Fast and handed-on answers are labelled with the route's template, and each request is counted once.
    for status, n in (("201", 1), ("401", 1), ("422", 3), ("409", 1), ("500", 1)):
        labels = f'method="POST",route="/api/v1/echo",service="demo_producer",status="{status}"'
        assert f"sangkien_demo_producer_http_requests_total{{{labels}}} {n}.0" in metrics, status


async def test_a_body_over_the_bound_goes_to_the_regular_route_untouched(tmp_path: Path) -> None:
    app, handed = _app(tmp_path)
    async with running_app(app) as client:
        # A batch's size (1,000 initiatives are ~1.3 MB) is answered fast.
        batch_sized = {"text": "ư" * 700_000}
        r = await client.post("/api/v1/echo", json=batch_sized, headers=auth("member"))
        assert r.status_code == 201 and r.json()["text"] == batch_sized["text"]
        assert handed == []
        big = {"text": "ư" * (MAX_BODY // 2 + 1)}  # two bytes each in UTF-8
        r = await client.post("/api/v1/echo", json=big, headers=auth("member"))
        assert r.status_code == 201 and len(r.json()["text"]) == MAX_BODY // 2 + 1
        assert handed == ["/api/v1/echo"]


def test_a_route_with_a_parameter_it_cannot_fill_is_refused_at_start(tmp_path: Path) -> None:
    other = APIRouter()

    @other.post("/api/v1/query")
    async def with_query(q: str) -> JsonResponse:
        return JsonResponse({"q": q})

    definition = ServiceDefinition(
        name="demo_producer", metadata=metadata, migrations=MIGRATIONS, routers=[other], fast_routes=[with_query]
    )
    settings = ServiceSettings(database_url=f"sqlite+aiosqlite:///{tmp_path}/q.db", log_json=False)
    with pytest.raises(TypeError, match="cannot be served"):
        create_app(definition, settings, topology={})
