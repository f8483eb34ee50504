"""Participants: distinct authors of a subtree's counted initiatives, kept exact without a row per ancestor.

A member's row in ``member_units`` maps the units where they authored counted initiatives to how many. The
member is a participant of every unit on those units' paths (their *cover*). A batch adds its deltas to the
rows of the members it touches, and each unit that enters or leaves a member's cover moves that unit's
``participants`` by one. (Before migration 0003 each author had a row per phase key at the unit and at every
ancestor: four per phase key in a four-level tree, where there is now one.)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

import orjson
from sqlalchemy import select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import upsert
from tally.adapters.orm import member_units

MemberKey = tuple[str, str, str]  # campaign, phase, member
CounterKey = tuple[str, str, str]  # unit, campaign, phase
UnitCounts = dict[str, int]  # unit → counted initiatives of the member there
CHUNK = 500  # keys per SQLite statement (three parameters each)


def cover(held: Mapping[str, int], paths: Mapping[str, list[str]]) -> set[str]:
    """Every unit on the path of a unit where the member has a counted initiative (an unknown unit: itself)."""
    out: set[str] = set()
    for unit, n in held.items():
        if n > 0:
            out.update(paths.get(unit) or (unit,))
    return out


def participant_changes(
    before: Mapping[MemberKey, UnitCounts],
    after: Mapping[MemberKey, UnitCounts],
    paths_before: Mapping[str, list[str]],
    paths_after: Mapping[str, list[str]],
) -> dict[CounterKey, int]:
    """How ``participants`` of each (unit, campaign, phase) move when members' rows (or the paths) change."""
    out: dict[CounterKey, int] = defaultdict(int)
    for key in before.keys() | after.keys():
        campaign, phase, _member = key
        old = cover(before.get(key, {}), paths_before)
        new = cover(after.get(key, {}), paths_after)
        for unit in new - old:
            out[(unit, campaign, phase)] += 1
        for unit in old - new:
            out[(unit, campaign, phase)] -= 1
    return {k: v for k, v in out.items() if v}


def held_units(rows: Iterable[UnitCounts]) -> set[str]:
    return {u for held in rows for u in held}


def _merged(held: UnitCounts, delta: Mapping[str, int]) -> UnitCounts:
    out = dict(held)
    for unit, n in delta.items():
        out[unit] = out.get(unit, 0) + n
    return {u: n for u, n in out.items() if n > 0}


# PostgreSQL: the deltas of a batch added to the members' rows in one statement, in key order (the row locks of
# parallel consumers are taken in the same order). A new member's row is its delta; an existing one gets the sum
# per unit, units back at zero removed. The rows go in as one JSON document and their new maps come back as one;
# the old map is the new minus the delta.
_ADD_SQL = text(
    """
WITH up AS (
  INSERT INTO member_units (campaign, phase, member_id, units)
  SELECT r.value ->> 0, r.value ->> 1, r.value ->> 2, r.value -> 3
  FROM jsonb_array_elements(CAST(:rows AS jsonb)) AS r
  ORDER BY 1, 2, 3
  ON CONFLICT (campaign, phase, member_id) DO UPDATE SET units = (
    SELECT coalesce(jsonb_object_agg(s.unit, s.n), '{}'::jsonb)
    FROM (
      SELECT x.unit, sum(CAST(x.n AS bigint)) AS n
      FROM (SELECT * FROM jsonb_each_text(member_units.units) UNION ALL SELECT * FROM jsonb_each_text(excluded.units))
        AS x(unit, n)
      GROUP BY x.unit HAVING sum(CAST(x.n AS bigint)) > 0
    ) AS s
  )
  RETURNING campaign, phase, member_id, units
)
SELECT CAST(json_agg(json_build_array(campaign, phase, member_id, units)) AS text) FROM up
"""
)

_DELETE_EMPTY_SQL = text(
    """
DELETE FROM member_units m
USING unnest(CAST(:campaign AS text[]), CAST(:phase AS text[]), CAST(:member AS text[]))
  AS d(campaign, phase, member_id)
WHERE m.campaign = d.campaign AND m.phase = d.phase AND m.member_id = d.member_id AND m.units = '{}'::jsonb
"""
)

_LOAD_PG = text(
    """
SELECT m.campaign, m.phase, m.member_id, CAST(m.units AS text)
FROM member_units m
JOIN unnest(CAST(:campaign AS text[]), CAST(:phase AS text[]), CAST(:member AS text[])) AS k(campaign, phase, member_id)
  ON m.campaign = k.campaign AND m.phase = k.phase AND m.member_id = k.member_id
"""
)


def _key_columns(keys: Iterable[MemberKey]) -> dict[str, list[str]]:
    keys = list(keys)
    return {"campaign": [k[0] for k in keys], "phase": [k[1] for k in keys], "member": [k[2] for k in keys]}


async def load_members(session: AsyncSession, keys: Iterable[MemberKey]) -> dict[MemberKey, UnitCounts]:
    """The stored rows of ``keys`` (absent: no counted initiative)."""
    wanted = sorted(set(keys))
    out: dict[MemberKey, UnitCounts] = {}
    if not wanted:
        return out
    if session.bind.dialect.name == "postgresql":
        for c, p, m, raw in (await session.execute(_LOAD_PG, _key_columns(wanted))).all():
            out[(c, p, m)] = {u: int(n) for u, n in orjson.loads(raw).items()}
        return out
    cols = (member_units.c.campaign, member_units.c.phase, member_units.c.member_id)
    for i in range(0, len(wanted), CHUNK):
        query = select(*cols, member_units.c.units).where(tuple_(*cols).in_(wanted[i : i + CHUNK]))
        for c, p, m, held in (await session.execute(query)).all():
            out[(c, p, m)] = {u: int(n) for u, n in held.items()}
    return out


async def add_member_deltas(
    session: AsyncSession, deltas: Mapping[MemberKey, Mapping[str, int]]
) -> tuple[dict[MemberKey, UnitCounts], dict[MemberKey, UnitCounts]]:
    """Add per-unit deltas to members' rows; returns their maps before and after (locked until commit)."""
    changes = {k: {u: n for u, n in d.items() if n} for k, d in deltas.items()}
    changes = {k: d for k, d in sorted(changes.items()) if d}
    if not changes:
        return {}, {}
    if session.bind.dialect.name == "postgresql":
        return await _add_pg(session, changes)
    # SQLite: one writer at a time (BEGIN IMMEDIATE), so read, merge, write.
    before = await load_members(session, changes)
    after = {k: _merged(before.get(k, {}), d) for k, d in changes.items()}
    await store(session, after)
    return before, after


async def _add_pg(
    session: AsyncSession, changes: dict[MemberKey, dict[str, int]]
) -> tuple[dict[MemberKey, UnitCounts], dict[MemberKey, UnitCounts]]:
    rows = orjson.dumps([(*key, delta) for key, delta in changes.items()]).decode()
    returned = (await session.execute(_ADD_SQL, {"rows": rows})).scalar_one()
    before: dict[MemberKey, UnitCounts] = {}
    after: dict[MemberKey, UnitCounts] = {}
    emptied: list[MemberKey] = []
    for c, p, m, held in orjson.loads(returned or "[]"):
        key = (c, p, m)
        after[key] = held
        delta = changes[key]
        if held == delta:  # a new row (the common case: the member's first counted initiative in the batch)
            before[key] = {}
            continue
        old = dict(held)
        for unit, n in delta.items():
            old[unit] = old.get(unit, 0) - n
        before[key] = {u: n for u, n in old.items() if n > 0}
        if not held:
            emptied.append(key)
    if emptied:
        await session.execute(_DELETE_EMPTY_SQL, _key_columns(emptied))
    return before, after


async def store(session: AsyncSession, rows: Mapping[MemberKey, UnitCounts]) -> None:
    """Write members' whole maps (an empty map removes the row)."""
    dialect = session.bind.dialect.name
    kept = [{"campaign": c, "phase": p, "member_id": m, "units": held} for (c, p, m), held in rows.items() if held]
    gone = [k for k, held in rows.items() if not held]
    if kept:
        stmt = upsert(member_units, dialect)
        stmt = stmt.on_conflict_do_update(
            index_elements=["campaign", "phase", "member_id"], set_={"units": stmt.excluded.units}
        )
        for i in range(0, len(kept), CHUNK):
            await session.execute(stmt, kept[i : i + CHUNK])
    cols = (member_units.c.campaign, member_units.c.phase, member_units.c.member_id)
    for i in range(0, len(gone), CHUNK):
        await session.execute(member_units.delete().where(tuple_(*cols).in_(gone[i : i + CHUNK])))
