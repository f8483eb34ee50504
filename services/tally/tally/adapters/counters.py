"""Applying counter deltas set-based: a batch's net changes per unit are expanded over the units'
ancestor paths in Python and written with a few multi-row upserts (no query per ancestor).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import String, any_, bindparam, delete, func, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import insert_ignore, upsert
from tally.adapters import bulk
from tally.adapters.orm import (
    WHOLE,
    campaign_totals,
    campaigns,
    counters,
    daily,
    memberships,
    milestones,
    units,
)
from tally.domain.counting import Contribution, Fact

CHUNK = 2000
CODES = ARRAY(String(), dimensions=1)
DEFAULT_MILESTONES = tuple(range(100_000, 1_000_001, 100_000))

CounterKey = tuple[str, str, str]  # unit, campaign, phase
MemberKey = tuple[str, str, str, str]  # unit, campaign, phase, member
DayKey = tuple[str, str, date]  # unit, campaign, day


@dataclass
class Deltas:
    """Net changes of one batch (or one maintenance step), keyed by the unit whose subtree they touch."""

    counters: dict[CounterKey, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0, 0]))
    members: dict[MemberKey, int] = field(default_factory=lambda: defaultdict(int))
    days: dict[DayKey, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    # (campaign, initiative id, +1/-1, unit, authors) in the order the batch changed validity
    valid_steps: list[tuple[str, str, int, str, tuple[str, ...]]] = field(default_factory=list)

    def add_change(self, fact: Fact, old: Contribution, new: Contribution) -> None:
        unit, campaign = fact.unit_code, fact.campaign
        phases = [WHOLE] if fact.phase is None else [WHOLE, fact.phase]
        diff = [new.submitted - old.submitted, new.valid - old.valid, new.invalid - old.invalid]
        diff.append(new.benefit_vnd - old.benefit_vnd)
        for phase in phases:
            if any(diff):
                row = self.counters[(unit, campaign, phase)]
                for i, d in enumerate(diff):
                    row[i] += d
            for m in old.members - new.members:
                self.members[(unit, campaign, phase, m)] -= 1
            for m in new.members - old.members:
                self.members[(unit, campaign, phase, m)] += 1
        if old.submitted_day != new.submitted_day or old.submitted != new.submitted:
            if old.submitted and old.submitted_day:
                self.days[(unit, campaign, old.submitted_day)][0] -= 1
            if new.submitted and new.submitted_day:
                self.days[(unit, campaign, new.submitted_day)][0] += 1
        if old.valid_day != new.valid_day or old.valid != new.valid:
            if old.valid and old.valid_day:
                self.days[(unit, campaign, old.valid_day)][1] -= 1
            if new.valid and new.valid_day:
                self.days[(unit, campaign, new.valid_day)][1] += 1
        if new.valid != old.valid:
            self.valid_steps.append((campaign, fact.initiative_id, new.valid - old.valid, unit, fact.authors))

    def expanded(self, paths: dict[str, list[str]]) -> Deltas:
        """The same deltas for every ancestor (and the unit itself) along ``paths``."""
        out = Deltas()
        for (unit, c, p), row in self.counters.items():
            for a in paths.get(unit, [unit]):
                target = out.counters[(a, c, p)]
                for i, d in enumerate(row):
                    target[i] += d
        for (unit, c, p, m), n in self.members.items():
            for a in paths.get(unit, [unit]):
                out.members[(a, c, p, m)] += n
        for (unit, c, d), row in self.days.items():
            for a in paths.get(unit, [unit]):
                target = out.days[(a, c, d)]
                target[0] += row[0]
                target[1] += row[1]
        out.valid_steps = list(self.valid_steps)
        return out


def parse_path(path: str) -> list[str]:
    return [p for p in path.split("/") if p]


async def unit_paths(session: AsyncSession, codes: Iterable[str], *, lock: bool = False) -> dict[str, list[str]]:
    """Ancestor chains (ending with the unit) of known units; an unknown unit counts under itself only."""
    wanted = sorted(set(codes))
    out: dict[str, list[str]] = {}
    if session.bind.dialect.name == "postgresql":
        query = select(units.c.code, units.c.path).where(units.c.code == any_(bindparam("codes", type_=CODES)))
        if lock:
            # A concurrent move waits for this batch (and vice versa), so no count lands on a stale path.
            query = query.with_for_update(read=True)
        for code, path in (await session.execute(query, {"codes": wanted})).all():
            out[code] = parse_path(path)
        return out
    for i in range(0, len(wanted), CHUNK):
        query = select(units.c.code, units.c.path).where(units.c.code.in_(wanted[i : i + CHUNK]))
        if lock:
            # A concurrent move waits for this batch (and vice versa), so no count lands on a stale path.
            query = query.with_for_update(read=True)
        for code, path in (await session.execute(query)).all():
            out[code] = parse_path(path)
    return out


async def apply_expanded(session: AsyncSession, deltas: Deltas) -> dict[CounterKey, int]:
    """Write expanded deltas: memberships first (their 0↔1 transitions move ``participants``), then counters, days.

    Returns the participants change per counter key (for tests and maintenance)."""
    dialect = session.bind.dialect.name
    if dialect == "postgresql":
        return await _apply_expanded_pg(session, deltas)
    participants: dict[CounterKey, int] = defaultdict(int)
    member_rows = sorted((k, n) for k, n in deltas.members.items() if n)
    if member_rows:
        # executemany on one cached statement: SQLAlchemy batches it into multi-row VALUES without recompiling.
        stmt = upsert(memberships, dialect)
        stmt = stmt.on_conflict_do_update(
            index_elements=["unit_code", "campaign", "phase", "member_id"],
            set_={"n": memberships.c.n + stmt.excluded.n},
        ).returning(
            memberships.c.unit_code,
            memberships.c.campaign,
            memberships.c.phase,
            memberships.c.member_id,
            memberships.c.n,
        )
        given = dict(member_rows)
        emptied: list[tuple[str, str, str, str]] = []
        params = [
            {"unit_code": u, "campaign": c, "phase": p, "member_id": m, "n": n} for (u, c, p, m), n in member_rows
        ]
        for u, c, p, m, n in (await session.execute(stmt, params)).all():
            before = n - given[(u, c, p, m)]
            participants[(u, c, p)] += int(n > 0) - int(before > 0)
            if n == 0:
                emptied.append((u, c, p, m))
        cols = (memberships.c.unit_code, memberships.c.campaign, memberships.c.phase, memberships.c.member_id)
        for i in range(0, len(emptied), CHUNK):
            chunk = emptied[i : i + CHUNK]
            await session.execute(delete(memberships).where(tuple_(*cols).in_(chunk), memberships.c.n == 0))

    keys = sorted(set(deltas.counters) | {k for k, v in participants.items() if v})
    rows = []
    for key in keys:
        s, v, inv, b = deltas.counters.get(key, (0, 0, 0, 0))
        pt = participants.get(key, 0)
        if s or v or inv or b or pt:
            u, c, p = key
            rows.append(
                {
                    "unit_code": u,
                    "campaign": c,
                    "phase": p,
                    "submitted": s,
                    "valid": v,
                    "invalid": inv,
                    "benefit_vnd": b,
                    "participants": pt,
                }
            )
    if rows:
        stmt = upsert(counters, dialect)
        stmt = stmt.on_conflict_do_update(
            index_elements=["unit_code", "campaign", "phase"],
            set_={
                name: getattr(counters.c, name) + getattr(stmt.excluded, name)
                for name in ("submitted", "valid", "invalid", "benefit_vnd", "participants")
            },
        )
        await session.execute(stmt, rows)

    day_rows = [
        {"unit_code": u, "campaign": c, "day": d, "submitted": s, "valid": v}
        for (u, c, d), (s, v) in sorted(deltas.days.items())
        if s or v
    ]
    if day_rows:
        stmt = upsert(daily, dialect)
        stmt = stmt.on_conflict_do_update(
            index_elements=["unit_code", "campaign", "day"],
            set_={
                "submitted": daily.c.submitted + stmt.excluded.submitted,
                "valid": daily.c.valid + stmt.excluded.valid,
            },
        )
        await session.execute(stmt, day_rows)
    return participants


COUNTER_KEYS = ("unit_code", "campaign", "phase")
COUNTER_ADDS = ("submitted", "valid", "invalid", "benefit_vnd", "participants")
MEMBER_COLUMNS = ("unit_code", "campaign", "phase", "member_id", "n")
DAY_KEYS = ("unit_code", "campaign", "day")
DAY_ADDS = ("submitted", "valid")


async def _apply_expanded_pg(session: AsyncSession, deltas: Deltas) -> dict[CounterKey, int]:
    """``apply_expanded`` on PostgreSQL: one statement per table, rows passed as arrays, in key order
    (row locks are taken in the same order by every consumer)."""
    participants: dict[CounterKey, int] = {}
    member_rows = sorted((*k, n) for k, n in deltas.members.items() if n)
    if member_rows:
        params = bulk.columns_of(member_rows, MEMBER_COLUMNS)
        for u, c, p, change in (await session.execute(bulk.membership_upsert(), params)).all():
            participants[(u, c, p)] = int(change)
        if any(row[4] < 0 for row in member_rows):
            # Rows back at zero are removed (a member with no counted initiative left in the subtree).
            keys = [row[:4] for row in member_rows if row[4] < 0]
            await session.execute(bulk.delete_emptied_memberships(), bulk.columns_of(keys, MEMBER_COLUMNS[:4]))

    rows = []
    for key in sorted(set(deltas.counters) | set(participants)):
        s, v, inv, b = deltas.counters.get(key, (0, 0, 0, 0))
        pt = participants.get(key, 0)
        if s or v or inv or b or pt:
            rows.append((*key, s, v, inv, b, pt))
    if rows:
        await session.execute(
            bulk.add_upsert("counters", COUNTER_KEYS, COUNTER_ADDS), bulk.columns_of(rows, COUNTER_KEYS + COUNTER_ADDS)
        )
    day_rows = [(*k, s, v) for k, (s, v) in sorted(deltas.days.items()) if s or v]
    if day_rows:
        await session.execute(
            bulk.add_upsert("daily", DAY_KEYS, DAY_ADDS), bulk.columns_of(day_rows, DAY_KEYS + DAY_ADDS)
        )
    return participants


# Memberships and counters of a batch in one statement. The batch's own-unit deltas come in as arrays and are
# rolled up here (not in Python) to every ancestor: the units of a row's stored path, itself included; an unknown
# unit counts under itself only: memberships get their summed deltas, and each membership
# row that goes 0 → n or n → 0 moves ``participants`` of its counter row by one, added with the counts.
_OWN_DELTAS_SQL = text(
    """
WITH l AS (
  SELECT * FROM unnest(CAST(:m_unit AS text[]), CAST(:m_campaign AS text[]), CAST(:m_phase AS text[]),
                       CAST(:m_member AS text[]), CAST(:m_n AS int[]))
    AS l(unit_code, campaign, phase, member_id, n)
), md AS (
  SELECT a.code AS unit_code, l.campaign, l.phase, l.member_id, CAST(sum(l.n) AS int) AS n
  FROM l LEFT JOIN units u ON u.code = l.unit_code
  CROSS JOIN LATERAL unnest(string_to_array(trim(BOTH '/' FROM coalesce(u.path, '/' || l.unit_code || '/')), '/'))
    AS a(code)
  GROUP BY 1, 2, 3, 4 HAVING sum(l.n) <> 0
), up AS (
  INSERT INTO memberships (unit_code, campaign, phase, member_id, n)
  SELECT unit_code, campaign, phase, member_id, n FROM md ORDER BY unit_code, campaign, phase, member_id
  ON CONFLICT (unit_code, campaign, phase, member_id) DO UPDATE SET n = memberships.n + excluded.n
  RETURNING unit_code, campaign, phase, member_id, n
), pt AS (
  SELECT up.unit_code, up.campaign, up.phase, sum(sign(up.n) - sign(up.n - md.n)) AS participants
  FROM up JOIN md USING (unit_code, campaign, phase, member_id)
  GROUP BY 1, 2, 3
), cl AS (
  SELECT * FROM unnest(CAST(:c_unit AS text[]), CAST(:c_campaign AS text[]), CAST(:c_phase AS text[]),
                       CAST(:c_submitted AS bigint[]), CAST(:c_valid AS bigint[]), CAST(:c_invalid AS bigint[]),
                       CAST(:c_benefit AS bigint[]))
    AS l(unit_code, campaign, phase, submitted, valid, invalid, benefit_vnd)
), cd AS (
  SELECT a.code AS unit_code, l.campaign, l.phase, sum(l.submitted) AS submitted, sum(l.valid) AS valid,
         sum(l.invalid) AS invalid, sum(l.benefit_vnd) AS benefit_vnd
  FROM cl AS l LEFT JOIN units u ON u.code = l.unit_code
  CROSS JOIN LATERAL unnest(string_to_array(trim(BOTH '/' FROM coalesce(u.path, '/' || l.unit_code || '/')), '/'))
    AS a(code)
  GROUP BY 1, 2, 3
), merged AS (
  SELECT unit_code, campaign, phase, coalesce(cd.submitted, 0) AS submitted, coalesce(cd.valid, 0) AS valid,
         coalesce(cd.invalid, 0) AS invalid, coalesce(cd.benefit_vnd, 0) AS benefit_vnd,
         coalesce(pt.participants, 0) AS participants
  FROM cd FULL JOIN pt USING (unit_code, campaign, phase)
)
INSERT INTO counters (unit_code, campaign, phase, submitted, valid, invalid, benefit_vnd, participants)
SELECT * FROM merged
WHERE submitted <> 0 OR valid <> 0 OR invalid <> 0 OR benefit_vnd <> 0 OR participants <> 0
ORDER BY unit_code, campaign, phase
ON CONFLICT (unit_code, campaign, phase) DO UPDATE SET
  submitted = counters.submitted + excluded.submitted, valid = counters.valid + excluded.valid,
  invalid = counters.invalid + excluded.invalid, benefit_vnd = counters.benefit_vnd + excluded.benefit_vnd,
  participants = counters.participants + excluded.participants
"""
)

# Membership rows of the given members' ancestors that came back to 0 (after a decrease) are removed.
_EMPTIED_SQL = text(
    """
DELETE FROM memberships m USING (
  SELECT DISTINCT a.code AS unit_code, l.campaign, l.phase, l.member_id
  FROM unnest(CAST(:m_unit AS text[]), CAST(:m_campaign AS text[]), CAST(:m_phase AS text[]),
              CAST(:m_member AS text[])) AS l(unit_code, campaign, phase, member_id)
  LEFT JOIN units u ON u.code = l.unit_code
  CROSS JOIN LATERAL unnest(string_to_array(trim(BOTH '/' FROM coalesce(u.path, '/' || l.unit_code || '/')), '/'))
    AS a(code)
) d
WHERE m.unit_code = d.unit_code AND m.campaign = d.campaign AND m.phase = d.phase AND m.member_id = d.member_id
  AND m.n = 0
"""
)

_DAYS_SQL = text(
    """
WITH l AS (
  SELECT * FROM unnest(CAST(:d_unit AS text[]), CAST(:d_campaign AS text[]), CAST(:d_day AS date[]),
                       CAST(:d_submitted AS bigint[]), CAST(:d_valid AS bigint[]))
    AS l(unit_code, campaign, day, submitted, valid)
)
INSERT INTO daily (unit_code, campaign, day, submitted, valid)
SELECT a.code, l.campaign, l.day, sum(l.submitted), sum(l.valid)
FROM l LEFT JOIN units u ON u.code = l.unit_code
  CROSS JOIN LATERAL unnest(string_to_array(trim(BOTH '/' FROM coalesce(u.path, '/' || l.unit_code || '/')), '/'))
    AS a(code)
GROUP BY 1, 2, 3 HAVING sum(l.submitted) <> 0 OR sum(l.valid) <> 0
ORDER BY 1, 2, 3
ON CONFLICT (unit_code, campaign, day) DO UPDATE SET
  submitted = daily.submitted + excluded.submitted, valid = daily.valid + excluded.valid
"""
)

# One advisory lock orders counting against plan changes: every consumer batch holds it shared (they run side by
# side), a change of the plan (which may move subtrees) and a rebuild hold it exclusively. So a batch reads the paths
# as they stand after any change it waited for, and a change waits for the batches in flight. (One lock per batch,
# where share-locking each unit's row wrote a lock into ~1,000 unit rows per batch, and MultiXacts between
# consumers.)
PLAN_LOCK_KEY = 7210
PLAN_SHARED = select(func.pg_advisory_xact_lock_shared(PLAN_LOCK_KEY))
PLAN_EXCLUSIVE = select(func.pg_advisory_xact_lock(PLAN_LOCK_KEY))


async def apply_own(session: AsyncSession, deltas: Deltas) -> None:
    """Write a batch's deltas (keyed by each fact's own unit) to the unit and every ancestor.

    The plan lock is taken shared first, so a concurrent move waits for the batch (and vice versa) and no count
    lands on a stale path. PostgreSQL rolls the deltas up in SQL (three statements for the batch); SQLite (one
    writer at a time) expands them in Python."""
    codes = sorted({k[0] for k in deltas.counters} | {k[0] for k in deltas.members} | {k[0] for k in deltas.days})
    if session.bind.dialect.name != "postgresql":
        paths = await unit_paths(session, codes, lock=True)
        await apply_expanded(session, deltas.expanded(paths))
        return
    if not codes:
        return
    await session.execute(PLAN_SHARED)
    members = sorted((*k, n) for k, n in deltas.members.items() if n)
    counts = sorted((*k, *v) for k, v in deltas.counters.items() if any(v))
    if members or counts:
        m = bulk.columns_of(members, ("m_unit", "m_campaign", "m_phase", "m_member", "m_n"))
        c = bulk.columns_of(
            counts, ("c_unit", "c_campaign", "c_phase", "c_submitted", "c_valid", "c_invalid", "c_benefit")
        )
        await session.execute(_OWN_DELTAS_SQL, m | c)
        decreased = [row[:4] for row in members if row[4] < 0]
        if decreased:
            await session.execute(
                _EMPTIED_SQL, bulk.columns_of(decreased, ("m_unit", "m_campaign", "m_phase", "m_member"))
            )
    days = sorted((*k, *v) for k, v in deltas.days.items() if any(v))
    if days:
        await session.execute(
            _DAYS_SQL, bulk.columns_of(days, ("d_unit", "d_campaign", "d_day", "d_submitted", "d_valid"))
        )


async def campaign_milestones(session: AsyncSession, campaign: str) -> set[int]:
    body = (await session.execute(select(campaigns.c.body).where(campaigns.c.code == campaign))).scalar_one_or_none()
    if body is None or body.get("milestones") is None:
        return set(DEFAULT_MILESTONES)
    return {int(n) for n in body["milestones"]}


async def advance_campaign_totals(
    session: AsyncSession, steps: Sequence[tuple[str, str, int, str, tuple[str, ...]]]
) -> list[dict[str, Any]]:
    """Move each campaign's valid count and record the N-th initiative of every milestone crossed.

    ``UPDATE … RETURNING`` takes the campaign row's lock, so parallel consumers see consecutive
    counts; the unique (campaign, n) key keeps a milestone from being recorded twice."""
    dialect = session.bind.dialect.name
    reached: list[dict[str, Any]] = []
    by_campaign: dict[str, list[tuple[str, str, int, str, tuple[str, ...]]]] = defaultdict(list)
    for step in steps:
        by_campaign[step[0]].append(step)
    for campaign in sorted(by_campaign):
        campaign_steps = by_campaign[campaign]
        net = sum(s[2] for s in campaign_steps)
        await session.execute(insert_ignore(campaign_totals, dialect, ["campaign"]).values(campaign=campaign, valid=0))
        after = (
            await session.execute(
                update(campaign_totals)
                .where(campaign_totals.c.campaign == campaign)
                .values(valid=campaign_totals.c.valid + net)
                .returning(campaign_totals.c.valid)
            )
        ).scalar_one()
        marks = await campaign_milestones(session, campaign)
        count = after - net
        now = datetime.now(UTC)
        for _c, initiative_id, step, unit, authors in campaign_steps:
            count += step
            if step > 0 and count in marks:
                row = {
                    "campaign": campaign,
                    "n": count,
                    "initiative_id": initiative_id,
                    "unit_code": unit,
                    "authors": list(authors),
                    "reached_at": now,
                }
                inserted = await session.execute(
                    insert_ignore(milestones, dialect, ["campaign", "n"]).values(**row).returning(milestones.c.n)
                )
                if inserted.first() is not None:
                    reached.append(row)
    return reached
