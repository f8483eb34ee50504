"""Each service's replica of the organisation tree, for the unit-scope checks of SPEC §6.

Tally owns the tree and publishes ``unit.upserted.v1`` with the unit's full ancestor path and a
revision number; replicas keep the newest revision of each unit and never compute paths
themselves, so events may arrive in any order. A path is stored as ``/VN/TH/TH-01/`` and a
subtree is a prefix of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, false, literal, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from shared.auth import Principal
from shared.db import upsert


def unit_replica_table(metadata: MetaData, name: str = "unit_replica") -> Table:
    return Table(
        name,
        metadata,
        Column("code", String(64), primary_key=True),
        Column("name", String(500), nullable=False),
        Column("kind", String(20), nullable=False),
        Column("parent_code", String(64), nullable=True),
        Column("cluster", String(64), nullable=True),
        Column("member_count", Integer, nullable=True),
        Column("path", String(1000), nullable=False, index=True),
        Column("revision", BigInteger, nullable=False),
    )


def path_string(codes: Sequence[str]) -> str:
    return "/" + "/".join(codes) + "/"


class position_of(FunctionElement[int]):
    """``position_of(haystack, needle)``: where ``needle`` starts in ``haystack`` (1-based), 0 when absent.

    Case-sensitive on every dialect, unlike LIKE, which ignores case on SQLite (a unit coded ``hn`` must
    not see ``HN``'s subtree); and with no wildcards to escape."""

    type = Integer()
    name = "position_of"
    inherit_cache = True


@compiles(position_of)
def _position_of(element: position_of, compiler: Any, **kw: Any) -> str:
    return f"strpos({compiler.process(element.clauses, **kw)})"


@compiles(position_of, "sqlite")
def _position_of_sqlite(element: position_of, compiler: Any, **kw: Any) -> str:
    return f"instr({compiler.process(element.clauses, **kw)})"


def subtree_clause(path_column: Any, root_code: str | None) -> ColumnElement[bool]:
    """Rows whose path lies in the subtree of ``root_code``; none at all when there is no root (a token
    without a ``unit`` sees nothing, it does not see everything)."""
    if not root_code:
        return false()
    return position_of(path_column, literal(f"/{root_code}/", String)) > 0


async def apply_unit_upserted(session: AsyncSession, table: Table, data: dict[str, Any]) -> None:
    """Upsert a unit from a ``unit.upserted.v1`` payload unless a newer revision is already held."""
    row = {
        "code": str(data["code"]),
        "name": str(data.get("name") or data["code"]),
        "kind": str(data.get("kind") or "grassroots"),
        "parent_code": data.get("parent_code"),
        "cluster": data.get("cluster"),
        "member_count": data.get("member_count"),
        "path": path_string(data.get("path") or [data["code"]]),
        "revision": int(data.get("revision") or 0),
    }
    stmt = upsert(table, session.bind.dialect.name).values(**row)
    stmt = stmt.on_conflict_do_update(
        index_elements=["code"],
        set_={k: stmt.excluded[k] for k in row if k != "code"},
        where=table.c.revision <= stmt.excluded.revision,
    )
    await session.execute(stmt)


async def unit_path(session: AsyncSession, table: Table, code: str) -> str | None:
    return (await session.execute(select(table.c.path).where(table.c.code == code))).scalar_one_or_none()


def path_in_scope(principal: Principal, path: str | None) -> bool:
    if principal.is_operator:
        return True
    if path is None or not principal.unit:
        return False
    return f"/{principal.unit}/" in path


async def in_scope(session: AsyncSession, table: Table, principal: Principal, unit_code: str) -> bool:
    """Whether ``unit_code`` lies in the principal's subtree (operators act everywhere)."""
    if principal.is_operator:
        return True
    return path_in_scope(principal, await unit_path(session, table, unit_code))
