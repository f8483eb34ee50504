"""Awards on the real PostgreSQL: the immutability triggers, decisions (also two at once), revocation."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from awards_testkit import OP, harness, unit_item
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from shared.testing import pg_database

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
