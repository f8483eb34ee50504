"""Operators' maintenance of a live tally (``sangkien ops tally verify``): counters against the facts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from shared.auth import Principal
from tally.adapters import maintenance
from tally.api.deps import ContextDep, require_roles

router = APIRouter(prefix="/api/v1/ops/tally", tags=["ops"])


@router.get("/verify")
async def verify(
    ctx: ContextDep,
    _op: Principal = require_roles("operator"),
    limit: Annotated[int, Query(ge=0, le=10_000)] = 100,
) -> dict[str, Any]:
    """Recompute every counter from the facts and answer the differences (none: the figures are exact).
    Reads the whole fact table in one transaction: an operator's check, not a monitoring probe."""
    diffs = await maintenance.verify(ctx.engine)
    return {"count": len(diffs), "differences": diffs[:limit]}
