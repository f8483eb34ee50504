"""Near-duplicates on Vietnamese text: 200 originals, 200 altered copies, 200 unrelated initiatives."""

from __future__ import annotations

import random
import unicodedata
import zlib
from collections import Counter

import numpy as np
import pytest
from review.domain.similarity import (
    MAX_CANDIDATES,
    THRESHOLD,
    SimilarityIndex,
    earlier_in_batch,
    jaccard,
    jaccard_pairs,
    normalise,
    shingles,
    shingles_many,
    signature,
    sorted_distinct,
    text_of,
    word_hashes,
)
from review_corpus import altered, initiative


def test_normalisation_folds_vietnamese_diacritics_case_and_punctuation() -> None:
    assert normalise("Đổi mới, SÁNG TẠO!") == "doi moi sang tao"
    assert normalise("Cải tiến khuôn định vị") == normalise("cai tien khuon dinh vi")
    # NFD input (combining marks) matches the precomposed form.
    assert normalise(unicodedata.normalize("NFD", "Tiết kiệm điện")) == "tiet kiem dien"


def test_copies_are_found_and_unrelated_texts_stay_below_the_threshold() -> None:
    rng = random.Random(2021)
    index = SimilarityIndex()
    originals = [initiative(rng) for _ in range(200)]
    stored: dict[str, np.ndarray] = {}
    for i, (title, solution) in enumerate(originals):
        stored[f"orig-{i}"] = shingles(text_of(title, solution))
        index.add(f"orig-{i}", i, signature(stored[f"orig-{i}"]))
    sets_of = lambda ids: [stored[i] for i in ids]  # noqa: E731

    found = 0
    reported = 0
    true_reported = 0
    for i, (title, solution) in enumerate(originals):
        copy = altered(rng, title, solution)
        matches = index.similar(shingles(text_of(*copy)), sets_of, before_seq=1_000)
        reported += len(matches)
        true_reported += sum(1 for m in matches if m.initiative_id == f"orig-{i}")
        found += any(m.initiative_id == f"orig-{i}" for m in matches)

    unrelated_hits = 0
    for _ in range(200):
        matches = index.similar(shingles(text_of(*initiative(rng))), sets_of, before_seq=1_000)
        unrelated_hits += len(matches)
        reported += len(matches)

    recall = found / 200
    precision = true_reported / reported
    print(f"near-duplicates: threshold={THRESHOLD} recall={recall:.3f} precision={precision:.3f}")
    assert recall >= 0.95
    assert unrelated_hits == 0
    assert precision >= 0.95


def test_bulk_indexing_finds_what_one_by_one_indexing_finds() -> None:
    rng = random.Random(7)
    texts = [text_of(*initiative(rng)) for _ in range(300)]
    sets = [shingles(t) for t in texts]
    sigs = np.stack([signature(s) for s in sets])
    one_by_one, bulk = SimilarityIndex(), SimilarityIndex()
    for i, sig in enumerate(sigs):
        one_by_one.add(f"i{i}", i, sig)
    bulk.add_many([f"i{i}" for i in range(300)], list(range(300)), sigs)
    sets_of = lambda ids: [sets[int(i[1:])] for i in ids]  # noqa: E731
    for i in range(0, 300, 7):
        query = shingles(text_of(*altered(rng, *texts[i].split("\n", 1))))
        assert one_by_one.similar(query, sets_of) == bulk.similar(query, sets_of)
        assert f"i{i}" in {m.initiative_id for m in bulk.similar(query, sets_of)}


def test_matches_are_the_exact_scores_of_a_brute_force_scan() -> None:
    """The sketch only picks which candidates are scored: what the index reports is exactly what a scan of every
    indexed set finds (same ids, same scores), for copies and for unrelated texts."""
    rng = random.Random(11)
    texts = [initiative(rng) for _ in range(400)]
    sets = [shingles(text_of(*t)) for t in texts]
    index = SimilarityIndex()
    index.add_many([f"i{i}" for i in range(400)], list(range(400)), np.stack([signature(s) for s in sets]))
    sets_of = lambda ids: [sets[int(i[1:])] for i in ids]  # noqa: E731
    agree = 0
    for n in range(120):
        query = shingles(text_of(*(altered(rng, *texts[n * 3]) if n % 2 else initiative(rng))))
        scan = sorted(
            (round(jaccard(query, s), 4), f"i{i}") for i, s in enumerate(sets) if round(jaccard(query, s), 4) >= 0.5
        )
        got = sorted((m.score, m.initiative_id) for m in index.similar(query, sets_of))
        assert set(got) <= set(scan)
        agree += got == scan[-5:] or got == scan
    assert agree >= 114  # LSH recall (0.95+), not the sketch, decides what is missed


def test_the_index_keeps_about_300_bytes_an_initiative() -> None:
    """No shingle sets in memory: band keys (16 × 8 bytes) and a sketch (64 × 2 bytes) and a seq per initiative."""
    rng = np.random.default_rng(3)
    sigs = rng.integers(0, 2**32, size=(20_000, 64), dtype=np.uint64)
    index = SimilarityIndex()
    index.add_many([f"i{i}" for i in range(20_000)], list(range(20_000)), sigs)
    per = index.nbytes() / len(index)
    assert per <= 8 * 16 + 2 * 64 + 8 + 2 * 64 * 65_536 / 20_000  # plus the one sketch block not yet full
    assert index.ids[123] == "i123" and index.seqs[123] == 123


# Characters a text may hold: Vietnamese letters (precomposed and decomposed), punctuation, digits, every kind of
# whitespace, stray combining marks, other scripts and symbols.
_PIECES = [
    *"Đđ ÁáẢảÃãẠạ ẾếỆệ ƯưỜờ ƠơỢợ AbcXyz0123456789",
    *[unicodedata.normalize("NFD", w) for w in ("Tiết", "kiệm", "điện", "Nước")],
    " ",
    "  ",
    "\t",
    "\n",
    "\u00a0",
    "\u2028",
    "\u3000",
    "\x1c",
    "\x85",
    ",",
    ".",
    "(",
    ")",
    "-",
    "–",
    "“",
    "”",
    "%",
    "/",
    "\u0301",
    "\u0323",
    "\u031b",
    "\u1dc4",
    "İ",
    "ß",
    "ẞ",
    "Σ",
    "ς",
    "ø",
    "Å",
    "ǆ",
    "ﬁ",
    "中",
    "😀",
    "\u200b",
]


def _random_text(rng: random.Random) -> str:
    return "".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 60)))


def _shingles_of_whole_text(text: str) -> np.ndarray:
    """The reference: the whole text normalised at once, words and word pairs hashed, distinct and sorted."""
    h = np.array([zlib.crc32(w.encode()) for w in normalise(text).split()], dtype=np.uint64)
    with np.errstate(over="ignore"):
        pairs = ((h[:-1] * np.uint64(0x9E3779B1)) ^ (h[1:] << np.uint64(7)) ^ (h[1:] >> np.uint64(13))) & np.uint64(
            0xFFFFFFFF
        )
    return np.unique(np.concatenate([h, pairs]).astype(np.uint32))


def test_token_by_token_hashing_gives_the_words_of_the_whole_normalised_text() -> None:
    rng = random.Random(11)
    texts = [_random_text(rng) for _ in range(3000)] + [text_of(*initiative(rng)) for _ in range(200)]
    for text in texts:
        assert word_hashes(text) == [zlib.crc32(w.encode()) for w in normalise(text).split()], repr(text)
    for text, got in zip(texts, shingles_many(texts), strict=True):
        assert np.array_equal(got, _shingles_of_whole_text(text)), repr(text)
        assert got.dtype == np.uint32
    assert np.array_equal(shingles(texts[0]), _shingles_of_whole_text(texts[0]))
    assert shingles_many([]) == []
    assert [s.size for s in shingles_many(["", " , ", "một"])] == [0, 0, 1]


def test_sorted_distinct_is_numpys_unique_with_counts() -> None:
    rng = np.random.default_rng(3)
    for size in (0, 1, 2, 50, 5000):
        values = rng.integers(0, 40, size=size).astype(np.uint64)
        got, counts = sorted_distinct(values)
        want, want_counts = np.unique(values, return_counts=True)
        assert np.array_equal(got, want) and np.array_equal(counts, want_counts)


def test_scores_of_many_pairs_at_once_are_each_pairs_exact_jaccard() -> None:
    rng = np.random.default_rng(5)
    queries = [np.unique(rng.integers(0, 2**32, size=n, dtype=np.uint64).astype(np.uint32)) for n in (0, 1, 210, 600)]
    # Values that share their low bits with a query's values (the tables' shared slots), members and strangers.
    owner: list[int] = []
    sets: list[np.ndarray] = []
    for n, q in enumerate(queries):
        for _ in range(12):
            members = rng.choice(q, size=min(q.size, int(rng.integers(0, 80))), replace=False) if q.size else q
            alike = (q[: int(rng.integers(0, 40))].astype(np.uint64) + (np.uint64(1) << np.uint64(20))) % 2**32
            strangers = rng.integers(0, 2**32, size=int(rng.integers(0, 100)), dtype=np.uint64)
            both = np.concatenate([members.astype(np.uint64), alike, strangers])
            sets.append(np.unique(both.astype(np.uint32)))
            owner.append(n)
    sets.append(np.zeros(0, dtype=np.uint32))
    owner.append(2)
    got = jaccard_pairs(queries, owner, sets)
    want = [jaccard(queries[n], s) for n, s in zip(owner, sets, strict=True)]
    assert np.allclose(got, want, rtol=0, atol=1e-12)
    assert jaccard_pairs(queries, [], []).size == 0


def test_a_batch_of_lookups_gives_each_ones_own_shortlist() -> None:
    rng = random.Random(13)
    texts = [text_of(*initiative(rng)) for _ in range(400)]
    sets = [shingles(t) for t in texts]
    sigs = np.stack([signature(s) for s in sets])
    index = SimilarityIndex()
    index.add_many([f"i{i}" for i in range(300)], list(range(300)), sigs[:300])
    for i in range(300, 350):
        index.add(f"i{i}", i, sigs[i])  # runs of their own, merged as they come
    queries = [text_of(*altered(rng, *texts[i].split("\n", 1))) for i in range(0, 350, 7)]
    qsigs = np.stack([signature(shingles(q)) for q in queries])
    befores = [None if n % 3 else 200 for n in range(len(queries))]
    excludes = [f"i{n * 7}" if n % 4 == 0 else None for n in range(len(queries))]
    together = index.shortlist_many(qsigs, befores, excludes)
    for n in range(len(queries)):
        alone = index.shortlist(qsigs[n], befores[n], excludes[n])
        assert sorted(zip(*together[n], strict=True)) == sorted(zip(*alone, strict=True))
        assert excludes[n] not in together[n][0]
        assert all(befores[n] is None or seq < befores[n] for seq in together[n][1])
    assert sum(f"i{n * 7}" in together[n][0] for n in range(len(queries)) if excludes[n] is None) >= 30


def test_among_many_equal_candidates_the_oldest_are_shortlisted() -> None:
    sig = signature(shingles("Cải tiến khuôn định vị bằng thép tận dụng"))
    index = SimilarityIndex()
    n = MAX_CANDIDATES * 3
    index.add_many([f"copy{i}" for i in range(n)], list(range(n)), np.stack([sig] * n))
    ids, seqs = index.shortlist(sig, None, None)
    assert seqs == list(range(MAX_CANDIDATES))


def test_recent_sets_keep_what_is_read_again_and_drop_the_least_recently_used() -> None:
    """The in-memory shingle sets: a set read again stays, the one unused longest goes, a revision counts as new."""
    from review.adapters.similar_store import RecentSets

    recent = RecentSets(limit=3)
    for name in "abc":
        recent.put(name, np.array([ord(name)], dtype=np.uint32))
    assert recent.get("a") is not None  # a is now the most recently used
    recent.put("d", np.array([4], dtype=np.uint32))  # b, unused longest, goes
    assert recent.get("b") is None and len(recent) == 3
    recent.put("c", np.array([99], dtype=np.uint32))  # c's revision replaces it and counts as new
    recent.put("e", np.array([5], dtype=np.uint32))  # so a goes, not c
    assert recent.get("a") is None
    got = recent.get("c")
    assert got is not None and got.tolist() == [99]
    assert sorted(k for k in "abcde" if recent.get(k) is not None) == ["c", "d", "e"]


def test_the_sets_kept_in_memory_fill_what_the_index_leaves_of_its_memory() -> None:
    """At province scale every candidate's set stays in memory (none is read back from review_signature); at
    national scale as many as before; index and sets within the memory given, shrinking as the index grows."""
    from review.adapters.similar_store import INDEX_PEAK_BYTES, RECENT_SETS, SET_BYTES, RecentSets, sets_within

    memory = 1_700 << 20  # the default SIMILARITY_MEMORY_MB
    replay = 600_175  # bench/replay.py's province
    assert sets_within(memory, replay) >= replay
    assert INDEX_PEAK_BYTES * replay + SET_BYTES * sets_within(memory, replay) <= memory
    assert sets_within(memory, 2_500_000) == RECENT_SETS
    assert sets_within(memory, 0) > sets_within(memory, 500_000) > sets_within(memory, 900_000)

    recent = RecentSets(limit=4)
    for name in "abcd":
        recent.put(name, np.array([ord(name)], dtype=np.uint32))
    recent.get("a")
    recent.resize(2)  # the index grew: the least recently used go at once
    assert len(recent) == 2 and sorted(k for k in "abcd" if recent.get(k) is not None) == ["a", "d"]
    recent.put("e", np.array([5], dtype=np.uint32))
    assert len(recent) == 2


@pytest.mark.parametrize("run_cap", [None, 1_000])
def test_shortlists_count_shared_bands_in_each_buckets_first_entries_however_the_runs_lie(
    monkeypatch, run_cap: int | None
) -> None:
    """What ``shortlist_many`` answers, against a plain count: per indexed initiative, the query's band keys whose
    bucket lists it among the first MAX_BUCKET indexed; the MAX_CANDIDATES counted most (ties: the oldest), then
    the seq and exclusion filters. The index is filled in pieces (bulk and one by one), so it holds several runs
    of band keys, and the buckets are cut short so that the cut matters. With the runs capped at 1,000 words,
    no merge makes a run above the cap (only a bulk add of 200 initiatives, 3,200 words, comes in larger), and
    the answers are the same, the runs of 500 words and more searched through their directories."""
    from review.domain import similarity

    monkeypatch.setattr(similarity, "MAX_BUCKET", 6)
    if run_cap is not None:
        monkeypatch.setattr(similarity, "RUN_CAP_WORDS", run_cap)
        monkeypatch.setattr(similarity, "DIRECTORY_MIN_WORDS", 500)
    rng = random.Random(17)
    texts = [text_of(*initiative(rng)) for _ in range(700)]
    sigs = np.stack([signature(s) for s in shingles_many(texts)])
    index = SimilarityIndex()
    ids = [f"i{i}" for i in range(600)]
    index.add_many(ids[:200], list(range(200)), sigs[:200])
    for i in range(200, 330):
        index.add(ids[i], i, sigs[i])
    for start in range(330, 600, 45):
        index.add_many(ids[start : start + 45], list(range(start, min(start + 45, 600))), sigs[start : start + 45])
    assert len(index._bands.runs) > 1
    if run_cap is not None:
        sizes = [run.words.size for run in index._bands.runs]
        assert sizes[0] == 200 * similarity.BANDS and max(sizes[1:]) <= run_cap and len(sizes) >= 8, sizes
        assert all(run.starts is not None for run in index._bands.runs)
    doc_keys = similarity.band_keys32(sigs[:600])
    buckets: dict[int, list[int]] = {}
    for doc, row in enumerate(doc_keys.tolist()):
        for key in row:
            buckets.setdefault(key, []).append(doc)
    queries = sigs[600:]
    befores = [None if n % 3 else 450 for n in range(len(queries))]
    excludes = [ids[n * 5] if n % 4 == 0 else None for n in range(len(queries))]
    got = index.shortlist_many(queries, befores, excludes, threshold=-1.0)  # no sketch filter: the LSH alone
    shortlisted = 0
    for n, row in enumerate(similarity.band_keys32(queries).tolist()):
        shared: dict[int, int] = {}
        for key in row:
            for doc in buckets.get(key, [])[:6]:
                shared[doc] = shared.get(doc, 0) + 1
        top = sorted(shared, key=lambda d: (-shared[d], d))[:MAX_CANDIDATES]
        want = [d for d in top if (befores[n] is None or d < befores[n]) and ids[d] != excludes[n]]
        assert sorted(got[n][0]) == sorted(ids[d] for d in want)
        assert sorted(got[n][1]) == sorted(want)
        shortlisted += len(want)
    assert shortlisted > 10 * len(queries)  # the corpus shares words: most queries have many candidates


def test_a_batchs_own_candidates_are_those_a_bucket_per_key_and_campaign_would_give() -> None:
    """``earlier_in_batch`` against the plain reading of its rule: buckets per (campaign, key) keep their first
    MAX_CANDIDATES entries, and each entry takes the earlier ones sharing the most bands, the earliest among equals.
    Few distinct keys: buckets overflow, rows repeat a key, counts tie."""
    rng = np.random.default_rng(11)
    keys = rng.integers(0, 40, size=(300, 16)).astype(np.uint64)
    groups = rng.integers(0, 2, size=300)
    buckets: dict[tuple[int, int], list[int]] = {}
    expected: list[tuple[int, int]] = []
    for n in range(len(keys)):
        row_keys = [(int(groups[n]), k) for k in keys[n].tolist()]
        shared = Counter(j for key in row_keys for j in buckets.get(key, ()))
        best = sorted(shared, key=lambda j: (-shared[j], j))[:MAX_CANDIDATES]
        expected += [(n, j) for j in sorted(best)]
        for key in row_keys:
            bucket = buckets.setdefault(key, [])
            if len(bucket) < MAX_CANDIDATES:
                bucket.append(n)
    later, earlier = earlier_in_batch(keys, groups)
    assert list(zip(later.tolist(), earlier.tolist(), strict=True)) == expected
    assert len(expected) > 300 * MAX_CANDIDATES // 2  # crowded: most rows have a full shortlist
    assert earlier_in_batch(keys[:1], groups[:1])[0].size == 0


def test_a_large_runs_directory_finds_every_keys_bounds_as_a_binary_search_of_the_whole_run(monkeypatch) -> None:
    """``_Run.bounds`` through the prefix directory answers what ``searchsorted`` over the whole run answers:
    for keys present once, many times (a bucket wider than its prefix's window), absent, and at both ends of the
    key space (0 and 2**32 - 1, whose high bound is all ones)."""
    from review.domain import similarity

    monkeypatch.setattr(similarity, "DIRECTORY_MIN_WORDS", 1_000)
    rng = np.random.default_rng(5)
    keys = np.concatenate(
        [
            rng.integers(0, 2**32, size=20_000, dtype=np.uint64),
            np.full(3_000, 77_777 << 16, dtype=np.uint64),  # one bucket of 3,000
            np.array([0, 0, 2**32 - 1, 2**32 - 1, 2**32 - 2], dtype=np.uint64),
        ]
    )
    words = (keys << np.uint64(32)) | rng.integers(0, 2**31, size=keys.size, dtype=np.uint64)
    words.sort()
    run = similarity._Run(words)
    assert run.starts is not None and run.steps >= 12
    wanted = np.unique(
        np.concatenate(
            [keys[::7], rng.integers(0, 2**32, 500, dtype=np.uint64), np.array([0, 1, 2**32 - 1], dtype=np.uint64)]
        )
    )
    assert wanted.size >= similarity.DIRECTORY_MIN_KEYS  # fewer are searched without the directory
    low = wanted << np.uint64(32)
    high = low | np.uint64(0xFFFFFFFF)
    first, end = run.bounds(low, high)
    assert (first == words.searchsorted(low, "left")).all() and (end == words.searchsorted(high, "right")).all()
    assert int((end - first).max()) == 3_000 and ((end - first) == 0).any()


@pytest.mark.parametrize("colliding", [False, True])
def test_ids_are_kept_in_16_bytes_and_found_again_whatever_their_keys(monkeypatch, colliding: bool) -> None:
    """Intake's ids (UUIDs) take 16 bytes and an 8-byte table entry; any other text is kept as it is; each id's
    position is found again (the last, for one added twice), None and unknown ids are -1. With every id given the
    same table key, the ids themselves still tell the entries apart."""
    from review.domain import similarity

    from shared.ids import new_ids

    if colliding:
        monkeypatch.setattr(similarity, "_id_keys", lambda ids: np.full(len(ids), 7, dtype=np.uint64))
    uuids = new_ids(3_000)
    odd = ["a", uuids[5].upper(), "0123 4567-89ab-7def-8123-456789abcdef", uuids[6][:-1] + "z"]
    ids = similarity.Ids()
    assert ids.extend(uuids[:2_000]) == 0 and ids.extend(odd) == 2_000
    for start in range(2_000, 3_000, 250):  # batches, so the table holds several runs
        ids.extend(uuids[start : start + 250])
    ids.extend([uuids[10]])  # added twice: the later position counts
    assert len(ids) == 3_005 and len(ids._keys.runs) > 1
    assert ids._other == {2_000 + n: text for n, text in enumerate(odd)}
    assert ids[0] == uuids[0] and ids[2_001] == odd[1] and ids[2_004] == uuids[2_000] and ids[3_004] == uuids[10]
    assert list(ids)[:3] == uuids[:3]
    assert ids.many(np.array([0, 2_001, 3_004, 2_004])) == [uuids[0], odd[1], uuids[10], uuids[2_000]]
    with pytest.raises(IndexError):
        ids[3_005]
    asked = [uuids[0], None, "b", uuids[2_999], uuids[10], *odd, new_ids(1)[0]]
    assert ids.positions(asked) == [0, -1, -1, 3_003, 3_004, 2_000, 2_001, 2_002, 2_003, -1]
    assert ids.nbytes() == 16 * 3_005 + 8 * 3_005 + sum(
        0 if run.starts is None else run.starts.nbytes for run in ids._keys.runs
    )
