"""The walking skeleton of issue 2, driven through the gateway only, used by the end-to-end tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

from shared.testing import auth

UNITS = [
    {"code": "VN", "name": "Tổng LĐLĐ Việt Nam", "kind": "national", "parent_code": None},
    {"code": "TH", "name": "LĐLĐ tỉnh Thanh Hóa", "kind": "province", "parent_code": "VN", "cluster": "C1"},
    {"code": "TH-01", "name": "LĐLĐ thành phố Thanh Hóa", "kind": "district", "parent_code": "TH"},
    {
        "code": "TH-01-001",
        "name": "CĐCS Công ty Xi măng Nghi Sơn",
        "kind": "grassroots",
        "parent_code": "TH-01",
        "member_count": 420,
    },
]


def one_phase_campaign(today: date, milestones: Sequence[int] = (1, 100000)) -> dict[str, Any]:
    """One field, phase P1 open for a month around ``today``; milestones at the first valid by default."""
    return {
        "name": "01 triệu sáng kiến",
        "fields": [{"code": "production", "name": "Sản xuất kinh doanh"}],
        "application_window": {
            "from": (today - timedelta(days=300)).isoformat(),
            "to": (today + timedelta(days=60)).isoformat(),
        },
        "phases": [
            {
                "code": "P1",
                "name": "Giai đoạn 1",
                "opens_on": (today - timedelta(days=30)).isoformat(),
                "closes_on": (today + timedelta(days=30)).isoformat(),
            }
        ],
        "milestones": list(milestones),
    }


async def _eventually(call: Any, ok: Any, timeout_s: float = 30.0) -> httpx.Response:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        resp = await call()
        if ok(resp) or loop.time() > deadline:
            return resp
        await asyncio.sleep(0.2)


async def walking_skeleton(client: httpx.AsyncClient) -> dict[str, Any]:
    """Operator plans, member submits, reviewer validates; tally counts it on every ancestor."""
    today = date.today()
    operator = auth("operator", "VN", sub="op-1")
    r = await client.put("/api/v1/units", json=UNITS, headers=operator)
    assert r.status_code == 200, r.text
    assert r.json()["upserted"] == 4
    campaign = one_phase_campaign(today)
    r = await client.put("/api/v1/campaigns/1M", json=campaign, headers=operator)
    assert r.status_code == 200, r.text

    member = auth("member", "TH-01-001", sub="m-1", member_id="M-0001", name="Nguyễn Văn A")
    body = {
        "campaign": "1M",
        "unit_code": "TH-01-001",
        "field": "production",
        "title": "Cải tiến khuôn định vị",
        "problem": "Căn chỉnh thủ công mất thời gian.",
        "solution": "Khuôn định vị bằng thép tái chế.",
        "effect": "Giảm 30% thời gian.",
        "expected_benefit_vnd": 150_000_000,
        "applied_on": (today - timedelta(days=10)).isoformat(),
        "confidential": False,
        "authors": [{"member_id": "M-0001", "full_name": "Nguyễn Văn A"}],
    }

    async def submit() -> httpx.Response:
        return await client.post("/api/v1/initiatives", json=body, headers={**member, "Idempotency-Key": "e2e-1"})

    r = await _eventually(submit, lambda x: x.status_code == 201)  # the plan reaches intake by event
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["status"] == "submitted" and created["seq"] >= 1

    reviewer = auth("reviewer", "TH", sub="rv-1", member_id="M-9999")

    async def claim() -> httpx.Response:
        return await client.post("/api/v1/review/claims", json={"count": 10}, headers=reviewer)

    r = await _eventually(claim, lambda x: x.status_code == 200 and len(x.json()["items"]) == 1)
    assert r.status_code == 200, r.text
    [item] = r.json()["items"]
    assert item["initiative_id"] == created["id"] and item["title"] == "Cải tiến khuôn định vị"
    r = await client.post(
        f"/api/v1/review/items/{created['id']}/decision",
        json={"outcome": "valid", "reason": None, "note": None, "verified_benefit_vnd": None},
        headers=reviewer,
    )
    assert r.status_code == 200, r.text

    admin = auth("unit_admin", "VN", sub="ua-1")
    figures: dict[str, Any] = {}
    for code in ("TH-01-001", "TH-01", "TH", "VN"):

        async def tally(code: str = code) -> httpx.Response:
            return await client.get(f"/api/v1/tally/units/{code}", params={"campaign": "1M"}, headers=admin)

        r = await _eventually(tally, lambda x: x.status_code == 200 and x.json()["figures"]["valid"] == 1)
        assert r.status_code == 200, r.text
        f = r.json()["figures"]
        assert (f["submitted"], f["valid"], f["pending"], f["participants"]) == (1, 1, 0, 1), (code, f)
        assert f["benefit_vnd"] == 150_000_000
        figures[code] = f

    async def composed() -> httpx.Response:
        return await client.get(f"/api/v1/initiatives/{created['id']}", headers=member)

    r = await _eventually(composed, lambda x: x.status_code == 200 and x.json().get("status") == "valid")
    assert r.status_code == 200 and r.json()["status"] == "valid", r.text
    r = await client.get("/api/v1/tally/milestones", params={"campaign": "1M"})
    assert r.status_code == 200
    assert [m["n"] for m in r.json()["items"]] == [1]
    assert r.json()["items"][0]["initiative_id"] == created["id"]
    return {"initiative": created, "figures": figures}


@contextlib.asynccontextmanager
async def embedded_system(tmp_path: Path, **overrides: Any) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, Any]]]:
    """The five apps in one process (SQLite, in-process bus), running; a client on the gateway and the apps."""
    from sangkien_cli import build_embedded

    gateway, services = build_embedded(tmp_path, log_json=False, **overrides)
    async with contextlib.AsyncExitStack() as stack:
        for app in (*services.values(), gateway):
            await stack.enter_async_context(app.router.lifespan_context(app))
        transport = httpx.ASGITransport(app=gateway, client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gw", timeout=30) as client:
            yield client, {**services, "gateway": gateway}
