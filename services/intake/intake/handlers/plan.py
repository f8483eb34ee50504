"""Intake's replica of the plan: units and campaigns from tally, newest revision wins."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from intake.adapters.orm import campaigns, units
from shared.db import upsert
from shared.envelope import Envelope
from shared.units import apply_unit_upserted


async def on_unit_upserted(session: AsyncSession, envelope: Envelope) -> None:
    await apply_unit_upserted(session, units, envelope.data)


async def on_campaign_upserted(session: AsyncSession, envelope: Envelope) -> None:
    data = envelope.data
    window = data.get("application_window") or {}
    row: dict[str, Any] = {
        "code": str(data["code"]),
        "name": str(data.get("name") or data["code"]),
        "fields": [{"code": str(f["code"]), "name": str(f.get("name") or f["code"])} for f in data.get("fields") or []],
        "window_from": _day(window.get("from")),
        "window_to": _day(window.get("to")),
        "phases": [
            {"code": str(p["code"]), "opens_on": str(p["opens_on"]), "closes_on": str(p["closes_on"])}
            for p in data.get("phases") or []
        ],
        "revision": int(data.get("revision") or 0),
    }
    stmt = upsert(campaigns, session.bind.dialect.name).values(**row)
    stmt = stmt.on_conflict_do_update(
        index_elements=["code"],
        set_={k: stmt.excluded[k] for k in row if k != "code"},
        where=campaigns.c.revision <= stmt.excluded.revision,
    )
    await session.execute(stmt)


def _day(value: Any) -> Any:
    from datetime import date

    return date.fromisoformat(str(value)) if value else None
