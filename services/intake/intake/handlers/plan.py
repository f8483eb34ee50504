"""Intake's replica of the plan: units and campaigns from tally, newest revision wins."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from intake.adapters.orm import campaigns, units
from intake.handlers.events import CampaignUpserted, UnitUpserted
from shared.db import upsert
from shared.envelope import Envelope
from shared.messaging import parse_event
from shared.units import apply_unit_upserted


async def on_unit_upserted(session: AsyncSession, envelope: Envelope) -> None:
    event = parse_event(UnitUpserted, envelope)
    await apply_unit_upserted(session, units, event.model_dump())


async def on_campaign_upserted(session: AsyncSession, envelope: Envelope) -> None:
    event = parse_event(CampaignUpserted, envelope)
    window = event.application_window
    row: dict[str, Any] = {
        "code": event.code,
        "name": event.name or event.code,
        "fields": [{"code": f.code, "name": f.name or f.code} for f in event.fields],
        "window_from": window.from_ if window else None,
        "window_to": window.to if window else None,
        "phases": [
            {"code": p.code, "opens_on": p.opens_on.isoformat(), "closes_on": p.closes_on.isoformat()}
            for p in event.phases
        ],
        "revision": event.revision,
    }
    stmt = upsert(campaigns, session.bind.dialect.name).values(**row)
    stmt = stmt.on_conflict_do_update(
        index_elements=["code"],
        set_={k: stmt.excluded[k] for k in row if k != "code"},
        where=campaigns.c.revision <= stmt.excluded.revision,
    )
    await session.execute(stmt)
