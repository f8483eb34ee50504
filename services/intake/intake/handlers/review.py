"""The review's word on an initiative: its status (decision_seq) and its appraisal grade (appraisal_seq).

Each event is only noted; ``apply_batch`` writes the batch's newest of each in one statement per kind."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from intake.adapters.reviews import apply_appraisals, apply_decisions
from intake.handlers.events import InitiativeAppraised, InitiativeReviewed
from shared.envelope import Envelope
from shared.messaging import parse_event

log = logging.getLogger("intake.handlers")

STATUS_OF_OUTCOME = {"valid": "valid", "invalid": "invalid", "revision": "revision_requested"}
DECISIONS_KEY = "intake_decisions"
APPRAISALS_KEY = "intake_appraisals"


async def on_initiative_reviewed(session: AsyncSession, envelope: Envelope) -> None:
    event = parse_event(InitiativeReviewed, envelope)
    status = STATUS_OF_OUTCOME.get(event.outcome)
    if status is None:
        log.warning("review with an unknown outcome ignored", extra={"outcome": event.outcome})
        return
    row = {
        "id": event.initiative_id,
        "status": status,
        "decision_seq": event.decision_seq,
        "review_outcome": event.outcome,
        "review_reason": event.reason,
        "review_note": event.note,
        "verified_benefit_vnd": event.verified_benefit_vnd,
        "decided_at": event.decided_at,
    }
    session.info.setdefault(DECISIONS_KEY, []).append(row)


async def on_initiative_appraised(session: AsyncSession, envelope: Envelope) -> None:
    event = parse_event(InitiativeAppraised, envelope)
    row = {
        "id": event.initiative_id,
        "appraisal_seq": event.appraisal_seq,
        "appraisal_mean": event.mean,
        "appraisal_grade": event.grade,
    }
    session.info.setdefault(APPRAISALS_KEY, []).append(row)


async def apply_batch(session: AsyncSession, envelopes: Sequence[Envelope]) -> None:
    """``after_batch``: the decisions and appraisals noted by the handlers, written set-based."""
    await apply_decisions(session, session.info.pop(DECISIONS_KEY, ()))
    await apply_appraisals(session, session.info.pop(APPRAISALS_KEY, ()))
