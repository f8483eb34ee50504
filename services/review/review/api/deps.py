"""Annotated dependencies of the review routes (re-exporting the shared ones)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from review.runtime import ReviewRuntime, runtime_of
from shared.service import ContextDep, PrincipalDep, SessionDep, require_roles

__all__ = ["ContextDep", "PrincipalDep", "RuntimeDep", "SessionDep", "require_roles"]


def get_runtime(ctx: ContextDep) -> ReviewRuntime:
    return runtime_of(ctx)


RuntimeDep = Annotated[ReviewRuntime, Depends(get_runtime)]
