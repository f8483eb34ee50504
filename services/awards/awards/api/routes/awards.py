"""Reading awards (public) and revoking one (operator): the only correction of an award."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Path, Query
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select

from awards.adapters.orm import awards, revocations, units
from awards.api.deps import ContextDep, Operator, SessionDep
from awards.api.routes.schemes import validation_error
from awards.domain.schemes import CODE
from shared.auth import Principal
from shared.http import ApiError, JsonResponse
from shared.text import NO_NUL
from shared.units import subtree_clause

router = APIRouter(prefix="/api/v1/awards", tags=["awards"])

UUID_PATTERN = r"^[0-9a-fA-F-]{36}$"


def award_out(r: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": r.id,
        "scheme": r.scheme_code,
        "campaign": r.campaign,
        "recipient_kind": r.recipient_kind,
        "recipient": orjson.loads(r.recipient),
        "unit_code": r.unit_code,
        "figures": orjson.loads(r.figures),
        "rank": r.rank,
        "snapshot_id": r.snapshot_id,
        "decision_no": r.decision_no,
        "signed_on": r.signed_on,
        "revoked": r.revoke_no is not None,
    }
    if r.revoke_no is not None:
        out["revocation"] = {"decision_no": r.revoke_no, "reason": r.revoke_reason, "revoked_on": r.revoked_on}
    return out


def _select() -> Any:
    return select(
        awards,
        revocations.c.decision_no.label("revoke_no"),
        revocations.c.reason.label("revoke_reason"),
        revocations.c.revoked_on,
    ).select_from(awards.outerjoin(revocations, revocations.c.award_id == awards.c.id))


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
    stmt = _select()
    if campaign is not None:
        stmt = stmt.where(awards.c.campaign == campaign)
    if scheme is not None:
        stmt = stmt.where(awards.c.scheme_code == scheme)
    if member is not None:
        stmt = stmt.where(awards.c.recipient_kind == "individual", awards.c.recipient_key == member)
    if unit is not None:
        in_tree = select(units.c.code).where(subtree_clause(units.c.path, unit))
        stmt = stmt.where(awards.c.unit_code.in_(in_tree))
    stmt = stmt.order_by(awards.c.campaign, awards.c.scheme_code, awards.c.signed_on, awards.c.rank, awards.c.id)
    async with session.begin():
        rows = (await session.execute(stmt.limit(limit))).all()
    return JsonResponse({"items": [award_out(r) for r in rows]})


@router.get("/{award_id}")
async def get_award(award_id: Annotated[str, Path(pattern=UUID_PATTERN)], session: SessionDep) -> JsonResponse:
    async with session.begin():
        row = (await session.execute(_select().where(awards.c.id == award_id))).first()
    if row is None:
        raise ApiError(404, "not_found", "Không tìm thấy quyết định khen thưởng")
    return JsonResponse(award_out(row))


class RevokeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision_no: str = Field(min_length=1, max_length=100, pattern=NO_NUL)
    reason: str = Field(min_length=1, max_length=2000, pattern=NO_NUL)
    revoked_on: date


@router.post("/{award_id}/revoke", status_code=201)
async def revoke(
    award_id: Annotated[str, Path(pattern=UUID_PATTERN)],
    ctx: ContextDep,
    session: SessionDep,
    body: Annotated[Any, Body()],
    op: Principal = Operator,
) -> JsonResponse:
    try:
        req = RevokeRequest.model_validate(body)
    except ValidationError as exc:
        raise validation_error(exc) from exc
    async with session.begin():
        row = (await session.execute(_select().where(awards.c.id == award_id))).first()
        if row is None:
            raise ApiError(404, "not_found", "Không tìm thấy quyết định khen thưởng")
        if row.revoke_no is not None:
            raise ApiError(409, "already_revoked", "Khen thưởng này đã bị thu hồi")
        if req.revoked_on.isoformat() < row.signed_on:
            raise ApiError(
                422,
                "validation_error",
                "Ngày thu hồi trước ngày ký quyết định khen thưởng",
                [{"field": "revoked_on", "message": "Phải từ ngày ký quyết định khen thưởng trở đi"}],
            )
        await session.execute(
            revocations.insert().values(
                award_id=award_id,
                decision_no=req.decision_no,
                reason=req.reason,
                revoked_on=req.revoked_on.isoformat(),
                revoked_by=op.sub,
                revoked_at=datetime.now(UTC),
            )
        )
        data = {
            "award_id": award_id,
            "scheme": row.scheme_code,
            "campaign": row.campaign,
            "recipient_kind": row.recipient_kind,
            "recipient": orjson.loads(row.recipient),
            "decision_no": req.decision_no,
            "reason": req.reason,
            "revoked_on": req.revoked_on.isoformat(),
        }
        await ctx.emit(session, ctx.event("award.revoked", data))
        row = (await session.execute(_select().where(awards.c.id == award_id))).one()
    return JsonResponse(award_out(row), 201)
