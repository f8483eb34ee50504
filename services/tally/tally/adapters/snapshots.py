"""Snapshots: every unit's figures frozen under an id, and the reads of what was frozen."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.units import subtree_clause
from tally.adapters import queries
from tally.adapters.orm import snapshot_figures, snapshots


async def freeze(session: AsyncSession, snapshot_id: str, campaign: str, phase: str | None, taken_at: datetime) -> int:
    """Copy every unit's current figures under ``snapshot_id``; answer how many units were frozen."""
    source = queries._figures_query(campaign, phase).subquery("f")
    cols = ("code", "name", "kind", "parent_code", "cluster", "path", *queries.snapshot_columns())
    select_rows = select(literal(snapshot_id), *[source.c[c] for c in cols])
    target = ["snapshot_id", "unit_code", *cols[1:]]
    # One INSERT … SELECT: the freeze is a single consistent read of the counters.
    await session.execute(insert(snapshot_figures).from_select(target, select_rows))
    count = (
        await session.execute(
            select(func.count()).select_from(snapshot_figures).where(snapshot_figures.c.snapshot_id == snapshot_id)
        )
    ).scalar_one()
    await session.execute(
        snapshots.insert().values(id=snapshot_id, campaign=campaign, phase=phase, taken_at=taken_at, units_count=count)
    )
    return int(count)


async def snapshot_of(session: AsyncSession, snapshot_id: str) -> Any:
    return (await session.execute(select(snapshots).where(snapshots.c.id == snapshot_id))).first()


async def frozen_unit(session: AsyncSession, snapshot_id: str, code: str) -> Any:
    stmt = select(snapshot_figures).where(
        snapshot_figures.c.snapshot_id == snapshot_id, snapshot_figures.c.unit_code == code
    )
    return (await session.execute(stmt)).first()


async def frozen_children(session: AsyncSession, snapshot_id: str, code: str) -> list[Any]:
    stmt = (
        select(snapshot_figures)
        .where(snapshot_figures.c.snapshot_id == snapshot_id, snapshot_figures.c.parent_code == code)
        .order_by(snapshot_figures.c.unit_code)
    )
    return list((await session.execute(stmt)).all())


async def frozen_page(
    session: AsyncSession,
    snapshot_id: str,
    *,
    kind: str | None,
    after: str | None,
    subtree_of: str | None,
    everything: bool,
    limit: int,
) -> list[Any]:
    """Up to ``limit`` + 1 frozen rows in unit-code order after ``after``: all of them (``everything``) or those
    of the subtree of ``subtree_of``."""
    query = select(snapshot_figures).where(snapshot_figures.c.snapshot_id == snapshot_id)
    if kind:
        query = query.where(snapshot_figures.c.kind == kind)
    if after:
        query = query.where(snapshot_figures.c.unit_code > after)
    if not everything:
        query = query.where(subtree_clause(snapshot_figures.c.path, subtree_of))
    return list((await session.execute(query.order_by(snapshot_figures.c.unit_code).limit(limit + 1))).all())
