"""The unit replica used for scope checks (tally owns the tree)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from review.adapters.orm import units
from review.handlers.events import UnitUpserted
from shared.envelope import Envelope
from shared.messaging import parse_event
from shared.units import apply_unit_upserted


async def on_unit_upserted(session: AsyncSession, env: Envelope) -> None:
    event = parse_event(UnitUpserted, env)
    await apply_unit_upserted(session, units, event.model_dump())
