"""Awards' own copy of the events it reads (eShop's way: no model is shared between services).

Tolerant readers: unknown fields are ignored and a missing optional field takes its default; a
payload these models refuse is poison (``shared.messaging``), dead-lettered with the reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, NotRequired

from pydantic import BaseModel, Field
from typing_extensions import TypedDict

InitiativeId = Annotated[str, Field(min_length=1, max_length=36)]


class Author(TypedDict):
    """A plain dict once validated (cheaper than a nested model)."""

    member_id: str
    full_name: NotRequired[str | None]


class UnitUpserted(BaseModel):
    """``unit.upserted.v1`` (tally): a unit of the tree and its ancestor path."""

    code: str = Field(min_length=1, max_length=64)
    name: str | None = None
    kind: str = "grassroots"
    parent_code: str | None = None
    cluster: str | None = None
    member_count: int | None = None
    path: list[str] = []
    revision: int = 0


class CampaignPhase(BaseModel):
    code: str


class CampaignUpserted(BaseModel):
    """``campaign.upserted.v1`` (tally): the campaign's name and its phases' codes."""

    code: str = Field(min_length=1, max_length=64)
    name: str | None = None
    phases: list[CampaignPhase] = []
    revision: int = 0


class InitiativeReviewed(BaseModel):
    """``initiative.reviewed.v1`` (review): one decision, kept once per ``decision_seq``; it repeats the facts of
    the initiative (campaign, phase, unit, authors), the newest decision's kept."""

    initiative_id: InitiativeId
    decision_seq: int
    outcome: str
    campaign: str | None = None
    phase: str | None = None
    unit_code: str | None = None
    authors: list[Author] = []
    expected_benefit_vnd: int | None = None
    verified_benefit_vnd: int | None = None
    decided_at: datetime | None = None  # the envelope's occurred_at when absent


class InitiativeAppraised(BaseModel):
    """``initiative.appraised.v1`` (review): the grade, kept once per ``appraisal_seq``."""

    initiative_id: InitiativeId
    appraisal_seq: int
    grade: str | None = None
    appraised_at: datetime | None = None  # the envelope's occurred_at when absent


class SnapshotFrozen(BaseModel):
    """``tally.snapshot_frozen.v1`` (tally): a frozen snapshot whose figures are fetched over HTTP."""

    snapshot_id: str = Field(min_length=1, max_length=64)
    campaign: str = Field(min_length=1)
    phase: str | None = None
    taken_at: datetime


EVENTS: dict[str, type[BaseModel]] = {
    "unit.upserted.v1": UnitUpserted,
    "campaign.upserted.v1": CampaignUpserted,
    "initiative.reviewed.v1": InitiativeReviewed,
    "initiative.appraised.v1": InitiativeAppraised,
    "tally.snapshot_frozen.v1": SnapshotFrozen,
}
