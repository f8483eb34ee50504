"""POST/GET/PATCH /api/v1/initiatives, the batch endpoint and withdrawal (SPEC §8, issue 3).

Each route parses its input and calls one use case (``intake.service``); their refusals become HTTP
answers in ``intake.api.errors``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query

from intake.api.deps import ContextDep, PrincipalDep
from intake.api.errors import IntakeRoute
from intake.domain.models import BatchRequest, InitiativeCreate, InitiativeUpdate
from intake.service import initiatives, submissions
from shared.http import JsonResponse

router = APIRouter(tags=["initiatives"], route_class=IntakeRoute)

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200)]


@router.post("/api/v1/initiatives", status_code=201)
async def submit_initiative(
    body: InitiativeCreate, ctx: ContextDep, principal: PrincipalDep, idempotency_key: IdempotencyKey = None
) -> JsonResponse:
    done = await submissions.submit_one(ctx, principal, body, idempotency_key)
    return JsonResponse({"id": done.id, "seq": done.seq, "status": "submitted"}, 201)


@router.post("/api/v1/initiatives/batch")
async def submit_batch(
    body: BatchRequest, ctx: ContextDep, principal: PrincipalDep, idempotency_key: IdempotencyKey = None
) -> JsonResponse:
    """Up to 1,000 initiatives; each gets its own result and the valid ones are accepted together."""
    items = submissions.validate_items(body.items)
    claim = submissions.batch_claim(principal, body.items, idempotency_key)
    return JsonResponse(await submissions.submit_many(ctx, principal, items, claim))


@router.get("/api/v1/initiatives")
async def list_initiatives(
    ctx: ContextDep,
    principal: PrincipalDep,
    campaign: Annotated[str | None, Query(max_length=64)] = None,
    unit: Annotated[str | None, Query(max_length=64)] = None,
    status: Literal["submitted", "revision_requested", "valid", "invalid", "withdrawn"] | None = None,
    author: Annotated[str | None, Query(max_length=64)] = None,
    submitted_from: datetime | None = None,
    submitted_to: datetime | None = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> JsonResponse:
    filters = initiatives.ListFilters(campaign, unit, status, author, submitted_from, submitted_to, cursor, limit)
    return JsonResponse(await initiatives.list_initiatives(ctx, principal, filters))


@router.get("/api/v1/initiatives/{initiative_id}")
async def get_initiative(initiative_id: str, ctx: ContextDep, principal: PrincipalDep) -> JsonResponse:
    return JsonResponse(await initiatives.get_initiative(ctx, principal, initiative_id))


@router.patch("/api/v1/initiatives/{initiative_id}")
async def revise_initiative(
    initiative_id: str, body: InitiativeUpdate, ctx: ContextDep, principal: PrincipalDep
) -> JsonResponse:
    """Sửa sáng kiến theo yêu cầu của người xét duyệt: only while ``revision_requested``."""
    return JsonResponse(await initiatives.revise_initiative(ctx, principal, initiative_id, body))


@router.post("/api/v1/initiatives/{initiative_id}/withdraw")
async def withdraw_initiative(initiative_id: str, ctx: ContextDep, principal: PrincipalDep) -> JsonResponse:
    """Rút sáng kiến: allowed before a decision; terminal."""
    return JsonResponse(await initiatives.withdraw_initiative(ctx, principal, initiative_id))
