"""Everything tally listens to, one line per routing key (a subset of shared/topology.py's "tally" queue)."""

from __future__ import annotations

from shared.messaging import Subscription
from tally.handlers.initiatives import (
    apply_batch,
    on_initiative_content,
    on_initiative_reviewed,
    on_initiative_withdrawn,
)

SUBSCRIPTIONS: list[Subscription] = [
    Subscription("initiative.submitted.v1", on_initiative_content, idempotent=True),
    Subscription("initiative.revised.v1", on_initiative_content, idempotent=True),
    Subscription("initiative.withdrawn.v1", on_initiative_withdrawn, idempotent=True),
    Subscription("initiative.reviewed.v1", on_initiative_reviewed, idempotent=True),
]

AFTER_BATCH = apply_batch
