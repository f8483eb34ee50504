"""Helpers for tests: real PostgreSQL databases and RabbitMQ prefixes per run, tokens, running apps.

Each helper cleans up after itself, so test runs never see each other's data.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import httpx
from fastapi import FastAPI

from shared.auth import mint_token
from shared.settings import DEV_JWT_SECRET

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

PG_ADMIN_DSN = os.environ.get("TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TEST_SECRET = DEV_JWT_SECRET


def xlsx_bytes(rows: Iterable[Sequence[Any]], *, dimension: str | None = None) -> bytes:
    """An XLSX of ``rows``; ``dimension`` rewrites the sheet's declared ``<dimension ref>`` (e.g. "A1:XFD20000",
    the 1.7 KB sheet that claims 327 million cells)."""
    import io
    import zipfile

    from openpyxl import Workbook

    workbook = Workbook()
    for row in rows:
        workbook.active.append(list(row))
    plain = io.BytesIO()
    workbook.save(plain)
    if dimension is None:
        return plain.getvalue()
    out = io.BytesIO()
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "xl/worksheets/sheet1.xml":
                start = data.index(b'<dimension ref="') + len(b'<dimension ref="')
                data = data[:start] + dimension.encode() + data[data.index(b'"', start) :]
            dst.writestr(name, data)
    return out.getvalue()


def unique(prefix: str = "t") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


@contextlib.asynccontextmanager
async def engine_on(dialect: str, directory: Path) -> AsyncIterator[AsyncEngine]:
    """An engine on a fresh database of ``dialect``: "sqlite" (a file in ``directory``) or "postgresql" (dropped
    afterwards). For tests that run on both, such as migrations'."""
    from shared.db import make_engine

    if dialect == "sqlite":
        engine = await make_engine(f"sqlite+aiosqlite:///{directory}/test.db")
        try:
            yield engine
        finally:
            await engine.dispose()
        return
    async with pg_database() as url:
        engine = await make_engine(url)
        try:
            yield engine
        finally:
            await engine.dispose()


def pg_url(database: str, driver: str = "postgresql") -> str:
    """``TEST_PG_DSN`` naming ``database`` instead (its host, port or ``?host=`` socket directory kept), with
    ``driver``: "postgresql" for asyncpg, "postgresql+asyncpg" for SQLAlchemy."""
    from sqlalchemy.engine import make_url

    url = make_url(PG_ADMIN_DSN).set(drivername=driver, database=database)
    return url.render_as_string(hide_password=False)


@contextlib.asynccontextmanager
async def pg_database(name: str | None = None) -> AsyncIterator[str]:
    """Create a fresh PostgreSQL database; yield its SQLAlchemy asyncpg URL; drop it afterwards."""
    db = name or unique("sk_test_")
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{db}"')
    finally:
        await admin.close()
    try:
        yield pg_url(db, driver="postgresql+asyncpg")
    finally:
        admin = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        finally:
            await admin.close()


@contextlib.asynccontextmanager
async def amqp_prefix(topology: Mapping[str, Sequence[str]] | None = None) -> AsyncIterator[str]:
    """A unique exchange/queue prefix on the loopback RabbitMQ; its queues (those of the system's
    topology and of ``topology``, a test's own) are deleted afterwards."""
    from shared.bus.rabbitmq import RabbitMQBus
    from shared.topology import QUEUES

    prefix = unique("sktest.") + "."
    try:
        yield prefix
    finally:
        await RabbitMQBus(AMQP_URL, prefix=prefix, topology={**QUEUES, **(topology or {})}).delete_topology()


def token(
    roles: Iterable[str] | str,
    unit: str | None = "VN",
    *,
    sub: str | None = None,
    member_id: str | None = None,
    name: str | None = None,
    secret: str = TEST_SECRET,
    ttl_s: int = 3600,
) -> str:
    role_list = [roles] if isinstance(roles, str) else list(roles)
    return mint_token(
        secret,
        sub=sub or f"{role_list[0]}-{unit}",
        roles=role_list,
        unit=unit,
        name=name,
        member_id=member_id,
        ttl_s=ttl_s,
    )


def auth(*args: Any, **kwargs: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(*args, **kwargs)}"}


@contextlib.asynccontextmanager
async def running_app(app: FastAPI, base_url: str = "http://test") -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan and give a client that calls it in-process."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=base_url, timeout=30) as client:
            yield client


async def eventually(
    probe: Callable[[], Awaitable[bool]], *, timeout_s: float = 10.0, interval_s: float = 0.05
) -> None:
    """Wait until ``probe()`` is true (events cross the bus asynchronously)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        if await probe():
            return
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(interval_s)
