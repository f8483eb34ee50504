"""Near-duplicates on Vietnamese text: 200 originals, 200 altered copies, 200 unrelated initiatives."""

from __future__ import annotations

import random
import unicodedata

import numpy as np
from review.domain.similarity import THRESHOLD, SimilarityIndex, normalise, shingles, signature, text_of
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
    for i, (title, solution) in enumerate(originals):
        index.add(f"orig-{i}", i, shingles(text_of(title, solution)))

    found = 0
    reported = 0
    true_reported = 0
    for i, (title, solution) in enumerate(originals):
        copy = altered(rng, title, solution)
        matches = index.similar(shingles(text_of(*copy)), before_seq=1_000)
        reported += len(matches)
        true_reported += sum(1 for m in matches if m.initiative_id == f"orig-{i}")
        found += any(m.initiative_id == f"orig-{i}" for m in matches)

    unrelated_hits = 0
    for _ in range(200):
        matches = index.similar(shingles(text_of(*initiative(rng))), before_seq=1_000)
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
    one_by_one, bulk = SimilarityIndex(merge_at=50), SimilarityIndex()
    for i, sh in enumerate(sets):
        one_by_one.add(f"i{i}", i, sh)
    bulk.add_many([f"i{i}" for i in range(300)], list(range(300)), sets, np.stack([signature(s) for s in sets]))
    for i in range(0, 300, 7):
        query = shingles(text_of(*altered(rng, *texts[i].split("\n", 1))))
        assert one_by_one.similar(query) == bulk.similar(query)
        assert f"i{i}" in {m.initiative_id for m in bulk.similar(query)}
