"""Per-initiative facts: read one under a row lock, write it back."""

from __future__ import annotations

from typing import Any

from sqlalchemy import any_, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import insert_ignore, upsert
from tally.adapters import bulk
from tally.adapters.counters import CODES
from tally.adapters.orm import facts
from tally.domain.counting import Fact

COLUMNS = (
    "initiative_id",
    "campaign",
    "phase",
    "unit_code",
    "authors",
    "expected_benefit_vnd",
    "content_revision",
    "withdrawn",
    "decision_seq",
    "outcome",
    "verified_benefit_vnd",
    "submitted_at",
    "decided_at",
)
KEY = ("initiative_id",)
# PostgreSQL: the batch's facts, locked in id order (the statement is built once).
LOCKED = (
    select(facts)
    .where(facts.c.initiative_id == any_(bindparam("ids", type_=CODES)))
    .order_by(facts.c.initiative_id)
    .with_for_update()
)


def fact_from_row(row: Any) -> Fact:
    return Fact(
        initiative_id=row.initiative_id,
        campaign=row.campaign,
        phase=row.phase,
        unit_code=row.unit_code,
        authors=tuple(row.authors or ()),
        expected_benefit_vnd=int(row.expected_benefit_vnd),
        content_revision=int(row.content_revision),
        withdrawn=bool(row.withdrawn),
        decision_seq=int(row.decision_seq),
        outcome=row.outcome,
        verified_benefit_vnd=row.verified_benefit_vnd,
        submitted_at=row.submitted_at,
        decided_at=row.decided_at,
    )


def fact_values(fact: Fact) -> dict[str, Any]:
    return {
        "initiative_id": fact.initiative_id,
        "campaign": fact.campaign,
        "phase": fact.phase,
        "unit_code": fact.unit_code,
        "authors": list(fact.authors),
        "expected_benefit_vnd": fact.expected_benefit_vnd,
        "content_revision": fact.content_revision,
        "withdrawn": fact.withdrawn,
        "decision_seq": fact.decision_seq,
        "outcome": fact.outcome,
        "verified_benefit_vnd": fact.verified_benefit_vnd,
        "submitted_at": fact.submitted_at,
        "decided_at": fact.decided_at,
    }


def fact_tuple(fact: Fact) -> tuple[Any, ...]:
    """The row of a fact in ``COLUMNS`` order (the PostgreSQL JSON rows path)."""
    return (
        fact.initiative_id,
        fact.campaign,
        fact.phase,
        fact.unit_code,
        fact.authors,
        fact.expected_benefit_vnd,
        fact.content_revision,
        fact.withdrawn,
        fact.decision_seq,
        fact.outcome,
        fact.verified_benefit_vnd,
        fact.submitted_at,
        fact.decided_at,
    )


async def load_many_for_update(session: AsyncSession, skeletons: list[Fact]) -> dict[str, Fact]:
    """The stored facts of a whole batch, locked in id order. PostgreSQL: only those that exist (a new one is
    inserted by ``insert_new`` once merged); SQLite, one writer at a time: the new ones are inserted from their
    skeletons first, so every fact of the batch comes back."""
    dialect = session.bind.dialect.name
    ordered = sorted({f.initiative_id: f for f in skeletons}.values(), key=lambda f: f.initiative_id)
    out: dict[str, Fact] = {}
    if dialect == "postgresql":
        for row in (await session.execute(LOCKED, {"ids": [f.initiative_id for f in ordered]})).all():
            out[row.initiative_id] = fact_from_row(row)
        return out
    for i in range(0, len(ordered), 1000):
        chunk = ordered[i : i + 1000]
        await session.execute(insert_ignore(facts, dialect, ["initiative_id"]).values([fact_values(f) for f in chunk]))
        query = (
            select(facts)
            .where(facts.c.initiative_id.in_([f.initiative_id for f in chunk]))
            .order_by(facts.c.initiative_id)
        )
        for row in (await session.execute(query)).all():
            out[row.initiative_id] = fact_from_row(row)
    return out


async def insert_new(session: AsyncSession, new: list[Fact]) -> set[str]:
    """Insert facts that were not stored when the batch read them; answers the ids that another replica's batch
    inserted meanwhile (nothing of ours is written for them: the caller locks them and merges again). An insert
    that meets another transaction's row waits for it to end, so a lost id's row is there once this returns."""
    if not new:
        return set()
    ordered = sorted(new, key=lambda f: f.initiative_id)
    if session.bind.dialect.name == "postgresql":
        stmt = bulk.insert_missing("facts", KEY, COLUMNS, returning=True)
        inserted = {r[0] for r in await session.execute(stmt, bulk.rows_param([fact_tuple(f) for f in ordered]))}
    else:
        stmt = insert_ignore(facts, session.bind.dialect.name, ["initiative_id"]).returning(facts.c.initiative_id)
        inserted = {r[0] for r in await session.execute(stmt, [fact_values(f) for f in ordered])}
    return {f.initiative_id for f in ordered} - inserted


async def save_many(session: AsyncSession, changed: list[Fact]) -> None:
    dialect = session.bind.dialect.name
    if dialect == "postgresql":
        if changed:
            rows = [fact_tuple(f) for f in sorted(changed, key=lambda f: f.initiative_id)]
            await session.execute(bulk.replace_upsert("facts", KEY, COLUMNS), bulk.rows_param(rows))
        return
    rows = [fact_values(f) for f in sorted(changed, key=lambda f: f.initiative_id)]
    if rows:
        stmt = upsert(facts, dialect)
        stmt = stmt.on_conflict_do_update(
            index_elements=["initiative_id"], set_={k: stmt.excluded[k] for k in rows[0] if k != "initiative_id"}
        )
        await session.execute(stmt, rows)
