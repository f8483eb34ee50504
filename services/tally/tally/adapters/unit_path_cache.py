"""``UnitPathCache``: the ancestor chains of units, kept between consumer batches of one running tally.

Why: a consumer batch touches ~1,000 units and adds each fact to every ancestor, so it needs their paths;
reading them cost ~10 ms of PostgreSQL per batch when measured first. Re-measured in docs/benchmarks.md,
"Tricks re-measured (wiring)"; ``TallySettings.unit_path_cache`` (env ``UNIT_PATH_CACHE=false``) runs
without it.

Why it is right: every change of a unit (and so of any path) takes a new plan revision in the same
transaction, and a batch reads the revision under the plan lock (AdvisoryLock.TALLY_PLAN): while it is the
revision the cache was filled at, the cached paths are the stored ones.

The runtime owns the cache (tally.runtime.TallyRuntime) and hands it to each consumer batch through the
batch's session (``lend``), since the handlers only see the session.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tally.adapters.orm import plan_sequences

SESSION_KEY = "tally.unit_path_cache"
LIMIT = 400_000  # paths kept at most; then the cache starts again
PLAN_REVISION = select(plan_sequences.c.value).where(plan_sequences.c.name == "plan")

Lookup = Callable[[AsyncSession, Iterable[str]], Awaitable[dict[str, list[str]]]]


@dataclass
class UnitPathCache:
    revision: int = -1
    paths: dict[str, list[str] | None] = field(default_factory=dict)  # None: not a known unit

    def lend(self, session: AsyncSession) -> None:
        """Let this session's batch read paths through the cache."""
        session.info[SESSION_KEY] = self

    async def paths_of(self, session: AsyncSession, codes: Iterable[str], lookup: Lookup) -> dict[str, list[str]]:
        """``lookup(session, codes)``, answered from the cache for what it holds at the current plan revision."""
        revision = (await session.execute(PLAN_REVISION)).scalar_one_or_none() or 0
        if self.revision != revision or len(self.paths) > LIMIT:
            self.revision, self.paths = revision, {}
        wanted = set(codes)
        missing = [code for code in wanted if code not in self.paths]
        if missing:
            found = await lookup(session, missing)
            for code in missing:
                path = found.get(code)
                self.paths[code] = [sys.intern(c) for c in path] if path else None
        return {code: path for code in wanted if (path := self.paths[code]) is not None}


def lent_to(session: AsyncSession) -> UnitPathCache | None:
    cache = session.info.get(SESSION_KEY)
    return cache if isinstance(cache, UnitPathCache) else None
