"""Unit search for the pages' unit pickers (issue 16): the caller's own subtree, by code or name."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from shared.text import NO_NUL
from tally.adapters.unit_search import exists_anywhere, search_units
from tally.api.deps import PrincipalDep, SessionDep

router = APIRouter(prefix="/api/v1", tags=["plan"])


@router.get("/units")
async def find_units(
    session: SessionDep,
    principal: PrincipalDep,
    q: Annotated[str, Query(max_length=100, pattern=NO_NUL)] = "",
    limit: Annotated[int, Query(ge=1, le=50)] = 20,
) -> dict[str, Any]:
    """Units of the caller's subtree (operators: the whole tree) whose code or name holds every word of ``q``.

    Accents and case are optional ("thanh hoa" finds "Thanh Hóa"); an empty ``q`` lists the subtree from the
    top. A token without a unit finds nothing. When nothing in scope matches, ``outside_scope`` says whether
    something elsewhere does, so a page can tell "ngoài phạm vi" from "không tìm thấy"; the tree itself is
    not secret (``GET /units/{code}`` reads any unit)."""
    items, more = await search_units(session, q, root=principal.unit, everywhere=principal.is_operator, limit=limit)
    outside = not items and not principal.is_operator and await exists_anywhere(session, q)
    return {"items": items, "more": more, "outside_scope": outside}
