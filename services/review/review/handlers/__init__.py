"""The one list of what review listens to (a subset of shared/topology.py QUEUES["review"]).

The initiative handlers only note their events; ``make_apply_batch`` queues them set-based once per batch."""

from __future__ import annotations

from review.handlers.initiatives import make_apply_batch, on_initiative, on_withdrawn
from review.handlers.plan import on_unit_upserted
from shared.messaging import Subscription

__all__ = ["SUBSCRIPTIONS", "make_apply_batch"]

SUBSCRIPTIONS: list[Subscription] = [
    Subscription("initiative.submitted.v1", on_initiative, idempotent=True),
    Subscription("initiative.revised.v1", on_initiative, idempotent=True),
    Subscription("initiative.withdrawn.v1", on_withdrawn, idempotent=True),
    Subscription("unit.upserted.v1", on_unit_upserted),
]
