"""Fakes of the gateway's collaborators (small FastAPI apps standing in for the four services)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from gateway.app import create
from gateway.settings import GatewaySettings

from shared.testing import eventually, running_app

INITIATIVE_ID = str(uuid.UUID(int=17))
UNKNOWN_ID = str(uuid.UUID(int=404))

# SPEC §8 (method, path template) per service: the fakes declare them, so the merged OpenAPI can be checked.
SPEC_PATHS: dict[str, list[tuple[str, str]]] = {
    "tally": [
        ("PUT", "/api/v1/units"),
        ("POST", "/api/v1/units/import"),
        ("GET", "/api/v1/units/{code}"),
        ("PUT", "/api/v1/campaigns/{code}"),
        ("PUT", "/api/v1/campaigns/{code}/quotas"),
        ("GET", "/api/v1/tally/units/{code}"),
        ("GET", "/api/v1/tally/rankings"),
        ("GET", "/api/v1/tally/timeseries"),
        ("GET", "/api/v1/tally/milestones"),
        ("POST", "/api/v1/tally/snapshots"),
        ("GET", "/api/v1/tally/snapshots/{snapshot_id}"),
    ],
    "intake": [
        ("POST", "/api/v1/initiatives"),
        ("POST", "/api/v1/initiatives/batch"),
        ("POST", "/api/v1/imports"),
        ("GET", "/api/v1/imports/{import_id}"),
        ("GET", "/api/v1/initiatives"),
        ("GET", "/api/v1/initiatives/{initiative_id}"),
        ("PATCH", "/api/v1/initiatives/{initiative_id}"),
        ("POST", "/api/v1/initiatives/{initiative_id}/withdraw"),
    ],
    "review": [
        ("POST", "/api/v1/review/claims"),
        ("POST", "/api/v1/review/claims/release"),
        ("POST", "/api/v1/review/items/{initiative_id}/decision"),
        ("POST", "/api/v1/review/decisions/batch"),
        ("GET", "/api/v1/review/stats"),
        ("POST", "/api/v1/review/items/{initiative_id}/appraisals"),
        ("GET", "/api/v1/review/items/{initiative_id}"),
    ],
    "awards": [
        ("PUT", "/api/v1/awards/schemes/{code}"),
        ("POST", "/api/v1/awards/schemes/{code}/nominations"),
        ("POST", "/api/v1/awards/schemes/{code}/decision"),
        ("GET", "/api/v1/awards"),
        ("GET", "/api/v1/awards/schemes/{code}/export"),
    ],
}

RECORD = {
    "id": INITIATIVE_ID,
    "seq": 17,
    "campaign": "1M",
    "unit_code": "HN-BD-001",
    "status": "valid",
    "title": "Cải tiến khuôn định vị",
    "authors": [{"member_id": "M-0001", "full_name": "Nguyễn Văn An"}, {"member_id": "M-0002", "full_name": "B"}],
}


@dataclass
class Behaviour:
    """How the fakes behave in a test: which are slow, what they saw."""

    slow: set[str] = field(default_factory=set)
    failing: set[str] = field(default_factory=set)
    seen: list[tuple[str, str, str, dict[str, str], bytes]] = field(default_factory=list)


def fake_service(name: str, behaviour: Behaviour) -> FastAPI:
    app = FastAPI(title=f"fake {name}")

    async def handler(request: Request) -> Response:
        body = await request.body()
        behaviour.seen.append((name, request.method, request.url.path, dict(request.headers), body))
        if name in behaviour.slow:
            await asyncio.sleep(5)
        if name in behaviour.failing:
            return JSONResponse({"error": {"code": "boom", "message": "x", "details": None}}, 503)
        path = request.url.path
        if name == "intake" and request.method == "GET" and path.startswith("/api/v1/initiatives/"):
            if path.endswith(INITIATIVE_ID):
                return JSONResponse(RECORD)
            return JSONResponse({"error": {"code": "not_found", "message": "Không tìm thấy", "details": None}}, 404)
        if name == "review" and path.startswith("/api/v1/review/items/") and request.method == "GET":
            return JSONResponse(
                {
                    "initiative_id": INITIATIVE_ID,
                    "status": "decided",
                    "decisions": [
                        {
                            "outcome": "valid",
                            "reason": None,
                            "note": None,
                            "decided_at": "2026-01-02",
                            "decision_seq": 2,
                        },
                        {
                            "outcome": "revision",
                            "reason": None,
                            "note": "x",
                            "decided_at": "2026-01-01",
                            "decision_seq": 1,
                        },
                    ],
                    "appraisal": {"count": 2, "mean": 8.75, "grade": "excellent"},
                }
            )
        if name == "awards" and path == "/api/v1/awards":
            member = request.query_params.get("member")
            unit = request.query_params.get("unit")
            items = []
            if member == "M-0001":
                items = [{"id": "a1", "scheme": "IND-1", "recipient": {"member_id": "M-0001"}, "revoked": False}]
            if unit:
                items = [{"id": "a2", "scheme": "COL-1", "recipient": {"unit_code": unit}, "revoked": False}]
            return JSONResponse({"items": items})
        if name == "awards" and path.endswith("/export"):
            return Response(
                b"a,b\n1,2\n",
                media_type="text/csv",
                headers={"Content-Disposition": 'attachment; filename="awards.csv"'},
            )
        if name == "tally" and path.startswith("/api/v1/tally/units/"):
            code = path.rsplit("/", 1)[1]
            kids = {"HN": ["HN-BD", "HN-CG", "HN-XX"], "HN-BD": ["HN-BD-001"]}.get(code, [])
            valid = {"HN-BD": 7, "HN-CG": 9, "HN-XX": 7}
            return JSONResponse(
                {
                    "unit": {"code": code, "name": code, "kind": "district"},
                    "campaign": request.query_params.get("campaign"),
                    "figures": {"submitted": 10, "valid": valid.get(code, 3), "quota": 20},
                    "children": [{"unit": {"code": k, "name": k}, "figures": {"valid": valid.get(k, 1)}} for k in kids],
                }
            )
        if name == "tally" and path.startswith("/api/v1/units/"):
            code = path.rsplit("/", 1)[1]
            parent = {"HN-BD": "HN", "HN-CG": "HN", "HN": "VN"}.get(code)
            return JSONResponse({"code": code, "name": f"Đơn vị {code}", "kind": "district", "parent_code": parent})
        if name == "tally" and path == "/api/v1/tally/milestones":
            return JSONResponse({"items": [{"n": n, "initiative_id": "x", "unit_code": "HN"} for n in (1, 2)]})
        if name == "review" and path == "/api/v1/review/claims":
            items = [
                {
                    "initiative_id": str(uuid.UUID(int=100 + i)),
                    "unit_code": "HN-BD-001",
                    "title": title,
                    "problem": "Lắp cáp mất nhiều thời gian",
                    "solution": "Dùng khuôn định vị bằng thép",
                    "effect": "Giảm 30% thời gian",
                    "authors": [{"member_id": "M-0001", "full_name": "Nguyễn Văn An"}],
                    "expected_benefit_vnd": 1000,
                    "confidential": False,
                    "similar": [{"initiative_id": INITIATIVE_ID, "title": "Cải tiến khuôn định vị cáp", "score": 0.8}],
                }
                for i, title in enumerate(("Khuôn định vị cáp ngầm", "Đặt lịch khám qua Zalo"))
            ]
            return JSONResponse({"lease_expires_at": "2099-01-01T00:00:00+00:00", "items": items})
        if name == "intake" and path == "/api/v1/initiatives" and request.method == "GET":
            item = {**RECORD, "status": "revision_requested", "submitted_at": "2026-01-01T00:00:00+00:00"}
            return JSONResponse({"items": [item], "next_cursor": None})
        if name == "intake" and request.method == "PATCH":
            return JSONResponse({**RECORD, "status": "submitted"})
        if name == "intake" and path == "/api/v1/initiatives" and request.method == "POST":
            return JSONResponse({"id": str(uuid.uuid4()), "seq": 42, "status": "submitted"}, 201)
        if name == "review" and path == "/api/v1/review/stats":
            return JSONResponse({"pending": 3})
        status = 201 if request.method == "POST" else 200
        headers = {"Retry-After": "7"} if request.query_params.get("retry") else {}
        return JSONResponse({"service": name, "path": path, "query": str(request.url.query)}, status, headers=headers)

    for method, path in SPEC_PATHS[name]:
        app.add_api_route(path, handler, methods=[method])
    app.add_api_route("/api/v1/ops/" + name + "/dead-letters", handler, methods=["GET"])

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


@dataclass
class Harness:
    behaviour: Behaviour
    client: httpx.AsyncClient
    app: FastAPI

    def calls(self, service: str | None = None) -> list[tuple[str, str, str, dict[str, str], bytes]]:
        return [c for c in self.behaviour.seen if service is None or c[0] == service]


GatewayFactory = Callable[..., contextlib.AbstractAsyncContextManager[Harness]]


@pytest.fixture
def gateway() -> GatewayFactory:
    """``async with gateway(stopped={"awards"}, **settings) as h``: a gateway in front of the fakes.

    A stopped service has no transport and points at a closed loopback port (a real refused connection).
    """

    @contextlib.asynccontextmanager
    async def make(stopped: set[str] | frozenset[str] = frozenset(), **overrides: Any) -> AsyncIterator[Harness]:
        behaviour = Behaviour()
        transports = {n: httpx.ASGITransport(app=fake_service(n, behaviour)) for n in SPEC_PATHS if n not in stopped}
        urls = {f"{n}_url": "http://127.0.0.1:9" for n in stopped}
        settings = GatewaySettings(**{"redis_url": None, "log_json": False, **urls, **overrides})
        app = create(settings, transports=transports)
        async with running_app(app) as client:
            yield Harness(behaviour, client, app)

    return make


@contextlib.asynccontextmanager
async def _served(app: FastAPI) -> AsyncIterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="off", timeout_keep_alive=1, proxy_headers=False)
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))

    async def started() -> bool:
        return bool(server.started) or task.done()

    await eventually(started, timeout_s=10, interval_s=0.01)
    if task.done():
        task.result()  # raise what stopped it
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


Served = Callable[[FastAPI], contextlib.AbstractAsyncContextManager[str]]


@pytest.fixture
def served() -> Served:
    """``async with served(app) as base_url``: ``app`` behind a real uvicorn on a loopback port
    (keep-alive timeout 1 s, no proxy headers)."""
    return _served


@pytest.fixture
def spec_paths() -> dict[str, list[tuple[str, str]]]:
    return SPEC_PATHS


@pytest.fixture
def ids() -> tuple[str, str]:
    """(the id the fake intake knows, an id it does not)"""
    return INITIATIVE_ID, UNKNOWN_ID


@pytest.fixture
def fake_transports() -> Callable[[], tuple[dict[str, httpx.AsyncBaseTransport], Behaviour]]:
    """A fresh set of fake services as in-process transports, and the behaviour record they share."""

    def make() -> tuple[dict[str, httpx.AsyncBaseTransport], Behaviour]:
        behaviour = Behaviour()
        return {n: httpx.ASGITransport(app=fake_service(n, behaviour)) for n in SPEC_PATHS}, behaviour

    return make
