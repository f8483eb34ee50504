"""The work queue's statements: leases on SQLite, the items, decision history, appraisals and queue figures.

SQL only: the rules that decide what may be done live in ``review.domain.rules`` and ``review.service``.
PostgreSQL's claims and decisions are in ``review.adapters.claims``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from review.adapters.claims import SHOWN
from review.adapters.orm import appraisals, decisions, items, units
from review.domain.rules import CRITERIA, identities
from shared.auth import Principal
from shared.units import subtree_clause


def is_postgres(session: AsyncSession) -> bool:
    return session.bind.dialect.name == "postgresql"


# ---- claims --------------------------------------------------------------------------------------


async def lease_sqlite(
    session: AsyncSession, principal: Principal, count: int, now: datetime, expires: datetime
) -> tuple[list[Any], int]:
    """One writer at a time: select, lease, read back. The rows leased (the columns in ``SHOWN``, in its order), and
    how many had an expired lease."""
    query = (
        select(items.c.initiative_id, items.c.lease_expires_at)
        .select_from(items.join(units, units.c.code == items.c.unit_code))
        .where(items.c.status == "pending")
        .where(or_(items.c.lease_expires_at.is_(None), items.c.lease_expires_at <= now))
        .order_by(items.c.seq)
        .limit(count)
    )
    if not principal.is_operator:
        query = query.where(subtree_clause(units.c.path, str(principal.unit)))
    for identity in identities(principal):
        query = query.where(~items.c.author_ids.contains(f"|{identity}|", autoescape=True))
    picked = (await session.execute(query)).all()
    if not picked:
        return [], 0
    ids = [r.initiative_id for r in picked]
    await session.execute(
        update(items).where(items.c.initiative_id.in_(ids)).values(lease_holder=principal.sub, lease_expires_at=expires)
    )
    query = select(*(items.c[c] for c in SHOWN)).where(items.c.initiative_id.in_(ids))
    rows = (await session.execute(query)).all()
    return list(rows), sum(1 for r in picked if r.lease_expires_at is not None)


async def release(session: AsyncSession, holder: str, initiative_ids: Sequence[str] | None, now: datetime) -> int:
    """End ``holder``'s current leases (of ``initiative_ids`` only, when given); how many were ended."""
    stmt = (
        update(items)
        .where(items.c.status == "pending")
        .where(items.c.lease_holder == holder)
        .where(items.c.lease_expires_at > now)
    )
    if initiative_ids is not None:
        stmt = stmt.where(items.c.initiative_id.in_(list(initiative_ids)))
    result = await session.execute(stmt.values(lease_holder=None, lease_expires_at=None))
    return int(result.rowcount)  # type: ignore[attr-defined]


# ---- items ---------------------------------------------------------------------------------------


async def item_with_path(session: AsyncSession, initiative_id: str, *, lock: bool = False) -> Any | None:
    """The item with its unit's ``path`` (None when the replica lacks the unit); None when unknown."""
    query = (
        select(items, units.c.path)
        .select_from(items.outerjoin(units, units.c.code == items.c.unit_code))
        .where(items.c.initiative_id == initiative_id)
        .where(items.c.revision >= 0)
    )
    if lock and is_postgres(session):
        query = query.with_for_update(of=items)
    return (await session.execute(query)).first()


async def history(session: AsyncSession, initiative_id: str) -> list[Any]:
    """The item's decisions, oldest first."""
    query = select(decisions).where(decisions.c.initiative_id == initiative_id).order_by(decisions.c.decision_seq)
    return list((await session.execute(query)).all())


async def unit_path(session: AsyncSession, code: str) -> str | None:
    return (await session.execute(select(units.c.path).where(units.c.code == code))).scalar_one_or_none()


# ---- appraisals ----------------------------------------------------------------------------------


async def has_appraised(session: AsyncSession, initiative_id: str, appraiser: str) -> bool:
    query = (
        select(func.count())
        .select_from(appraisals)
        .where(appraisals.c.initiative_id == initiative_id, appraisals.c.appraiser == appraiser)
    )
    return bool((await session.execute(query)).scalar_one())


async def add_appraisal(session: AsyncSession, appraisal: dict[str, Any]) -> None:
    await session.execute(appraisals.insert().values(**appraisal))


async def scores(session: AsyncSession, initiative_id: str) -> list[dict[str, int]]:
    """The scores given so far to the item, per appraisal."""
    query = select(*(appraisals.c[c] for c in CRITERIA)).where(appraisals.c.initiative_id == initiative_id)
    return [dict(r._mapping) for r in (await session.execute(query)).all()]


async def set_appraisal_summary(session: AsyncSession, initiative_id: str, summary: dict[str, Any]) -> None:
    await session.execute(
        update(items)
        .where(items.c.initiative_id == initiative_id)
        .values(appraisal_count=summary["count"], appraisal_mean=summary["mean"], appraisal_grade=summary["grade"])
    )


async def appraisals_of(session: AsyncSession, initiative_id: str) -> list[Any]:
    """Every appraisal of the item, in the order given."""
    query = select(appraisals).where(appraisals.c.initiative_id == initiative_id).order_by(appraisals.c.id)
    return list((await session.execute(query)).all())


async def worklist(
    session: AsyncSession,
    *,
    appraiser: str,
    root: str | None,
    not_by: str | None,
    state: str,
    title: str | None,
    after: int | None,
    limit: int,
) -> list[Any]:
    """Up to ``limit`` valid items of ``root``'s subtree (all when None), by ``seq`` after ``after``, each with
    ``mine`` (how many appraisals ``appraiser`` gave it). ``not_by``: leave out this member's initiatives;
    ``state``: todo/done/all for ``appraiser``; ``title``: a part of the title."""
    mine = (
        select(func.count())
        .select_from(appraisals)
        .where(appraisals.c.initiative_id == items.c.initiative_id, appraisals.c.appraiser == appraiser)
        .scalar_subquery()
    )
    query = (
        select(items, mine.label("mine"))
        .select_from(items.join(units, units.c.code == items.c.unit_code))
        .where(items.c.status == "valid", items.c.revision >= 0)
        .order_by(items.c.seq)
        .limit(limit)
    )
    if root is not None:
        query = query.where(subtree_clause(units.c.path, root))
    if not_by:
        query = query.where(~items.c.author_ids.contains(f"|{not_by}|", autoescape=True))
    if state == "todo":
        query = query.where(mine == 0)
    elif state == "done":
        query = query.where(mine > 0)
    if title:
        query = query.where(items.c.title.icontains(title, autoescape=True))
    if after is not None:
        query = query.where(items.c.seq > after)
    return list((await session.execute(query)).all())


async def appraisals_by(session: AsyncSession, appraiser: str, initiative_ids: Sequence[str]) -> list[Any]:
    query = select(appraisals).where(
        appraisals.c.appraiser == appraiser, appraisals.c.initiative_id.in_(list(initiative_ids))
    )
    return list((await session.execute(query)).all())


# ---- queue figures -------------------------------------------------------------------------------


async def status_groups(session: AsyncSession, root: str | None, now: datetime) -> list[Any]:
    """Per unit path and status: how many items, how many of them leased now, and the oldest queued."""
    leased = case((items.c.lease_expires_at > now, 1), else_=0)
    query = (
        select(
            units.c.path,
            items.c.status,
            func.count().label("n"),
            func.sum(leased).label("leased"),
            func.min(items.c.queued_at).label("oldest"),
        )
        .select_from(items.join(units, units.c.code == items.c.unit_code))
        .where(items.c.revision >= 0)
        .group_by(units.c.path, items.c.status)
    )
    if root is not None:
        query = query.where(subtree_clause(units.c.path, root))
    return list((await session.execute(query)).all())


async def child_units(session: AsyncSession, parent: str) -> list[Any]:
    query = select(units.c.code, units.c.name, units.c.kind).where(units.c.parent_code == parent)
    return list((await session.execute(query.order_by(units.c.code))).all())


async def decided_since(session: AsyncSession, reviewer: str, since: datetime) -> int:
    query = (
        select(func.count())
        .select_from(decisions)
        .where(decisions.c.decided_by == reviewer)
        .where(decisions.c.decided_at >= since)
    )
    return int((await session.execute(query)).scalar_one())
