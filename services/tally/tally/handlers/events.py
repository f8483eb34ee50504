"""Tally's own copy of the events it reads (eShop's way: no model is shared between services).

Tolerant readers: unknown fields are ignored and a missing optional field takes its default; a
payload these models refuse is poison (``shared.messaging``), dead-lettered with the reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field
from typing_extensions import TypedDict

InitiativeId = Annotated[str, Field(min_length=1, max_length=36)]
Code = Annotated[str, Field(min_length=1)]


class Author(TypedDict):
    """A plain dict once validated (cheaper than a nested model); only ``member_id`` is counted."""

    member_id: str


class Placed(BaseModel):
    """What places an initiative in the figures, repeated by every event about it so that it counts in any
    order."""

    campaign: Code
    unit_code: Code
    phase: str | None = None
    authors: list[Author] = []


class InitiativeContent(Placed):
    """``initiative.submitted.v1`` and ``initiative.revised.v1`` (intake); the highest ``revision`` wins."""

    id: InitiativeId
    expected_benefit_vnd: int | None = None
    submitted_at: datetime | None = None
    revision: int = 0


class InitiativeWithdrawn(Placed):
    """``initiative.withdrawn.v1`` (intake): terminal."""

    id: InitiativeId


class InitiativeReviewed(Placed):
    """``initiative.reviewed.v1`` (review): the decision with the highest ``decision_seq`` wins. It repeats the
    facts a counter needs, so it counts even when it arrives before the submission."""

    initiative_id: InitiativeId
    expected_benefit_vnd: int | None = None
    submitted_at: datetime | None = None
    outcome: str | None = None
    decision_seq: int = 0
    verified_benefit_vnd: int | None = None
    decided_at: datetime | None = None


EVENTS: dict[str, type[BaseModel]] = {
    "initiative.submitted.v1": InitiativeContent,
    "initiative.revised.v1": InitiativeContent,
    "initiative.withdrawn.v1": InitiativeWithdrawn,
    "initiative.reviewed.v1": InitiativeReviewed,
}
