"""Snapshots: every unit's figures frozen under an id; awards and official reports read them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Principal
from shared.service import ServiceContext
from tally.adapters import snapshots as snapshot_store
from tally.adapters.plan import campaign_of
from tally.domain.counting import figures
from tally.domain.errors import NotFound, invalid
from tally.domain.scope import check_scope


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


async def take_snapshot(ctx: ServiceContext, session: AsyncSession, campaign: str, phase: str | None) -> dict[str, Any]:
    """Freeze every unit's figures of the campaign (or of one of its phases) and stage
    ``tally.snapshot_frozen``, in one transaction."""
    async with session.begin():
        row = await campaign_of(session, campaign)
        if row is None:
            raise NotFound("not_found", "Không tìm thấy đợt phát động")
        if phase is not None and phase not in {p["code"] for p in row.body.get("phases", [])}:
            raise invalid("Giai đoạn không có trong đợt", [{"field": "phase", "message": phase}])
        snapshot_id = str(uuid.uuid4())
        taken_at = datetime.now(UTC)
        count = await snapshot_store.freeze(session, snapshot_id, campaign, phase, taken_at)
        data = {"snapshot_id": snapshot_id, "campaign": campaign, "phase": phase, "taken_at": taken_at.isoformat()}
        await ctx.emit(session, ctx.event("tally.snapshot_frozen", data))
    return {
        "id": snapshot_id,
        "taken_at": taken_at.isoformat(),
        "campaign": campaign,
        "phase": phase,
        "units_count": count,
    }


async def _snapshot(session: AsyncSession, snapshot_id: str) -> Any:
    row = await snapshot_store.snapshot_of(session, snapshot_id)
    if row is None:
        raise NotFound("not_found", "Không tìm thấy bản chốt số liệu")
    return row


async def get_snapshot(session: AsyncSession, snapshot_id: str) -> dict[str, Any]:
    return _snapshot_out(await _snapshot(session, snapshot_id))


async def snapshot_unit(session: AsyncSession, principal: Principal, snapshot_id: str, code: str) -> dict[str, Any]:
    """A unit's frozen figures with its children's, inside the caller's subtree."""
    snap = await _snapshot(session, snapshot_id)
    row = await snapshot_store.frozen_unit(session, snapshot_id, code)
    check_scope(principal, row.path if row is not None else None)
    assert row is not None
    children = await snapshot_store.frozen_children(session, snapshot_id, code)
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


async def snapshot_figures_page(
    session: AsyncSession,
    principal: Principal,
    snapshot_id: str,
    kind: str | None,
    cursor: str | None,
    limit: int,
) -> dict[str, Any]:
    """Pages of frozen figures in unit-code order; a unit_admin sees its own subtree only."""
    await _snapshot(session, snapshot_id)
    rows = await snapshot_store.frozen_page(
        session,
        snapshot_id,
        kind=kind,
        after=cursor,
        subtree_of=principal.unit,
        everything=principal.is_operator,
        limit=limit,
    )
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
