"""The unit-scope rule of SPEC §6: operators act everywhere, the others only inside their unit's subtree."""

from __future__ import annotations

from shared.auth import Principal
from tally.domain.errors import NotAllowed, NotFound

OUT_OF_SCOPE = "Đơn vị nằm ngoài phạm vi của bạn"


def check_scope(principal: Principal, path: str | None) -> None:
    """An unknown unit (``path`` None) is NotFound to operators and NotAllowed to the others, so nobody
    learns what exists outside their subtree."""
    if principal.is_operator:
        if path is None:
            raise NotFound("not_found", "Không tìm thấy đơn vị")
        return
    if path is None or not principal.unit or f"/{principal.unit}/" not in path:
        raise NotAllowed("forbidden", OUT_OF_SCOPE)
