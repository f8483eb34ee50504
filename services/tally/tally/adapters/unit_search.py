"""Searching the organisation tree by code and name, accents optional, inside one subtree (issue 16's unit pickers)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, case, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from shared.text import fold
from shared.units import subtree_clause
from tally.adapters.counters import parse_path
from tally.adapters.orm import units

MAX_WORDS = 8


def search_key(code: str, name: str) -> str:
    """What a search compares: the folded code and name ("TH-01 LĐLĐ Thanh Hóa" → "th 01 ldld thanh hoa")."""
    return fold(f"{code} {name}")


def _matches(words: Sequence[str]) -> ColumnElement[bool]:
    # fold() leaves only [0-9a-z ], so a word holds no LIKE wildcard to escape.
    return and_(true(), *(units.c.search_key.like(f"%{w}%") for w in words))


async def search_units(
    session: AsyncSession, query: str, *, root: str | None, everywhere: bool, limit: int
) -> tuple[list[dict[str, Any]], bool]:
    """Units whose folded code and name hold every word of ``query``, in ``root``'s subtree (or ``everywhere``).

    An exact code comes first, then the higher levels, then by code. Returns the page and whether more match."""
    words = fold(query).split()[:MAX_WORDS]
    stmt = select(units.c.code, units.c.name, units.c.kind, units.c.parent_code, units.c.path).where(_matches(words))
    if not everywhere:
        # The prefix of the root's own path narrows by the path index (where the collation lets LIKE use it);
        # subtree_clause keeps the match exact and case-sensitive on both dialects.
        prefix = root and (await session.execute(select(units.c.path).where(units.c.code == root))).scalar()
        if not prefix:
            return [], False
        stmt = stmt.where(units.c.path.startswith(prefix, autoescape=True), subtree_clause(units.c.path, root))
    # Without a query nothing is exact, and the (depth, code) index gives the top of the tree in order.
    order = [units.c.depth, units.c.code]
    if query.strip():
        order.insert(0, case((units.c.code == query.strip(), 0), else_=1))
    rows = (await session.execute(stmt.order_by(*order).limit(limit + 1))).all()
    items = [
        {"code": r.code, "name": r.name, "kind": r.kind, "parent_code": r.parent_code, "path": parse_path(r.path)}
        for r in rows[:limit]
    ]
    return items, len(rows) > limit


async def exists_anywhere(session: AsyncSession, query: str) -> bool:
    """Whether any unit of the whole tree matches: tells "outside your scope" from "no such unit"."""
    words = fold(query).split()[:MAX_WORDS]
    if not words:
        return False
    found = await session.execute(select(units.c.code).where(_matches(words)).limit(1))
    return found.first() is not None
