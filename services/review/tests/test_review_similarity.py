"""Near-duplicates on Vietnamese text: 200 originals, 200 altered copies, 200 unrelated initiatives."""

from __future__ import annotations

import random
import unicodedata

import numpy as np
from review.domain.similarity import THRESHOLD, SimilarityIndex, jaccard, normalise, shingles, signature, text_of
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
    one_by_one, bulk = SimilarityIndex(merge_at=50), SimilarityIndex()
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
