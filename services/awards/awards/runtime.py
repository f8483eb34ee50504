"""What one running awards service holds besides its connections: its client of tally's frozen figures."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from awards.adapters.tally_client import TallyClient
from awards.settings import AwardsSettings
from shared.service import ServiceContext


@dataclass
class AwardsRuntime:
    settings: AwardsSettings
    # Tests and the embedded run reach tally in-process through this transport.
    tally_transport: httpx.AsyncBaseTransport | None = None
    tally: TallyClient | None = None

    async def start(self, ctx: ServiceContext) -> None:
        s = self.settings
        base_url = "http://tally" if self.tally_transport is not None else s.tally_url
        self.tally = TallyClient(
            base_url, transport=self.tally_transport, timeout_s=s.tally_timeout_s, page_size=s.tally_page_size
        )


def runtime_of(ctx: ServiceContext) -> AwardsRuntime:
    return ctx.runtime_as(AwardsRuntime)
