"""Review's word on a batch of initiatives, written set-based: one statement per kind of event per batch.

Only a newer decision counts, and never on a withdrawn initiative (withdrawal is terminal); only a newer
appraisal replaces the grade. The batch keeps the newest of each initiative's events before writing, so a
statement never meets one row twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy.ext.asyncio import AsyncSession

from intake.adapters.orm import initiatives
from shared import bulk

DECISION = (
    "id",
    "status",
    "decision_seq",
    "review_outcome",
    "review_reason",
    "review_note",
    "verified_benefit_vnd",
    "decided_at",
    "updated_at",
)
APPRAISAL = ("id", "appraisal_seq", "appraisal_mean", "appraisal_grade")


@cache
def _newer(columns: tuple[str, ...], seq: str, where_open: bool) -> Any:
    """``UPDATE initiative SET … FROM (JSON rows) r WHERE id = r.id AND seq < r.seq [AND not withdrawn]``."""
    r = bulk.table_rows(initiatives, columns).subquery("r")
    conditions = [initiatives.c.id == r.c.id, initiatives.c[seq] < r.c[seq]]
    if where_open:
        conditions.append(initiatives.c.status != "withdrawn")
    return update(initiatives).values({c: r.c[c] for c in columns if c != "id"}).where(*conditions)


@cache
def _newer_one(columns: tuple[str, ...], seq: str, where_open: bool) -> Any:
    """The same for one row (SQLite's executemany)."""
    conditions = [initiatives.c.id == bindparam("b_id"), initiatives.c[seq] < bindparam(f"b_{seq}")]
    if where_open:
        conditions.append(initiatives.c.status != "withdrawn")
    return update(initiatives).values({c: bindparam(f"b_{c}") for c in columns if c != "id"}).where(*conditions)


async def _write(session: AsyncSession, columns: tuple[str, ...], seq: str, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    where_open = seq == "decision_seq"
    if session.bind.dialect.name == "postgresql":
        stmt = _newer(columns, seq, where_open)
        await session.execute(stmt, bulk.rows_param([[row[c] for c in columns] for row in rows]))
        return
    stmt = _newer_one(columns, seq, where_open)
    await session.execute(stmt, [{f"b_{c}": row[c] for c in columns} for row in rows])


def newest(rows: Sequence[dict[str, Any]], seq: str) -> list[dict[str, Any]]:
    """The row with the highest ``seq`` of each initiative."""
    kept: dict[str, dict[str, Any]] = {}
    for row in rows:
        held = kept.get(row["id"])
        if held is None or row[seq] > held[seq]:
            kept[row["id"]] = row
    return list(kept.values())


async def apply_decisions(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    now = datetime.now(UTC)
    await _write(session, DECISION, "decision_seq", [{**r, "updated_at": now} for r in newest(rows, "decision_seq")])


async def apply_appraisals(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    await _write(session, APPRAISAL, "appraisal_seq", newest(rows, "appraisal_seq"))
