"""The near-duplicate index of the running service: rebuilt from ``review_signature`` and kept in step with it.

Every replica follows the table by its ``id`` (a replica catches up with rows written by the
others before each lookup), so the in-memory LSH is a cache of the persisted signatures. On
PostgreSQL ids are drawn before commit, so a row with a smaller id can become visible after a
larger one: the last ``GAP_WINDOW`` ids are re-checked for rows that appeared late.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from review.adapters.orm import items, signatures
from review.domain.similarity import Match, SimilarityIndex, shingles, signature, text_of

SYNC_CHUNK = 5000
GAP_WINDOW = 2000


class SimilarityStore:
    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.indexes: dict[str, SimilarityIndex] = {}
        self.last_id = 0
        self._window: set[int] = set()  # ids loaded within GAP_WINDOW of last_id
        self._lock = asyncio.Lock()

    def index(self, campaign: str) -> SimilarityIndex:
        if campaign not in self.indexes:
            self.indexes[campaign] = SimilarityIndex()
        return self.indexes[campaign]

    async def sync(self, session: AsyncSession) -> int:
        """Load the signature rows written since the last sync (all of them at start-up)."""
        loaded = 0
        async with self._lock:
            if session.bind.dialect.name == "postgresql" and self.last_id:
                floor = max(0, self.last_id - GAP_WINDOW)
                recent = (
                    await session.execute(
                        select(signatures.c.id).where(signatures.c.id > floor).where(signatures.c.id <= self.last_id)
                    )
                ).scalars()
                late = [i for i in recent if i not in self._window]
                if late:
                    rows = (await session.execute(select(signatures).where(signatures.c.id.in_(late)))).all()
                    self._load(rows)
                    loaded += len(rows)
            while True:
                rows = (
                    await session.execute(
                        select(signatures)
                        .where(signatures.c.id > self.last_id)
                        .order_by(signatures.c.id)
                        .limit(SYNC_CHUNK)
                    )
                ).all()
                self._load(rows)
                loaded += len(rows)
                if len(rows) < SYNC_CHUNK:
                    break
                await asyncio.sleep(0)  # let requests through while a large index loads
            floor = self.last_id - GAP_WINDOW
            if len(self._window) > 2 * GAP_WINDOW:
                self._window = {i for i in self._window if i > floor}
            return loaded

    def _load(self, rows: list[Any]) -> None:
        by_campaign: dict[str, list[Any]] = {}
        floor = self.last_id - GAP_WINDOW
        for r in rows:
            by_campaign.setdefault(r.campaign, []).append(r)
            self.last_id = max(self.last_id, int(r.id))
            if int(r.id) > floor:
                self._window.add(int(r.id))
        for campaign, group in by_campaign.items():
            index = self.index(campaign)
            sets = [np.frombuffer(r.shingles, dtype=np.uint32) for r in group]
            if len(group) == 1:
                sig = np.frombuffer(group[0].signature, dtype=np.uint64)
                index.add(group[0].initiative_id, int(group[0].seq), sets[0], sig)
                continue
            sigs = np.stack([np.frombuffer(r.signature, dtype=np.uint64) for r in group])
            index.add_many([r.initiative_id for r in group], [int(r.seq) for r in group], sets, sigs)

    async def find_and_record(self, session: AsyncSession, item: dict[str, Any]) -> list[dict[str, Any]]:
        """The top earlier similar initiatives of ``item``; its signature is stored in the same transaction."""
        await self.sync(session)
        sh = shingles(text_of(item["title"], item["solution"] or item["effect"]))
        sig = signature(sh)
        index = self.index(item["campaign"])
        matches: list[Match] = index.similar(
            sh, before_seq=int(item["seq"]), exclude=item["initiative_id"], threshold=self.threshold
        )
        await session.execute(delete(signatures).where(signatures.c.initiative_id == item["initiative_id"]))
        await session.execute(
            signatures.insert().values(
                initiative_id=item["initiative_id"],
                campaign=item["campaign"],
                seq=int(item["seq"]),
                shingles=sh.tobytes(),
                signature=sig.tobytes(),
            )
        )
        if not matches:
            return []
        ids = [m.initiative_id for m in matches]
        rows = await session.execute(select(items.c.initiative_id, items.c.title).where(items.c.initiative_id.in_(ids)))
        titles = {r.initiative_id: r.title for r in rows}
        return [
            {"initiative_id": m.initiative_id, "seq": m.seq, "title": titles.get(m.initiative_id), "score": m.score}
            for m in matches
        ]
