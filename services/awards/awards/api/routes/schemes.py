"""Schemes, nominations, decisions and exports (SPEC §5, §8, §9): each route parses and calls one use case."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidatorFunctionWrapHandler, field_validator
from pydantic_core import PydanticCustomError

from awards import service
from awards.api.deps import ContextDep, Operator, SchemeCode, SessionDep, TallyDep
from awards.api.errors import AwardsRoute
from awards.domain.schemes import Scheme
from awards.export import MEDIA_TYPES
from shared.auth import Principal
from shared.http import JsonResponse
from shared.text import NO_NUL

router = APIRouter(prefix="/api/v1/awards", tags=["awards"], route_class=AwardsRoute)

MAX_BODY_ITEMS = 100_000


class NominationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    snapshot_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._\-]+$")


class DecisionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision_no: str = Field(min_length=1, max_length=100, pattern=NO_NUL)
    signed_on: date
    # "all" of the latest nominations, or the recipients by unit code / member id (or {"unit_code": …}).
    approve: Literal["all"] | list[str | dict[str, str]] = Field(max_length=MAX_BODY_ITEMS)

    @field_validator("approve", mode="wrap")
    @classmethod
    def _all_or_recipients(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        # One message for the field, not one per member of the union.
        try:
            return handler(value)
        except ValidationError:
            raise PydanticCustomError(
                "approve", f'Phải là "all" hoặc danh sách mã đơn vị/đoàn viên (tối đa {MAX_BODY_ITEMS})'
            ) from None


@router.put("/schemes/{code}")
async def put_scheme(code: SchemeCode, session: SessionDep, body: Scheme, _op: Principal = Operator) -> JsonResponse:
    return JsonResponse(await service.save_scheme(session, code, body))


@router.get("/schemes")
async def list_schemes(
    session: SessionDep, campaign: Annotated[str | None, Query(max_length=64)] = None
) -> dict[str, Any]:
    return await service.list_schemes(session, campaign)


@router.get("/schemes/{code}")
async def get_scheme(code: SchemeCode, session: SessionDep) -> dict[str, Any]:
    return await service.get_scheme(session, code)


@router.post("/schemes/{code}/nominations")
async def compute_nominations(
    code: SchemeCode,
    request: Request,
    session: SessionDep,
    tally: TallyDep,
    body: NominationRequest,
    op: Principal = Operator,
) -> Response:
    # Tally checks the caller's own token for the snapshot.
    authorization = request.headers.get("authorization")
    raw = await service.compute_nominations(session, tally, code, body.snapshot_id, authorization, op)
    return Response(raw, media_type="application/json")


@router.post("/schemes/{code}/decision", status_code=201)
async def decide(
    code: SchemeCode, ctx: ContextDep, session: SessionDep, body: DecisionRequest, op: Principal = Operator
) -> JsonResponse:
    granted = await service.decide(
        session, ctx, code, decision_no=body.decision_no, signed_on=body.signed_on, approve=body.approve, operator=op
    )
    return JsonResponse(granted, 201)


@router.get(
    "/schemes/{code}/export",
    response_class=Response,
    responses={
        200: {
            "description": "Danh sách khen thưởng (XLSX hoặc CSV)",
            "content": {media.split(";")[0]: {} for media in MEDIA_TYPES.values()},
        }
    },
)
async def export(
    code: SchemeCode, session: SessionDep, format: Annotated[Literal["xlsx", "csv"], Query()] = "xlsx"
) -> Response:
    data = await service.export_awards(session, code, format)
    disposition = f'attachment; filename="khen-thuong-{code}.{format}"'
    return Response(data, media_type=MEDIA_TYPES[format], headers={"Content-Disposition": disposition})
