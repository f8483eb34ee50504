"""The one list of what review listens to (a subset of shared/topology.py QUEUES["review"])."""

from __future__ import annotations

from review.handlers.initiatives import make_handlers
from review.handlers.plan import on_unit_upserted
from review.runtime import ReviewRuntime
from shared.messaging import Subscription


def make_subscriptions(runtime: ReviewRuntime) -> list[Subscription]:
    initiative = make_handlers(runtime)
    return [
        Subscription("initiative.submitted.v1", initiative["submitted"]),
        Subscription("initiative.revised.v1", initiative["revised"]),
        Subscription("initiative.withdrawn.v1", initiative["withdrawn"]),
        Subscription("unit.upserted.v1", on_unit_upserted),
    ]
