"""Figures (SPEC §4): a unit's with its children's, rankings, time series and milestones."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Principal
from tally.adapters import queries
from tally.adapters.plan import unit_path
from tally.domain.errors import NotFound, invalid
from tally.domain.plan import KINDS
from tally.domain.scope import check_scope


async def unit_figures(
    session: AsyncSession, principal: Principal, code: str, campaign: str, phase: str | None
) -> dict[str, Any]:
    """Any signed-in account reads the figures of units inside its own subtree; operators read all."""
    check_scope(principal, await unit_path(session, code))
    found = await queries.unit_with_children(session, code, campaign, phase)
    if found is None:
        raise NotFound("not_found", "Không tìm thấy đơn vị")
    row, children = found
    return {
        "unit": queries.unit_brief(row),
        "campaign": campaign,
        "phase": phase,
        "figures": queries.row_figures(row),
        "children": [{"unit": queries.unit_brief(c), "figures": queries.row_figures(c)} for c in children],
    }


async def rankings(
    session: AsyncSession,
    campaign: str,
    kind: str,
    phase: str | None,
    cluster: str | None,
    metric: str,
    limit: int,
) -> dict[str, Any]:
    """Public (SPEC §6). Competition ranking ("1, 2, 2, 4"), ties listed by unit code; by
    ``achievement_pct`` only units with a quota are ranked."""
    if kind not in KINDS:
        raise invalid("Loại đơn vị không hợp lệ", [{"field": "kind", "message": kind[:64]}])
    items = await queries.rankings(session, campaign, phase, kind, cluster, metric, limit)
    return {"campaign": campaign, "phase": phase, "kind": kind, "cluster": cluster, "metric": metric, "items": items}


async def timeseries(
    session: AsyncSession, principal: Principal, campaign: str, unit: str, start: date | None, end: date | None
) -> list[dict[str, Any]]:
    """Per day (Asia/Ho_Chi_Minh): initiatives submitted that day and validated that day, with running totals."""
    check_scope(principal, await unit_path(session, unit))
    return await queries.timeseries(session, campaign, unit, start, end)


async def milestones(session: AsyncSession, campaign: str) -> dict[str, Any]:
    rows = await queries.campaign_milestones(session, campaign)
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
