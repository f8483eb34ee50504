"""Dependencies specific to awards (re-exports the shared ones)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path

from awards.adapters.tally_client import TallyClient
from awards.domain.schemes import CODE
from awards.runtime import runtime_of
from shared.service import ContextDep, OptionalPrincipalDep, PrincipalDep, SessionDep, require_roles


def get_tally(ctx: ContextDep) -> TallyClient:
    client = runtime_of(ctx).tally
    assert client is not None, "made when the service starts"
    return client


TallyDep = Annotated[TallyClient, Depends(get_tally)]
SchemeCode = Annotated[str, Path(pattern=CODE)]
Operator = require_roles("operator")

__all__ = ["ContextDep", "OptionalPrincipalDep", "Operator", "PrincipalDep", "SchemeCode", "SessionDep", "TallyDep"]
