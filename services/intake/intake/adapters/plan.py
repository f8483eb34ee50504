"""Reads of intake's replica of the plan, with a short in-memory cache for the hot path.

Only hits are cached (a campaign created a moment ago is seen at once); the handlers of
``unit.upserted.v1`` / ``campaign.upserted.v1`` drop the entry they change, and the TTL bounds
the staleness another replica of intake may see.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from intake.adapters.orm import campaigns, units
from intake.domain.rules import Campaign, Unit, campaign_from_row


class PlanReader:
    def __init__(self, engine: AsyncEngine, ttl_s: float) -> None:
        self.engine = engine
        self.ttl_s = ttl_s
        self._campaigns: dict[str, tuple[float, Campaign]] = {}
        self._units: dict[str, tuple[float, Unit]] = {}

    def forget_campaign(self, code: str) -> None:
        self._campaigns.pop(code, None)

    def forget_unit(self, code: str) -> None:
        self._units.pop(code, None)

    async def campaign(self, code: str, conn: AsyncConnection | None = None) -> Campaign | None:
        hit = self._campaigns.get(code)
        if hit and time.monotonic() - hit[0] < self.ttl_s:
            return hit[1]
        row = await self._one(select(campaigns).where(campaigns.c.code == code), conn)
        if row is None:
            return None
        campaign = campaign_from_row(row)
        self._campaigns[code] = (time.monotonic(), campaign)
        return campaign

    async def unit(self, code: str, conn: AsyncConnection | None = None) -> Unit | None:
        hit = self._units.get(code)
        if hit and time.monotonic() - hit[0] < self.ttl_s:
            return hit[1]
        row = await self._one(select(units.c.code, units.c.kind, units.c.path).where(units.c.code == code), conn)
        if row is None:
            return None
        unit = Unit(row.code, row.kind, row.path)
        if len(self._units) > 200_000:
            self._units.clear()
        self._units[code] = (time.monotonic(), unit)
        return unit

    async def _one(self, stmt: Any, conn: AsyncConnection | None) -> Any:
        if conn is not None:
            return (await conn.execute(stmt)).first()
        async with self.engine.connect() as own:
            return (await own.execute(stmt)).first()
