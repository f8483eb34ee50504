"""The review's word on an initiative: its status (decision_seq) and its appraisal grade (appraisal_seq)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from intake.adapters.orm import initiatives
from shared.envelope import Envelope

log = logging.getLogger("intake.handlers")

STATUS_OF_OUTCOME = {"valid": "valid", "invalid": "invalid", "revision": "revision_requested"}


async def on_initiative_reviewed(session: AsyncSession, envelope: Envelope) -> None:
    data = envelope.data
    status = STATUS_OF_OUTCOME.get(str(data.get("outcome")))
    if status is None:
        log.warning("review with an unknown outcome ignored", extra={"outcome": data.get("outcome")})
        return
    decision_seq = int(data.get("decision_seq") or 0)
    # Only a newer decision counts, and never on a withdrawn initiative (withdrawal is terminal).
    result = await session.execute(
        update(initiatives)
        .where(
            initiatives.c.id == str(data.get("initiative_id")),
            initiatives.c.decision_seq < decision_seq,
            initiatives.c.status != "withdrawn",
        )
        .values(
            status=status,
            decision_seq=decision_seq,
            review_outcome=str(data.get("outcome")),
            review_reason=data.get("reason"),
            review_note=data.get("note"),
            verified_benefit_vnd=data.get("verified_benefit_vnd"),
            decided_at=data.get("decided_at"),
            updated_at=datetime.now(UTC),
        )
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        log.info("review not applied (older, withdrawn or unknown initiative)", extra={"event_id": envelope.id})


async def on_initiative_appraised(session: AsyncSession, envelope: Envelope) -> None:
    data = envelope.data
    appraisal_seq = int(data.get("appraisal_seq") or 0)
    await session.execute(
        update(initiatives)
        .where(initiatives.c.id == str(data.get("initiative_id")), initiatives.c.appraisal_seq < appraisal_seq)
        .values(appraisal_seq=appraisal_seq, appraisal_mean=data.get("mean"), appraisal_grade=data.get("grade"))
    )
