"""What awards consumes (a subset of shared/topology.py QUEUES["awards"]) and how.

Every handler is idempotent and order-independent: facts are keyed by their sequence numbers
(``decision_seq``, ``appraisal_seq``, ``revision``) and inserted with ON CONFLICT DO NOTHING or
kept only when newer, so duplicates and late older events change nothing. The initiative handlers
only note their facts; ``apply_batch`` writes a batch's in one statement per table. Member figures are
never incremented; they are derived from these facts when a snapshot is first used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from awards.adapters import facts
from awards.adapters.orm import campaigns, snapshots, units
from awards.handlers.events import (
    Author,
    CampaignUpserted,
    InitiativeAppraised,
    InitiativeReviewed,
    SnapshotFrozen,
    UnitUpserted,
)
from shared.db import insert_ignore, upsert
from shared.envelope import Envelope
from shared.instants import parse_instant
from shared.messaging import Subscription, parse_event
from shared.units import apply_unit_upserted


def _authors(authors: list[Author]) -> str:
    kept = [{"member_id": a["member_id"], "full_name": a.get("full_name") or ""} for a in authors if a["member_id"]]
    return orjson.dumps(kept).decode()


INITIATIVES_KEY = "awards_initiatives"
DECISIONS_KEY = "awards_decisions"
APPRAISALS_KEY = "awards_appraisals"


def _note(session: AsyncSession, key: str, row: dict[str, Any]) -> None:
    session.info.setdefault(key, []).append(row)


def _note_initiative(session: AsyncSession, event: InitiativeReviewed, seq: int) -> None:
    """Who wrote the initiative and where, as its newest decision repeats it: only decided initiatives count in
    awards (a member's figures are their valid ones), so awards does not take ``initiative.submitted.v1`` and its
    texts (SPEC §7: review and tally do). Taking it cost awards a fifth of its CPU in the pipeline bench, most of
    it decoding the texts."""
    if not event.campaign or not event.unit_code:
        return
    row = {
        "id": event.initiative_id,
        "campaign": event.campaign,
        "phase": event.phase,
        "unit_code": event.unit_code,
        "authors": _authors(event.authors),
        "source_seq": seq,
    }
    _note(session, INITIATIVES_KEY, row)


async def on_unit_upserted(session: AsyncSession, env: Envelope) -> None:
    event = parse_event(UnitUpserted, env)
    await apply_unit_upserted(session, units, event.model_dump())


async def on_campaign_upserted(session: AsyncSession, env: Envelope) -> None:
    event = parse_event(CampaignUpserted, env)
    row = {
        "code": event.code,
        "name": event.name or event.code,
        "phases": orjson.dumps([p.code for p in event.phases]).decode(),
        "revision": event.revision,
    }
    stmt = upsert(campaigns, session.bind.dialect.name).values(**row)
    stmt = stmt.on_conflict_do_update(
        index_elements=["code"],
        set_={k: stmt.excluded[k] for k in row if k != "code"},
        where=campaigns.c.revision <= stmt.excluded.revision,
    )
    await session.execute(stmt)


async def on_initiative_reviewed(session: AsyncSession, env: Envelope) -> None:
    event = parse_event(InitiativeReviewed, env)
    _note_initiative(session, event, event.decision_seq)
    benefit = event.verified_benefit_vnd if event.verified_benefit_vnd is not None else event.expected_benefit_vnd
    row = {
        "initiative_id": event.initiative_id,
        "decision_seq": event.decision_seq,
        "outcome": event.outcome,
        "benefit_vnd": benefit or 0,
        "decided_at": parse_instant(event.decided_at or env.occurred_at),
    }
    _note(session, DECISIONS_KEY, row)


async def on_initiative_appraised(session: AsyncSession, env: Envelope) -> None:
    event = parse_event(InitiativeAppraised, env)
    row = {
        "initiative_id": event.initiative_id,
        "appraisal_seq": event.appraisal_seq,
        "grade": event.grade or "none",
        "appraised_at": parse_instant(event.appraised_at or env.occurred_at),
    }
    _note(session, APPRAISALS_KEY, row)


async def apply_batch(session: AsyncSession, envelopes: Sequence[Envelope]) -> None:
    """``after_batch``: the facts noted by the handlers, one statement per table per batch."""
    await facts.keep_initiatives(session, session.info.pop(INITIATIVES_KEY, ()))
    await facts.keep_decisions(session, session.info.pop(DECISIONS_KEY, ()))
    await facts.keep_appraisals(session, session.info.pop(APPRAISALS_KEY, ()))


async def on_snapshot_frozen(session: AsyncSession, env: Envelope) -> None:
    event = parse_event(SnapshotFrozen, env)
    row = {
        "id": event.snapshot_id,
        "campaign": event.campaign,
        "phase": event.phase,
        "taken_at": parse_instant(event.taken_at),
    }
    await session.execute(insert_ignore(snapshots, session.bind.dialect.name, ["id"]).values(**row))


SUBSCRIPTIONS: list[Subscription] = [
    Subscription("unit.upserted.v1", on_unit_upserted),
    Subscription("campaign.upserted.v1", on_campaign_upserted),
    Subscription("initiative.reviewed.v1", on_initiative_reviewed, idempotent=True),
    Subscription("initiative.appraised.v1", on_initiative_appraised, idempotent=True),
    Subscription("tally.snapshot_frozen.v1", on_snapshot_frozen),
]

AFTER_BATCH = apply_batch
