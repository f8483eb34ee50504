"""The near-duplicate index of the running service: rebuilt from ``review_signature`` and kept in step with it.

Every replica follows the table by its ``id`` (a replica catches up with rows written by the
others, and its own committed ones, once per consumed batch), so the in-memory LSH is a cache of
the persisted signatures. On
PostgreSQL ids are drawn before commit, so a row with a smaller id can become visible after a
larger one: the ids skipped within the last ``GAP_WINDOW`` (usually none) are looked for again.

The index holds signatures' sketches, not shingle sets: the candidates a sketch keeps are scored exactly on
their sets, the newest ``RECENT_SETS`` of which stay in memory; the others are read back in one statement
per batch.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import BigInteger, String, any_, bindparam, func, select, true
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from review.adapters.orm import signatures
from review.domain.similarity import (
    Match,
    SimilarityIndex,
    band_keys_many,
    best_matches_many,
    earlier_in_batch,
    may_reach,
    shingles_many,
    signatures_of,
    sketch_of,
    text_of,
)

SYNC_CHUNK = 5000
GAP_WINDOW = 2000
# Shingle sets kept in memory for exact scoring: the last loaded, scored or read back, about SET_BYTES each. A
# candidate outside them is read from review_signature, a random read per candidate: at 600,000 initiatives,
# 5 per initiative with 131,072 sets in memory (docs/benchmarks.md). So as many are kept as fit in the memory
# given to similarity (``SIMILARITY_MEMORY_MB``) beside the index, and never fewer than RECENT_SETS.
RECENT_SETS = 131_072
# A set of ~210 values (840 bytes), the bytes object it views, its array's header and its entry in the
# OrderedDict. bench/replay.py's review peaked at 1,292 MiB with all 600,175 sets, 855 MiB with 131,072: ~980 bytes
# a set more; counted against the index's peak of 740 per initiative and the process's ~150 MiB, ~1,250. The larger.
SET_BYTES = 1_250
# What the index holds per initiative at its peak, counted with a margin: it was 1,752 MiB at 2,500,000 when a
# band-table merge doubled the tables and ids were strings in a dict (docs/benchmarks.md, "Memory"); since the runs
# are capped and ids take 16 bytes, ~330 bytes (780 MiB at 2,500,000, no peak above it: "The index's peak"). The
# 740 stay: review's process measured ~0.5 GiB above this model at national size with the old index, and a
# national run has not measured it since (docs/operations.md, "Review's memory").
INDEX_PEAK_BYTES = 740


def sets_within(memory_bytes: int, indexed: int) -> int:
    """How many shingle sets fit in ``memory_bytes`` beside an index of ``indexed`` initiatives (at least
    RECENT_SETS). With 1,700 MiB: every set up to ~890,000 initiatives, RECENT_SETS from ~2.2 M."""
    return max(RECENT_SETS, (memory_bytes - INDEX_PEAK_BYTES * indexed) // SET_BYTES)


class RecentSets:
    """The shingle sets of the initiatives loaded, scored or read back last, the least recently used dropped first.

    An OrderedDict, not a dict: a dict's ``next(iter(...))`` walks over every slot deleted at its front since its
    last resize, so once RECENT_SETS sets were loaded each insertion into a full dict cost up to ~40 µs instead of
    ~2 (a sixth of review's CPU at 574,000 initiatives, py-spy; docs/benchmarks.md, "The full replay"). A candidate
    that keeps being scored (the oldest of a crowd of near-copies) stays in memory."""

    def __init__(self, limit: int = RECENT_SETS) -> None:
        self.limit = limit
        self._sets: OrderedDict[str, np.ndarray] = OrderedDict()

    def get(self, initiative_id: str) -> np.ndarray | None:
        found = self._sets.get(initiative_id)
        if found is not None:
            self._sets.move_to_end(initiative_id)
        return found

    def put(self, initiative_id: str, shingle_set: np.ndarray) -> None:
        self._sets[initiative_id] = shingle_set  # a revision's set replaces the old one and counts as new
        self._sets.move_to_end(initiative_id)
        while len(self._sets) > self.limit:
            self._sets.popitem(last=False)

    def resize(self, limit: int) -> None:
        """Keep at most ``limit`` sets from now on, dropping the least recently used beyond it."""
        self.limit = limit
        while len(self._sets) > limit:
            self._sets.popitem(last=False)

    def __len__(self) -> int:
        return len(self._sets)


class SimilarityStore:
    def __init__(self, threshold: float, memory_bytes: int = 0) -> None:
        self.threshold = threshold
        self.memory_bytes = memory_bytes
        self.indexes: dict[str, SimilarityIndex] = {}
        self.last_id = 0
        self._holes: set[int] = set()  # ids below last_id (within GAP_WINDOW of it) not seen yet
        self._lock = asyncio.Lock()
        self.recent = RecentSets(sets_within(memory_bytes, 0))

    def index(self, campaign: str) -> SimilarityIndex:
        if campaign not in self.indexes:
            self.indexes[campaign] = SimilarityIndex()
        return self.indexes[campaign]

    async def sync(self, session: AsyncSession) -> int:
        """Load the signature rows written since the last sync (all of them at start-up)."""
        async with self._lock:
            return await self._sync(session)

    @contextlib.asynccontextmanager
    async def batch(self, session: AsyncSession) -> AsyncIterator[None]:
        """Catch up once, then hold the index still while a consumed batch looks up its entries."""
        async with self._lock:
            await self._sync(session)
            yield

    async def _sync(self, session: AsyncSession) -> int:
        loaded = 0
        if self._holes and session.bind.dialect.name == "postgresql":
            # Ids skipped so far: drawn by a transaction still open then (or rolled back for good).
            query = select(signatures).where(signatures.c.id == any_(bindparam("ids", type_=ARRAY(BigInteger))))
            rows = (await session.execute(query, {"ids": sorted(self._holes)})).all()
            self._load(rows)
            loaded += len(rows)
        while True:
            rows = (
                await session.execute(
                    select(signatures).where(signatures.c.id > self.last_id).order_by(signatures.c.id).limit(SYNC_CHUNK)
                )
            ).all()
            self._load(rows)
            loaded += len(rows)
            if len(rows) < SYNC_CHUNK:
                break
            await asyncio.sleep(0)  # let requests through while a large index loads
        floor = self.last_id - GAP_WINDOW
        self._holes = {i for i in self._holes if i > floor}
        if loaded:
            self.recent.resize(sets_within(self.memory_bytes, sum(map(len, self.indexes.values()))))
        return loaded

    def _load(self, rows: list[Any]) -> None:
        by_campaign: dict[str, list[Any]] = {}
        for r in rows:
            by_campaign.setdefault(r.campaign, []).append(r)
            self.recent.put(r.initiative_id, np.frombuffer(r.shingles, dtype=np.uint32))
            rid = int(r.id)
            if rid > self.last_id:
                # Ids between the last one seen and this one are holes to look for again (recent ones only).
                self._holes.update(range(max(self.last_id + 1, rid - GAP_WINDOW), rid))
                self.last_id = rid
            else:
                self._holes.discard(rid)
        for campaign, group in by_campaign.items():
            index = self.index(campaign)
            if len(group) == 1:
                index.add(group[0].initiative_id, int(group[0].seq), np.frombuffer(group[0].signature, np.uint64))
                continue
            sigs = np.stack([np.frombuffer(r.signature, dtype=np.uint64) for r in group])
            index.add_many([r.initiative_id for r in group], [int(r.seq) for r in group], sigs)

    async def lookup_batch(self, session: AsyncSession, entries: list[Entry]) -> dict[str, Found]:
        """Each entry's earlier near-duplicates, in ``seq`` order: among the indexed initiatives and among the
        batch's own entries before it (kept apart until the batch commits and ``sync`` loads them), scored
        together. The indexed candidates whose sketches may reach the threshold are scored on their shingle sets,
        read in one statement for the whole batch."""
        ordered = sorted(entries, key=lambda e: (e.campaign, e.seq))
        sets = shingles_many([text_of(e.title, e.solution or e.effect) for e in ordered])
        sigs = signatures_of(sets)
        keys = band_keys_many(sigs)
        from_index: dict[int, tuple[list[str], list[int]]] = {}
        for campaign in {e.campaign for e in ordered}:
            looking = [n for n, e in enumerate(ordered) if e.look and e.campaign == campaign]
            found_in = self.index(campaign).shortlist_many(
                sigs[looking],
                [ordered[n].seq for n in looking],
                [ordered[n].initiative_id for n in looking],
                self.threshold,
            )
            from_index.update(zip(looking, found_in, strict=True))
        # The batch's own earlier entries (kept apart until it commits), per campaign, as the index would give them.
        groups = {c: g for g, c in enumerate(dict.fromkeys(e.campaign for e in ordered))}
        later, earlier = earlier_in_batch(keys, np.array([groups[e.campaign] for e in ordered], dtype=np.int64))
        sketches = sketch_of(sigs)
        close = may_reach(sketches[later], sketches[earlier], self.threshold).tolist()
        met: dict[int, list[tuple[int, bool]]] = {}
        for n, j, worth in zip(later.tolist(), earlier.tolist(), close, strict=True):
            met.setdefault(n, []).append((j, worth))
        # Per entry: its candidates from the index (ids, seqs) and from the batch (positions in ``ordered``).
        shortlists: list[tuple[list[str], list[int], list[int]]] = []
        for n, e in enumerate(ordered):
            ids: list[str] = []
            seqs: list[int] = []
            own: list[int] = []
            if e.look:
                ids, seqs = from_index[n]
                mine = met.get(n)
                if mine:
                    # A revised initiative may be indexed with its old text: the batch's newer text wins.
                    newer = {ordered[j].initiative_id for j, _ in mine}
                    kept = [i for i, iid in enumerate(ids) if iid not in newer]
                    ids, seqs = [ids[i] for i in kept], [seqs[i] for i in kept]
                    own = [
                        j
                        for j, worth in mine
                        if worth and ordered[j].seq < e.seq and ordered[j].initiative_id != e.initiative_id
                    ]
            shortlists.append((ids, seqs, own))
        stored = await self._sets_of(session, {iid for ids, _, _ in shortlists for iid in ids})
        candidates: list[tuple[list[str], list[int], list[np.ndarray]]] = []
        for ids, seqs, own in shortlists:
            known = [i for i, iid in enumerate(ids) if iid in stored]  # a row the index has was written
            candidates.append(
                (
                    [ids[i] for i in known] + [ordered[j].initiative_id for j in own],
                    [seqs[i] for i in known] + [ordered[j].seq for j in own],
                    [stored[ids[i]] for i in known] + [sets[j] for j in own],
                )
            )
        matches = best_matches_many(sets, candidates, threshold=self.threshold)
        found = {e.initiative_id: Found(matches[n], sets[n], sigs[n]) for n, e in enumerate(ordered)}
        return found

    async def _sets_of(self, session: AsyncSession, initiative_ids: set[str]) -> dict[str, np.ndarray]:
        """The shingle sets of ``initiative_ids``: the recent ones from memory, the others in one statement."""
        found: dict[str, np.ndarray] = {}
        missing: set[str] = set()
        for iid in initiative_ids:
            known = self.recent.get(iid)
            if known is None:
                missing.add(iid)
            else:
                found[iid] = known
        if missing:
            read = await shingle_sets(session, missing)
            for iid, shingle_set in read.items():
                self.recent.put(iid, shingle_set)
            found.update(read)
        return found


# PostgreSQL: the rows of each wanted id through the initiative_id index, one probe per id, whatever the
# statistics say. As ``initiative_id = ANY(ids) ORDER BY id`` the plan was the planner's to choose, and with no
# statistics on the table (a queue that grew in minutes, no analyze yet) it walked the whole primary key in order,
# filtering every row: in the national replay, past a million initiatives, 2.1 s for 6,000 ids (0.22 s through
# the index), a quarter of a million sets read back per minute, and review's consumer fell from 865 to 207
# initiatives a second. A LATERAL subquery with an OFFSET is never pulled up into a join: it is run for each id,
# through the index. (The newest row per initiative is picked here, not by an ORDER BY that the planner could again
# answer with the primary key.)
_WANTED = func.unnest(bindparam("ids", type_=ARRAY(String))).table_valued("iid").render_derived(name="wanted")
_PROBE = (
    select(signatures.c.id, signatures.c.initiative_id, signatures.c.shingles)
    .where(signatures.c.initiative_id == _WANTED.c.iid)
    .offset(0)
    .lateral("probe")
)
_SETS_PG = select(_PROBE.c.id, _PROBE.c.initiative_id, _PROBE.c.shingles).select_from(_WANTED).join(_PROBE, true())


async def shingle_sets(session: AsyncSession, initiative_ids: set[str]) -> dict[str, np.ndarray]:
    """The newest stored shingle set of each initiative (a revision adds a row; the last one wins)."""
    if not initiative_ids:
        return {}
    if session.bind.dialect.name == "postgresql":  # one array parameter: one prepared statement for any count
        rows = (await session.execute(_SETS_PG, {"ids": list(initiative_ids)})).all()
    else:
        query = select(signatures.c.id, signatures.c.initiative_id, signatures.c.shingles)
        rows = (await session.execute(query.where(signatures.c.initiative_id.in_(sorted(initiative_ids))))).all()
    newest: dict[str, tuple[int, bytes]] = {}
    for row_id, initiative_id, shingles in rows:
        held = newest.get(initiative_id)
        if held is None or row_id > held[0]:
            newest[initiative_id] = (row_id, shingles)
    return {iid: np.frombuffer(shingles, dtype=np.uint32) for iid, (_, shingles) in newest.items()}


@dataclass(frozen=True, slots=True)
class Entry:
    """An initiative whose newest text a batch accepted; ``look`` says whether its near-duplicates are wanted."""

    initiative_id: str
    campaign: str
    seq: int
    title: str
    solution: str | None
    effect: str | None
    look: bool


@dataclass(frozen=True, slots=True)
class Found:
    matches: list[Match]
    shingles: np.ndarray
    signature: np.ndarray


def signature_rows(entries: list[Entry], found: dict[str, Found]) -> list[dict[str, Any]]:
    return [
        {
            "initiative_id": e.initiative_id,
            "campaign": e.campaign,
            "seq": e.seq,
            "shingles": found[e.initiative_id].shingles.tobytes(),
            "signature": found[e.initiative_id].signature.tobytes(),
        }
        for e in entries
    ]
