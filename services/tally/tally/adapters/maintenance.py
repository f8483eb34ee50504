"""``verify`` and ``rebuild``: recompute every counter from the facts (the source of truth) and compare or restore."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from tally.adapters.counters import CHUNK, PLAN_EXCLUSIVE, Deltas, parse_path
from tally.adapters.facts import fact_from_row
from tally.adapters.members import MemberKey, UnitCounts, participant_changes
from tally.adapters.orm import campaign_totals, counters, daily, facts, member_units, units
from tally.domain.counting import NOTHING, contribution


@dataclass
class Expected:
    counters: dict[tuple[str, str, str], list[int]] = field(default_factory=dict)
    members: dict[MemberKey, UnitCounts] = field(default_factory=dict)
    days: dict[tuple[str, str, Any], list[int]] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)


async def recompute(session: AsyncSession) -> Expected:
    paths = {code: parse_path(path) for code, path in (await session.execute(select(units.c.code, units.c.path))).all()}
    own = Deltas()
    result = await session.stream(select(facts).execution_options(yield_per=CHUNK))
    async for row in result:
        fact = fact_from_row(row)
        own.add_change(fact, NOTHING, contribution(fact))
    exp = Expected()
    for key, held in own.members.items():
        kept = {u: n for u, n in held.items() if n}
        if kept:
            exp.members[key] = kept
    expanded = own.expanded(paths, participant_changes({}, exp.members, paths, paths))
    exp.counters = {k: list(v) for k, v in expanded.counters.items() if any(v)}
    exp.days = {k: list(v) for k, v in expanded.days.items() if any(v)}
    for campaign, _id, step, _u, _a in own.valid_steps:
        exp.totals[campaign] = exp.totals.get(campaign, 0) + step
    return exp


async def verify(engine: AsyncEngine) -> list[dict[str, Any]]:
    """Every difference between the stored counters and those recomputed from the facts (empty: all exact)."""
    async with AsyncSession(engine) as session, session.begin():
        exp = await recompute(session)
        diffs: list[dict[str, Any]] = []
        stored_c = {
            (r.unit_code, r.campaign, r.phase): [r.submitted, r.valid, r.invalid, r.benefit_vnd, r.participants]
            for r in (await session.execute(select(counters))).all()
        }
        for key in sorted(set(stored_c) | set(exp.counters)):
            got = stored_c.get(key, [0, 0, 0, 0, 0])
            want = exp.counters.get(key, [0, 0, 0, 0, 0])
            if list(map(int, got)) != want:
                diffs.append({"table": "counters", "key": list(key), "expected": want, "actual": got})
        stored_m = {
            (r.campaign, r.phase, r.member_id): dict(r.units)
            for r in (await session.execute(select(member_units))).all()
        }
        for key in sorted(set(stored_m) | set(exp.members)):
            if stored_m.get(key, {}) != exp.members.get(key, {}):
                diffs.append(
                    {
                        "table": "member_units",
                        "key": list(key),
                        "expected": exp.members.get(key, {}),
                        "actual": stored_m.get(key, {}),
                    }
                )
        stored_d = {
            (r.unit_code, r.campaign, r.day): [r.submitted, r.valid]
            for r in (await session.execute(select(daily))).all()
        }
        for key in sorted(set(stored_d) | set(exp.days), key=str):
            got = stored_d.get(key, [0, 0])
            want = exp.days.get(key, [0, 0])
            if list(map(int, got)) != want:
                diffs.append(
                    {"table": "daily", "key": [key[0], key[1], key[2].isoformat()], "expected": want, "actual": got}
                )
        stored_t = {r.campaign: r.valid for r in (await session.execute(select(campaign_totals))).all()}
        for key in sorted(set(stored_t) | set(exp.totals)):
            if stored_t.get(key, 0) != exp.totals.get(key, 0):
                diffs.append(
                    {
                        "table": "campaign_totals",
                        "key": [key],
                        "expected": exp.totals.get(key, 0),
                        "actual": stored_t.get(key, 0),
                    }
                )
    return diffs


async def rebuild(engine: AsyncEngine) -> int:
    """Replace all counters with those recomputed from the facts; returns the number of differences fixed."""
    diffs = await verify(engine)
    async with AsyncSession(engine) as session, session.begin():
        if session.bind.dialect.name == "postgresql":
            # Consumer batches in flight finish first, later ones wait: none is counted twice or lost.
            await session.execute(PLAN_EXCLUSIVE)
        exp = await recompute(session)
        for table in (counters, member_units, daily, campaign_totals):
            await session.execute(delete(table))
        rows: list[dict[str, Any]] = [
            {
                "unit_code": u,
                "campaign": c,
                "phase": p,
                "submitted": s,
                "valid": v,
                "invalid": i,
                "benefit_vnd": b,
                "participants": pt,
            }
            for (u, c, p), (s, v, i, b, pt) in exp.counters.items()
        ]
        await _insert(session, counters, rows)
        await _insert(
            session,
            member_units,
            [{"campaign": c, "phase": p, "member_id": m, "units": held} for (c, p, m), held in exp.members.items()],
        )
        await _insert(
            session,
            daily,
            [
                {"unit_code": u, "campaign": c, "day": d, "submitted": s, "valid": v}
                for (u, c, d), (s, v) in exp.days.items()
            ],
        )
        await _insert(session, campaign_totals, [{"campaign": c, "valid": v} for c, v in exp.totals.items()])
    return len(diffs)


async def _insert(session: AsyncSession, table: Any, rows: list[dict[str, Any]]) -> None:
    for i in range(0, len(rows), CHUNK):
        await session.execute(table.insert(), rows[i : i + CHUNK])
