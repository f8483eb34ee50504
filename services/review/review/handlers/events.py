"""Review's own copy of the events it reads (eShop's way: no model is shared between services).

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
    """A plain dict once validated (cheaper than a nested model, and what the item's JSON column keeps)."""

    member_id: str
    full_name: NotRequired[str | None]


class InitiativeContent(BaseModel):
    """``initiative.submitted.v1`` and ``initiative.revised.v1`` (intake): the whole initiative, to be queued
    for review; the highest ``revision`` wins."""

    id: InitiativeId
    campaign: str = Field(min_length=1)
    unit_code: str = Field(min_length=1)
    phase: str | None = None
    seq: int = 0
    field: str | None = None
    title: str = ""
    problem: str | None = None
    solution: str | None = None
    effect: str | None = None
    expected_benefit_vnd: int | None = None
    applied_on: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")  # kept as text
    confidential: bool = False
    authors: list[Author] = []
    entered_by: str | None = None
    submitted_at: datetime | None = None
    revision: int = 0


class InitiativeWithdrawn(BaseModel):
    """``initiative.withdrawn.v1`` (intake): terminal, even when it arrives before the submission."""

    id: InitiativeId
    campaign: str | None = None
    phase: str | None = None
    unit_code: str | None = None
    authors: list[Author] = []
    withdrawn_at: datetime | None = None


class UnitUpserted(BaseModel):
    """``unit.upserted.v1`` (tally): a unit of the tree and its ancestor path (for scope checks)."""

    code: str = Field(min_length=1, max_length=64)
    name: str | None = None
    kind: str = "grassroots"
    parent_code: str | None = None
    cluster: str | None = None
    member_count: int | None = None
    path: list[str] = []
    revision: int = 0


EVENTS: dict[str, type[BaseModel]] = {
    "initiative.submitted.v1": InitiativeContent,
    "initiative.revised.v1": InitiativeContent,
    "initiative.withdrawn.v1": InitiativeWithdrawn,
    "unit.upserted.v1": UnitUpserted,
}
