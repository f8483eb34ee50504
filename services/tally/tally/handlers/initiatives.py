"""What tally does on each initiative event: patch the fact, and note the change of its contribution.

The counters themselves move once per batch, in ``after_batch`` (set-based over ancestors)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from shared.envelope import Envelope, new_event
from shared.messaging import stage
from tally.adapters import facts as fact_store
from tally.adapters.counters import Deltas, advance_campaign_totals, apply_expanded, unit_paths
from tally.adapters.orm import outbox
from tally.domain.counting import Fact, contribution, new_fact, on_content, on_reviewed, on_withdrawn

DELTAS_KEY = "tally_deltas"


def batch_deltas(session: AsyncSession) -> Deltas:
    deltas = session.info.get(DELTAS_KEY)
    if deltas is None:
        deltas = session.info[DELTAS_KEY] = Deltas()
    return deltas  # type: ignore[no-any-return]


async def _patch(
    session: AsyncSession, initiative_id: Any, data: dict[str, Any], merge: Callable[[Fact, dict[str, Any]], Fact]
) -> None:
    skeleton = new_fact(str(initiative_id or ""), data)
    if not skeleton.initiative_id or not skeleton.campaign or not skeleton.unit_code:
        raise ValueError("initiative event without id, campaign or unit_code")
    old = await fact_store.load_for_update(session, skeleton)
    new = merge(old, data)
    if new == old:
        return
    await fact_store.save(session, new)
    before, after = contribution(old), contribution(new)
    if before != after:
        batch_deltas(session).add_change(new, before, after)


async def on_initiative_content(session: AsyncSession, env: Envelope) -> None:
    await _patch(session, env.data.get("id"), env.data, on_content)


async def on_initiative_withdrawn(session: AsyncSession, env: Envelope) -> None:
    await _patch(session, env.data.get("id"), env.data, on_withdrawn)


async def on_initiative_reviewed(session: AsyncSession, env: Envelope) -> None:
    await _patch(session, env.data.get("initiative_id"), env.data, on_reviewed)


async def apply_batch(session: AsyncSession, envelopes: Sequence[Envelope]) -> None:
    """``after_batch``: the batch's net deltas, expanded over ancestor paths, in a few statements."""
    deltas: Deltas | None = session.info.pop(DELTAS_KEY, None)
    if deltas is None:
        return
    units = {k[0] for k in deltas.counters} | {k[0] for k in deltas.members} | {k[0] for k in deltas.days}
    paths = await unit_paths(session, units, lock=True)
    await apply_expanded(session, deltas.expanded(paths))
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
