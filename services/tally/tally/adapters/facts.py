"""Per-initiative facts: read one under a row lock, write it back."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import insert_ignore
from tally.adapters.orm import facts
from tally.domain.counting import Fact


def fact_from_row(row: Any) -> Fact:
    return Fact(
        initiative_id=row.initiative_id,
        campaign=row.campaign,
        phase=row.phase,
        unit_code=row.unit_code,
        authors=tuple(row.authors or ()),
        expected_benefit_vnd=int(row.expected_benefit_vnd),
        content_revision=int(row.content_revision),
        withdrawn=bool(row.withdrawn),
        decision_seq=int(row.decision_seq),
        outcome=row.outcome,
        verified_benefit_vnd=row.verified_benefit_vnd,
        submitted_at=row.submitted_at,
        decided_at=row.decided_at,
    )


def fact_values(fact: Fact) -> dict[str, Any]:
    return {
        "initiative_id": fact.initiative_id,
        "campaign": fact.campaign,
        "phase": fact.phase,
        "unit_code": fact.unit_code,
        "authors": list(fact.authors),
        "expected_benefit_vnd": fact.expected_benefit_vnd,
        "content_revision": fact.content_revision,
        "withdrawn": fact.withdrawn,
        "decision_seq": fact.decision_seq,
        "outcome": fact.outcome,
        "verified_benefit_vnd": fact.verified_benefit_vnd,
        "submitted_at": fact.submitted_at,
        "decided_at": fact.decided_at,
    }


async def load_for_update(session: AsyncSession, skeleton: Fact) -> Fact:
    """The stored fact (created from ``skeleton`` if new), locked until the batch commits."""
    dialect = session.bind.dialect.name
    await session.execute(insert_ignore(facts, dialect, ["initiative_id"]).values(**fact_values(skeleton)))
    query = select(facts).where(facts.c.initiative_id == skeleton.initiative_id)
    if dialect == "postgresql":
        query = query.with_for_update()
    return fact_from_row((await session.execute(query)).one())


async def save(session: AsyncSession, fact: Fact) -> None:
    values = fact_values(fact)
    values.pop("initiative_id")
    await session.execute(update(facts).where(facts.c.initiative_id == fact.initiative_id).values(**values))
