"""PostgreSQL set-based writes: a whole batch's rows go in as one array per column (``unnest``), so a table
gets one statement per batch whatever the number of rows, and the statement is prepared once.

Each builder returns a statement built once per process (SQLAlchemy caches its compiled form); the
parameters are ``{column: [values...]}``. SQLite keeps the plain executemany path of the callers.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import Select, String, Table, bindparam, cast, func, select
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


def columns_of(rows: Sequence[Sequence[Any]], names: Sequence[str]) -> dict[str, list[Any]]:
    """Row tuples → one list per column name (the parameters of an unnest statement)."""
    return {n: [r[i] for r in rows] for i, n in enumerate(names)}
