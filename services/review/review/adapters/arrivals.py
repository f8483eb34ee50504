"""The items and signatures of a consumed batch: read under lock once, written back once (set-based).

PostgreSQL takes each table's rows as one JSON document (``shared.bulk``); SQLite, one writer at a
time, takes plain executemany statements.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import String, any_, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from review.adapters.orm import items, signatures
from shared import bulk
from shared.db import insert_ignore

COLUMNS = tuple(c.name for c in items.columns)
KEY = ("initiative_id",)
IDS = ARRAY(String)
# One lock order for every replica: no deadlocks between two consumers.
LOCKED = (
    select(items)
    .where(items.c.initiative_id == any_(bindparam("ids", type_=IDS)))
    .order_by(items.c.initiative_id)
    .with_for_update()
)


SIGNATURE_COLUMNS = ("initiative_id", "campaign", "seq", "shingles", "signature")
# PostgreSQL: the batch's signatures in one statement, one array per column (bytes travel as bytea, no JSON).
SIGNATURES_MANY = insert(signatures).from_select(
    list(SIGNATURE_COLUMNS),
    select(*(func.unnest(bindparam(c, type_=ARRAY(signatures.c[c].type))) for c in SIGNATURE_COLUMNS)),
)


def _is_pg(session: AsyncSession) -> bool:
    return session.bind.dialect.name == "postgresql"


async def lock_items(session: AsyncSession, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The stored items among ``ids``, locked until the batch commits (PostgreSQL)."""
    if _is_pg(session):
        result = await session.execute(LOCKED, {"ids": sorted(ids)})
    else:
        result = await session.execute(select(items).where(items.c.initiative_id.in_(list(ids))))
    return {r["initiative_id"]: dict(r) for r in result.mappings()}


async def insert_items(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Insert new items; answers the ids inserted. An id missing from the answer was inserted meanwhile by
    another replica's batch: the caller folds that item again over the stored row."""
    if not rows:
        return set()
    if _is_pg(session):
        stmt = bulk.insert_missing(items, KEY, COLUMNS, returning=True)
        result = await session.execute(stmt, bulk.rows_param([[r[c] for c in COLUMNS] for r in rows]))
        return {r[0] for r in result}
    stmt = insert_ignore(items, "sqlite", list(KEY)).returning(items.c.initiative_id)
    return {r[0] for r in await session.execute(stmt, list(rows))}


async def update_items(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    if _is_pg(session):
        stmt = bulk.update_rows(items, KEY, COLUMNS)
        await session.execute(stmt, bulk.rows_param([[r[c] for c in COLUMNS] for r in rows]))
        return
    values = {c: bindparam(f"v_{c}") for c in COLUMNS if c not in KEY}
    stmt = update(items).where(items.c.initiative_id == bindparam("v_initiative_id")).values(values)
    await session.execute(stmt, [{f"v_{c}": r[c] for c in COLUMNS} for r in rows])


async def replace_signatures(session: AsyncSession, stale: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    """Drop the signatures of re-indexed initiatives and write the batch's; a new row gets a new ``id``, which is
    how the replicas' indexes (following the table by ``id``) pick up a revised text."""
    if stale:
        if _is_pg(session):
            ids = bindparam("ids", type_=IDS)
            await session.execute(delete(signatures).where(signatures.c.initiative_id == any_(ids)), {"ids": stale})
        else:
            await session.execute(delete(signatures).where(signatures.c.initiative_id.in_(list(stale))))
    if not rows:
        return
    if _is_pg(session):
        params = {c: [r[c] for r in rows] for c in SIGNATURE_COLUMNS}
        await session.execute(SIGNATURES_MANY, params)
    else:
        await session.execute(insert(signatures), list(rows))


async def titles(session: AsyncSession, ids: Sequence[str]) -> dict[str, str]:
    if not ids:
        return {}
    if _is_pg(session):
        query = select(items.c.initiative_id, items.c.title).where(
            items.c.initiative_id == any_(bindparam("ids", type_=IDS))
        )
        result = await session.execute(query, {"ids": list(ids)})
    else:
        result = await session.execute(
            select(items.c.initiative_id, items.c.title).where(items.c.initiative_id.in_(list(ids)))
        )
    return {r[0]: r[1] for r in result}
