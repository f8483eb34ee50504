"""Intake's own copy of the events it reads (eShop's way: no model is shared between services).

Tolerant readers: unknown fields are ignored and a missing optional field takes its default; a
payload these models refuse is poison (``shared.messaging``), dead-lettered with the reason.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, Field

InitiativeId = Annotated[str, Field(min_length=1, max_length=36)]


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


class CampaignField(BaseModel):
    code: str
    name: str | None = None


class ApplicationWindow(BaseModel):
    from_: date | None = Field(default=None, alias="from")
    to: date | None = None


class CampaignPhase(BaseModel):
    code: str
    opens_on: date
    closes_on: date


class CampaignUpserted(BaseModel):
    """``campaign.upserted.v1`` (tally): the fields, the application window and the phases a submission is
    checked against."""

    code: str = Field(min_length=1, max_length=64)
    name: str | None = None
    fields: list[CampaignField] = []
    application_window: ApplicationWindow | None = None
    phases: list[CampaignPhase] = []
    revision: int = 0


class InitiativeReviewed(BaseModel):
    """``initiative.reviewed.v1`` (review): the initiative's status; the highest ``decision_seq`` wins."""

    initiative_id: InitiativeId
    outcome: str
    decision_seq: int = 0
    reason: str | None = None
    note: str | None = None
    verified_benefit_vnd: int | None = None
    decided_at: datetime | None = None


class InitiativeAppraised(BaseModel):
    """``initiative.appraised.v1`` (review): the appraisal's mean and grade; the highest ``appraisal_seq`` wins."""

    initiative_id: InitiativeId
    appraisal_seq: int = 0
    mean: float | None = None
    grade: str | None = None


EVENTS: dict[str, type[BaseModel]] = {
    "unit.upserted.v1": UnitUpserted,
    "campaign.upserted.v1": CampaignUpserted,
    "initiative.reviewed.v1": InitiativeReviewed,
    "initiative.appraised.v1": InitiativeAppraised,
}
