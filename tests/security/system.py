"""The whole system seeded for the security tests: two provinces, one initiative of each, a snapshot, an
award, an import job; and the callers of the authorization matrix (issue 14, items 4 and 5).

Hà Nội (``HN``) is where every target lives; a caller "in scope" acts in ``HN``, one "out of scope" in
Thanh Hóa (``TH``), and one without ``unit`` has no unit claim at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

from sangkien_cli import build_embedded
from shared.testing import auth
from tests.flow import one_phase_campaign

ROLES = ("member", "support", "reviewer", "appraiser", "unit_admin", "operator")
CALLERS = ("in_scope", "out_of_scope", "no_unit", "no_token")
AUTHOR = "M-HN-1"  # the member who wrote the Hà Nội initiatives
STRANGER = "M-TH-9"
# No rate limit in the way: the matrix sends about 1,300 requests from one address in a few seconds.
UNLIMITED = {
    "rate_ip_per_s": 1e6,
    "rate_ip_burst": 10**6,
    "rate_account_per_s": 1e6,
    "rate_account_burst": 10**6,
    "log_json": False,
    "log_level": "WARNING",
}

UNITS: list[dict[str, Any]] = [
    {"code": "VN", "name": "Tổng LĐLĐ Việt Nam", "kind": "national", "parent_code": None},
    {"code": "HN", "name": "LĐLĐ Thành phố Hà Nội", "kind": "province", "parent_code": "VN", "cluster": "C1"},
    {"code": "HN-BD", "name": "LĐLĐ quận Ba Đình", "kind": "district", "parent_code": "HN"},
    {"code": "HN-BD-001", "name": "CĐCS Điện lực Ba Đình", "kind": "grassroots", "parent_code": "HN-BD"},
    {"code": "TH", "name": "LĐLĐ tỉnh Thanh Hóa", "kind": "province", "parent_code": "VN", "cluster": "C1"},
    {"code": "TH-01", "name": "LĐLĐ thành phố Thanh Hóa", "kind": "district", "parent_code": "TH"},
    {"code": "TH-01-001", "name": "CĐCS Xi măng Nghi Sơn", "kind": "grassroots", "parent_code": "TH-01"},
]
OPERATOR = auth("operator", "VN", sub="op-seed")
_titles = itertools.count(1)


def initiative(unit: str = "HN-BD-001", member: str = AUTHOR, title: str | None = None) -> dict[str, Any]:
    """A new initiative body; each call gets its own title, so none is refused as a duplicate."""
    return {
        "campaign": "1M",
        "unit_code": unit,
        "field": "production",
        "title": title or f"Sáng kiến kiểm thử số {next(_titles)}",
        "problem": "Lắp đặt mất nhiều thời gian",
        "solution": f"Khuôn định vị mới {next(_titles)}",
        "effect": "Giảm 30% thời gian",
        "expected_benefit_vnd": 1_000_000,
        "applied_on": (date.today() - timedelta(days=5)).isoformat(),
        "confidential": False,
        "authors": [{"member_id": member, "full_name": "Nguyễn Văn Một"}],
    }


def headers(role: str, caller: str) -> dict[str, str]:
    """The caller of the matrix: ``role`` acting in Hà Nội, in Thanh Hóa, without a unit, or no token at all."""
    if caller == "no_token":
        return {}
    member_id = {"in_scope": AUTHOR, "out_of_scope": STRANGER, "no_unit": AUTHOR}[caller] if role == "member" else None
    unit = {"in_scope": "HN", "out_of_scope": "TH", "no_unit": None}[caller]
    return auth(role, unit, sub=f"{role}-{caller}", member_id=member_id)


@dataclass
class Seeded:
    initiative: str  # Hà Nội, by AUTHOR: read, reviewed, decided on
    mutable: str  # Hà Nội, by AUTHOR: withdrawn and revised by the matrix
    elsewhere: str  # Thanh Hóa
    snapshot: str
    award: str
    import_job: str


async def _until(call: Any, ok: Any, timeout_s: float = 30.0) -> httpx.Response:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        resp = await call()
        if ok(resp):
            return resp
        if loop.time() > deadline:
            raise AssertionError(f"not ready: {resp.status_code} {resp.text[:300]}")
        await asyncio.sleep(0.1)


async def seed(client: httpx.AsyncClient) -> Seeded:
    """The plan, three initiatives, one decision, a snapshot, an award and an import job, through the gateway."""
    r = await client.put("/api/v1/units", json=UNITS, headers=OPERATOR)
    assert r.status_code == 200, r.text
    r = await client.put("/api/v1/campaigns/1M", json=one_phase_campaign(date.today()), headers=OPERATOR)
    assert r.status_code == 200, r.text
    quotas = [{"unit_code": "HN-BD-001", "phase": "P1", "assigned": 2, "self_set": 3}]
    assert (await client.put("/api/v1/campaigns/1M/quotas", json=quotas, headers=OPERATOR)).status_code == 200
    author = auth("member", "HN-BD-001", sub=AUTHOR, member_id=AUTHOR)

    async def submit(body: dict[str, Any], as_: dict[str, str]) -> str:
        r = await _until(
            lambda: client.post("/api/v1/initiatives", json=body, headers=as_), lambda r: r.status_code == 201
        )
        return str(r.json()["id"])

    first = await submit(initiative(), author)
    mutable = await submit(initiative(), author)
    elsewhere = await submit(
        initiative("TH-01-001", "M-TH-1"), auth("member", "TH-01-001", sub="M-TH-1", member_id="M-TH-1")
    )
    reviewer = auth("reviewer", "HN", sub="rev-seed")
    for iid in (first, mutable, elsewhere):
        await _until(
            lambda iid=iid: client.get(f"/api/v1/review/items/{iid}", headers=OPERATOR), lambda r: r.status_code == 200
        )
    claimed = (await client.post("/api/v1/review/claims", json={"count": 10}, headers=reviewer)).json()["items"]
    assert first in {i["initiative_id"] for i in claimed}
    r = await client.post(f"/api/v1/review/items/{first}/decision", json={"outcome": "valid"}, headers=reviewer)
    assert r.status_code == 200, r.text
    await client.post("/api/v1/review/claims/release", json={}, headers=reviewer)

    async def counted() -> httpx.Response:
        return await client.get("/api/v1/tally/units/HN?campaign=1M", headers=OPERATOR)

    await _until(counted, lambda r: r.status_code == 200 and r.json()["figures"]["valid"] == 1)
    r = await client.post("/api/v1/tally/snapshots", json={"campaign": "1M", "phase": None}, headers=OPERATOR)
    assert r.status_code == 201, r.text
    snapshot = str(r.json()["id"])
    scheme = {
        "campaign": "1M",
        "phase": None,
        "name": "Tập thể tiêu biểu",
        "recipient": "collective",
        "unit_kind": "grassroots",
        "rule": {"min_valid": 1},
        "order_by": ["valid"],
        "max_recipients": 10,
    }
    assert (await client.put("/api/v1/awards/schemes/COL-1", json=scheme, headers=OPERATOR)).status_code == 200
    r = await _until(
        lambda: client.post(
            "/api/v1/awards/schemes/COL-1/nominations", json={"snapshot_id": snapshot}, headers=OPERATOR
        ),
        lambda r: r.status_code == 200 and r.json()["items"],
    )
    decision = {"decision_no": "1/QĐ-LĐLĐ", "signed_on": date.today().isoformat(), "approve": "all"}
    r = await client.post("/api/v1/awards/schemes/COL-1/decision", json=decision, headers=OPERATOR)
    assert r.status_code == 201, r.text
    awards = (await client.get("/api/v1/awards?campaign=1M")).json()["items"]
    support = auth("support", "HN", sub="support-seed")
    r = await client.post(
        "/api/v1/imports", data={"campaign": "1M"}, files={"file": ("x.csv", import_csv(), "text/csv")}, headers=support
    )
    assert r.status_code == 202, r.text
    return Seeded(first, mutable, elsewhere, snapshot, str(awards[0]["id"]), str(r.json()["id"]))


def import_csv() -> bytes:
    from intake.adapters.imports import COLUMNS

    header = ",".join(COLUMNS)
    today = date.today().isoformat()
    row = f"HN-BD-001,production,Nhập từ tệp {next(_titles)},a,b,c,1000,{today},,{AUTHOR},Nguyễn Văn Một"
    return f"{header}\n{row}\n".encode()


@contextlib.asynccontextmanager
async def embedded(var_dir: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Seeded]]:
    """The five apps in one process (SQLite, the in-process bus), seeded; a loopback client on the gateway."""
    gateway, services = build_embedded(var_dir, environment="development", **UNLIMITED)
    async with contextlib.AsyncExitStack() as stack:
        for app in (*services.values(), gateway):
            await stack.enter_async_context(app.router.lifespan_context(app))
        transport = httpx.ASGITransport(app=gateway, client=("127.0.0.1", 5000))
        client = await stack.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url="http://gw", timeout=30)
        )
        yield client, await seed(client)
