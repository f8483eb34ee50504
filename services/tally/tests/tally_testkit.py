"""Fixtures of tally's tests: an app on SQLite with the in-process bus, a small tree, event builders."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from tally.app import create
from tally.settings import TallySettings

from shared.bus.memory import InMemoryBroker
from shared.envelope import Envelope
from shared.testing import auth, pg_database, running_app
from shared.topology import QUEUES

OP = auth("operator", "VN")

TREE: list[dict[str, Any]] = [
    {"code": "VN", "name": "Tổng LĐLĐ Việt Nam", "kind": "national", "parent_code": None},
    {"code": "TH", "name": "LĐLĐ tỉnh Thanh Hóa", "kind": "province", "parent_code": "VN", "cluster": "C1"},
    {"code": "HN", "name": "LĐLĐ TP Hà Nội", "kind": "province", "parent_code": "VN", "cluster": "C1"},
    {"code": "TH-01", "name": "LĐLĐ huyện Đông Sơn", "kind": "district", "parent_code": "TH"},
    {"code": "TH-01-001", "name": "CĐCS Công ty X", "kind": "grassroots", "parent_code": "TH-01", "member_count": 420},
    {"code": "TH-01-002", "name": "CĐCS Công ty Y", "kind": "grassroots", "parent_code": "TH-01"},
    {"code": "TH-01-001-A", "name": "CĐ bộ phận A", "kind": "department", "parent_code": "TH-01-001"},
    {"code": "HN-001", "name": "CĐCS Nhà máy Z", "kind": "grassroots", "parent_code": "HN"},
]
LEAVES = ["TH-01-001", "TH-01-002", "TH-01-001-A", "HN-001"]

CAMPAIGN: dict[str, Any] = {
    "name": "01 triệu sáng kiến",
    "fields": [{"code": "production", "name": "Sản xuất kinh doanh"}],
    "application_window": {"from": "2021-09-01", "to": "2023-09-01"},
    "phases": [
        {"code": "P1", "name": "Giai đoạn 1", "opens_on": "2022-01-08", "closes_on": "2022-05-31"},
        {"code": "P2", "name": "Giai đoạn 2", "opens_on": "2022-06-01", "closes_on": "2023-09-01"},
    ],
    "milestones": [3, 5],
}


def tally_settings(url: str, **extra: Any) -> TallySettings:
    return TallySettings(database_url=url, outbox_poll_interval_s=0.05, log_json=False, log_level="WARNING", **extra)


@pytest.fixture
def broker() -> InMemoryBroker:
    # Only tally's queue: a publish waits for every bound queue to consume, and no other service runs here.
    return InMemoryBroker({"tally": QUEUES["tally"]}, delivery_limit=3)


@pytest.fixture
async def app_client(tmp_path: Path, broker: InMemoryBroker) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create(tally_settings(f"sqlite+aiosqlite:///{tmp_path}/tally.db"), broker=broker)
    async with running_app(app) as client:
        yield app, client


@pytest.fixture
async def app_client_pg(broker: InMemoryBroker) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The same app on a fresh PostgreSQL database (its set-based write path)."""
    async with pg_database() as url:
        app = create(tally_settings(url), broker=broker)
        async with running_app(app) as client:
            yield app, client


async def _plan(app_client: tuple[FastAPI, httpx.AsyncClient]) -> tuple[FastAPI, httpx.AsyncClient]:
    _app, client = app_client
    r = await client.put("/api/v1/units", json=TREE, headers=OP)
    assert r.status_code == 200, r.text
    r = await client.put("/api/v1/campaigns/1M", json=CAMPAIGN, headers=OP)
    assert r.status_code == 200, r.text
    return app_client


@pytest.fixture
async def planned(app_client: tuple[FastAPI, httpx.AsyncClient]) -> tuple[FastAPI, httpx.AsyncClient]:
    """The app with the small tree and campaign 1M in place."""
    return await _plan(app_client)


@pytest.fixture
async def planned_pg(app_client_pg: tuple[FastAPI, httpx.AsyncClient]) -> tuple[FastAPI, httpx.AsyncClient]:
    """``planned`` on PostgreSQL."""
    return await _plan(app_client_pg)


_counter = itertools.count()


def submitted(
    initiative_id: str,
    unit: str,
    *,
    campaign: str = "1M",
    phase: str = "P1",
    authors: tuple[str, ...] = ("M-1",),
    benefit: int = 1000,
    revision: int = 0,
    submitted_at: str = "2022-03-05T02:00:00+00:00",
) -> Envelope:
    data = {
        "id": initiative_id,
        "seq": next(_counter),
        "campaign": campaign,
        "phase": phase,
        "unit_code": unit,
        "field": "production",
        "title": "Cải tiến khuôn định vị",
        "expected_benefit_vnd": benefit,
        "authors": [{"member_id": a, "full_name": f"Tác giả {a}"} for a in authors],
        "submitted_at": submitted_at,
        "revision": revision,
    }
    kind = "initiative.submitted" if revision == 0 else "initiative.revised"
    return Envelope(type=kind, data=data, producer="intake")


def reviewed(
    initiative_id: str,
    unit: str,
    outcome: str,
    seq: int,
    *,
    campaign: str = "1M",
    phase: str = "P1",
    authors: tuple[str, ...] = ("M-1",),
    benefit: int = 1000,
    verified: int | None = None,
    decided_at: str = "2022-03-07T03:00:00+00:00",
) -> Envelope:
    data = {
        "initiative_id": initiative_id,
        "campaign": campaign,
        "phase": phase,
        "unit_code": unit,
        "seq": 1,
        "title": "…",
        "authors": [{"member_id": a, "full_name": a} for a in authors],
        "submitted_at": "2022-03-05T02:00:00+00:00",
        "expected_benefit_vnd": benefit,
        "outcome": outcome,
        "reason": "duplicate" if outcome == "invalid" else None,
        "verified_benefit_vnd": verified,
        "decided_by": "rv",
        "decided_at": decided_at,
        "decision_seq": seq,
    }
    return Envelope(type="initiative.reviewed", data=data, producer="review")


def withdrawn(initiative_id: str, unit: str, *, campaign: str = "1M", phase: str = "P1") -> Envelope:
    data = {
        "id": initiative_id,
        "campaign": campaign,
        "phase": phase,
        "unit_code": unit,
        "authors": [],
        "withdrawn_at": "2022-03-06T00:00:00+00:00",
    }
    return Envelope(type="initiative.withdrawn", data=data, producer="intake")


def new_id() -> str:
    return str(uuid.uuid4())


async def figures(
    client: httpx.AsyncClient, unit: str, phase: str | None = None, campaign: str = "1M"
) -> dict[str, Any]:
    params = {"campaign": campaign} | ({"phase": phase} if phase else {})
    r = await client.get(f"/api/v1/tally/units/{unit}", params=params, headers=OP)
    assert r.status_code == 200, r.text
    return r.json()["figures"]  # type: ignore[no-any-return]
