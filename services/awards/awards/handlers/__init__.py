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
from shared.db import insert_ignore, upsert
from shared.envelope import Envelope
from shared.instants import parse_instant
from shared.messaging import Subscription
from shared.units import apply_unit_upserted


def _authors(data: dict[str, Any]) -> str:
    authors = [
        {"member_id": str(a["member_id"]), "full_name": str(a.get("full_name") or "")}
        for a in data.get("authors") or []
        if a.get("member_id")
    ]
    return orjson.dumps(authors).decode()


INITIATIVES_KEY = "awards_initiatives"
DECISIONS_KEY = "awards_decisions"
APPRAISALS_KEY = "awards_appraisals"


def _note(session: AsyncSession, key: str, row: dict[str, Any]) -> None:
    session.info.setdefault(key, []).append(row)


def _note_initiative(session: AsyncSession, data: dict[str, Any], initiative_id: str, seq: int) -> None:
    if not data.get("campaign") or not data.get("unit_code"):
        return
    row = {
        "id": initiative_id,
        "campaign": str(data["campaign"]),
        "phase": data.get("phase"),
        "unit_code": str(data["unit_code"]),
        "authors": _authors(data),
        "source_seq": seq,
    }
    _note(session, INITIATIVES_KEY, row)


async def on_unit_upserted(session: AsyncSession, env: Envelope) -> None:
    await apply_unit_upserted(session, units, env.data)


async def on_campaign_upserted(session: AsyncSession, env: Envelope) -> None:
    data = env.data
    row = {
        "code": str(data["code"]),
        "name": str(data.get("name") or data["code"]),
        "phases": orjson.dumps([str(p.get("code")) for p in data.get("phases") or []]).decode(),
        "revision": int(data.get("revision") or 0),
    }
    stmt = upsert(campaigns, session.bind.dialect.name).values(**row)
    stmt = stmt.on_conflict_do_update(
        index_elements=["code"],
        set_={k: stmt.excluded[k] for k in row if k != "code"},
        where=campaigns.c.revision <= stmt.excluded.revision,
    )
    await session.execute(stmt)


async def on_initiative_submitted(session: AsyncSession, env: Envelope) -> None:
    # Authors' names; any review decision (seq ≥ 1) carries the same facts and takes precedence.
    _note_initiative(session, env.data, _id(env.data, "id"), 0)


async def on_initiative_reviewed(session: AsyncSession, env: Envelope) -> None:
    data = env.data
    initiative_id = _id(data, "initiative_id")
    seq = int(data["decision_seq"])
    _note_initiative(session, data, initiative_id, seq)
    verified = data.get("verified_benefit_vnd")
    row = {
        "initiative_id": initiative_id,
        "decision_seq": seq,
        "outcome": str(data["outcome"]),
        "benefit_vnd": int(verified if verified is not None else data.get("expected_benefit_vnd") or 0),
        "decided_at": parse_instant(data.get("decided_at") or env.occurred_at),
    }
    _note(session, DECISIONS_KEY, row)


async def on_initiative_appraised(session: AsyncSession, env: Envelope) -> None:
    data = env.data
    row = {
        "initiative_id": _id(data, "initiative_id"),
        "appraisal_seq": int(data["appraisal_seq"]),
        "grade": str(data.get("grade") or "none"),
        "appraised_at": parse_instant(data.get("appraised_at") or env.occurred_at),
    }
    _note(session, APPRAISALS_KEY, row)


async def apply_batch(session: AsyncSession, envelopes: Sequence[Envelope]) -> None:
    """``after_batch``: the facts noted by the handlers, one statement per table per batch."""
    await facts.keep_initiatives(session, session.info.pop(INITIATIVES_KEY, ()))
    await facts.keep_decisions(session, session.info.pop(DECISIONS_KEY, ()))
    await facts.keep_appraisals(session, session.info.pop(APPRAISALS_KEY, ()))


def _id(data: dict[str, Any], key: str) -> str:
    initiative_id = str(data.get(key) or "")
    if not initiative_id or len(initiative_id) > 36:
        raise ValueError(f"initiative event without a valid {key}")
    return initiative_id


async def on_snapshot_frozen(session: AsyncSession, env: Envelope) -> None:
    data = env.data
    row = {
        "id": str(data["snapshot_id"]),
        "campaign": str(data["campaign"]),
        "phase": data.get("phase"),
        "taken_at": parse_instant(data["taken_at"]),
    }
    await session.execute(insert_ignore(snapshots, session.bind.dialect.name, ["id"]).values(**row))


SUBSCRIPTIONS: list[Subscription] = [
    Subscription("unit.upserted.v1", on_unit_upserted),
    Subscription("campaign.upserted.v1", on_campaign_upserted),
    Subscription("initiative.submitted.v1", on_initiative_submitted),
    Subscription("initiative.reviewed.v1", on_initiative_reviewed),
    Subscription("initiative.appraised.v1", on_initiative_appraised),
    Subscription("tally.snapshot_frozen.v1", on_snapshot_frozen),
]

AFTER_BATCH = apply_batch
