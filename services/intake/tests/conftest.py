"""Fixtures of intake's tests: an app on SQLite + in-memory broker, the plan loaded through events,
and an observer queue that collects what intake emits."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from intake.app import create
from intake.runtime import runtime_of
from intake.settings import IntakeSettings

from shared.bus.memory import InMemoryBroker
from shared.envelope import Envelope
from shared.testing import auth, running_app
from shared.topology import QUEUES

TOPOLOGY = {
    "intake": QUEUES["intake"],
    "observer": ("initiative.submitted.v1", "initiative.revised.v1", "initiative.withdrawn.v1"),
}
NOW = datetime(2022, 3, 5, 2, 0, tzinfo=UTC)  # 09:00 in Hà Nội, phase P1 open

UNITS = [
    ("VN", "national", None, ["VN"]),
    ("TH", "province", "VN", ["VN", "TH"]),
    ("TH-01", "district", "TH", ["VN", "TH", "TH-01"]),
    ("TH-01-001", "grassroots", "TH-01", ["VN", "TH", "TH-01", "TH-01-001"]),
    ("TH-01-002", "grassroots", "TH-01", ["VN", "TH", "TH-01", "TH-01-002"]),
    ("TH-01-001-D1", "department", "TH-01-001", ["VN", "TH", "TH-01", "TH-01-001", "TH-01-001-D1"]),
    ("HN", "province", "VN", ["VN", "HN"]),
    ("HN-01", "district", "HN", ["VN", "HN", "HN-01"]),
    ("HN-01-001", "grassroots", "HN-01", ["VN", "HN", "HN-01", "HN-01-001"]),
]
CAMPAIGN = {
    "code": "1M",
    "name": "01 triệu sáng kiến",
    "fields": [{"code": "production", "name": "Sản xuất kinh doanh"}, {"code": "safety", "name": "An toàn lao động"}],
    "application_window": {"from": "2021-09-01", "to": "2023-09-01"},
    "phases": [
        {"code": "P1", "name": "Giai đoạn 1", "opens_on": "2022-01-08", "closes_on": "2022-05-31"},
        {"code": "P2", "name": "Giai đoạn 2", "opens_on": "2022-06-01", "closes_on": "2023-09-01"},
    ],
    "milestones": [100000],
    "revision": 1,
}


def plan_events() -> list[Envelope]:
    events = [
        Envelope(
            type="unit.upserted",
            producer="tally",
            data={"code": c, "name": f"Đơn vị {c}", "kind": k, "parent_code": p, "path": path, "revision": 1},
        )
        for c, k, p, path in UNITS
    ]
    return [*events, Envelope(type="campaign.upserted", producer="tally", data=CAMPAIGN)]


def body(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "campaign": "1M",
        "unit_code": "TH-01-001",
        "field": "production",
        "title": "Cải tiến khuôn định vị",
        "problem": "Khuôn cũ lệch",
        "solution": "Thêm chốt định vị",
        "effect": "Giảm phế phẩm",
        "expected_benefit_vnd": 150_000_000,
        "applied_on": "2022-03-01",
        "confidential": False,
        "authors": [{"member_id": "M-0001", "full_name": "Nguyễn Văn A"}],
    }
    return base | over


def member(mid: str = "M-0001", unit: str = "TH-01-001") -> dict[str, str]:
    return auth("member", unit, sub=f"acc-{mid}", member_id=mid)


def support(unit: str = "TH-01") -> dict[str, str]:
    return auth("support", unit, sub=f"support-{unit}")


@dataclass
class World:
    app: Any
    client: httpx.AsyncClient
    broker: InMemoryBroker
    emitted: list[Envelope] = field(default_factory=list)

    @property
    def ctx(self) -> Any:
        return self.app.state.ctx

    def set_now(self, now: datetime) -> None:
        runtime_of(self.ctx).clock = lambda: now

    async def publish(self, *envelopes: Envelope) -> None:
        await self.ctx.bus.publish(list(envelopes))

    async def wait_emitted(self, event_type: str, n: int = 1, timeout_s: float = 5.0) -> list[Envelope]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            found = [e for e in self.emitted if e.type == event_type]
            if len(found) >= n:
                return found
            if loop.time() > deadline:
                raise AssertionError(f"{event_type} x{n} not emitted; got {[e.type for e in self.emitted]}")
            await asyncio.sleep(0.02)


def settings_for(path: Path, **over: Any) -> IntakeSettings:
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{path}",
        "outbox_poll_interval_s": 0.05,
        "log_json": False,
        "fixed_now": NOW,
        "group_commit_window_ms": 1.0,
    }
    return IntakeSettings(**(values | over))


@contextlib.asynccontextmanager
async def world_on(
    db_url_or_path: Path | str, broker: InMemoryBroker | None = None, **over: Any
) -> AsyncIterator[World]:
    broker = broker or InMemoryBroker(TOPOLOGY)
    settings = (
        settings_for(db_url_or_path, **over)
        if isinstance(db_url_or_path, Path)
        else settings_for(Path("unused"), database_url=db_url_or_path, **over)
    )
    app = create(settings, broker=broker, topology=TOPOLOGY)
    async with running_app(app) as client:
        world = World(app, client, broker)
        queue = broker.queue("observer")

        async def observe() -> None:
            while True:
                msg = await queue.get()
                if msg.envelope is not None:
                    world.emitted.append(msg.envelope)
                await msg.ack()

        task = asyncio.create_task(observe())
        try:
            await world.publish(*plan_events())
            yield world
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with world_on(tmp_path / "intake.db") as w:
        yield w


@pytest.fixture
def kit() -> Any:
    """This module's helpers (body, member, support, world_on...) for the test modules."""
    import sys

    return sys.modules[__name__]
