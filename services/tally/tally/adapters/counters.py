"""Applying counter deltas set-based: a batch's net changes per unit are expanded over the units' ancestor paths
in Python and written with one multi-row upsert per table (no query per ancestor).

``participants`` come from the members' rows (``tally.adapters.members``): a batch adds its authors' deltas there,
and each unit entering or leaving a member's cover moves that unit's count by one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import String, any_, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from shared.advisory_locks import AdvisoryLock
from shared.db import insert_ignore, upsert
from tally.adapters import bulk
from tally.adapters.members import MemberKey, add_member_deltas, held_units, participant_changes
from tally.adapters.orm import WHOLE, campaign_totals, campaigns, counters, daily, milestones, units
from tally.domain.counting import Contribution, Fact

CHUNK = 2000
CODES = ARRAY(String(), dimensions=1)
DEFAULT_MILESTONES = tuple(range(100_000, 1_000_001, 100_000))

CounterKey = tuple[str, str, str]  # unit, campaign, phase
DayKey = tuple[str, str, date]  # unit, campaign, day
COUNTER_KEYS = ("unit_code", "campaign", "phase")
COUNTER_ADDS = ("submitted", "valid", "invalid", "benefit_vnd", "participants")
DAY_KEYS = ("unit_code", "campaign", "day")
DAY_ADDS = ("submitted", "valid")


@dataclass
class Deltas:
    """Net changes of one batch (or one maintenance step), keyed by each fact's own unit."""

    counters: dict[CounterKey, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0, 0]))
    # (campaign, phase, member) → own unit → change of the member's counted initiatives there
    members: dict[MemberKey, dict[str, int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    days: dict[DayKey, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    # (campaign, initiative id, +1/-1, unit, authors) in the order the batch changed validity
    valid_steps: list[tuple[str, str, int, str, tuple[str, ...]]] = field(default_factory=list)

    def add_change(self, fact: Fact, old: Contribution, new: Contribution) -> None:
        unit, campaign = fact.unit_code, fact.campaign
        phases = [WHOLE] if fact.phase is None else [WHOLE, fact.phase]
        ds, dv = new.submitted - old.submitted, new.valid - old.valid
        di, db = new.invalid - old.invalid, new.benefit_vnd - old.benefit_vnd
        left, joined = old.members - new.members, new.members - old.members
        for phase in phases:
            if ds or dv or di or db:
                row = self.counters[(unit, campaign, phase)]
                row[0] += ds
                row[1] += dv
                row[2] += di
                row[3] += db
            for m in left:
                self.members[(campaign, phase, m)][unit] -= 1
            for m in joined:
                self.members[(campaign, phase, m)][unit] += 1
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

    def units(self) -> set[str]:
        """The own units these deltas touch."""
        out = {k[0] for k in self.counters} | {k[0] for k in self.days}
        out.update(held_units(self.members.values()))
        return out

    def expanded(
        self, paths: Mapping[str, list[str]], participants: Mapping[CounterKey, int] | None = None
    ) -> Expanded:
        """Counters and days for every ancestor (and the unit itself) along ``paths``, with the participants'
        changes (already per unit) added in."""
        out = Expanded()
        counters, days = out.counters, out.days
        for (unit, c, p), (s, v, i, b) in self.counters.items():
            for a in paths.get(unit) or (unit,):
                target = counters[(a, c, p)]
                target[0] += s
                target[1] += v
                target[2] += i
                target[3] += b
        for key, n in (participants or {}).items():
            counters[key][4] += n
        for (unit, c, d), (s, v) in self.days.items():
            for a in paths.get(unit) or (unit,):
                target = days[(a, c, d)]
                target[0] += s
                target[1] += v
        return out


@dataclass
class Expanded:
    """Changes per subtree row: counters as [submitted, valid, invalid, benefit_vnd, participants]; days."""

    counters: dict[CounterKey, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0, 0, 0]))
    days: dict[DayKey, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))


def parse_path(path: str) -> list[str]:
    return [p for p in path.split("/") if p]


async def unit_paths(session: AsyncSession, codes: Iterable[str]) -> dict[str, list[str]]:
    """Ancestor chains (ending with the unit) of known units; an unknown unit counts under itself only."""
    wanted = sorted(set(codes))
    out: dict[str, list[str]] = {}
    if session.bind.dialect.name == "postgresql":
        query = select(units.c.code, units.c.path).where(units.c.code == any_(bindparam("codes", type_=CODES)))
        for code, path in (await session.execute(query, {"codes": wanted})).all():
            out[code] = parse_path(path)
        return out
    for i in range(0, len(wanted), CHUNK):
        query = select(units.c.code, units.c.path).where(units.c.code.in_(wanted[i : i + CHUNK]))
        for code, path in (await session.execute(query)).all():
            out[code] = parse_path(path)
    return out


async def write_expanded(session: AsyncSession, changes: Expanded) -> None:
    """Add per-subtree changes to ``counters`` and ``daily``: one statement per table on PostgreSQL (rows as
    arrays, in key order, so parallel consumers lock rows in the same order); executemany on SQLite."""
    rows = sorted((*k, *v) for k, v in changes.counters.items() if any(v))
    day_rows = sorted((*k, *v) for k, v in changes.days.items() if any(v))
    if session.bind.dialect.name == "postgresql":
        if rows:
            await session.execute(bulk.add_upsert("counters", COUNTER_KEYS, COUNTER_ADDS), bulk.rows_param(rows))
        if day_rows:
            await session.execute(bulk.add_upsert("daily", DAY_KEYS, DAY_ADDS), bulk.rows_param(day_rows))
        return
    for table, keys, adds, values in (
        (counters, COUNTER_KEYS, COUNTER_ADDS, rows),
        (daily, DAY_KEYS, DAY_ADDS, day_rows),
    ):
        if values:
            # executemany on one cached statement: SQLAlchemy batches it into multi-row VALUES.
            stmt = upsert(table, "sqlite")
            stmt = stmt.on_conflict_do_update(
                index_elements=list(keys), set_={a: table.c[a] + getattr(stmt.excluded, a) for a in adds}
            )
            await session.execute(stmt, [dict(zip(keys + adds, row, strict=True)) for row in values])


# One advisory lock (AdvisoryLock.TALLY_PLAN) orders counting against plan changes: every consumer batch holds it
# shared (they run side by side), a change of the plan (which may move subtrees) and a rebuild hold it exclusively.
# So a batch reads the paths as they stand after any change it waited for, and a change waits for the batches in
# flight. (One lock per batch, where share-locking each unit's row wrote a lock into ~1,000 unit rows per batch, and
# MultiXacts between consumers.) SQLite has one writer at a time anyway.
PLAN_SHARED = select(func.pg_advisory_xact_lock_shared(int(AdvisoryLock.TALLY_PLAN)))
PLAN_EXCLUSIVE = select(func.pg_advisory_xact_lock(int(AdvisoryLock.TALLY_PLAN)))


async def apply_own(session: AsyncSession, deltas: Deltas) -> None:
    """Write a batch's deltas (keyed by each fact's own unit) to the unit and every ancestor.

    The members' rows come first (locked in key order until commit), then the paths of every unit involved, then
    one upsert of the counters (counts and participants together) and one of the days."""
    if not deltas.units():
        return
    if session.bind.dialect.name == "postgresql":
        await session.execute(PLAN_SHARED)
    before, after = await add_member_deltas(session, deltas.members)
    codes = deltas.units() | held_units(before.values()) | held_units(after.values())
    paths = await unit_paths(session, codes)
    participants = participant_changes(before, after, paths, paths)
    await write_expanded(session, deltas.expanded(paths, participants))


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
