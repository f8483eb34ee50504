"""Storing the plan: bulk unit upserts with moves (and the re-attribution of counts), campaigns, quotas,
and the derived quota of units without one of their own."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import ColumnElement, any_, bindparam, delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import insert_ignore, upsert
from shared.units import path_string, subtree_clause
from tally.adapters.counters import CHUNK, CODES, PLAN_EXCLUSIVE, Expanded, parse_path, unit_paths, write_expanded
from tally.adapters.members import MemberKey, held_units, load_members, participant_changes
from tally.adapters.orm import (
    WHOLE,
    campaigns,
    counters,
    daily,
    effective_quotas,
    facts,
    plan_sequences,
    quotas,
    units,
)
from tally.adapters.unit_search import search_key
from tally.domain.plan import UnitIn, UnitRecord


async def next_revisions(session: AsyncSession, n: int) -> int:
    """Reserve ``n`` consecutive revision numbers; returns the first. One sequence for the whole plan."""
    if n <= 0:
        return 0
    dialect = session.bind.dialect.name
    await session.execute(insert_ignore(plan_sequences, dialect, ["name"]).values(name="plan", value=0))
    last = (
        await session.execute(
            update(plan_sequences)
            .where(plan_sequences.c.name == "plan")
            .values(value=plan_sequences.c.value + n)
            .returning(plan_sequences.c.value)
        )
    ).scalar_one()
    return int(last) - n + 1


def _among(session: AsyncSession, column: Any, codes: Sequence[str]) -> ColumnElement[bool]:
    """``column IN codes``; on PostgreSQL ``= ANY(array)``, one parameter however many codes."""
    if session.bind.dialect.name == "postgresql":
        return column == any_(bindparam(None, value=list(codes), type_=CODES))
    return cast(ColumnElement[bool], column.in_(codes))


def _parts(session: AsyncSession, codes: list[str]) -> list[list[str]]:
    """``codes`` in the pieces one ``_among`` each takes: all at once on PostgreSQL (one array parameter), else
    CHUNK at a time."""
    step = len(codes) or 1 if session.bind.dialect.name == "postgresql" else CHUNK
    return [codes[i : i + step] for i in range(0, len(codes), step)]


async def _load_units(session: AsyncSession, codes: Iterable[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for chunk in _parts(session, sorted(set(codes))):
        for row in (await session.execute(select(units).where(_among(session, units.c.code, chunk)))).all():
            out[row.code] = row
    return out


def unit_payload(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "code": row["code"],
        "name": row["name"],
        "kind": row["kind"],
        "parent_code": row["parent_code"],
        "cluster": row["cluster"],
        "member_count": row["member_count"],
        "path": parse_path(row["path"]),
        "revision": row["revision"],
    }


async def units_touched(session: AsyncSession, batch: Sequence[UnitIn]) -> dict[str, Any]:
    """Lock the plan for a bulk upsert and read the stored units it touches: those it names, their parents and
    their ancestors (by code)."""
    if session.bind.dialect.name == "postgresql":
        # One plan change at a time, and none while a consumer batch is counting: moves read and rewrite whole
        # subtrees, and re-attribute their counts.
        await session.execute(PLAN_EXCLUSIVE)
        # The tables change size within this transaction (a whole country's tree may arrive at once).
        await plan_each_statement(session)
    stored = await _load_units(session, [u.code for u in batch] + [u.parent_code for u in batch if u.parent_code])
    chain_codes = {c for row in stored.values() for c in parse_path(row.path)}
    stored.update(await _load_units(session, chain_codes - set(stored)))
    return stored


def unit_records(stored: dict[str, Any]) -> dict[str, UnitRecord]:
    return {
        code: UnitRecord(
            code=r.code,
            name=r.name,
            kind=r.kind,
            parent_code=r.parent_code,
            cluster=r.cluster,
            member_count=r.member_count,
        )
        for code, r in stored.items()
    }


async def upsert_units(session: AsyncSession, batch: Sequence[UnitIn], stored: dict[str, Any]) -> list[dict[str, Any]]:
    """Apply a bulk upsert checked against ``stored`` (``units_touched``, in the same transaction); returns the
    ``unit.upserted.v1`` payloads to emit (changed units and moved descendants)."""
    stored = dict(stored)
    moved = [u.code for u in batch if u.code in stored and stored[u.code].parent_code != u.parent_code]
    # Descendants of moved units get new paths too.
    for code in moved:
        rows = (await session.execute(select(units).where(subtree_clause(units.c.path, code)))).all()
        for row in rows:
            stored.setdefault(row.code, row)
    final: dict[str, dict[str, Any]] = {
        code: {
            "code": r.code,
            "name": r.name,
            "kind": r.kind,
            "parent_code": r.parent_code,
            "cluster": r.cluster,
            "member_count": r.member_count,
        }
        for code, r in stored.items()
    }
    for u in batch:
        final[u.code] = u.model_dump()

    paths: dict[str, list[str]] = {}

    def chain(code: str) -> list[str]:
        if code not in paths:
            trail = []
            cur: str | None = code
            while cur is not None and cur not in paths:
                trail.append(cur)
                cur = final[cur]["parent_code"] if cur in final else None
            base = paths[cur] if cur is not None else []
            for c in reversed(trail):
                base = [*base, c]
                paths[c] = base
        return paths[code]

    changed: list[dict[str, Any]] = []
    for code, row in final.items():
        new_path = path_string(chain(code))
        old = stored.get(code)
        row = {**row, "path": new_path, "depth": len(paths[code]) - 1, "search_key": search_key(code, row["name"])}
        if old is None or any(
            getattr(old, k) != row[k] for k in ("name", "kind", "parent_code", "cluster", "member_count", "path")
        ):
            changed.append(row)
    first = await next_revisions(session, len(changed))
    for i, row in enumerate(changed):
        row["revision"] = first + i

    # Re-attribute counts: a moved unit (or a unit first counted while unknown) leaves its old ancestors.
    new_codes = [u.code for u in batch if u.code not in stored]
    counted_new = set()
    for i in range(0, len(new_codes), CHUNK):
        q = select(counters.c.unit_code).where(_among(session, counters.c.unit_code, new_codes[i : i + CHUNK]))
        q = q.distinct()
        counted_new.update((await session.execute(q)).scalars().all())
    movers = [c for c in moved] + [c for c in new_codes if c in counted_new]
    cur_parent: dict[str, str | None] = {code: row["parent_code"] for code, row in final.items()}
    for code in movers:
        cur_parent[code] = stored[code].parent_code if code in stored else None
    touched_ancestors: set[str] = set()
    for code in movers:
        old_anc = _chain(code, cur_parent)[:-1]
        cur_parent[code] = final[code]["parent_code"]
        new_anc = _chain(code, cur_parent)[:-1]
        removed = [a for a in old_anc if a not in new_anc]
        added = [a for a in new_anc if a not in old_anc]
        touched_ancestors.update(old_anc)
        touched_ancestors.update(new_anc)
        if removed or added:
            await _reattribute(session, code, removed, added)
    if movers:
        # Every unit whose path changes (movers and their descendants); one not known before counted under itself.
        repathed = {}
        for code in final:
            if code in stored or code in counted_new:
                old_path = parse_path(stored[code].path) if code in stored else [code]
                if old_path != paths[code]:
                    repathed[code] = (old_path, paths[code])
        await _reattribute_participants(session, repathed)

    dialect = session.bind.dialect.name
    if changed:
        # One statement compiled once, executed over the rows (multi-row VALUES pages), not one
        # freshly compiled statement per chunk of literal rows.
        stmt = upsert(units, dialect)
        stmt = stmt.on_conflict_do_update(
            index_elements=["code"], set_={k: stmt.excluded[k] for k in changed[0] if k != "code"}
        )
        for i in range(0, len(changed), CHUNK):
            await session.execute(stmt, changed[i : i + CHUNK])
    if movers or new_codes:
        await recompute_effective_quotas(session, touched_ancestors | set(movers) | set(new_codes))
    return [unit_payload(r) for r in changed]


def _chain(code: str, parent: dict[str, str | None]) -> list[str]:
    out = [code]
    cur = parent.get(code)
    while cur is not None and cur not in out:
        out.append(cur)
        cur = parent.get(cur)
    return list(reversed(out))


async def _reattribute(session: AsyncSession, code: str, removed: Sequence[str], added: Sequence[str]) -> None:
    """Subtract the subtree counts of ``code`` from ``removed`` ancestors and add them to ``added``
    (participants are re-attributed for the whole change at once, by ``_reattribute_participants``)."""
    changes = Expanded()
    moves = [(a, -1) for a in removed] + [(a, 1) for a in added]
    for row in (await session.execute(select(counters).where(counters.c.unit_code == code))).all():
        vals = (row.submitted, row.valid, row.invalid, row.benefit_vnd)
        for a, sign in moves:
            target = changes.counters[(a, row.campaign, row.phase)]
            for i, v in enumerate(vals):
                target[i] += sign * v
    for row in (await session.execute(select(daily).where(daily.c.unit_code == code))).all():
        for a, sign in moves:
            target = changes.days[(a, row.campaign, row.day)]
            target[0] += sign * row.submitted
            target[1] += sign * row.valid
    await write_expanded(session, changes)


async def _reattribute_participants(session: AsyncSession, repathed: dict[str, tuple[list[str], list[str]]]) -> None:
    """Move ``participants`` for units whose path changes (unit → (old path, new path)).

    The members concerned are the authors of facts in those units; each one's cover is worked out with the old
    and the new paths, and every unit entering or leaving it moves by one. Runs under the exclusive plan lock, so
    no consumer batch changes the members' rows meanwhile."""
    codes = sorted(repathed)
    keys: set[MemberKey] = set()
    for i in range(0, len(codes), CHUNK):
        query = select(facts.c.campaign, facts.c.phase, facts.c.authors).where(
            _among(session, facts.c.unit_code, codes[i : i + CHUNK])
        )
        for campaign, phase, authors in (await session.execute(query)).all():
            for member in authors or ():
                keys.add((campaign, WHOLE, member))
                if phase is not None:
                    keys.add((campaign, phase, member))
    held = await load_members(session, keys)
    paths_before = await unit_paths(session, held_units(held.values()) - set(repathed))
    paths_after = dict(paths_before)
    for code, (old, new) in repathed.items():
        paths_before[code], paths_after[code] = old, new
    moved = participant_changes(held, held, paths_before, paths_after)
    changes = Expanded()
    for key, n in moved.items():
        changes.counters[key][4] += n
    await write_expanded(session, changes)


_CUSTOM_PLANS = text("SET LOCAL plan_cache_mode = force_custom_plan")


async def plan_each_statement(session: AsyncSession) -> None:
    """For the rest of the transaction, plan each statement for its parameters (PostgreSQL).

    The plan's statements are prepared (asyncpg), and a plan is loaded into tables that were empty minutes before:
    after five executions PostgreSQL may keep a generic plan made then, which reads the table whole, comparing each
    row with every element of a list of parameters (a list of parameters is not hashed as a constant list is). At
    40,072 units the recompute's statements outlasted the gateway's 15 s; at the national 152,573 units the read of
    a quota upload's current quotas ran 24 s. Planned for each execution, they use their indexes."""
    if session.bind.dialect.name == "postgresql":
        await session.execute(_CUSTOM_PLANS)


async def recompute_effective_quotas(session: AsyncSession, codes: Iterable[str]) -> None:
    """Own quota where set, else the sum of the children's — for ``codes`` and all their ancestors, bottom-up."""
    await plan_each_statement(session)  # the unit_code indexes of migration 0005
    rows = await _load_units(session, codes)
    everything = {c for r in rows.values() for c in parse_path(r.path)}
    rows.update(await _load_units(session, everything - set(rows)))
    by_depth: dict[int, list[str]] = defaultdict(list)
    for code, r in rows.items():
        by_depth[r.depth].append(code)
    for depth in sorted(by_depth, reverse=True):
        level = sorted(by_depth[depth])
        for i in range(0, len(level), CHUNK):
            await _recompute_level(session, level[i : i + CHUNK])


async def _recompute_level(session: AsyncSession, level: list[str]) -> None:
    values: dict[tuple[str, str, str], tuple[int, int]] = {}
    child = units.alias("child")
    sums = (
        select(
            effective_quotas.c.campaign,
            child.c.parent_code,
            effective_quotas.c.phase,
            func.sum(effective_quotas.c.quota),
            func.sum(effective_quotas.c.self_set),
        )
        .join(child, child.c.code == effective_quotas.c.unit_code)
        .where(_among(session, child.c.parent_code, level))
        .group_by(effective_quotas.c.campaign, child.c.parent_code, effective_quotas.c.phase)
    )
    for campaign, parent, phase, q, s in (await session.execute(sums)).all():
        values[(campaign, parent, phase)] = (int(q or 0), int(s or 0))
    own = select(quotas.c.campaign, quotas.c.unit_code, quotas.c.phase, quotas.c.assigned, quotas.c.self_set).where(
        _among(session, quotas.c.unit_code, level)
    )
    for campaign, unit, phase, assigned, self_set in (await session.execute(own)).all():
        values[(campaign, unit, phase)] = (int(assigned), int(self_set if self_set is not None else assigned))
    await session.execute(delete(effective_quotas).where(_among(session, effective_quotas.c.unit_code, level)))
    rows = [
        {"campaign": c, "unit_code": u, "phase": p, "quota": q, "self_set": s}
        for (c, u, p), (q, s) in sorted(values.items())
    ]
    for i in range(0, len(rows), CHUNK):
        await session.execute(effective_quotas.insert(), rows[i : i + CHUNK])


async def unit_paths_of(session: AsyncSession, codes: Iterable[str]) -> dict[str, str]:
    return {code: r.path for code, r in (await _load_units(session, codes)).items()}


async def quotas_of(
    session: AsyncSession, campaign: str, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], tuple[int, int | None]]:
    out: dict[tuple[str, str], tuple[int, int | None]] = {}
    for chunk in _parts(session, sorted({u for u, _ in keys})):
        q = select(quotas).where(quotas.c.campaign == campaign, _among(session, quotas.c.unit_code, chunk))
        for r in (await session.execute(q)).all():
            out[(r.unit_code, r.phase)] = (int(r.assigned), r.self_set)
    return out


async def store_quotas(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    dialect = session.bind.dialect.name
    unique = list({(r["unit_code"], r["phase"]): r for r in rows}.values())
    stmt = upsert(quotas, dialect)
    stmt = stmt.on_conflict_do_update(
        index_elements=["campaign", "unit_code", "phase"],
        set_={k: stmt.excluded[k] for k in ("assigned", "self_set", "revision")},
    )
    for i in range(0, len(unique), CHUNK):
        await session.execute(stmt, unique[i : i + CHUNK])


async def unit_path(session: AsyncSession, code: str) -> str | None:
    return (await session.execute(select(units.c.path).where(units.c.code == code))).scalar_one_or_none()


async def unit_and_children(session: AsyncSession, code: str) -> tuple[Any, list[Any]] | None:
    """The unit's row and its children's rows (by code), or None for an unknown unit."""
    row = (await session.execute(select(units).where(units.c.code == code))).first()
    if row is None:
        return None
    children = (await session.execute(select(units).where(units.c.parent_code == code).order_by(units.c.code))).all()
    return row, list(children)


async def campaign_of(session: AsyncSession, code: str) -> Any:
    return (await session.execute(select(campaigns).where(campaigns.c.code == code))).first()


async def all_campaigns(session: AsyncSession, limit: int = 1000) -> list[Any]:
    return list((await session.execute(select(campaigns).order_by(campaigns.c.code).limit(limit))).all())


async def store_campaign(session: AsyncSession, row: dict[str, Any]) -> None:
    stmt = upsert(campaigns, session.bind.dialect.name).values(**row)
    stmt = stmt.on_conflict_do_update(index_elements=["code"], set_={k: stmt.excluded[k] for k in row if k != "code"})
    await session.execute(stmt)


async def unit_quotas(session: AsyncSession, campaign: str, unit_code: str) -> list[Any]:
    stmt = select(quotas).where(quotas.c.campaign == campaign, quotas.c.unit_code == unit_code).order_by(quotas.c.phase)
    return list((await session.execute(stmt)).all())
