"""The plan: units (bulk JSON or CSV/XLSX import), campaigns and quotas. Tally owns it and publishes it.

Each route parses its input and calls one use case (``tally.service.plan``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, File, Path, Query, UploadFile

from shared.auth import Principal
from tally.api.deps import ContextDep, PrincipalDep, SessionDep, require_roles
from tally.api.errors import TallyRoute
from tally.domain.plan import CODE_PATTERN, CampaignIn
from tally.service import plan

router = APIRouter(prefix="/api/v1", tags=["plan"], route_class=TallyRoute)
CodePath = Annotated[str, Path(pattern=CODE_PATTERN)]


@router.put("/units")
async def put_units(
    ctx: ContextDep,
    session: SessionDep,
    body: Annotated[list[dict[str, Any]], Body()],
    _op: Principal = require_roles("operator"),
) -> dict[str, int]:
    return await plan.put_units(ctx, session, body)


@router.post("/units/import")
async def import_units(
    ctx: ContextDep,
    session: SessionDep,
    file: Annotated[UploadFile, File()],
    _op: Principal = require_roles("operator"),
) -> dict[str, int]:
    data = await file.read(plan.limit(ctx, "max_import_bytes") + 1)
    return await plan.import_units(ctx, session, file.filename or "", data)


@router.get("/units/{code}")
async def get_unit(code: CodePath, session: SessionDep, _p: PrincipalDep) -> dict[str, Any]:
    """The unit and its children. The organisation tree is not secret: any signed-in account may read it."""
    return await plan.get_unit(session, code)


@router.put("/campaigns/{code}")
async def put_campaign(
    code: CodePath,
    body: CampaignIn,
    ctx: ContextDep,
    session: SessionDep,
    _op: Principal = require_roles("operator"),
) -> dict[str, Any]:
    return await plan.put_campaign(ctx, session, code, body)


@router.get("/campaigns")
async def list_campaigns(session: SessionDep, _p: PrincipalDep) -> dict[str, Any]:
    return await plan.list_campaigns(session)


@router.get("/campaigns/{code}")
async def get_campaign(code: CodePath, session: SessionDep, _p: PrincipalDep) -> dict[str, Any]:
    return await plan.get_campaign(session, code)


@router.put("/campaigns/{code}/quotas")
async def put_quotas(
    code: CodePath,
    body: Annotated[list[dict[str, Any]], Body()],
    ctx: ContextDep,
    session: SessionDep,
    principal: Principal = require_roles("unit_admin"),
) -> dict[str, int]:
    """Operators set any quota; a unit_admin sets the quotas of the units below its own, and its own ``self_set``."""
    return await plan.put_quotas(ctx, session, principal, code, body)


@router.get("/campaigns/{code}/quotas")
async def get_quotas(
    code: CodePath,
    session: SessionDep,
    unit: Annotated[str, Query(pattern=CODE_PATTERN)],
    principal: Principal = require_roles("unit_admin"),
) -> dict[str, Any]:
    """A unit's quotas: operators, and unit_admins inside their subtree (SPEC §6)."""
    return await plan.get_quotas(session, principal, code, unit)
