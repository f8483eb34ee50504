"""Dependencies of intake's routes: the shared aliases plus intake's own parts held in ctx.extras."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

from intake.adapters.plan import PlanReader
from intake.adapters.writer import GroupCommitWriter
from intake.submission import IntakeMetrics
from shared.auth import AuthError, Principal
from shared.http import ApiError
from shared.service import (
    ContextDep,
    OptionalPrincipalDep,
    ServiceContext,
    SessionDep,
    bearer_token,
    require_roles,
)

__all__ = [
    "ContextDep",
    "OptionalPrincipalDep",
    "PrincipalDep",
    "PrincipalCache",
    "SessionDep",
    "clock",
    "metrics",
    "plan",
    "require_roles",
    "writer",
]


def plan(ctx: ServiceContext) -> PlanReader:
    reader: PlanReader = ctx.extras["plan"]
    return reader


def writer(ctx: ServiceContext) -> GroupCommitWriter:
    w: GroupCommitWriter = ctx.extras["writer"]
    return w


def metrics(ctx: ServiceContext) -> IntakeMetrics:
    m: IntakeMetrics = ctx.extras["metrics"]
    return m


def clock(ctx: ServiceContext) -> datetime:
    now: Callable[[], datetime] = ctx.extras["clock"]
    return now()


class PrincipalCache:
    """Verified tokens, kept until their ``exp`` (at most five minutes): a client sends the same token
    with every request of a rush, and checking its signature again each time was a third of the CPU
    of POST /initiatives. A cached entry was verified exactly as a fresh one is."""

    def __init__(self, max_entries: int = 20_000, max_age_s: float = 300.0) -> None:
        self.max_entries = max_entries
        self.max_age_s = max_age_s
        self._verified: dict[str, tuple[float, Principal]] = {}

    async def principal(self, ctx: ServiceContext, token: str) -> Principal:
        now = time.time()
        hit = self._verified.get(token)
        if hit is not None and hit[0] > now:
            return hit[1]
        principal = await ctx.verifier.verify(token)
        expires = float(principal.claims.get("exp", now))
        if len(self._verified) >= self.max_entries:
            self._verified.clear()
        self._verified[token] = (min(expires, now + self.max_age_s), principal)
        return principal


async def get_principal(request: Request, ctx: ContextDep) -> Principal:
    """shared.service.get_principal, with the verification cached (same 401 answers)."""
    token = bearer_token(request)
    if token is None:
        raise ApiError(401, "unauthorized", "Cần đăng nhập", headers={"WWW-Authenticate": "Bearer"})
    cache: PrincipalCache | None = ctx.extras.get("principal_cache")
    if cache is None:
        cache = ctx.extras["principal_cache"] = PrincipalCache()
    try:
        return await cache.principal(ctx, token)
    except AuthError as exc:
        raise ApiError(401, exc.code, exc.message, headers={"WWW-Authenticate": "Bearer"}) from exc


PrincipalDep = Annotated[Principal, Depends(get_principal)]
