"""Who may read and act on an initiative (SPEC §6)."""

from __future__ import annotations

from typing import Any

from shared.auth import Principal
from shared.units import path_in_scope

# Roles that read every initiative of their subtree (SPEC §6); a plain member reads only their own. A unit_admin
# is not one: SPEC §6 gives it quotas and figures, not the initiatives' text.
SUBTREE_READERS = ("support", "reviewer", "appraiser")


def is_author(principal: Principal, authors: list[dict[str, Any]]) -> bool:
    return principal.member_id is not None and any(a.get("member_id") == principal.member_id for a in authors)


def can_read(principal: Principal, authors: list[dict[str, Any]], unit_path: str | None) -> bool:
    if principal.is_operator or is_author(principal, authors):
        return True
    return principal.has(*SUBTREE_READERS) and path_in_scope(principal, unit_path)


def can_act_for(principal: Principal, authors: list[dict[str, Any]], unit_path: str | None) -> bool:
    """Revise or withdraw: an author, support in scope, or an operator."""
    if principal.is_operator or is_author(principal, authors):
        return True
    return principal.has("support") and path_in_scope(principal, unit_path)
