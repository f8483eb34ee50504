"""Snapshots: every unit's figures frozen under an id; awards and official reports read them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from shared.auth import Principal
from tally.api.deps import ContextDep, PrincipalDep, SessionDep, require_roles
from tally.api.errors import TallyRoute
from tally.domain.plan import CODE_PATTERN
from tally.service import snapshots

router = APIRouter(prefix="/api/v1/tally/snapshots", tags=["snapshots"], route_class=TallyRoute)
IdPath = Annotated[str, Path(max_length=36)]


class SnapshotIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    campaign: Annotated[str, Field(pattern=CODE_PATTERN)]
    phase: Annotated[str, Field(pattern=CODE_PATTERN)] | None = None


@router.post("", status_code=201)
async def take_snapshot(
    body: SnapshotIn, ctx: ContextDep, session: SessionDep, _op: Principal = require_roles("operator")
) -> dict[str, Any]:
    return await snapshots.take_snapshot(ctx, session, body.campaign, body.phase)


@router.get("/{snapshot_id}")
async def get_snapshot(
    snapshot_id: IdPath, session: SessionDep, _p: Principal = require_roles("unit_admin")
) -> dict[str, Any]:
    return await snapshots.get_snapshot(session, snapshot_id)


@router.get("/{snapshot_id}/units/{code}")
async def snapshot_unit(
    snapshot_id: IdPath,
    code: Annotated[str, Path(pattern=CODE_PATTERN)],
    session: SessionDep,
    principal: PrincipalDep,
) -> dict[str, Any]:
    return await snapshots.snapshot_unit(session, principal, snapshot_id, code)


@router.get("/{snapshot_id}/figures")
async def snapshot_figures_page(
    snapshot_id: IdPath,
    session: SessionDep,
    principal: Principal = require_roles("unit_admin"),
    kind: Annotated[str | None, Query(max_length=20)] = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> dict[str, Any]:
    """Pages of frozen figures in unit-code order; a unit_admin sees its own subtree only."""
    return await snapshots.snapshot_figures_page(session, principal, snapshot_id, kind, cursor, limit)
