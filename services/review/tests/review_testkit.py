"""Fixtures of review's tests: the service on SQLite with the in-process bus, a probe on what it emits."""

from __future__ import annotations

import contextlib
import itertools
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from review.app import create
from review.settings import ReviewSettings

from shared.bus.base import Delivery
from shared.bus.memory import InMemoryBroker
from shared.envelope import Envelope
from shared.testing import pg_database, running_app
from shared.topology import QUEUES

TOPOLOGY = {"review": QUEUES["review"], "probe": ("initiative.reviewed.v1", "initiative.appraised.v1")}

TREE: list[dict[str, Any]] = [
    {"code": "VN", "name": "Tổng LĐLĐ Việt Nam", "kind": "national", "path": ["VN"]},
    {"code": "TH", "name": "LĐLĐ tỉnh Thanh Hóa", "kind": "province", "parent_code": "VN", "path": ["VN", "TH"]},
    {"code": "HN", "name": "LĐLĐ TP Hà Nội", "kind": "province", "parent_code": "VN", "path": ["VN", "HN"]},
    {
        "code": "TH-01",
        "name": "LĐLĐ huyện Đông Sơn",
        "kind": "district",
        "parent_code": "TH",
        "path": ["VN", "TH", "TH-01"],
    },
    {
        "code": "TH-01-001",
        "name": "CĐCS Công ty X",
        "kind": "grassroots",
        "parent_code": "TH-01",
        "path": ["VN", "TH", "TH-01", "TH-01-001"],
    },
    {
        "code": "TH-02",
        "name": "LĐLĐ huyện Hoằng Hóa",
        "kind": "district",
        "parent_code": "TH",
        "path": ["VN", "TH", "TH-02"],
    },
    {
        "code": "HN-001",
        "name": "CĐCS Nhà máy Z",
        "kind": "grassroots",
        "parent_code": "HN",
        "path": ["VN", "HN", "HN-001"],
    },
]

_seq = itertools.count(1)


def review_settings(url: str, **extra: Any) -> ReviewSettings:
    return ReviewSettings(database_url=url, outbox_poll_interval_s=0.02, log_json=False, log_level="WARNING", **extra)


def initiative(
    unit_code: str = "TH-01-001",
    *,
    title: str = "Cải tiến khuôn định vị",
    solution: str = "Thiết kế lại khuôn định vị bằng thép tận dụng",
    authors: Sequence[str] = ("M-0001",),
    revision: int = 0,
    initiative_id: str | None = None,
    seq: int | None = None,
    campaign: str = "1M",
) -> dict[str, Any]:
    return {
        "id": initiative_id or str(uuid.uuid4()),
        "seq": seq if seq is not None else next(_seq),
        "campaign": campaign,
        "phase": "P1",
        "unit_code": unit_code,
        "field": "production",
        "title": title,
        "problem": "Khuôn cũ lệch, phế phẩm nhiều",
        "solution": solution,
        "effect": "Giảm phế phẩm 30%",
        "expected_benefit_vnd": 150_000_000,
        "applied_on": "2022-03-01",
        "confidential": False,
        "authors": [{"member_id": m, "full_name": f"Tác giả {m}"} for m in authors],
        "entered_by": "acc-1",
        "submitted_at": datetime(2022, 3, 5, 2, tzinfo=UTC).isoformat(),
        "revision": revision,
    }


@dataclass
class Review:
    app: FastAPI
    client: httpx.AsyncClient
    emitted: list[Envelope] = field(default_factory=list)

    async def send(self, event_type: str, *payloads: dict[str, Any], event_id: str | None = None) -> list[Envelope]:
        """Publish events to review's queue; returns once review has handled them."""
        envs = [Envelope(type=event_type, data=p, producer="test", id=event_id or str(uuid.uuid4())) for p in payloads]
        await self.app.state.ctx.bus.publish(envs)
        return envs

    async def submit(self, *payloads: dict[str, Any]) -> None:
        await self.send("initiative.submitted", *payloads)

    def of(self, event_type: str) -> list[dict[str, Any]]:
        return [e.data for e in self.emitted if e.type == event_type]


@contextlib.asynccontextmanager
async def start_review(app: FastAPI) -> AsyncIterator[Review]:
    async with running_app(app) as client:
        probe = Review(app, client)

        async def collect(deliveries: Sequence[Delivery]) -> None:
            for d in deliveries:
                if d.envelope is not None:
                    probe.emitted.append(d.envelope)
                await d.ack()

        await app.state.ctx.bus.consume("probe", collect, batch_size=100, batch_wait_s=0.001)
        await probe.send("unit.upserted", *({**u, "revision": 1} for u in TREE))
        yield probe


@pytest.fixture
async def pg_review() -> AsyncIterator[Review]:
    """Review on a fresh PostgreSQL database, with the in-process bus."""
    async with pg_database() as url:
        app = create(review_settings(url), broker=InMemoryBroker(TOPOLOGY, delivery_limit=3), topology=TOPOLOGY)
        async with start_review(app) as r:
            yield r


@pytest.fixture
def broker() -> InMemoryBroker:
    return InMemoryBroker(TOPOLOGY, delivery_limit=3)


@pytest.fixture
async def review(tmp_path: Path, broker: InMemoryBroker) -> AsyncIterator[Review]:
    app = create(review_settings(f"sqlite+aiosqlite:///{tmp_path}/review.db"), broker=broker, topology=TOPOLOGY)
    async with start_review(app) as r:
        yield r
