"""Reading awards (public) and revoking one (operator): the only correction of an award."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from awards import service
from awards.api.deps import ContextDep, Operator, SessionDep
from awards.api.errors import AwardsRoute
from awards.domain.schemes import CODE
from shared.auth import Principal
from shared.http import JsonResponse
from shared.text import NO_NUL

router = APIRouter(prefix="/api/v1/awards", tags=["awards"], route_class=AwardsRoute)

UUID_PATTERN = r"^[0-9a-fA-F-]{36}$"
AwardId = Annotated[str, Path(pattern=UUID_PATTERN)]


@router.get("")
async def list_awards(
    session: SessionDep,
    campaign: Annotated[str | None, Query(pattern=CODE)] = None,
    unit: Annotated[str | None, Query(pattern=CODE)] = None,
    member: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    scheme: Annotated[str | None, Query(pattern=CODE)] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> JsonResponse:
    """Public (SPEC §6). ``unit`` is the unit's whole subtree, as the unit replica knows it."""
    found = await service.find_awards(session, campaign=campaign, scheme=scheme, member=member, unit=unit, limit=limit)
    return JsonResponse(found)


@router.get("/{award_id}")
async def get_award(award_id: AwardId, session: SessionDep) -> JsonResponse:
    return JsonResponse(await service.get_award(session, award_id))


class RevokeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision_no: str = Field(min_length=1, max_length=100, pattern=NO_NUL)
    reason: str = Field(min_length=1, max_length=2000, pattern=NO_NUL)
    revoked_on: date


@router.post("/{award_id}/revoke", status_code=201)
async def revoke(
    award_id: AwardId, ctx: ContextDep, session: SessionDep, body: RevokeRequest, op: Principal = Operator
) -> JsonResponse:
    revoked = await service.revoke(
        session,
        ctx,
        award_id,
        decision_no=body.decision_no,
        reason=body.reason,
        revoked_on=body.revoked_on,
        operator=op,
    )
    return JsonResponse(revoked, 201)
