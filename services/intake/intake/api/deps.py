"""Dependencies of intake's routes: the shared aliases, and intake's own parts for the routes that read them."""

from __future__ import annotations

from intake.service.context import clock, metrics, plan, writer
from shared.service import (
    ContextDep,
    OptionalPrincipalDep,
    PrincipalDep,
    ServiceContext,
    SessionDep,
    require_roles,
)

__all__ = [
    "ContextDep",
    "OptionalPrincipalDep",
    "PrincipalDep",
    "ServiceContext",
    "SessionDep",
    "clock",
    "metrics",
    "plan",
    "require_roles",
    "writer",
]
