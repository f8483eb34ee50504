"""Awards with the real tally service in one process (as the embedded runner composes them): one
in-memory broker, tally's ASGI app as awards' "tally" transport. Figures frozen by a tally
snapshot are the ones nominated, even after live figures move on."""

from __future__ import annotations

from pathlib import Path

import httpx
from awards.app import create as create_awards
from awards.settings import AwardsSettings
from awards_testkit import OP, ev, reviewed
from tally.app import create as create_tally
from tally.settings import TallySettings

from shared.bus.memory import InMemoryBroker
from shared.testing import eventually, running_app
from shared.topology import QUEUES

TREE = [
    {"code": "VN", "name": "Tổng LĐLĐ Việt Nam", "kind": "national", "parent_code": None},
    {"code": "TH", "name": "LĐLĐ tỉnh Thanh Hóa", "kind": "province", "parent_code": "VN"},
    {"code": "TH-01", "name": "LĐLĐ huyện Đông Sơn", "kind": "district", "parent_code": "TH"},
    {"code": "TH-01-001", "name": "CĐCS Công ty X", "kind": "grassroots", "parent_code": "TH-01", "cluster": "C1"},
    {"code": "TH-01-002", "name": "CĐCS Công ty Y", "kind": "grassroots", "parent_code": "TH-01", "cluster": "C1"},
    {"code": "TH-01-003", "name": "CĐCS Công ty Z", "kind": "grassroots", "parent_code": "TH-01", "cluster": "C2"},
]
CAMPAIGN = {
    "name": "01 triệu sáng kiến",
    "fields": [{"code": "production", "name": "Sản xuất kinh doanh"}],
    "application_window": {"from": "2021-09-01", "to": "2023-09-01"},
    "phases": [{"code": "P1", "name": "Giai đoạn 1", "opens_on": "2022-01-08", "closes_on": "2023-09-01"}],
    "milestones": [1000],
}


def submitted(iid: str, unit: str, member: str) -> object:
    return ev(
        "initiative.submitted",
        {
            "id": iid,
            "seq": 1,
            "campaign": "1M",
            "phase": "P1",
            "unit_code": unit,
            "field": "production",
            "title": "Cải tiến",
            "expected_benefit_vnd": 1000,
            "applied_on": "2022-03-01",
            "confidential": False,
            "authors": [{"member_id": member, "full_name": f"Đoàn viên {member}"}],
            "submitted_at": "2022-03-05T02:00:00+00:00",
            "revision": 0,
        },
    )


async def test_nominations_use_the_tally_snapshot_not_live_figures(tmp_path: Path) -> None:
    topology = {"tally": QUEUES["tally"], "awards": QUEUES["awards"]}
    broker = InMemoryBroker(topology, delivery_limit=3)
    common = {"outbox_poll_interval_s": 0.05, "log_json": False, "log_level": "WARNING"}
    tally = create_tally(
        TallySettings(database_url=f"sqlite+aiosqlite:///{tmp_path}/tally.db", **common),
        broker=broker,
        topology=topology,
    )
    awards = create_awards(
        AwardsSettings(database_url=f"sqlite+aiosqlite:///{tmp_path}/awards.db", **common),
        broker=broker,
        topology=topology,
        http_transports={"tally": httpx.ASGITransport(app=tally)},
    )
    async with running_app(tally) as t, running_app(awards) as a:
        assert (await t.put("/api/v1/units", json=TREE, headers=OP)).status_code == 200
        assert (await t.put("/api/v1/campaigns/1M", json=CAMPAIGN, headers=OP)).status_code == 200
        quotas = [{"unit_code": u, "phase": "P1", "assigned": 2, "self_set": 2} for u in ("TH-01-001", "TH-01-002")]
        assert (await t.put("/api/v1/campaigns/1M/quotas", json=quotas, headers=OP)).status_code == 200
        bus = awards.state.ctx.bus
        plan = [("TH-01-001", 3), ("TH-01-002", 2), ("TH-01-003", 5)]
        n = 0
        for unit, count in plan:
            for _ in range(count):
                n += 1
                iid = f"00000000-0000-0000-0000-{n:012d}"
                await bus.publish([submitted(iid, unit, f"M-{n}")])
                await bus.publish([reviewed(iid, [(f"M-{n}", "x")], unit=unit, decided_at="2022-03-07T00:00:00+00:00")])
        r = await t.post("/api/v1/tally/snapshots", json={"campaign": "1M", "phase": "P1"}, headers=OP)
        assert r.status_code == 201, r.text
        snapshot_id = r.json()["id"]

        async def replica_has_units() -> bool:
            got = await a.get("/api/v1/awards", params={"unit": "TH"})
            return got.status_code == 200

        await eventually(replica_has_units)
        # Live figures move on after the snapshot: TH-01-002 would now lead.
        for k in range(3):
            iid = f"00000000-0000-0000-0001-{k:012d}"
            await bus.publish([submitted(iid, "TH-01-002", "M-late")])
            await bus.publish([reviewed(iid, [("M-late", "x")], unit="TH-01-002")])

        scheme = {
            "campaign": "1M",
            "phase": "P1",
            "name": "Vượt chỉ tiêu",
            "recipient": "collective",
            "unit_kind": "grassroots",
            "rule": {"min_achievement_pct": 100},
            "order_by": ["valid"],
            "max_recipients": 5,
        }
        assert (await a.put("/api/v1/awards/schemes/COL", json=scheme, headers=OP)).status_code == 200
        r = await a.post("/api/v1/awards/schemes/COL/nominations", json={"snapshot_id": snapshot_id}, headers=OP)
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        # TH-01-003 has no quota (achievement null): not nominated.
        assert [(i["recipient"]["unit_code"], i["figures"]["valid"]) for i in items] == [
            ("TH-01-001", 3),
            ("TH-01-002", 2),
        ]
        assert items[0]["figures"]["achievement_pct"] == 150.0
        body = {"decision_no": "5/QĐ", "signed_on": "2023-09-07", "approve": "all"}
        assert (await a.post("/api/v1/awards/schemes/COL/decision", json=body, headers=OP)).status_code == 201
        listed = (await a.get("/api/v1/awards", params={"unit": "TH-01"})).json()["items"]
        assert sorted(x["recipient"]["unit_code"] for x in listed) == ["TH-01-001", "TH-01-002"]
