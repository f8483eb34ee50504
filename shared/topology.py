"""Which queue receives which routing keys: the broker topology of the whole system.

Every service declares all of it at start-up (declaring is idempotent), so an event published
before its consumer's first start is kept in that consumer's durable queue, not dropped as
unroutable. Each service's own subscriptions must be a subset of its queue's entry here; the
service refuses to start otherwise.
"""

from __future__ import annotations

EXCHANGE = "sangkien.events"
DEAD_LETTER_EXCHANGE = "sangkien.dead-letter"

QUEUES: dict[str, tuple[str, ...]] = {
    "intake": (
        "unit.upserted.v1",
        "campaign.upserted.v1",
        "initiative.reviewed.v1",
        "initiative.appraised.v1",
        "award.granted.v1",
        "award.revoked.v1",
    ),
    "review": (
        "unit.upserted.v1",
        "campaign.upserted.v1",
        "initiative.submitted.v1",
        "initiative.revised.v1",
        "initiative.withdrawn.v1",
    ),
    "tally": (
        "initiative.submitted.v1",
        "initiative.revised.v1",
        "initiative.withdrawn.v1",
        "initiative.reviewed.v1",
        "award.granted.v1",
        "award.revoked.v1",
    ),
    "awards": (
        "unit.upserted.v1",
        "campaign.upserted.v1",
        "quota.set.v1",
        "initiative.reviewed.v1",
        "initiative.appraised.v1",
        "tally.milestone_reached.v1",
        "tally.snapshot_frozen.v1",
    ),
}


# Bindings a queue had in an earlier version and must lose: removing a key above does not unbind it on a broker
# that already has it (declaring is additive), so each service unbinds these at start-up (unbinding what is not
# bound does nothing). Awards took every initiative.submitted.v1 (with its texts) until it read its facts from
# the decisions alone.
RETIRED: dict[str, tuple[str, ...]] = {
    "awards": ("initiative.submitted.v1",),
}


def queue_name(service: str, prefix: str = "") -> str:
    return f"{prefix}{service}"


def dead_letter_queue_name(service: str, prefix: str = "") -> str:
    return f"{prefix}{service}.dead-letter"
