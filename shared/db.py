"""Async SQLAlchemy engines for PostgreSQL (asyncpg) and SQLite (aiosqlite), and migrations at start-up."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config
from sqlalchemy import BigInteger, Integer, MetaData, Table, event, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.sql.dml import Insert

from shared.advisory_locks import AdvisoryLock


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


# JSON columns through orjson: several times faster than the standard library both ways (tally reads the authors
# of every fact of a batch from one).
_JSON: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}

# A BIGINT that is still SQLite's auto-incrementing INTEGER PRIMARY KEY.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")


def is_sqlite(url_or_engine: str | AsyncEngine | Connection) -> bool:
    if isinstance(url_or_engine, str):
        return url_or_engine.startswith("sqlite")
    return url_or_engine.dialect.name == "sqlite"


async def make_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> AsyncEngine:
    if is_sqlite(url):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            await asyncio.to_thread(_ensure_parent_dir, path)
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 60}, **_JSON)
        _sqlite_immediate_transactions(engine)
        return engine
    # No pre-ping: with asyncpg it is three round trips per checkout (BEGIN, ';', ROLLBACK), paid by every request,
    # batch and relay poll. A connection that died meanwhile fails its first statement instead: SQLAlchemy then
    # invalidates the whole pool, the request answers 503 and a consumer holds its batch and retries
    # (shared.faults), as during the outage itself.
    return create_async_engine(url, echo=echo, pool_size=pool_size, max_overflow=pool_size, **_JSON)


def _ensure_parent_dir(path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)


def _sqlite_immediate_transactions(engine: AsyncEngine) -> None:
    """WAL + BEGIN IMMEDIATE: writers queue on the busy timeout instead of failing on a stale snapshot."""

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def insert_ignore(table: Table, dialect_name: str, index_elements: Sequence[str] | None = None) -> Insert:
    """INSERT … ON CONFLICT DO NOTHING for the two supported dialects."""
    if dialect_name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=index_elements)
    return sqlite.insert(table).on_conflict_do_nothing(index_elements=index_elements)


def upsert(table: Table, dialect_name: str) -> Any:
    """The dialect's INSERT supporting ``on_conflict_do_update``."""
    return postgresql.insert(table) if dialect_name == "postgresql" else sqlite.insert(table)


def _migrate(
    connection: Connection, script_location: str, target_metadata: MetaData | None, revision: str, down: bool
) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", script_location)
    cfg.attributes["connection"] = connection
    cfg.attributes["target_metadata"] = target_metadata
    if connection.dialect.name == "postgresql":
        # Several replicas of one service may start together; one migrates, the others wait.
        connection.execute(select(func.pg_advisory_xact_lock(int(AdvisoryLock.MIGRATIONS))))
    if down:
        command.downgrade(cfg, revision)
    else:
        command.upgrade(cfg, revision)


async def run_migrations(
    engine: AsyncEngine,
    migrations_dir: Path,
    metadata: MetaData | None = None,
    revision: str = "head",
    *,
    down: bool = False,
) -> None:
    """Upgrade to ``revision`` (the newest by default), or downgrade to it with ``down``, in one transaction."""
    async with engine.begin() as conn:
        await conn.run_sync(_migrate, str(migrations_dir), metadata, revision, down)
