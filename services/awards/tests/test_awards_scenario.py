"""The issue's scenario: ~1,000 grassroots units in 10 clusters and a few hundred members with
known figures; three schemes; nominations equal a plain Python reference and recompute identically."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from awards_testkit import Harness, appraised, harness, reviewed, unit_item

TAKEN_AT = "2023-08-31T00:00:00+00:00"


def make_units(rng: random.Random) -> list[dict[str, Any]]:
    items = []
    for n in range(1000):
        cluster = f"K{n % 10:02d}"
        quota = rng.choice([0, 20, 50, 80, 100])
        valid = rng.randint(0, 150)
        items.append(unit_item(f"GR-{n:04d}", cluster, valid, quota, rng.randint(0, 300), rng.randint(0, 10**9)))
    return items


def reference_collective(units: list[dict[str, Any]], top: int) -> list[str]:
    ok = [u for u in units if u["figures"]["achievement_pct"] is not None and u["figures"]["achievement_pct"] >= 100]
    ok.sort(key=lambda u: (-u["figures"]["valid"], u["unit"]["code"]))
    return [u["unit"]["code"] for u in ok[:top]]


def reference_per_cluster(units: list[dict[str, Any]]) -> list[str]:
    best: dict[str, dict[str, Any]] = {}
    for u in units:
        f = u["figures"]
        if f["achievement_pct"] is None or f["achievement_pct"] < 100:
            continue
        key = (-f["achievement_pct"], -f["valid"], u["unit"]["code"])
        held = best.get(u["unit"]["cluster"])
        if held is None or key < held["key"]:
            best[u["unit"]["cluster"]] = {"key": key, "code": u["unit"]["code"]}
    return [b["code"] for b in sorted(best.values(), key=lambda b: b["key"])]


def reference_individual(facts: dict[str, dict[str, Any]], top: int) -> list[tuple[str, int, int, str]]:
    per: dict[str, dict[str, Any]] = {}
    for f in facts.values():
        if f["outcome"] != "valid":
            continue
        for mid in f["authors"]:
            m = per.setdefault(mid, {"valid": 0, "benefit": 0, "grades": set()})
            m["valid"] += 1
            m["benefit"] += f["benefit"]
            m["grades"].add(f["grade"])
    ok = [(mid, m) for mid, m in per.items() if "excellent" in m["grades"] or m["valid"] >= 5]
    ok.sort(key=lambda x: (-x[1]["valid"], -x[1]["benefit"], x[0]))
    out = []
    for mid, m in ok[:top]:
        grade = next((g for g in ("excellent", "typical") if g in m["grades"]), "none")
        out.append((mid, m["valid"], m["benefit"], grade))
    return out


async def publish_members(h: Harness, rng: random.Random) -> dict[str, dict[str, Any]]:
    facts: dict[str, dict[str, Any]] = {}
    envs = []
    for i in range(2500):
        iid = f"ini-{i:05d}"
        authors = sorted({f"M-{rng.randint(0, 399):04d}" for _ in range(rng.choice([1, 1, 1, 2]))})
        names = [(m, f"Đoàn viên {m}") for m in authors]
        benefit = rng.randint(0, 50) * 1_000_000
        outcome = rng.choice(["valid", "valid", "valid", "invalid"])
        envs.append(reviewed(iid, names, outcome="valid", seq=1, benefit=benefit, phase=None))
        if outcome == "invalid":  # valid first, then invalid: must stop counting
            envs.append(reviewed(iid, names, outcome="invalid", seq=2, benefit=benefit, phase=None))
        grade = "none"
        if rng.random() < 0.05:
            grade = rng.choice(["excellent", "typical"])
            envs.append(appraised(iid, grade))
        facts[iid] = {"authors": authors, "benefit": benefit, "outcome": outcome, "grade": grade}
    rng.shuffle(envs)  # out of order, as a broker may deliver them
    await h.publish(*envs)
    return facts


async def test_scenario_matches_the_reference_and_recomputes_identically(tmp_path: Path) -> None:
    rng = random.Random(20230831)
    async with harness(tmp_path) as h:
        units = make_units(rng)
        h.tally.add("SNAP", "1M", None, TAKEN_AT, units)
        facts = await publish_members(h, rng)
        base = {"campaign": "1M", "phase": None}
        collective = {
            **base,
            "name": "Tập thể xuất sắc",
            "recipient": "collective",
            "unit_kind": "grassroots",
            "rule": {"min_achievement_pct": 100},
            "order_by": ["valid"],
            "max_recipients": 84,
        }
        per_cluster = {
            **base,
            "name": "Dẫn đầu cụm",
            "recipient": "collective",
            "unit_kind": "grassroots",
            "rule": {"min_achievement_pct": 100, "top_per_cluster": 1},
            "order_by": ["achievement_pct", "valid"],
            "max_recipients": 10,
        }
        individual = {
            **base,
            "name": "Cá nhân tiêu biểu",
            "recipient": "individual",
            "rule": {"any_of": [{"grade_in": ["excellent"]}, {"min_valid": 5}]},
            "order_by": ["valid", "benefit_vnd"],
            "max_recipients": 162,
        }
        for code, body in (("COL", collective), ("CLU", per_cluster), ("IND", individual)):
            assert (await h.put_scheme(code, body)).status_code == 200

        col = await h.nominate("COL", "SNAP")
        assert [i["recipient"]["unit_code"] for i in col.json()["items"]] == reference_collective(units, 84)
        assert len(col.json()["items"]) == 84
        clu = await h.nominate("CLU", "SNAP")
        assert [i["recipient"]["unit_code"] for i in clu.json()["items"]] == reference_per_cluster(units)
        assert len({i["cluster"] for i in clu.json()["items"]}) == 10
        ind = await h.nominate("IND", "SNAP")
        got = [
            (i["recipient"]["member_id"], i["figures"]["valid"], i["figures"]["benefit_vnd"], i["figures"]["grade"])
            for i in ind.json()["items"]
        ]
        want = reference_individual(facts, 162)
        assert got == want and len(got) == 162

        for code, first in (("COL", col), ("CLU", clu), ("IND", ind)):
            again = await h.nominate(code, "SNAP")
            assert again.content == first.content
