"""What one running tally service holds besides its connections: its business metrics (tally.observability)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from shared.envelope import Envelope
from shared.messaging import AfterBatch
from shared.service import ServiceContext
from tally.observability import BusinessMetrics, count_batch, read_progress
from tally.settings import TallySettings

PROGRESS_INTERVAL_S = 30.0
log = logging.getLogger("tally.runtime")


@dataclass
class TallyRuntime:
    settings: TallySettings
    business: BusinessMetrics | None = None

    async def start(self, ctx: ServiceContext) -> None:
        self.business = BusinessMetrics.on(ctx.metrics)

    def counting(self, inner: AfterBatch) -> AfterBatch:
        """``inner``, then what the batch counted, after the inbox (a redelivered event is not counted twice)."""

        async def counted(session: AsyncSession, envelopes: Sequence[Envelope]) -> None:
            await inner(session, envelopes)
            if self.business is not None:
                await count_batch(session, self.business, envelopes)

        return counted

    async def province_progress(self, ctx: ServiceContext) -> None:
        """Keeps the per-province gauges and the open phases current."""
        while True:
            if self.business is not None:
                try:
                    async with ctx.sessions() as session:
                        await read_progress(session, self.business)
                except Exception as exc:  # the figures wait for the next round; nothing else depends on them
                    log.warning("province progress not read", extra={"error": repr(exc)})
            await asyncio.sleep(PROGRESS_INTERVAL_S)


def runtime_of(ctx: ServiceContext) -> TallyRuntime:
    return ctx.runtime_as(TallyRuntime)
