"""Awards' per-initiative facts, written set-based once per consumed batch.

Facts are keyed by their sequence numbers (``source_seq``, ``decision_seq``, ``appraisal_seq``): an
initiative row is replaced only by one at least as new, decisions and appraisals are inserted once.
The batch keeps the newest row of each key first, so one statement never meets a row twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from awards.adapters.orm import appraisals, decisions, initiatives
from shared import bulk
from shared.db import insert_ignore, upsert

INITIATIVE = ("id", "campaign", "phase", "unit_code", "authors", "source_seq")
DECISION = ("initiative_id", "decision_seq", "outcome", "benefit_vnd", "decided_at")
APPRAISAL = ("initiative_id", "appraisal_seq", "grade", "appraised_at")


def _newest(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    kept: dict[str, dict[str, Any]] = {}
    for row in rows:
        held = kept.get(row["id"])
        if held is None or row["source_seq"] >= held["source_seq"]:
            kept[row["id"]] = row
    return list(kept.values())


def _once(rows: Sequence[dict[str, Any]], keys: tuple[str, str]) -> list[dict[str, Any]]:
    return list({(r[keys[0]], r[keys[1]]): r for r in rows}.values())


async def keep_initiatives(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    rows = _newest(rows)
    if not rows:
        return
    dialect = session.bind.dialect.name
    if dialect == "postgresql":
        stmt = bulk.replace_upsert(initiatives, ("id",), INITIATIVE, newer="source_seq")
        await session.execute(stmt, bulk.rows_param([[r[c] for c in INITIATIVE] for r in rows]))
        return
    ins = upsert(initiatives, dialect)
    stmt = ins.on_conflict_do_update(
        index_elements=["id"],
        set_={c: ins.excluded[c] for c in INITIATIVE if c != "id"},
        where=initiatives.c.source_seq <= ins.excluded.source_seq,
    )
    await session.execute(stmt, rows)


async def _insert_once(
    session: AsyncSession, table: Table, columns: tuple[str, ...], keys: tuple[str, str], rows: Sequence[dict[str, Any]]
) -> None:
    rows = _once(rows, keys)
    if not rows:
        return
    dialect = session.bind.dialect.name
    if dialect == "postgresql":
        stmt = bulk.insert_missing(table, keys, columns)
        await session.execute(stmt, bulk.rows_param([[r[c] for c in columns] for r in rows]))
        return
    await session.execute(insert_ignore(table, dialect, list(keys)), rows)


async def keep_decisions(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    await _insert_once(session, decisions, DECISION, ("initiative_id", "decision_seq"), rows)


async def keep_appraisals(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    await _insert_once(session, appraisals, APPRAISAL, ("initiative_id", "appraisal_seq"), rows)
