"""The review's word on an initiative: its status (decision_seq) and its appraisal grade (appraisal_seq).

Each event is only noted; ``apply_batch`` writes the batch's newest of each in one statement per kind."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from intake.adapters.reviews import apply_appraisals, apply_decisions
from shared.envelope import Envelope

log = logging.getLogger("intake.handlers")

STATUS_OF_OUTCOME = {"valid": "valid", "invalid": "invalid", "revision": "revision_requested"}
DECISIONS_KEY = "intake_decisions"
APPRAISALS_KEY = "intake_appraisals"


def _id(data: dict[str, Any]) -> str:
    initiative_id = str(data.get("initiative_id") or "")
    if not initiative_id or len(initiative_id) > 36:
        raise ValueError("review event without a valid initiative_id")
    return initiative_id


async def on_initiative_reviewed(session: AsyncSession, envelope: Envelope) -> None:
    data = envelope.data
    status = STATUS_OF_OUTCOME.get(str(data.get("outcome")))
    if status is None:
        log.warning("review with an unknown outcome ignored", extra={"outcome": data.get("outcome")})
        return
    verified = data.get("verified_benefit_vnd")
    row = {
        "id": _id(data),
        "status": status,
        "decision_seq": int(data.get("decision_seq") or 0),
        "review_outcome": str(data.get("outcome")),
        "review_reason": data.get("reason"),
        "review_note": data.get("note"),
        "verified_benefit_vnd": None if verified is None else int(verified),
        "decided_at": data.get("decided_at"),
    }
    session.info.setdefault(DECISIONS_KEY, []).append(row)


async def on_initiative_appraised(session: AsyncSession, envelope: Envelope) -> None:
    data = envelope.data
    mean = data.get("mean")
    row = {
        "id": _id(data),
        "appraisal_seq": int(data.get("appraisal_seq") or 0),
        "appraisal_mean": None if mean is None else float(mean),
        "appraisal_grade": data.get("grade"),
    }
    session.info.setdefault(APPRAISALS_KEY, []).append(row)


async def apply_batch(session: AsyncSession, envelopes: Sequence[Envelope]) -> None:
    """``after_batch``: the decisions and appraisals noted by the handlers, written set-based."""
    await apply_decisions(session, session.info.pop(DECISIONS_KEY, ()))
    await apply_appraisals(session, session.info.pop(APPRAISALS_KEY, ()))
