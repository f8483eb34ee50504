"""Figures (SPEC §4): per unit with children, rankings, time series and milestones."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from sqlalchemy import select

from shared.http import ApiError
from tally.adapters import queries
from tally.adapters.orm import milestones, units
from tally.api.deps import PrincipalDep, SessionDep, check_scope
from tally.domain.plan import CODE_PATTERN, KINDS

router = APIRouter(prefix="/api/v1/tally", tags=["figures"])
Code = Annotated[str, Query(pattern=CODE_PATTERN)]
OptCode = Annotated[str | None, Query(pattern=CODE_PATTERN)]


async def _unit_path(session: Any, code: str) -> str | None:
    return (await session.execute(select(units.c.path).where(units.c.code == code))).scalar_one_or_none()


@router.get("/units/{code}")
async def unit_figures(
    code: Annotated[str, Path(pattern=CODE_PATTERN)],
    campaign: Code,
    session: SessionDep,
    principal: PrincipalDep,
    phase: OptCode = None,
) -> dict[str, Any]:
    """Any signed-in account reads the figures of units inside its own subtree; operators read all."""
    check_scope(principal, await _unit_path(session, code))
    found = await queries.unit_with_children(session, code, campaign, phase)
    if found is None:
        raise ApiError(404, "not_found", "Không tìm thấy đơn vị")
    row, children = found
    return {
        "unit": queries.unit_brief(row),
        "campaign": campaign,
        "phase": phase,
        "figures": queries.row_figures(row),
        "children": [{"unit": queries.unit_brief(c), "figures": queries.row_figures(c)} for c in children],
    }


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
    if kind not in KINDS:
        raise ApiError(422, "validation_error", "Loại đơn vị không hợp lệ", [{"field": "kind", "message": kind[:64]}])
    items = await queries.rankings(session, campaign, phase, kind, cluster, metric, limit)
    return {"campaign": campaign, "phase": phase, "kind": kind, "cluster": cluster, "metric": metric, "items": items}


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
    check_scope(principal, await _unit_path(session, unit))
    items = await queries.timeseries(session, campaign, unit, start, end)
    return {"campaign": campaign, "unit": unit, "bucket": bucket, "items": items}


@router.get("/milestones")
async def list_milestones(campaign: Code, session: SessionDep) -> dict[str, Any]:
    rows = (
        await session.execute(select(milestones).where(milestones.c.campaign == campaign).order_by(milestones.c.n))
    ).all()
    return {
        "items": [
            {
                "n": int(r.n),
                "initiative_id": r.initiative_id,
                "unit_code": r.unit_code,
                "authors": [{"member_id": m} for m in r.authors],
                "reached_at": r.reached_at.isoformat(),
            }
            for r in rows
        ]
    }
