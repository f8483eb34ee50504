"""What intake listens to: one line per routing key (a subset of shared/topology.py QUEUES["intake"])."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from intake.adapters.plan import PlanReader
from intake.handlers.plan import on_campaign_upserted, on_unit_upserted
from intake.handlers.review import apply_batch, on_initiative_appraised, on_initiative_reviewed
from shared.envelope import Envelope
from shared.messaging import Handler, Subscription

AFTER_BATCH = apply_batch


def make_subscriptions(plan: Callable[[], PlanReader | None]) -> list[Subscription]:
    """The subscription list; plan handlers also drop the cached entry they change."""

    def forgetting(handler: Handler, kind: str) -> Handler:
        async def wrapped(session: AsyncSession, envelope: Envelope) -> None:
            await handler(session, envelope)
            reader = plan()
            if reader is not None:
                code = str(envelope.data.get("code"))
                reader.forget_unit(code) if kind == "unit" else reader.forget_campaign(code)

        wrapped.__name__ = handler.__name__
        return wrapped

    return [
        Subscription("unit.upserted.v1", forgetting(on_unit_upserted, "unit")),
        Subscription("campaign.upserted.v1", forgetting(on_campaign_upserted, "campaign")),
        Subscription("initiative.reviewed.v1", on_initiative_reviewed, idempotent=True),
        Subscription("initiative.appraised.v1", on_initiative_appraised, idempotent=True),
    ]
