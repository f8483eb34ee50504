"""Awards test kit: the app on SQLite with the in-process bus, and a fake of tally's snapshot API.

The fake implements only tally's documented internal contract (docs/events.md) over fixed data;
it stands in for a collaborator built elsewhere, never for awards itself.
"""

from __future__ import annotations

import contextlib
import itertools
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
from awards.app import create
from awards.settings import AwardsSettings
from fastapi import FastAPI, Header, Query

from shared.bus.memory import InMemoryBroker
from shared.envelope import Envelope
from shared.http import ApiError, install_error_handlers
from shared.testing import TEST_SECRET, auth, running_app
from shared.topology import QUEUES

OP = auth("operator", "VN")
TOPOLOGY = {"awards": QUEUES["awards"], "probe": ("award.granted.v1", "award.revoked.v1")}


@dataclass
class FakeTally:
    """Snapshots as tally would serve them: ``snapshots[id] = (meta, items)``."""

    snapshots: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = field(default_factory=dict)
    figure_calls: int = 0

    def add(
        self, snapshot_id: str, campaign: str, phase: str | None, taken_at: str, items: list[dict[str, Any]]
    ) -> None:
        meta = {
            "id": snapshot_id,
            "campaign": campaign,
            "phase": phase,
            "taken_at": taken_at,
            "units_count": len(items),
        }
        self.snapshots[snapshot_id] = (meta, items)

    def app(self) -> FastAPI:
        app = FastAPI()
        install_error_handlers(app)

        def check(authorization: str | None) -> None:
            if not authorization or not authorization.startswith("Bearer "):
                raise ApiError(401, "unauthorized", "Cần đăng nhập")
            claims = jwt.decode(authorization[7:], TEST_SECRET, algorithms=["HS256"])
            if not {"operator", "unit_admin"} & set(claims.get("roles") or []):
                raise ApiError(403, "forbidden", "Không có quyền")

        @app.get("/api/v1/tally/snapshots/{sid}")
        async def snapshot(sid: str, authorization: str | None = Header(default=None)) -> dict[str, Any]:
            check(authorization)
            if sid not in self.snapshots:
                raise ApiError(404, "not_found", "Không tìm thấy")
            return self.snapshots[sid][0]

        @app.get("/api/v1/tally/snapshots/{sid}/figures")
        async def figures(
            sid: str,
            kind: str | None = None,
            cursor: str | None = None,
            limit: int = Query(default=500, le=1000),
            authorization: str | None = Header(default=None),
        ) -> dict[str, Any]:
            check(authorization)
            if sid not in self.snapshots:
                raise ApiError(404, "not_found", "Không tìm thấy")
            self.figure_calls += 1
            items = [i for i in self.snapshots[sid][1] if kind is None or i["unit"]["kind"] == kind]
            start = int(cursor or 0)
            page = items[start : start + limit]
            nxt = str(start + limit) if start + limit < len(items) else None
            return {"items": page, "next_cursor": nxt}

        return app


def unit_item(
    code: str, cluster: str | None, valid: int, quota: int, participants: int = 0, benefit: int = 0
) -> dict[str, Any]:
    pct = None if quota == 0 else round(valid / quota * 100, 2)
    return {
        "unit": {
            "code": code,
            "name": f"CĐCS {code}",
            "kind": "grassroots",
            "parent_code": code[:5],
            "cluster": cluster,
        },
        "figures": {
            "submitted": valid,
            "valid": valid,
            "invalid": 0,
            "pending": 0,
            "participants": participants,
            "benefit_vnd": benefit,
            "quota": quota,
            "self_set": 0,
            "achievement_pct": pct,
        },
    }


_decided = itertools.count(1)


def ev(event_type: str, data: dict[str, Any], event_id: str | None = None) -> Envelope:
    return Envelope(type=event_type, data=data, producer="test", id=event_id or str(uuid.uuid4()))


def reviewed(
    initiative_id: str,
    authors: list[tuple[str, str]],
    *,
    outcome: str = "valid",
    seq: int = 1,
    benefit: int = 1_000_000,
    verified: int | None = None,
    decided_at: str = "2023-08-01T00:00:00+00:00",
    campaign: str = "1M",
    phase: str | None = "P1",
    unit: str = "TH-01-001",
) -> Envelope:
    return ev(
        "initiative.reviewed",
        {
            "initiative_id": initiative_id,
            "campaign": campaign,
            "phase": phase,
            "unit_code": unit,
            "seq": 1,
            "title": "Sáng kiến",
            "authors": [{"member_id": m, "full_name": n} for m, n in authors],
            "submitted_at": "2023-01-01T00:00:00+00:00",
            "expected_benefit_vnd": benefit,
            "outcome": outcome,
            "reason": None if outcome == "valid" else "duplicate",
            "note": None,
            "verified_benefit_vnd": verified,
            "decided_by": "rv",
            "decided_at": decided_at,
            "decision_seq": seq,
        },
    )


def appraised(initiative_id: str, grade: str, *, seq: int = 1, at: str = "2023-08-02T00:00:00+00:00") -> Envelope:
    return ev(
        "initiative.appraised",
        {
            "initiative_id": initiative_id,
            "campaign": "1M",
            "unit_code": "TH-01-001",
            "authors": [],
            "appraisal_count": 2,
            "mean": 9.0,
            "grade": grade,
            "appraised_at": at,
            "appraisal_seq": seq,
        },
    )


@dataclass
class Harness:
    client: httpx.AsyncClient
    app: FastAPI
    tally: FakeTally
    broker: InMemoryBroker

    async def publish(self, *envs: Envelope) -> None:
        await self.app.state.ctx.bus.publish(list(envs))

    async def emitted(self) -> list[Envelope]:
        """Drain (and acknowledge) what awards published on the bus so far."""
        out: list[Envelope] = []
        queue = self.broker.queue("probe")
        while not queue.empty():
            msg = queue.get_nowait()
            assert msg.envelope is not None
            out.append(msg.envelope)
            await msg.ack()
        return out

    async def put_scheme(self, code: str, body: dict[str, Any]) -> httpx.Response:
        return await self.client.put(f"/api/v1/awards/schemes/{code}", json=body, headers=OP)

    async def nominate(self, code: str, snapshot_id: str, headers: dict[str, str] = OP) -> httpx.Response:
        return await self.client.post(
            f"/api/v1/awards/schemes/{code}/nominations", json={"snapshot_id": snapshot_id}, headers=headers
        )


@contextlib.asynccontextmanager
async def harness(
    tmp_path: Path, database_url: str | None = None, amqp: tuple[str, str] | None = None
) -> AsyncIterator[Harness]:
    """The app; on the in-process bus, or on RabbitMQ when ``amqp=(url, prefix)`` is given."""
    tally = FakeTally()
    broker = InMemoryBroker(TOPOLOGY, delivery_limit=3)
    settings = AwardsSettings(
        database_url=database_url or f"sqlite+aiosqlite:///{tmp_path}/awards.db",
        outbox_poll_interval_s=0.05,
        log_json=False,
        log_level="WARNING",
        tally_page_size=300,
        amqp_url=amqp[0] if amqp else None,
        amqp_prefix=amqp[1] if amqp else "",
    )
    app = create(
        settings,
        broker=broker,
        topology=TOPOLOGY,
        http_transports={"tally": httpx.ASGITransport(app=tally.app())},
    )
    async with running_app(app) as client:
        yield Harness(client, app, tally, broker)
