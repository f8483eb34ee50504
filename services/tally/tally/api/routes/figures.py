"""Figures (SPEC §4): per unit with children, rankings, time series and milestones."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from tally.api.deps import PrincipalDep, SessionDep
from tally.api.errors import TallyRoute
from tally.domain.plan import CODE_PATTERN
from tally.service import figures

router = APIRouter(prefix="/api/v1/tally", tags=["figures"], route_class=TallyRoute)
Code = Annotated[str, Query(pattern=CODE_PATTERN)]
OptCode = Annotated[str | None, Query(pattern=CODE_PATTERN)]


@router.get("/units/{code}")
async def unit_figures(
    code: Annotated[str, Path(pattern=CODE_PATTERN)],
    campaign: Code,
    session: SessionDep,
    principal: PrincipalDep,
    phase: OptCode = None,
) -> dict[str, Any]:
    """Any signed-in account reads the figures of units inside its own subtree; operators read all."""
    return await figures.unit_figures(session, principal, code, campaign, phase)


@router.get("/rankings")
async def rankings(
    campaign: Code,
    kind: Annotated[str, Query()],
    session: SessionDep,
    phase: OptCode = None,
    cluster: Annotated[str | None, Query(max_length=64)] = None,
    metric: Annotated[Literal["valid", "participants", "achievement_pct", "benefit_vnd"], Query()] = "valid",
    limit: Annotated[int, Query(ge=1, le=1000)] = 10,
) -> dict[str, Any]:
    """Public (SPEC §6). Competition ranking ("1, 2, 2, 4"), ties listed by unit code; by
    ``achievement_pct`` only units with a quota are ranked."""
    return await figures.rankings(session, campaign, kind, phase, cluster, metric, limit)


@router.get("/timeseries")
async def timeseries(
    campaign: Code,
    unit: Code,
    session: SessionDep,
    principal: PrincipalDep,
    bucket: Literal["day"] = "day",
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
) -> dict[str, Any]:
    """Per day (Asia/Ho_Chi_Minh): initiatives submitted that day and validated that day, with running totals."""
    items = await figures.timeseries(session, principal, campaign, unit, start, end)
    return {"campaign": campaign, "unit": unit, "bucket": bucket, "items": items}


@router.get("/milestones")
async def list_milestones(campaign: Code, session: SessionDep) -> dict[str, Any]:
    return await figures.milestones(session, campaign)
