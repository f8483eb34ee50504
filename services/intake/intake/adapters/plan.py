"""Reads of intake's replica of the plan, with a short in-memory cache for the hot path.

Only hits are cached (a campaign created a moment ago is seen at once); the handlers of
``unit.upserted.v1`` / ``campaign.upserted.v1`` drop the entry they change, and the TTL bounds
the staleness another replica of intake may see. An expired entry is answered once more while a
single background query refreshes it (stale-while-revalidate): under a rush, an expiry must not
make every request wait for that query. A batch reads its units together (:meth:`PlanReader.units`): one
query for the ones it has never seen, one background query for all of its expired ones. Unit by unit, a province
of 3,690 units cost intake a query and a pooled connection per unit every TTL under the replay's batches
(``PlanReader._load_unit`` 38% of intake's samples, py-spy; docs/benchmarks.md, "The full replay").
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection, Coroutine
from typing import Any

from sqlalchemy import String, any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from intake.adapters.orm import campaigns, units
from intake.domain.rules import Campaign, Unit, campaign_from_row

log = logging.getLogger("intake.plan")


class PlanReader:
    def __init__(self, engine: AsyncEngine, ttl_s: float) -> None:
        self.engine = engine
        self.ttl_s = ttl_s
        self._campaigns: dict[str, tuple[float, Campaign]] = {}
        self._units: dict[str, tuple[float, Unit]] = {}
        self._loading: dict[tuple[str, str], asyncio.Future[Any]] = {}
        self._refreshing_units: set[str] = set()
        self._refreshes: set[asyncio.Task[Any]] = set()

    def forget_campaign(self, code: str) -> None:
        self._campaigns.pop(code, None)

    def forget_unit(self, code: str) -> None:
        self._units.pop(code, None)

    async def campaign(self, code: str, conn: AsyncConnection | None = None) -> Campaign | None:
        hit = self._campaigns.get(code)
        if hit and conn is None and self._fresh_or_refreshing(("campaign", code), hit[0], self._load_campaign, code):
            return hit[1]
        return await self._single_flight(("campaign", code), self._load_campaign(code, conn), conn)

    async def unit(self, code: str, conn: AsyncConnection | None = None) -> Unit | None:
        hit = self._units.get(code)
        if hit and conn is None and self._fresh_or_refreshing(("unit", code), hit[0], self._load_unit, code):
            return hit[1]
        return await self._single_flight(("unit", code), self._load_unit(code, conn), conn)

    async def units(self, codes: Collection[str]) -> dict[str, Unit | None]:
        """:meth:`unit` for every code at once: the cached ones at once (the expired among them refreshed by one
        background query), the others read in one query."""
        now = time.monotonic()
        out: dict[str, Unit | None] = {}
        stale: list[str] = []
        missing: list[str] = []
        for code in codes:
            hit = self._units.get(code)
            if hit is None or now - hit[0] >= 2 * self.ttl_s:
                missing.append(code)
                continue
            out[code] = hit[1]
            if now - hit[0] >= self.ttl_s and code not in self._refreshing_units:
                stale.append(code)
        if stale:
            self._refreshing_units.update(stale)
            task = asyncio.ensure_future(self._load_units(stale))
            self._refreshes.add(task)
            task.add_done_callback(lambda t: self._units_refreshed(stale, t))
        if missing:
            loaded = await self._load_units(missing)
            out.update({code: loaded.get(code) for code in missing})
        return out

    def _units_refreshed(self, codes: list[str], task: asyncio.Task[Any]) -> None:
        self._refreshes.discard(task)
        self._refreshing_units.difference_update(codes)
        if not task.cancelled() and task.exception() is not None:
            log.warning("plan cache refresh failed", extra={"key": codes[0], "error": repr(task.exception())})

    async def _load_units(self, codes: list[str]) -> dict[str, Unit]:
        query = select(units.c.code, units.c.kind, units.c.path)
        async with self.engine.connect() as conn:
            if conn.dialect.name == "postgresql":  # one array parameter: one prepared statement for any count
                rows = await conn.execute(query.where(units.c.code == any_(bindparam("codes", type_=ARRAY(String)))),
                                          {"codes": codes})  # fmt: skip
            else:
                rows = await conn.execute(query.where(units.c.code.in_(codes)))
            found = {row.code: Unit(row.code, row.kind, row.path) for row in rows}
        now = time.monotonic()
        if len(self._units) + len(found) > 200_000:
            self._units.clear()
        for code in codes:
            if code in found:
                self._units[code] = (now, found[code])
            else:
                self._units.pop(code, None)  # gone from the plan: no longer answered from the cache
        return found

    def _fresh_or_refreshing(self, key: tuple[str, str], loaded_at: float, load: Any, code: str) -> bool:
        """True when the cached entry may be answered: fresh, or expired by less than a TTL with one refresh
        under way (started here if none is)."""
        age = time.monotonic() - loaded_at
        if age < self.ttl_s:
            return True
        if age >= 2 * self.ttl_s:
            return False
        if key not in self._loading:
            task = asyncio.ensure_future(load(code, None))
            self._loading[key] = task
            task.add_done_callback(lambda t: self._refreshed(key, t))
        return True

    def _refreshed(self, key: tuple[str, str], task: asyncio.Future[Any]) -> None:
        self._loading.pop(key, None)
        if not task.cancelled() and task.exception() is not None:
            # The stale entry keeps answering until it is two TTLs old; then a request loads it itself.
            log.warning("plan cache refresh failed", extra={"key": key[1], "error": repr(task.exception())})

    async def _single_flight(self, key: tuple[str, str], load: Coroutine[Any, Any, Any], conn: Any) -> Any:
        """When an entry expires under a rush, one query refreshes it; the other requests wait for it."""
        if conn is not None:  # inside the caller's transaction: read there, never share it
            return await load
        task = self._loading.get(key)
        if task is None:
            task = asyncio.ensure_future(load)
            self._loading[key] = task
            task.add_done_callback(lambda _t: self._loading.pop(key, None))
        else:
            load.close()
        return await asyncio.shield(task)

    async def _load_campaign(self, code: str, conn: AsyncConnection | None) -> Campaign | None:
        row = await self._one(select(campaigns).where(campaigns.c.code == code), conn)
        if row is None:
            return None
        campaign = campaign_from_row(row)
        self._campaigns[code] = (time.monotonic(), campaign)
        return campaign

    async def _load_unit(self, code: str, conn: AsyncConnection | None) -> Unit | None:
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
