"""A two-service toy (a producer of ``demo.noted`` and a counter of it) that exercises the plumbing.

It uses exactly what the real services use: ServiceDefinition, outbox, inbox, the dispatcher and
both transports. Its routing keys are bound by the test topology it is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import Column, Integer, MetaData, String, Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.envelope import Envelope
from shared.messaging import Subscription, messaging_tables, parse_event
from shared.service import ContextDep, PrincipalDep, ServiceDefinition, SessionDep, require_roles
from shared.units import unit_replica_table

metadata = MetaData()
outbox, inbox = messaging_tables(metadata)
units = unit_replica_table(metadata)
notes = Table("notes", metadata, Column("id", Integer, primary_key=True), Column("text", String(200)))
counts = Table("counts", metadata, Column("key", String(50), primary_key=True), Column("n", Integer))

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

router = APIRouter()


@router.post("/api/v1/notes", status_code=201)
async def add_note(body: dict[str, Any], ctx: ContextDep, session: SessionDep, _p: PrincipalDep) -> dict[str, Any]:
    async with session.begin():
        note_id = (await session.execute(notes.insert().values(text=str(body.get("text", ""))))).inserted_primary_key[0]
        await ctx.emit(session, ctx.event("demo.noted", {"note_id": note_id, "text": body.get("text", "")}))
    return {"id": note_id}


@router.get("/api/v1/counts/{key}")
async def get_count(key: str, session: SessionDep, _p: Any = require_roles("reviewer")) -> dict[str, int]:
    n = (await session.execute(select(counts.c.n).where(counts.c.key == key))).scalar_one_or_none()
    return {"n": n or 0}


class Noted(BaseModel):
    """The consumer's model of ``demo.noted.v1``: a payload without ``text`` is poison."""

    text: str
    note_id: int | None = None


async def count_note(session: AsyncSession, env: Envelope) -> None:
    event = parse_event(Noted, env)
    if event.text == "poison":
        raise RuntimeError("this handler always fails on poison")
    result = await session.execute(update(counts).where(counts.c.key == "noted").values(n=counts.c.n + 1))
    if result.rowcount == 0:  # type: ignore[attr-defined]
        await session.execute(counts.insert().values(key="noted", n=1))


PRODUCER = ServiceDefinition(name="demo_producer", metadata=metadata, migrations=MIGRATIONS, routers=[router])
CONSUMER = ServiceDefinition(
    name="demo_consumer",
    metadata=metadata,
    migrations=MIGRATIONS,
    routers=[router],
    subscriptions=[Subscription("demo.noted.v1", count_note)],
)
TOPOLOGY = {"demo_consumer": ("demo.noted.v1",)}
