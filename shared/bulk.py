"""PostgreSQL set-based writes: a whole batch's rows go in as one JSON document (an array of row arrays), so a
table gets one statement per batch whatever the number of rows, and the statement is prepared once.

One JSON text, made by orjson, costs the client ~0.3 ms for 3,500 rows of 8 columns; the same rows as eight
PostgreSQL arrays cost asyncpg ~6 ms to encode (an ``isinstance`` check per element), and the server more to
read (measured in tally: 9.2 ms per statement as arrays, 3.1 ms as JSON). The server reads it as ``jsonb``
(``json_rows``).

Each builder returns a statement built once per process (SQLAlchemy caches its compiled form); its one
parameter is ``rows_param(rows)``. SQLite keeps plain executemany paths in the callers.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

import orjson
from sqlalchemy import Select, String, Table, bindparam, cast, column, func, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.types import JSON

ROWS = "rows"


def json_rows(columns: Sequence[tuple[str, Any]], param: str = ROWS) -> Select[Any]:
    """``SELECT CAST(r.value ->> 0 AS t0) AS c0, …`` over the elements of the ``param`` parameter (``rows``), a JSON
    array of row arrays; ``columns`` are (name, SQLAlchemy type) in row order. A JSON column takes its element as
    JSON. Statements that read two documents (writable CTEs in one statement) give each its own ``param``.

    The document is read as ``jsonb``: parsed once, each ``->> i`` is then an index into a binary array. Read
    as ``json``, every ``->> i`` parses its row's text again from the start, so a row's cost grew with its
    columns times its length: review's insert of 500 items (30 columns, two 600-character texts) took 183 ms
    of PostgreSQL, a third of review's PostgreSQL time; the same SELECT over 500 such rows, 95.7 ms as json,
    11.1 ms as jsonb, and 3,500 narrow rows of 8 columns 13.4–21.2 against 6.9–11.5 ms (docs/benchmarks.md)."""
    rows = func.jsonb_array_elements(cast(bindparam(param, type_=String), JSONB))
    value = rows.table_valued(column("value", JSONB), name="r").c.value
    exprs = []
    for i, (name, type_) in enumerate(columns):
        if isinstance(type_, JSON | JSONB):
            exprs.append(cast(value[i], type_).label(name))
        else:
            exprs.append(cast(value[i].astext, type_).label(name))
    return select(*exprs)


def table_rows(table: Table, columns: Sequence[str], param: str = ROWS) -> Select[Any]:
    """The rows of ``rows_param`` as the given columns of ``table``."""
    return json_rows([(name, table.c[name].type) for name in columns], param)


def rows_param(rows: Sequence[Sequence[Any]], param: str = ROWS) -> dict[str, str]:
    """Row tuples (dates, datetimes (naive ones are UTC), None and JSON values) → a ``json_rows`` parameter."""
    return {param: orjson.dumps(rows, option=orjson.OPT_NAIVE_UTC).decode()}


@cache
def add_upsert(table: Table, keys: tuple[str, ...], adds: tuple[str, ...]) -> Any:
    """``INSERT … SELECT (JSON rows) … ON CONFLICT (keys) DO UPDATE SET a = t.a + excluded.a`` per added column."""
    stmt = pg_insert(table).from_select([*keys, *adds], table_rows(table, [*keys, *adds]))
    return stmt.on_conflict_do_update(
        index_elements=list(keys), set_={a: table.c[a] + getattr(stmt.excluded, a) for a in adds}
    )


@cache
def replace_upsert(table: Table, keys: tuple[str, ...], columns: tuple[str, ...], newer: str | None = None) -> Any:
    """``INSERT … SELECT (the JSON rows) … ON CONFLICT (keys) DO UPDATE SET c = excluded.c`` for the other columns;
    with ``newer``, only where the stored row's ``newer`` column is at most the incoming one."""
    stmt = pg_insert(table).from_select(list(columns), table_rows(table, columns))
    return stmt.on_conflict_do_update(
        index_elements=list(keys),
        set_={c: getattr(stmt.excluded, c) for c in columns if c not in keys},
        where=None if newer is None else table.c[newer] <= getattr(stmt.excluded, newer),
    )


@cache
def insert_missing(table: Table, keys: tuple[str, ...], columns: tuple[str, ...], returning: bool = False) -> Any:
    """``INSERT … SELECT (the JSON rows) … ON CONFLICT (keys) DO NOTHING`` (returning the keys inserted)."""
    stmt = (
        pg_insert(table)
        .from_select(list(columns), table_rows(table, columns))
        .on_conflict_do_nothing(index_elements=list(keys))
    )
    return stmt.returning(*(table.c[k] for k in keys)) if returning else stmt


@cache
def insert_rows(table: Table, columns: tuple[str, ...], param: str = ROWS) -> Any:
    """``INSERT … SELECT (the JSON rows)`` (the table's own defaults, e.g. an identity, fill the other columns)."""
    return pg_insert(table).from_select(list(columns), table_rows(table, columns, param))


@cache
def update_rows(table: Table, keys: tuple[str, ...], columns: tuple[str, ...], param: str = ROWS) -> Any:
    """``UPDATE t SET c = r.c … FROM (the JSON rows) r WHERE t.key = r.key`` for the non-key columns."""
    source = table_rows(table, columns, param).subquery("r")
    return (
        update(table)
        .values({c: source.c[c] for c in columns if c not in keys})
        .where(*(table.c[k] == source.c[k] for k in keys))
    )
