"""One initiative's review record, appraisals, and the queue statistics of a subtree."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from review import service
from review.api.deps import ContextDep, PrincipalDep, SessionDep, require_roles
from review.api.errors import ReviewRoute
from shared.auth import Principal
from shared.text import NO_NUL

router = APIRouter(prefix="/api/v1/review", tags=["review"], route_class=ReviewRoute)

InitiativeId = Annotated[str, Path(min_length=1, max_length=36)]
Score = Annotated[int, Field(ge=0, le=10)]


class AppraisalRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    novelty: Score
    applicability: Score
    effectiveness: Score
    scope: Score
    note: str | None = Field(default=None, max_length=5000, pattern=NO_NUL)


@router.get("/items/{initiative_id}")
async def get_item(initiative_id: InitiativeId, session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    """The internal contract of docs/events.md plus the content and ``similar`` for the workspace."""
    return await service.review_record(session, principal, initiative_id)


@router.post("/items/{initiative_id}/appraisals", status_code=201)
async def appraise(
    initiative_id: InitiativeId,
    body: AppraisalRequest,
    ctx: ContextDep,
    session: SessionDep,
    principal: Principal = require_roles("appraiser"),
) -> dict[str, Any]:
    return await service.appraise(session, ctx, principal, initiative_id, body.model_dump())


@router.get("/items/{initiative_id}/appraisals")
async def list_item_appraisals(
    initiative_id: InitiativeId,
    session: SessionDep,
    principal: Principal = require_roles("appraiser"),
) -> dict[str, Any]:
    """The appraisals given so far to one initiative of the caller's subtree (the appraiser's screen shows them)."""
    return await service.item_appraisals(session, principal, initiative_id)


@router.get("/appraisals")
async def appraisal_worklist(
    session: SessionDep,
    unit: Annotated[str | None, Query(max_length=64)] = None,
    state: Annotated[str, Query(pattern="^(todo|done|all)$")] = "todo",
    q: Annotated[str | None, Query(max_length=200)] = None,
    after: Annotated[int | None, Query(ge=0)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    principal: Principal = require_roles("appraiser"),
) -> dict[str, Any]:
    """Valid initiatives of the caller's subtree (or of ``unit`` inside it) to appraise, by ``seq``.

    Never the caller's own (SPEC §6). ``state=todo`` leaves out those the caller has appraised; each item
    carries the summary so far and the caller's own scores. ``after`` is the last ``seq`` of the page before.
    """
    return await service.appraisal_worklist(session, principal, unit=unit, state=state, q=q, after=after, limit=limit)


@router.get("/stats")
async def stats(
    session: SessionDep,
    unit: Annotated[str | None, Query(max_length=64)] = None,
    principal: Principal = require_roles("reviewer", "appraiser", "unit_admin"),
) -> dict[str, Any]:
    """Pending (not leased), leased, decided by outcome and the oldest pending age, for the subtree and each child."""
    return await service.queue_stats(session, principal, unit)
