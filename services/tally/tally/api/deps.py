"""Dependencies of tally's routes (re-exporting the shared aliases) and the unit-scope rule of SPEC §6."""

from __future__ import annotations

from shared.auth import Principal
from shared.http import ApiError
from shared.service import ContextDep, OptionalPrincipalDep, PrincipalDep, SessionDep, require_roles

__all__ = ["ContextDep", "OptionalPrincipalDep", "PrincipalDep", "SessionDep", "require_roles", "check_scope"]


def check_scope(principal: Principal, path: str | None) -> None:
    """Operators act everywhere; others only inside their unit's subtree.

    An unknown unit answers 404 to operators and 403 to the others, so nobody learns what exists
    outside their subtree."""
    if principal.is_operator:
        if path is None:
            raise ApiError(404, "not_found", "Không tìm thấy đơn vị")
        return
    if path is None or not principal.unit or f"/{principal.unit}/" not in path:
        raise ApiError(403, "forbidden", "Đơn vị nằm ngoài phạm vi của bạn")
