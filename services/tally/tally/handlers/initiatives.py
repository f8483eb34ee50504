"""What tally does on each initiative event: patch the fact, and note the change of its contribution.

The counters themselves move once per batch, in ``after_batch`` (set-based over ancestors)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from shared.envelope import Envelope, new_event
from shared.messaging import parse_event, stage
from tally.adapters import facts as fact_store
from tally.adapters.counters import Deltas, advance_campaign_totals, apply_own
from tally.adapters.orm import outbox
from tally.domain.counting import Fact, contribution, new_fact, on_content, on_reviewed, on_withdrawn
from tally.handlers.events import InitiativeContent, InitiativeReviewed, InitiativeWithdrawn

PENDING_KEY = "tally_pending"
Merge = Callable[[Fact, dict[str, Any]], Fact]


def _stage(session: AsyncSession, initiative_id: str, data: dict[str, Any], merge: Merge) -> None:
    """Queue the validated event; the whole batch's facts are read, merged and written in ``apply_batch``."""
    session.info.setdefault(PENDING_KEY, []).append((new_fact(initiative_id, data), data, merge))


# The merges read the validated field values (``vars``: no copy); a payload that cannot be read never gets here.


async def on_initiative_content(session: AsyncSession, env: Envelope) -> None:
    event = parse_event(InitiativeContent, env)
    _stage(session, event.id, vars(event), on_content)


async def on_initiative_withdrawn(session: AsyncSession, env: Envelope) -> None:
    event = parse_event(InitiativeWithdrawn, env)
    _stage(session, event.id, vars(event), on_withdrawn)


async def on_initiative_reviewed(session: AsyncSession, env: Envelope) -> None:
    event = parse_event(InitiativeReviewed, env)
    _stage(session, event.initiative_id, vars(event), on_reviewed)


async def merge_facts(session: AsyncSession, pending: Sequence[tuple[Fact, dict[str, Any], Merge]]) -> Deltas:
    """Apply the batch's events to their facts in arrival order; the net change of each contribution is noted."""
    stored = await fact_store.load_many_for_update(session, [p[0] for p in pending])
    current = dict(stored)
    last_seen: dict[str, int] = {}
    for position, (skeleton, data, merge) in enumerate(pending):
        current[skeleton.initiative_id] = merge(current[skeleton.initiative_id], data)
        last_seen[skeleton.initiative_id] = position
    deltas = Deltas()
    # In the order the batch settled them: the N-th valid initiative is the one whose event came N-th.
    changed = sorted((f for iid, f in current.items() if f != stored[iid]), key=lambda f: last_seen[f.initiative_id])
    await fact_store.save_many(session, changed)
    for fact in changed:
        before, after = contribution(stored[fact.initiative_id]), contribution(fact)
        if before != after:
            deltas.add_change(fact, before, after)
    return deltas


async def apply_batch(session: AsyncSession, envelopes: Sequence[Envelope]) -> None:
    """``after_batch``: the batch's net deltas, rolled up over ancestor paths, in a few statements."""
    pending = session.info.pop(PENDING_KEY, None)
    if not pending:
        return
    deltas = await merge_facts(session, pending)
    await apply_own(session, deltas)
    reached = await advance_campaign_totals(session, deltas.valid_steps)
    causation = envelopes[-1] if envelopes else None
    await stage(
        session,
        outbox,
        *[
            new_event(
                "tally.milestone_reached",
                {
                    "campaign": r["campaign"],
                    "n": r["n"],
                    "initiative_id": r["initiative_id"],
                    "unit_code": r["unit_code"],
                    "authors": [{"member_id": m} for m in r["authors"]],
                    "reached_at": r["reached_at"].isoformat(),
                },
                producer="tally",
                causation=causation,
            )
            for r in reached
        ],
    )
