"""Dependencies of tally's routes: the shared aliases."""

from __future__ import annotations

from shared.service import ContextDep, OptionalPrincipalDep, PrincipalDep, SessionDep, require_roles

__all__ = ["ContextDep", "OptionalPrincipalDep", "PrincipalDep", "SessionDep", "require_roles"]
