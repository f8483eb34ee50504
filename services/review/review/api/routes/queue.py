"""Claims, releases and decisions: the reviewer's side of the queue."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from review import service
from review.api.deps import ContextDep, PrincipalDep, RuntimeDep, SessionDep, require_roles
from review.api.errors import STATUS, ReviewRoute
from review.domain.errors import ReviewError
from review.runtime import runtime_of
from shared.auth import Principal
from shared.errors import to_api_error
from shared.http import JsonResponse
from shared.service import check_roles, session_of
from shared.text import NO_NUL

router = APIRouter(prefix="/api/v1/review", tags=["review"], route_class=ReviewRoute)

InitiativeId = Annotated[str, Path(min_length=1, max_length=36)]


class ClaimRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    count: int = Field(default=10, ge=1, le=50)


class ReleaseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    initiative_ids: list[Annotated[str, Field(max_length=36)]] | None = Field(default=None, max_length=500)


class DecisionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: Literal["valid", "invalid", "revision"]
    reason: str | None = Field(default=None, max_length=32, pattern=NO_NUL)
    note: str | None = Field(default=None, max_length=5000, pattern=NO_NUL)
    verified_benefit_vnd: int | None = Field(default=None, ge=0, le=10**15)


class BatchDecision(DecisionRequest):
    initiative_id: str = Field(min_length=1, max_length=36)


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decisions: list[BatchDecision] = Field(min_length=1, max_length=500)


# The two routes a reviewer calls all day are also served without FastAPI's routing and dependencies
# (shared.fast_routes; review.app lists them): no Depends here but the context and the principal.
@router.post("/claims")
async def claim(body: ClaimRequest, ctx: ContextDep, principal: PrincipalDep) -> JsonResponse:
    check_roles(principal, "reviewer")
    async with session_of(ctx) as session:
        return JsonResponse(await service.claim(session, runtime_of(ctx), principal, body.count))


@router.post("/claims/release")
async def release(
    body: ReleaseRequest, session: SessionDep, principal: Principal = require_roles("reviewer")
) -> dict[str, int]:
    return {"released": await service.release(session, principal, body.initiative_ids)}


@router.post("/items/{initiative_id}/decision")
async def decide(
    initiative_id: InitiativeId,
    body: DecisionRequest,
    ctx: ContextDep,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: Principal = require_roles("reviewer"),
) -> dict[str, Any]:
    return await service.decide(session, ctx, runtime, principal, initiative_id, body.model_dump())


@router.post("/decisions/batch")
async def decide_many(body: BatchRequest, ctx: ContextDep, principal: PrincipalDep) -> JsonResponse:
    """Each decision is checked on its own; the accepted ones commit together with their events."""
    check_roles(principal, "reviewer")
    requests = [d.model_dump() for d in body.decisions]
    async with session_of(ctx) as session:
        outcomes = await service.decide_many(session, ctx, runtime_of(ctx), principal, requests)
    results = [
        _refused(d.initiative_id, r)
        if isinstance(r, ReviewError)
        else {"initiative_id": d.initiative_id, "status": 200, "decision": r}
        for d, r in zip(body.decisions, outcomes, strict=True)
    ]
    accepted = sum(1 for r in results if r["status"] == 200)
    return JsonResponse({"accepted": accepted, "refused": len(results) - accepted, "items": results})


def _refused(initiative_id: str, refusal: ReviewError) -> dict[str, Any]:
    exc = to_api_error(refusal, STATUS)
    return {
        "initiative_id": initiative_id,
        "status": exc.status,
        "error": {"code": exc.code, "message": exc.message, "details": exc.details},
    }
