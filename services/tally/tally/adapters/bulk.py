"""PostgreSQL set-based writes: a whole batch's rows go in as one array per column (``unnest``), so a table
gets one statement per batch whatever the number of rows, and the statement is prepared once.

Each builder returns a statement built once per process (SQLAlchemy caches its compiled form); the
parameters are ``{column: [values...]}``. SQLite keeps the plain executemany path of the callers.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import Select, String, Table, and_, bindparam, cast, delete, func, select
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.types import JSON, TypeEngine

from tally.adapters import orm


def _array_type(column_type: TypeEngine[Any]) -> TypeEngine[Any]:
    # JSON goes in as text and is cast back per row (asyncpg has no json[] codec from Python objects).
    if isinstance(column_type, JSON | JSONB):
        return ARRAY(String(), dimensions=1)
    return ARRAY(column_type, dimensions=1)


def unnest_source(table: Table, columns: Sequence[str]) -> Select[Any]:
    """``SELECT unnest(:c1), unnest(:c2), …`` — the rows of the parameters' arrays, zipped."""
    exprs = []
    for name in columns:
        col = table.c[name]
        expr: Any = func.unnest(bindparam(name, type_=_array_type(col.type)))
        if isinstance(col.type, JSON | JSONB):
            expr = cast(expr, col.type)
        exprs.append(expr.label(name))
    return select(*exprs)


@cache
def add_upsert(table_name: str, keys: tuple[str, ...], adds: tuple[str, ...]) -> Any:
    """``INSERT … SELECT unnest … ON CONFLICT (keys) DO UPDATE SET a = t.a + excluded.a`` for each added column."""
    table = orm.metadata.tables[table_name]
    stmt = pg_insert(table).from_select([*keys, *adds], unnest_source(table, [*keys, *adds]))
    return stmt.on_conflict_do_update(
        index_elements=list(keys), set_={a: table.c[a] + getattr(stmt.excluded, a) for a in adds}
    )


@cache
def replace_upsert(table_name: str, keys: tuple[str, ...], columns: tuple[str, ...]) -> Any:
    """``INSERT … SELECT unnest … ON CONFLICT (keys) DO UPDATE SET c = excluded.c`` for the other columns."""
    table = orm.metadata.tables[table_name]
    stmt = pg_insert(table).from_select(list(columns), unnest_source(table, columns))
    return stmt.on_conflict_do_update(
        index_elements=list(keys), set_={c: getattr(stmt.excluded, c) for c in columns if c not in keys}
    )


@cache
def insert_missing(table_name: str, keys: tuple[str, ...], columns: tuple[str, ...]) -> Any:
    """``INSERT … SELECT unnest … ON CONFLICT (keys) DO NOTHING``."""
    table = orm.metadata.tables[table_name]
    stmt = pg_insert(table).from_select(list(columns), unnest_source(table, columns))
    return stmt.on_conflict_do_nothing(index_elements=list(keys))


@cache
def membership_upsert() -> Any:
    """Add the batch's membership deltas and return, per counter key, how many members appeared (or left).

    A member is present in a subtree while ``n > 0``: per row, ``sign(n after) - sign(n before)`` with
    ``n before = n after - delta``; summed per (unit, campaign, phase) in PostgreSQL, so only the changed
    ``participants`` come back, not one row per membership."""
    m = orm.memberships
    keys = ("unit_code", "campaign", "phase", "member_id")
    delta = unnest_source(m, [*keys, "n"]).cte("delta")
    ins = pg_insert(m).from_select([*keys, "n"], select(*[delta.c[k] for k in (*keys, "n")]))
    up = (
        ins.on_conflict_do_update(index_elements=list(keys), set_={"n": m.c.n + ins.excluded.n})
        .returning(*[m.c[k] for k in (*keys, "n")])
        .cte("up")
    )
    change = func.sum(func.sign(up.c.n) - func.sign(up.c.n - delta.c.n))
    return (
        select(up.c.unit_code, up.c.campaign, up.c.phase, change.label("change"))
        .join_from(up, delta, and_(*[up.c[k] == delta.c[k] for k in keys]))
        .group_by(up.c.unit_code, up.c.campaign, up.c.phase)
        .having(change != 0)
    )


@cache
def delete_emptied_memberships() -> Any:
    """Remove the given membership rows where ``n`` came back to 0."""
    m = orm.memberships
    keys = ("unit_code", "campaign", "phase", "member_id")
    given = unnest_source(m, keys).subquery("given")
    return delete(m).where(*[m.c[k] == given.c[k] for k in keys], m.c.n == 0)


def columns_of(rows: Sequence[Sequence[Any]], names: Sequence[str]) -> dict[str, list[Any]]:
    """Row tuples → one list per column name (the parameters of an unnest statement)."""
    return {n: [r[i] for r in rows] for i, n in enumerate(names)}
