"""What review does when intake reports initiatives: queue them, re-queue them, or drop them, a batch at a time.

Each event is only noted as it is handled; ``apply_batch`` (the dispatcher's ``after_batch``) then reads the
batch's items under lock once, folds the events into them in arrival order (``review.domain.arrivals``: the
highest ``revision`` wins, a withdrawal is terminal even before its submission), looks up near-duplicates in
memory in ``seq`` order (the batch's own earlier items included), and writes items and signatures back in a
few statements, whatever the batch's size.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from review.adapters import arrivals as store
from review.adapters.similar_store import Entry, Found, signature_rows
from review.domain.arrivals import ItemState, apply_content, apply_withdrawal, content_of
from review.handlers.events import InitiativeContent, InitiativeWithdrawn
from review.runtime import ReviewRuntime
from shared.envelope import Envelope
from shared.messaging import AfterBatch, parse_event

PENDING_KEY = "review_pending"
# A new item another replica inserted between our read and our insert is folded again over the stored row.
MAX_FOLDS = 5


def _note(session: AsyncSession, initiative_id: str, kind: str, data: dict[str, Any]) -> None:
    session.info.setdefault(PENDING_KEY, []).append((initiative_id, kind, data))


async def on_initiative(session: AsyncSession, env: Envelope) -> None:
    """initiative.submitted.v1 and initiative.revised.v1 carry the whole initiative."""
    event = parse_event(InitiativeContent, env)
    # The fold reads the validated field values (``vars``: no copy); a payload that cannot be read never gets here.
    _note(session, event.id, "content", content_of(vars(event)))


async def on_withdrawn(session: AsyncSession, env: Envelope) -> None:
    event = parse_event(InitiativeWithdrawn, env)
    _note(session, event.id, "withdrawn", vars(event))


def _fold(states: dict[str, ItemState], pending: Sequence[tuple[str, str, dict[str, Any]]], now: datetime) -> None:
    for initiative_id, kind, data in pending:
        state = states[initiative_id]
        state.events.append((kind, data))
        if kind == "content":
            apply_content(state, initiative_id, data, now)
        else:
            apply_withdrawal(state, initiative_id, data)


def make_apply_batch(runtime: ReviewRuntime) -> AfterBatch:
    async def apply_batch(session: AsyncSession, envelopes: Sequence[Envelope]) -> None:
        pending: list[tuple[str, str, dict[str, Any]]] | None = session.info.pop(PENDING_KEY, None)
        if not pending:
            return
        now = datetime.now(UTC)
        stored = await store.lock_items(session, {p[0] for p in pending})
        states = {iid: ItemState(stored.get(iid), iid in stored) for iid, _, _ in pending}
        _fold(states, pending, now)
        for _ in range(MAX_FOLDS):
            lost = await _write(session, runtime, states)
            if not lost:
                return
            # Another replica inserted these meanwhile: fold their events again over what it stored.
            again = await store.lock_items(session, lost)
            redo = [(iid, kind, data) for iid in lost for kind, data in states[iid].events]
            for iid in lost:
                states[iid] = ItemState(again.get(iid), iid in again)
            _fold(states, redo, now)
            states = {iid: states[iid] for iid in lost}
        raise RuntimeError("items kept being inserted by another replica; the batch is retried")

    return apply_batch


async def _write(session: AsyncSession, runtime: ReviewRuntime, states: dict[str, ItemState]) -> set[str]:
    """Look up near-duplicates and write the changed items and their signatures; answers the new items that
    another replica stored first (nothing of theirs is written)."""
    changed = {iid: s for iid, s in states.items() if s.changed and s.values is not None}
    entries = [
        Entry(iid, v["campaign"], int(v["seq"]), v["title"], v["solution"], v["effect"], s.shows_similar)
        for iid, s in changed.items()
        if s.indexed and (v := s.values) is not None
    ]
    found: dict[str, Found] = {}
    if entries:
        async with runtime.similarity.batch(session):
            found = await runtime.similarity.lookup_batch(session, entries)
    await _attach_similar(session, changed, found)
    new = [s.values for s in changed.values() if not s.stored and s.values is not None]
    inserted = await store.insert_items(session, new)
    lost = {v["initiative_id"] for v in new} - inserted
    await store.update_items(session, [s.values for s in changed.values() if s.stored and s.values is not None])
    written = [e for e in entries if e.initiative_id not in lost]
    stale = [e.initiative_id for e in written if changed[e.initiative_id].stored]
    await store.replace_signatures(session, stale, signature_rows(written, found))
    return lost


async def _attach_similar(session: AsyncSession, changed: dict[str, ItemState], found: dict[str, Found]) -> None:
    """The ``similar`` column: each match with its title (the batch's newest, else the stored one)."""
    wanted = {m.initiative_id for iid, f in found.items() if changed[iid].shows_similar for m in f.matches}
    known = {iid: s.values["title"] for iid, s in changed.items() if iid in wanted and s.values is not None}
    known.update(await store.titles(session, sorted(wanted - set(known))))
    for iid, f in found.items():
        state = changed[iid]
        if state.shows_similar and state.values is not None:
            state.values["similar"] = [
                {"initiative_id": m.initiative_id, "seq": m.seq, "title": known.get(m.initiative_id), "score": m.score}
                for m in f.matches
            ]
