"""Snapshots: every unit's figures frozen under an id; awards and official reports read them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, insert, literal, select

from shared.auth import Principal
from shared.http import ApiError
from shared.units import subtree_clause
from tally.adapters import queries
from tally.adapters.orm import campaigns, snapshot_figures, snapshots
from tally.api.deps import ContextDep, PrincipalDep, SessionDep, check_scope, require_roles
from tally.domain.counting import figures
from tally.domain.plan import CODE_PATTERN

router = APIRouter(prefix="/api/v1/tally/snapshots", tags=["snapshots"])
IdPath = Annotated[str, Path(max_length=36)]


class SnapshotIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    campaign: Annotated[str, Field(pattern=CODE_PATTERN)]
    phase: Annotated[str, Field(pattern=CODE_PATTERN)] | None = None


def _snapshot_out(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "campaign": row.campaign,
        "phase": row.phase,
        "taken_at": row.taken_at.isoformat(),
        "units_count": int(row.units_count),
    }


def _figures_of(r: Any) -> dict[str, Any]:
    return figures(r.submitted, r.valid, r.invalid, r.participants, r.benefit_vnd, r.quota, r.self_set)


@router.post("", status_code=201)
async def take_snapshot(
    body: SnapshotIn, ctx: ContextDep, session: SessionDep, _op: Principal = require_roles("operator")
) -> dict[str, Any]:
    async with session.begin():
        campaign = (await session.execute(select(campaigns).where(campaigns.c.code == body.campaign))).first()
        if campaign is None:
            raise ApiError(404, "not_found", "Không tìm thấy đợt phát động")
        if body.phase is not None and body.phase not in {p["code"] for p in campaign.body.get("phases", [])}:
            raise ApiError(
                422, "validation_error", "Giai đoạn không có trong đợt", [{"field": "phase", "message": body.phase}]
            )
        snapshot_id = str(uuid.uuid4())
        taken_at = datetime.now(UTC)
        source = queries._figures_query(body.campaign, body.phase).subquery("f")
        cols = ("code", "name", "kind", "parent_code", "cluster", "path", *queries.snapshot_columns())
        select_rows = select(literal(snapshot_id), *[source.c[c] for c in cols])
        target = ["snapshot_id", "unit_code", *cols[1:]]
        # One INSERT … SELECT: the freeze is a single consistent read of the counters.
        await session.execute(insert(snapshot_figures).from_select(target, select_rows))
        count = (
            await session.execute(
                select(func.count()).select_from(snapshot_figures).where(snapshot_figures.c.snapshot_id == snapshot_id)
            )
        ).scalar_one()
        await session.execute(
            snapshots.insert().values(
                id=snapshot_id, campaign=body.campaign, phase=body.phase, taken_at=taken_at, units_count=count
            )
        )
        data = {
            "snapshot_id": snapshot_id,
            "campaign": body.campaign,
            "phase": body.phase,
            "taken_at": taken_at.isoformat(),
        }
        await ctx.emit(session, ctx.event("tally.snapshot_frozen", data))
    return {
        "id": snapshot_id,
        "taken_at": taken_at.isoformat(),
        "campaign": body.campaign,
        "phase": body.phase,
        "units_count": count,
    }


async def _snapshot(session: Any, snapshot_id: str) -> Any:
    row = (await session.execute(select(snapshots).where(snapshots.c.id == snapshot_id))).first()
    if row is None:
        raise ApiError(404, "not_found", "Không tìm thấy bản chốt số liệu")
    return row


@router.get("/{snapshot_id}")
async def get_snapshot(
    snapshot_id: IdPath, session: SessionDep, _p: Principal = require_roles("unit_admin")
) -> dict[str, Any]:
    return _snapshot_out(await _snapshot(session, snapshot_id))


@router.get("/{snapshot_id}/units/{code}")
async def snapshot_unit(
    snapshot_id: IdPath,
    code: Annotated[str, Path(pattern=CODE_PATTERN)],
    session: SessionDep,
    principal: PrincipalDep,
) -> dict[str, Any]:
    snap = await _snapshot(session, snapshot_id)
    row = (
        await session.execute(
            select(snapshot_figures).where(
                snapshot_figures.c.snapshot_id == snapshot_id, snapshot_figures.c.unit_code == code
            )
        )
    ).first()
    check_scope(principal, row.path if row is not None else None)
    assert row is not None
    children = (
        await session.execute(
            select(snapshot_figures)
            .where(snapshot_figures.c.snapshot_id == snapshot_id, snapshot_figures.c.parent_code == code)
            .order_by(snapshot_figures.c.unit_code)
        )
    ).all()
    return {
        "snapshot": _snapshot_out(snap),
        "unit": {"code": row.unit_code, "name": row.name, "kind": row.kind},
        "campaign": snap.campaign,
        "phase": snap.phase,
        "figures": _figures_of(row),
        "children": [
            {"unit": {"code": c.unit_code, "name": c.name, "kind": c.kind}, "figures": _figures_of(c)} for c in children
        ],
    }


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
    await _snapshot(session, snapshot_id)
    query = select(snapshot_figures).where(snapshot_figures.c.snapshot_id == snapshot_id)
    if kind:
        query = query.where(snapshot_figures.c.kind == kind)
    if cursor:
        query = query.where(snapshot_figures.c.unit_code > cursor)
    if not principal.is_operator:
        query = query.where(subtree_clause(snapshot_figures.c.path, principal.unit))
    rows = (await session.execute(query.order_by(snapshot_figures.c.unit_code).limit(limit + 1))).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "items": [
            {
                "unit": {
                    "code": r.unit_code,
                    "name": r.name,
                    "kind": r.kind,
                    "parent_code": r.parent_code,
                    "cluster": r.cluster,
                },
                "figures": _figures_of(r),
            }
            for r in rows
        ],
        "next_cursor": rows[-1].unit_code if more and rows else None,
    }
