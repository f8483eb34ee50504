"""Near-duplicate search over Vietnamese initiative text: normalisation, shingles, MinHash, LSH.

Text is NFC-normalised, lower-cased, its diacritics folded (``đ`` → ``d``) and punctuation
stripped; the shingles are its words and its word pairs, hashed from CRC-32 word hashes (stable across
processes, so signatures can be stored). Candidates come from a banded MinHash LSH (16 bands
of 4 rows: a pair with Jaccard 0.5 collides in some band with probability 0.65, at 0.7 with
0.99); each candidate is then scored by the exact Jaccard similarity of the shingle sets.

The LSH table is one sorted NumPy array of band keys plus a dict of recent inserts that is merged
in geometrically; each initiative keeps a 16-bit sketch of its signature, which picks the candidates
worth scoring exactly, so 2.5 million initiatives fit in about 1 GB and a lookup is a handful of
binary searches.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from array import array
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

NUM_PERM = 64
BANDS = 16
ROWS = NUM_PERM // BANDS
# Similarity (Jaccard of word + word-pair shingles) from which an earlier initiative is shown.
THRESHOLD = 0.50
TOP_K = 5
MAX_CANDIDATES = 24
MAX_BUCKET = 500
MAX_RECENT = 131_072

_PRIME = np.uint64(4294967311)  # the first prime above 2**32
_rng = np.random.RandomState(20210108)
_A = _rng.randint(1, 2**31 - 1, size=NUM_PERM, dtype=np.int64).astype(np.uint64)
_B = _rng.randint(0, 2**31 - 1, size=NUM_PERM, dtype=np.int64).astype(np.uint64)
_MIX = _rng.randint(1, 2**62, size=ROWS, dtype=np.int64).astype(np.uint64) | np.uint64(1)
_NON_WORD = re.compile(r"[^0-9a-z]+")


def _fold_table() -> dict[int, str]:
    """Each precomposed Latin letter (Vietnamese included) mapped to its base letter, đ to d."""
    table: dict[int, str] = {ord("đ"): "d", ord("Đ"): "d"}
    for code in [*range(0xC0, 0x250), *range(0x1E00, 0x1F00)]:
        ch = chr(code)
        base = "".join(c for c in unicodedata.normalize("NFD", ch) if unicodedata.category(c) != "Mn")
        if base != ch and len(base) == 1:
            table[code] = base.lower()
    for code in range(0x300, 0x370):  # stray combining marks
        table[code] = ""
    return table


_FOLD = _fold_table()


def normalise(text: str) -> str:
    """NFC, lower case, diacritics folded (đ → d), punctuation turned into spaces."""
    folded = unicodedata.normalize("NFC", text).lower().translate(_FOLD)
    return _NON_WORD.sub(" ", folded).strip()


_WORD_HASHES: dict[str, int] = {}
_WORD_CACHE_LIMIT = 1_000_000  # Vietnamese has a few thousand syllables; the cap guards against junk text
_PAIR_MUL = np.uint64(0x9E3779B1)


def _word_hash(word: str) -> int:
    h = _WORD_HASHES.get(word)
    if h is None:
        h = zlib.crc32(word.encode())
        if len(_WORD_HASHES) < _WORD_CACHE_LIMIT:
            _WORD_HASHES[word] = h
    return h


def shingles(text: str) -> np.ndarray:
    """The sorted, distinct 32-bit hashes of the words and word pairs of ``text``.

    A word hashes with CRC-32 (stable across processes, so sets can be stored); a pair mixes
    its two word hashes.
    """
    words = normalise(text).split()
    if not words:
        return np.zeros(0, dtype=np.uint32)
    known = _WORD_HASHES.get
    hashes = [known(w) for w in words]  # a dict lookup per word once the syllables are known
    if None in hashes:
        hashes = [_word_hash(w) if h is None else h for h, w in zip(hashes, words, strict=True)]
    h = np.array(hashes, dtype=np.uint64)
    with np.errstate(over="ignore"):
        pairs = ((h[:-1] * _PAIR_MUL) ^ (h[1:] << np.uint64(7)) ^ (h[1:] >> np.uint64(13))) & np.uint64(0xFFFFFFFF)
    return np.unique(np.concatenate([h, pairs]).astype(np.uint32))


def signature(shingle_set: np.ndarray) -> np.ndarray:
    """The MinHash signature (NUM_PERM uint64 values) of a shingle set."""
    if shingle_set.size == 0:
        return np.full(NUM_PERM, int(_PRIME), dtype=np.uint64)
    h = shingle_set.astype(np.uint64)
    return ((np.outer(_A, h) + _B[:, None]) % _PRIME).min(axis=1)


def signatures_of(shingle_sets: list[np.ndarray]) -> np.ndarray:
    """The MinHash signatures of many shingle sets at once (one row each): one pass over all their hashes."""
    out = np.full((len(shingle_sets), NUM_PERM), int(_PRIME), dtype=np.uint64)
    filled = [i for i, s in enumerate(shingle_sets) if s.size]
    if not filled:
        return out
    sizes = np.array([shingle_sets[i].size for i in filled], dtype=np.int64)
    h = np.concatenate([shingle_sets[i] for i in filled]).astype(np.uint64)
    values = (np.outer(_A, h) + _B[:, None]) % _PRIME
    out[filled] = np.minimum.reduceat(values, np.cumsum(sizes) - sizes, axis=1).T
    return out


def band_keys_many(sigs: np.ndarray) -> np.ndarray:
    """``band_keys`` of each row of ``sigs``."""
    rows = sigs.reshape(len(sigs), BANDS, ROWS)
    with np.errstate(over="ignore"):
        return (rows * _MIX).sum(axis=2, dtype=np.uint64) ^ np.arange(BANDS, dtype=np.uint64)


def band_keys32(sigs: np.ndarray) -> np.ndarray:
    """``band_keys_many`` folded to 32 bits, as the index keeps them (half the memory of the band tables)."""
    keys = band_keys_many(sigs)
    return (keys ^ (keys >> np.uint64(32))).astype(np.uint32)


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Exact Jaccard similarity of two sorted, distinct hash arrays."""
    if a.size == 0 or b.size == 0:
        return 0.0
    if a.size > b.size:
        a, b = b, a
    at = np.searchsorted(b, a)
    at[at == b.size] = 0
    inter = int(np.count_nonzero(b[at] == a))
    return inter / (a.size + b.size - inter)


def text_of(title: str | None, solution: str | None) -> str:
    return f"{title or ''}\n{solution or ''}"


@dataclass(frozen=True, slots=True)
class Match:
    initiative_id: str
    seq: int
    score: float


SKETCH_CHUNK = 65_536  # rows of sketches per allocated block: growing never copies what is there
# How far below the threshold a sketch estimate may fall and still be scored exactly. The estimate is the share of
# the 64 MinHash values two texts have in common (binomial, sd ≤ 0.0625): a pair at the threshold estimates below
# it minus 0.25 (4 sd) about 4 times in 100,000, and a pair at Jaccard 0.1 reaches that floor about as rarely.
SKETCH_MARGIN = 0.25


def sketch_of(sigs: np.ndarray) -> np.ndarray:
    """The 16-bit sketch of MinHash signatures: each value's low 16 bits (two texts' values are equal exactly as
    often as they share a minimum, plus 1 in 65,536 by chance)."""
    return (sigs & np.uint64(0xFFFF)).astype(np.uint16)


class SimilarityIndex:
    """The LSH index of one campaign's initiatives (each with its campaign-wide ``seq``), in memory.

    The band keys of every band live in one sorted array of 32-bit keys (a key mixes its band in, so the bands do
    not meet; two keys that collide in 32 bits only add a candidate), so a lookup is two vectorised binary
    searches. Each initiative keeps a 128-byte sketch of its signature instead of its shingle set: the sketch
    estimates the Jaccard similarity of the shortlisted candidates, and only those that may reach the threshold
    go on to be scored exactly, on shingle sets the caller reads from the store (``review_signature``). At 2.5 M
    initiatives the index holds about 1 GB where keeping the sets took 3.8 GB (docs/benchmarks.md)."""

    def __init__(self, merge_at: int = 20_000) -> None:
        self.ids: list[str] = []
        self.seqs = array("q")
        self.positions: dict[str, int] = {}
        self._sketches: list[np.ndarray] = []
        self._keys = np.zeros(0, dtype=np.uint32)
        self._docs = np.zeros(0, dtype=np.uint32)
        self._recent: dict[int, list[int]] = {}
        self._recent_count = 0
        self._merge_at = merge_at

    def __len__(self) -> int:
        return len(self.ids)

    def _store(self, pos: int, sketch: np.ndarray) -> None:
        block, row = divmod(pos, SKETCH_CHUNK)
        if block == len(self._sketches):
            self._sketches.append(np.zeros((SKETCH_CHUNK, NUM_PERM), dtype=np.uint16))
        self._sketches[block][row] = sketch

    def _store_many(self, base: int, sketches: np.ndarray) -> None:
        done = 0
        while done < len(sketches):
            block, row = divmod(base + done, SKETCH_CHUNK)
            if block == len(self._sketches):
                self._sketches.append(np.zeros((SKETCH_CHUNK, NUM_PERM), dtype=np.uint16))
            take = min(SKETCH_CHUNK - row, len(sketches) - done)
            self._sketches[block][row : row + take] = sketches[done : done + take]
            done += take

    def sketches(self, positions: list[int]) -> np.ndarray:
        """The sketches at ``positions``, one row each."""
        blocks = self._sketches
        return np.stack([blocks[p // SKETCH_CHUNK][p % SKETCH_CHUNK] for p in positions])

    def add(self, initiative_id: str, seq: int, sig: np.ndarray) -> None:
        """Index (or re-index, after a revision) one initiative by its MinHash signature."""
        if initiative_id in self.positions:
            # A revision: the old position stays in the band tables but holds the new sketch, so stale keys can
            # only add a candidate that the exact score then judges.
            pos = self.positions[initiative_id]
            self.seqs[pos] = seq
        else:
            pos = len(self.ids)
            self.positions[initiative_id] = pos
            self.ids.append(initiative_id)
            self.seqs.append(seq)
        self._store(pos, sketch_of(sig))
        for key in band_keys32(sig[None, :])[0].tolist():
            self._recent.setdefault(key, []).append(pos)
        self._recent_count += 1
        if self._recent_count >= self._merge_threshold():
            self._merge()

    def add_many(self, initiative_ids: list[str], seqs: list[int], sigs: np.ndarray) -> None:
        """Bulk-index new initiatives (start-up, consumed batches): band keys computed at once."""
        fresh = [i for i, iid in enumerate(initiative_ids) if iid not in self.positions]
        if len(fresh) < len(initiative_ids):  # revisions among them take the one-by-one path
            for i, iid in enumerate(initiative_ids):
                if iid in self.positions:
                    self.add(iid, seqs[i], sigs[i])
        if not fresh:
            return
        base = len(self.ids)
        for n, i in enumerate(fresh):
            self.positions[initiative_ids[i]] = base + n
            self.ids.append(initiative_ids[i])
            self.seqs.append(seqs[i])
        self._store_many(base, sketch_of(sigs[fresh]))
        keys = band_keys32(sigs[fresh])
        if self._recent_count + len(fresh) < self._merge_threshold():
            # A consumed batch: into the recent table, like single adds; the sorted array is merged again only
            # geometrically (sorting every key of a national index per batch would cost seconds).
            recent = self._recent
            for pos, row in enumerate(keys.tolist(), base):
                for key in row:
                    recent.setdefault(key, []).append(pos)
            self._recent_count += len(fresh)
            return
        docs = np.repeat(np.arange(base, base + len(fresh), dtype=np.uint32), BANDS)
        self._merge(extra=(keys.ravel(), docs))

    def _merge_threshold(self) -> int:
        """Recent adds held in the dict before the sorted array is merged again: a quarter of the index (merges
        stay geometric), bounded so that the dict of a national index stays a few hundred MB."""
        return max(self._merge_at, min(len(self.ids) // 4, MAX_RECENT))

    def _merge(self, extra: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """The sorted table again, with the recent inserts (and ``extra`` keys and documents) merged in. Each entry
        is sorted as one 64-bit word, key above document: no index array, so a national merge peaks at about
        twice the table (a bucket lists its documents oldest first)."""
        if not self._recent and extra is None:
            self._recent_count = 0
            return
        parts = [(self._keys.astype(np.uint64) << np.uint64(32)) | self._docs]
        self._keys = self._docs = np.zeros(0, dtype=np.uint32)  # freed before the merged table is built
        if self._recent:
            count = sum(len(docs) for docs in self._recent.values())
            parts.append(
                np.fromiter(((k << 32) | d for k, docs in self._recent.items() for d in docs), np.uint64, count=count)
            )
        if extra is not None:
            parts.append((extra[0].astype(np.uint64) << np.uint64(32)) | extra[1])
        words = np.concatenate(parts)
        del parts
        words.sort()
        self._keys = (words >> np.uint64(32)).astype(np.uint32)
        self._docs = words.astype(np.uint32)  # the low 32 bits
        self._recent = {}
        self._recent_count = 0

    def nbytes(self) -> int:
        """The index's own arrays (band keys and their documents, sketches, seqs), in bytes."""
        blocks = sum(b.nbytes for b in self._sketches)
        return int(self._keys.nbytes + self._docs.nbytes + blocks + self.seqs.itemsize * len(self.seqs))

    def candidates(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions sharing at least one band key (``band_keys32``) and how many bands each shares."""
        lows = self._keys.searchsorted(keys, "left").tolist()
        highs = self._keys.searchsorted(keys, "right").tolist()
        found = [self._docs[lo : min(hi, lo + MAX_BUCKET)] for lo, hi in zip(lows, highs, strict=True) if hi > lo]
        if self._recent:
            for key in keys.tolist():
                recent = self._recent.get(key)
                if recent:
                    found.append(np.asarray(recent[:MAX_BUCKET], dtype=np.uint32))
        if not found:
            return np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.int64)
        return np.unique(np.concatenate(found), return_counts=True)

    def shortlist(
        self, sig: np.ndarray, before_seq: int | None, exclude: str | None, threshold: float = THRESHOLD
    ) -> tuple[list[str], list[int]]:
        """The candidates worth scoring exactly: of the (at most ``MAX_CANDIDATES``) sharing the most bands with
        ``sig``, earlier than ``before_seq`` and other than ``exclude``, those whose sketch estimate is within
        ``SKETCH_MARGIN`` of ``threshold``. Their ids and seqs."""
        positions, counts = self.candidates(band_keys32(sig[None, :])[0])
        if positions.size > MAX_CANDIDATES:
            # The candidates sharing the most bands are the likeliest near-copies.
            positions = positions[np.argpartition(-counts, MAX_CANDIDATES)[:MAX_CANDIDATES]]
        seqs, ids = self.seqs, self.ids
        picked = [
            p
            for p in positions.tolist()
            if (before_seq is None or seqs[p] < before_seq) and (exclude is None or ids[p] != exclude)
        ]
        if not picked:
            return [], []
        estimates = (self.sketches(picked) == sketch_of(sig)).mean(axis=1)
        kept = [p for p, est in zip(picked, estimates.tolist(), strict=True) if est >= threshold - SKETCH_MARGIN]
        return [ids[p] for p in kept], [seqs[p] for p in kept]

    def similar(
        self,
        shingle_set: np.ndarray,
        sets_of: Callable[[list[str]], list[np.ndarray]],
        *,
        before_seq: int | None = None,
        exclude: str | None = None,
        threshold: float = THRESHOLD,
        k: int = TOP_K,
    ) -> list[Match]:
        """The ``k`` most similar indexed initiatives (earlier than ``before_seq``) scoring ≥ threshold;
        ``sets_of`` gives the shingle sets of the ids it is asked for, to score exactly."""
        ids, seqs = self.shortlist(signature(shingle_set), before_seq, exclude, threshold)
        return best_matches(shingle_set, ids, seqs, sets_of(ids), threshold=threshold, k=k)


def best_matches(
    query: np.ndarray,
    ids: list[str],
    seqs: list[int],
    sets: list[np.ndarray],
    *,
    threshold: float = THRESHOLD,
    k: int = TOP_K,
) -> list[Match]:
    """The ``k`` candidates most similar to ``query`` scoring ≥ threshold, best first (ties: the earlier)."""
    if not ids or query.size == 0:
        return []
    scores = np.round(jaccard_many(query, sets), 4)
    hits = np.flatnonzero(scores >= threshold)
    if hits.size > k:
        order = np.lexsort((np.array([seqs[i] for i in hits.tolist()]), -scores[hits]))
        hits = hits[order[:k]]
    found = [Match(ids[i], seqs[i], float(scores[i])) for i in hits.tolist()]
    found.sort(key=lambda m: (-m.score, m.seq))
    return found


def jaccard_many(query: np.ndarray, sets: list[np.ndarray]) -> np.ndarray:
    """The exact Jaccard similarity of ``query`` with each of ``sets`` (all sorted and distinct), at once."""
    sizes = np.fromiter((s.size for s in sets), dtype=np.int64, count=len(sets))
    flat = np.concatenate(sets)
    if query.size == 0 or flat.size == 0:
        return np.zeros(len(sets))
    at = query.searchsorted(flat)
    at[at == query.size] = 0
    hits = np.concatenate(([0], np.cumsum(query[at] == flat)))
    ends = np.cumsum(sizes)
    inter = hits[ends] - hits[ends - sizes]
    union = query.size + sizes - inter
    return np.where(sizes > 0, inter / np.maximum(union, 1), 0.0)
