"""Review's near-duplicate lookups as its consumer runs them, a delivered batch at a time, without a database.

    .venv/bin/python bench/review_lookups.py [--n 20000] [--batches 50,500] [--rounds 3] [--code DIR]

The texts are the pipeline bench's (bench/province.py, the Thanh Hóa shape scaled to ``--n``). Each round
replays them in order through ``SimilarityStore.lookup_batch`` in batches of each size, loading each batch's
signatures into the index afterwards as the consumer does once the batch commits (every shingle set stays in
memory, so no statement is needed), and reports the process's CPU time per initiative, in total and by step
(shingles, signatures, shortlists, exact scores, loading), the best of ``--rounds``. The reference, measured in
the same run: an exact-duplicate check of the same texts (CRC-32 of the raw text into a dict).

``--margins 0.25,0.1875`` (alone): what the sketch margin keeps. The texts are replayed once with every shortlisted
candidate scored (the margin lifted), and for each candidate its sketch estimate and its exact Jaccard similarity
are recorded: per margin, how many candidates per initiative would be scored and how many of the pairs that reach
the threshold would still be found.

``--code DIR`` runs the services of another checkout instead (for instance ``git archive <commit>`` unpacked in
DIR), to compare two versions on the same texts; steps that version does not have are left out.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import inspect
import sys
import time
import zlib
from collections import namedtuple
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
STEPS = {  # where each step lives: module attribute names, in either version
    "shingles": ("shingles_many", "shingles"),
    "signatures": ("signatures_of",),
    "shortlists": ("shortlist_many", "shortlist"),
    "exact scores": ("best_matches_many", "best_matches"),
}
Row = namedtuple("Row", "id campaign initiative_id seq shingles signature")


def load(code: Path) -> tuple[Any, Any]:
    sys.path[:0] = [str(code), str(code / "services" / "review"), str(REPO / "bench")]
    from review.adapters import similar_store
    from review.domain import similarity

    return similar_store, similarity


def instrument(store_mod: Any, sim: Any, spent: dict[str, float]) -> None:
    """Time each step where the store calls it (module functions) or where the index runs it (methods)."""

    def timed(owner: Any, name: str, step: str) -> None:
        inner = getattr(owner, name)

        @functools.wraps(inner)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.process_time()
            try:
                return inner(*args, **kwargs)
            finally:
                spent[step] = spent.get(step, 0.0) + time.process_time() - start

        setattr(owner, name, wrapper)

    for step, names in STEPS.items():
        for name in names:
            if hasattr(store_mod, name):
                timed(store_mod, name, step)
                break
            if hasattr(sim.SimilarityIndex, name):
                timed(sim.SimilarityIndex, name, step)
                break
    timed(store_mod.SimilarityStore, "_load", "loading")


def margins(store_mod: Any, sim: Any, entries: list[Any], batch: int, wanted: list[float]) -> None:
    """``--margins``: each shortlisted candidate's sketch estimate against its exact score, per margin."""
    import numpy as np

    sim.SKETCH_MARGIN = 1.0  # every shortlisted candidate is scored
    scored: list[tuple[float, float]] = []
    inner = store_mod.best_matches_many

    def recording(queries: list[Any], candidates: list[Any], **kwargs: Any) -> Any:
        query_sigs = sim.signatures_of(queries)
        for query, query_sig, (ids, _seqs, sets) in zip(queries, query_sigs, candidates, strict=True):
            if ids:
                same = sim.sketch_of(sim.signatures_of(sets)) == sim.sketch_of(query_sig[None, :])
                estimates = same.mean(axis=1).tolist()
                scored.extend((e, sim.jaccard(query, s)) for e, s in zip(estimates, sets, strict=True))
        return inner(queries, candidates, **kwargs)

    store_mod.best_matches_many = recording
    asyncio.run(replay(store_mod, sim, entries, batch))
    pairs = np.array(scored)
    reach = pairs[:, 1] >= sim.THRESHOLD
    print(f"  {len(pairs) / len(entries):.1f} candidates per initiative shortlisted, {int(reach.sum())} pairs reach "
          f"{sim.THRESHOLD}")  # fmt: skip
    for margin in wanted:
        kept = pairs[:, 0] >= sim.THRESHOLD - margin
        print(f"  margin {margin}: {kept.sum() / len(entries):.1f} scored per initiative, "
              f"{int((kept & reach).sum())} of the {int(reach.sum())} pairs reaching the threshold found")  # fmt: skip


async def replay(store_mod: Any, sim: Any, entries: list[Any], batch: int) -> tuple[float, int]:
    store = store_mod.SimilarityStore(sim.THRESHOLD)
    if hasattr(getattr(store, "recent", None), "resize"):
        store.recent.resize(len(entries))  # every set in memory, whatever the size: no statement is run
    # Before issue 15 the store kept every shingle set and took no session.
    takes_session = "session" in inspect.signature(store.lookup_batch).parameters
    spent = 0.0
    matched = 0
    for first in range(0, len(entries), batch):
        part = entries[first : first + batch]
        start = time.process_time()
        # every shingle set is in memory: no statement is run
        found = await (store.lookup_batch(None, part) if takes_session else store.lookup_batch(part))
        spent += time.process_time() - start
        matched += sum(1 for f in found.values() if f.matches)
        rows = [
            Row(first + n + 1, e.campaign, e.initiative_id, e.seq, found[e.initiative_id].shingles.tobytes(),
                found[e.initiative_id].signature.tobytes())
            for n, e in enumerate(part)
        ]  # fmt: skip
        store._load(rows)
    return spent, matched


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--batches", default="50,500")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--code", default=str(REPO))
    ap.add_argument("--margins", default="", help="alone: what each of these sketch margins keeps")
    opts = ap.parse_args()
    code = Path(opts.code).resolve()
    store_mod, sim = load(code)
    from province import Province, Shape

    province = Province(Shape().scaled(opts.n / Shape().submissions))
    items = province.items(0)
    bodies = [province.body(next(items)) for _ in range(opts.n)]
    entries = [
        store_mod.Entry(f"i{n}", "C", n + 1, b.get("title") or "", b.get("solution"), b.get("effect"), True)
        for n, b in enumerate(bodies)
    ]
    texts = [sim.text_of(e.title, e.solution or e.effect) for e in entries]
    if opts.margins:
        batch = int(opts.batches.split(",")[0])
        print(
            f"review lookups, code of {code}: sketch margins, {opts.n} texts of the pipeline bench, batches of {batch}"
        )
        margins(store_mod, sim, entries, batch, [float(m) for m in opts.margins.split(",")])
        return
    reference = float("inf")
    for _ in range(opts.rounds):
        start = time.process_time()
        seen: dict[int, int] = {}
        for n, text in enumerate(texts):
            seen.setdefault(zlib.crc32(text.encode()), n)
        reference = min(reference, time.process_time() - start)
    ref_us = reference / opts.n * 1e6
    print(f"review lookups, code of {code}, {opts.n} texts of the pipeline bench, best of {opts.rounds} rounds")
    print(f"reference (exact duplicates: CRC-32 of the raw text into a dict): {ref_us:.1f} µs per initiative")
    for batch in [int(b) for b in opts.batches.split(",") if b]:
        best: tuple[float, dict[str, float], int] | None = None
        for _ in range(opts.rounds):
            spent: dict[str, float] = {}
            instrument(store_mod, sim, spent)
            total, matched = asyncio.run(replay(store_mod, sim, entries, batch))
            importlib_reload(store_mod, sim)
            if best is None or total < best[0]:
                best = (total, spent, matched)
        assert best is not None
        total, spent, matched = best
        per = total / opts.n * 1e6
        steps = ", ".join(f"{k} {v / opts.n * 1e6:.0f}" for k, v in spent.items())
        print(f"  batches of {batch}: {per:.0f} µs per initiative ({per / ref_us:.0f} × the reference); {steps}; "
              f"{matched} with near-duplicates")  # fmt: skip


def importlib_reload(store_mod: Any, sim: Any) -> None:
    """Undo ``instrument`` (fresh modules for the next round, so wrappers do not nest)."""
    import importlib

    importlib.reload(sim)
    importlib.reload(store_mod)


if __name__ == "__main__":
    main()
