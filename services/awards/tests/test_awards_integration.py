"""Awards on the real PostgreSQL: the immutability triggers, decisions (also two at once), revocation."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from awards_testkit import OP, TOPOLOGY, harness, reviewed, unit_item
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from shared.bus.rabbitmq import RabbitMQBus
from shared.envelope import Envelope
from shared.testing import AMQP_URL, amqp_prefix, eventually, pg_database

pytestmark = pytest.mark.integration

SCHEME = {
    "campaign": "1M",
    "phase": None,
    "name": "Tập thể xuất sắc",
    "recipient": "collective",
    "unit_kind": "grassroots",
    "rule": {"min_achievement_pct": 100},
    "order_by": ["valid", "achievement_pct"],
    "max_recipients": 50,
}


async def test_decisions_and_immutability_on_postgresql(tmp_path: Path) -> None:
    async with pg_database() as url, harness(tmp_path, database_url=url) as h:
        units = [unit_item(f"GR-{n:03d}", f"K{n % 3}", 100 + n, 100) for n in range(40)]
        h.tally.add("S1", "1M", None, "2023-08-31T00:00:00+00:00", units)
        assert (await h.put_scheme("COL-1", SCHEME)).status_code == 200
        first = await h.nominate("COL-1", "S1")
        assert first.status_code == 200 and len(first.json()["items"]) == 40
        assert (await h.nominate("COL-1", "S1")).content == first.content

        body = {"decision_no": "123/QĐ-LĐLĐ", "signed_on": "2023-09-07", "approve": "all"}
        # Two operators approving at once: every unit is awarded exactly once.
        r1, r2 = await asyncio.gather(
            h.client.post("/api/v1/awards/schemes/COL-1/decision", json=body, headers=OP),
            h.client.post("/api/v1/awards/schemes/COL-1/decision", json=body, headers=OP),
        )
        assert {r1.status_code, r2.status_code} == {201}
        assert len(r1.json()["granted"]) + len(r2.json()["granted"]) == 40
        listed = (await h.client.get("/api/v1/awards", params={"campaign": "1M"})).json()["items"]
        assert sorted(a["recipient"]["unit_code"] for a in listed) == [f"GR-{n:03d}" for n in range(40)]

        engine = h.app.state.ctx.engine
        for stmt in (
            "UPDATE awards SET decision_no = 'sửa'",
            "DELETE FROM awards",
            "TRUNCATE awards CASCADE",
        ):
            with pytest.raises(DBAPIError, match="immutable"):
                async with engine.begin() as conn:
                    await conn.execute(text(stmt))

        award_id = listed[0]["id"]
        revoke = {"decision_no": "200/QĐ-LĐLĐ", "reason": "Báo cáo sai", "revoked_on": "2023-10-01"}
        r = await h.client.post(f"/api/v1/awards/{award_id}/revoke", json=revoke, headers=OP)
        assert r.status_code == 201 and r.json()["revoked"]
        with pytest.raises(DBAPIError, match="immutable"):
            async with engine.begin() as conn:
                await conn.execute(text("DELETE FROM revocations"))
        again = await h.nominate("COL-1", "S1")
        assert [i["recipient"]["unit_code"] for i in again.json()["items"]] == [listed[0]["recipient"]["unit_code"]]


async def test_events_over_rabbitmq_count_once_and_grants_are_published(tmp_path: Path) -> None:
    async with pg_database() as url, amqp_prefix(TOPOLOGY) as prefix:
        peer = RabbitMQBus(AMQP_URL, prefix=prefix, topology=TOPOLOGY)
        await peer.start()
        seen: list[Envelope] = []

        async def collect(batch: list[Any]) -> None:
            for d in batch:
                seen.append(d.envelope)
                await d.ack()

        try:
            await peer.consume("probe", collect, batch_size=50, batch_wait_s=0.02)
            async with harness(tmp_path, database_url=url, amqp=(AMQP_URL, prefix)) as h:
                h.tally.add("S1", "1M", None, "2023-08-31T00:00:00+00:00", [])
                scheme = {
                    "campaign": "1M",
                    "phase": None,
                    "name": "Cá nhân",
                    "recipient": "individual",
                    "rule": {"min_valid": 1},
                    "order_by": ["valid", "benefit_vnd"],
                    "max_recipients": 10,
                }
                assert (await h.put_scheme("IND", scheme)).status_code == 200
                a = ("M-1", "Nguyễn Văn A")
                once = reviewed("i1", [a], benefit=7, phase=None)
                await peer.publish(
                    [
                        once,
                        once,  # duplicate delivery
                        reviewed("i2", [a], outcome="invalid", seq=2, phase=None),  # newer, first
                        reviewed("i2", [a], outcome="valid", seq=1, phase=None),
                        reviewed("i3", [a], benefit=5, phase=None),
                    ]
                )

                async def facts_in() -> bool:
                    async with h.app.state.ctx.engine.connect() as conn:
                        n = (await conn.execute(text("SELECT count(*) FROM decisions"))).scalar_one()
                    return bool(n == 4)

                await eventually(facts_in, timeout_s=20)
                r = await h.nominate("IND", "S1")
                assert [(i["recipient"]["member_id"], i["figures"]) for i in r.json()["items"]] == [
                    ("M-1", {"valid": 2, "benefit_vnd": 12, "grade": "none"})
                ]
                body = {"decision_no": "7/QĐ", "signed_on": "2023-09-07", "approve": "all"}
                assert (
                    await h.client.post("/api/v1/awards/schemes/IND/decision", json=body, headers=OP)
                ).status_code == 201

                async def granted() -> bool:
                    return any(e.type == "award.granted" for e in seen)

                await eventually(granted, timeout_s=20)
                grant = next(e for e in seen if e.type == "award.granted")
                assert grant.data["recipient"] == {"member_id": "M-1", "full_name": "Nguyễn Văn A"}
        finally:
            await peer.close()
