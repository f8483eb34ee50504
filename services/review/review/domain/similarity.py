"""Near-duplicate search over Vietnamese initiative text: normalisation, shingles, MinHash, LSH.

Text is NFC-normalised, lower-cased, its diacritics folded (``đ`` → ``d``) and punctuation
stripped; the shingles are its words and its word pairs, hashed from CRC-32 word hashes (stable across
processes, so signatures can be stored). Candidates come from a banded MinHash LSH (16 bands
of 4 rows: a pair with Jaccard 0.5 collides in some band with probability 0.65, at 0.7 with
0.99); each candidate is then scored by the exact Jaccard similarity of the shingle sets.

The LSH table is a few sorted NumPy runs of band keys, merged geometrically; each initiative keeps a
16-bit sketch of its signature, which picks the candidates worth scoring exactly, so 2.5 million initiatives
fit in about 1 GB and a lookup is a handful of binary searches.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import chain
from typing import Literal

import numpy as np

NUM_PERM = 64
BANDS = 16
ROWS = NUM_PERM // BANDS
# Similarity (Jaccard of word + word-pair shingles) from which an earlier initiative is shown.
THRESHOLD = 0.50
TOP_K = 5
MAX_CANDIDATES = 24
MAX_BUCKET = 500
INT64_MAX = 2**63 - 1
SCORE_CHUNK = 96  # queries scored together (best_matches_many)
SIGNATURE_CHUNK = 16_384  # shingles hashed together (signatures_of)

_rng = np.random.RandomState(20210108)
# The NUM_PERM hash functions of MinHash: h(x) = a·x + b modulo 2**64, ``a`` odd, for 32-bit shingles ``x``. Their
# high bits are a universal family (Dietzfelbinger's multiply-add-shift), and the minimum of the 64-bit values is
# the minimum of the high bits first. No division: ``(a·x + b) mod (2**32 + 15)`` cost 104 µs per text of ~210
# shingles, this 26 (docs/benchmarks.md, "Cheaper MinHash"). Stored signatures follow this family (migration 0003).
_MUL = (_rng.randint(1, 2**62, size=NUM_PERM, dtype=np.int64).astype(np.uint64) << np.uint64(1)) | np.uint64(1)
_ADD = _rng.randint(0, 2**62, size=NUM_PERM, dtype=np.int64).astype(np.uint64) << np.uint64(2)
_EMPTY_MIN = np.iinfo(np.uint64).max  # the signature of an empty set: no minimum
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
# The word hashes of each whitespace-separated token as written ("Tổ", "tổ,", "(số"): a text is split once and
# each token found in this cache, instead of normalising the whole text (NFC, lower case, folding and the regex
# cost ~80 µs for the pipeline bench's 600-character texts; the token lookups ~10 µs). Normalisation never joins
# or splits across whitespace, so the words are the same (tests/test_review_similarity.py checks this on random
# text). Tokens are bounded like words: a few thousand syllables with their punctuation and capitals.
_TOKEN_HASHES: dict[str, tuple[int, ...]] = {}
_TOKEN_CACHE_LIMIT = 300_000
_PAIR_MUL = np.uint64(0x9E3779B1)
_LOW32 = np.uint64(0xFFFFFFFF)


def _word_hash(word: str) -> int:
    h = _WORD_HASHES.get(word)
    if h is None:
        h = zlib.crc32(word.encode())
        if len(_WORD_HASHES) < _WORD_CACHE_LIMIT:
            _WORD_HASHES[word] = h
    return h


def _token_hashes(token: str) -> tuple[int, ...]:
    hashes = tuple(_word_hash(w) for w in normalise(token).split())
    if len(_TOKEN_HASHES) < _TOKEN_CACHE_LIMIT:
        _TOKEN_HASHES[token] = hashes
    return hashes


def word_hashes(text: str) -> list[int]:
    """The CRC-32 of each word of ``normalise(text)``, in order."""
    tokens = text.split()
    parts = list(map(_TOKEN_HASHES.get, tokens))
    if None in parts:
        parts = [_token_hashes(t) if h is None else h for h, t in zip(parts, tokens, strict=True)]
    return list(chain.from_iterable(parts))


def sorted_distinct(values: np.ndarray, kind: Literal["stable"] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values, sorted, and how many times each occurs: what ``np.unique(values, return_counts=True)``
    gives, by one sort (of ``kind``: "stable" for values made of sorted runs). NumPy 2.4's ``np.unique`` took 3.0 ms
    for 17,000 uint64 values where this takes 0.18 ms (its hash-based path, then a sort of the result)."""
    ordered = np.sort(values, kind=kind)
    if ordered.size == 0:
        return ordered, np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    return ordered[starts], np.diff(np.append(starts, ordered.size))


def shingles(text: str) -> np.ndarray:
    """The sorted, distinct 32-bit hashes of the words and word pairs of ``text``.

    A word hashes with CRC-32 (stable across processes, so sets can be stored); a pair mixes
    its two word hashes.
    """
    return shingles_many([text])[0]


def shingles_many(texts: list[str]) -> list[np.ndarray]:
    """``shingles`` of each text, computed together: one pass of NumPy over all their words."""
    words = [word_hashes(t) for t in texts]
    sizes = np.fromiter((len(w) for w in words), dtype=np.int64, count=len(words))
    h = np.fromiter(chain.from_iterable(words), dtype=np.uint64, count=int(sizes.sum()))
    label = np.repeat(np.arange(len(texts), dtype=np.uint64), sizes)
    same = label[:-1] == label[1:]  # a pair is two neighbouring words of one text
    with np.errstate(over="ignore"):
        pairs = ((h[:-1] * _PAIR_MUL) ^ (h[1:] << np.uint64(7)) ^ (h[1:] >> np.uint64(13))) & _LOW32
    # Each value tagged with its text above bit 32: one sort makes every text's set sorted and distinct.
    tagged, _ = sorted_distinct(
        np.concatenate([(label << np.uint64(32)) | h, (label[:-1][same] << np.uint64(32)) | pairs[same]])
    )
    values = (tagged & _LOW32).astype(np.uint32)
    bounds = np.searchsorted(tagged >> np.uint64(32), np.arange(len(texts) + 1, dtype=np.uint64)).tolist()
    return [values[bounds[i] : bounds[i + 1]] for i in range(len(texts))]


def signature(shingle_set: np.ndarray) -> np.ndarray:
    """The MinHash signature (NUM_PERM uint64 values) of a shingle set."""
    return signatures_of([shingle_set])[0]


def signatures_of(shingle_sets: list[np.ndarray]) -> np.ndarray:
    """The MinHash signatures of many shingle sets at once (one row each): one pass over all their hashes."""
    out = np.full((len(shingle_sets), NUM_PERM), _EMPTY_MIN, dtype=np.uint64)
    filled = [i for i, s in enumerate(shingle_sets) if s.size]
    # ~16,000 hashes at a time (~75 texts): the 64 rows of values (8 bytes each) stay in the processor's cache.
    # Measured with the division-based family (best of 9, µs per text of ~210 shingles): batches of 500 in one piece
    # 115, in pieces of 16,384 hashes 70, of 4,096 75. With multiply-add, pieces of 4,096 to 65,536 were within the
    # noise of each other (22–35 µs) on a busy machine: the size was kept.
    start = 0
    while start < len(filled):
        end, count = start, 0
        while end < len(filled) and (end == start or count + shingle_sets[filled[end]].size <= SIGNATURE_CHUNK):
            count += shingle_sets[filled[end]].size
            end += 1
        part = filled[start:end]
        sizes = np.array([shingle_sets[i].size for i in part], dtype=np.int64)
        h = np.concatenate([shingle_sets[i] for i in part]).astype(np.uint64)
        values = np.multiply.outer(_MUL, h)  # modulo 2**64: unsigned NumPy arrays wrap
        values += _ADD[:, None]
        out[part] = np.minimum.reduceat(values, np.cumsum(sizes) - sizes, axis=1).T
        start = end
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
# The band tables' largest run, in (key, document) words (64 MiB). Merging two runs holds both and their merge at
# once: uncapped, the last merges of a national index (40 M words, 305 MiB) doubled the tables for a moment, the
# peak of review's memory. Capped, a merge never holds more than ~3 x 64 MiB beside the rest; a lookup searches
# one run more per 8 M words (a national index 8 runs instead of 5; docs/benchmarks.md, "The index's peak").
RUN_CAP_WORDS = 8 << 20
# A run of at least DIRECTORY_MIN_WORDS keeps where each 16-bit prefix of its keys starts (512 KiB): a key's
# search then starts from a window of ~size / 65,536 words instead of the whole run, whose binary search missed the
# cache at nearly every step (3,200 keys in 8 M words: 6.0 ms with ``searchsorted``, 2.1 ms from the directory).
# A few keys (one lookup's 16) are searched with ``searchsorted``: the directory's search is a loop of NumPy calls
# whose own cost only pays off across many keys.
DIRECTORY_BITS = 16
DIRECTORY_MIN_WORDS = 1 << 20
DIRECTORY_MIN_KEYS = 512
_PREFIXES = np.arange(1 << DIRECTORY_BITS, dtype=np.uint64) << np.uint64(64 - DIRECTORY_BITS)


class _Run:
    """One sorted run of a table (the band keys', the ids'): ``key << 32 | document`` words, and for a large run
    the directory of where each key prefix starts."""

    __slots__ = ("words", "starts", "steps")

    def __init__(self, words: np.ndarray) -> None:
        self.words = words
        self.starts: np.ndarray | None = None
        self.steps = 0
        if words.size >= DIRECTORY_MIN_WORDS:
            self.starts = np.append(words.searchsorted(_PREFIXES), words.size).astype(np.int64)
            self.steps = int(np.diff(self.starts).max()).bit_length()  # halvings of the widest window

    def bounds(self, low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each (ascending) ``low`` and its ``high``: the first word ``>= low`` and the first ``> high``."""
        if self.starts is None or low.size < DIRECTORY_MIN_KEYS:
            return self.words.searchsorted(low, "left"), self.words.searchsorted(high, "right")
        prefix = (low >> np.uint64(64 - DIRECTORY_BITS)).astype(np.int64)  # low and high share their prefix
        first, end = self.starts[prefix], self.starts[prefix + 1]
        return self._within(first, end, low, strict=True), self._within(first, end, high, strict=False)

    def first(self, low: np.ndarray) -> np.ndarray:
        """For each (ascending) ``low``: the first word ``>= low``. One side's search costs half the directory's
        loop of two, so it pays off from fewer keys."""
        if self.starts is None or low.size < DIRECTORY_MIN_KEYS // 8:
            return self.words.searchsorted(low, "left")
        prefix = (low >> np.uint64(64 - DIRECTORY_BITS)).astype(np.int64)
        return self._within(self.starts[prefix], self.starts[prefix + 1], low, strict=True)

    def _within(self, lo: np.ndarray, hi: np.ndarray, target: np.ndarray, *, strict: bool) -> np.ndarray:
        """A binary search of every target at once, each inside its window [lo, hi): the first position whose
        word is not below (``strict``) or above the target."""
        last = self.words.size - 1
        for _ in range(self.steps):
            mid = (lo + hi) >> 1
            word = self.words[np.minimum(mid, last)]
            go = ((word < target) if strict else (word <= target)) & (lo < hi)
            lo = np.where(go, mid + 1, lo)
            hi = np.where(go, hi, mid)
        return lo


class _Table:
    """Sorted runs of ``key << 32 | document`` words, oldest first: a run is added per batch, then the newest runs
    are merged while one is not at least twice the next and their merge stays within ``RUN_CAP_WORDS``, so each
    entry is merged about log2(RUN_CAP_WORDS / batch) times and a lookup searches as many runs, and one per full
    run. (Re-sorting one table per consumed batch would cost a national index seconds; a dict of recent inserts
    cost lookups a Python loop over every entry of their buckets: 16% of a lookup at 300,000.)"""

    __slots__ = ("runs",)

    def __init__(self) -> None:
        self.runs: list[_Run] = []

    def add(self, keys: np.ndarray, docs: np.ndarray) -> None:
        words = (keys.astype(np.uint64) << np.uint64(32)) | docs
        words.sort()
        runs = self.runs
        runs.append(_Run(words))
        while len(runs) > 1 and (older := runs[-2].words.size) < 2 * (newer := runs[-1].words.size):
            if older + newer > RUN_CAP_WORDS:
                break
            merged = np.concatenate((runs.pop(-2).words, runs.pop().words))
            merged.sort(kind="stable")  # two sorted runs: timsort merges them in one pass
            runs.append(_Run(merged))

    def nbytes(self) -> int:
        return sum(run.words.nbytes + (0 if run.starts is None else run.starts.nbytes) for run in self.runs)


_UUIDS = re.compile(r"(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})*")


def _uuid_bytes(text: str) -> bytes | None:
    """The 16 bytes of a canonical (lower-case, hyphenated) UUID, None for any other text."""
    if len(text) != 36 or text[8] != "-" or text[13] != "-" or text[18] != "-" or text[23] != "-":
        return None
    try:  # whitespace among the 32 digits leaves fewer than 16 bytes, or an error
        raw = bytes.fromhex(text[:8] + text[9:13] + text[14:18] + text[19:23] + text[24:])
    except ValueError:
        return None
    return raw if len(raw) == 16 and text.lower() == text else None


def _id_keys(ids: list[str]) -> np.ndarray:
    """The 32-bit keys of ids in the id table: the low bits of their hash (the table lives and dies with the
    process, so a per-process hash will do; entries that share a key are told apart by their ids)."""
    return np.fromiter((hash(text) & 0xFFFFFFFF for text in ids), dtype=np.uint64, count=len(ids))


def _uuid_text(raw: bytes | bytearray) -> str:
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class Ids:
    """The index's initiative ids by position, and each id's position. An id as intake makes it (a UUID) takes
    16 bytes and a 64-bit entry in a table of sorted runs keyed by 32 bits of its hash, where a list of strings
    and a dict of positions took ~150 bytes an initiative in Python objects (349 of a national index's 985 MiB;
    docs/benchmarks.md, "The index's peak"). Any other text (tests, imported ids) is kept as it is."""

    __slots__ = ("_raw", "_other", "_keys")

    def __init__(self) -> None:
        self._raw = bytearray()
        self._other: dict[int, str] = {}
        self._keys = _Table()

    def __len__(self) -> int:
        return len(self._raw) >> 4

    def __getitem__(self, pos: int) -> str:
        if not 0 <= pos < len(self):
            raise IndexError(pos)
        other = self._other.get(pos) if self._other else None
        return other if other is not None else _uuid_text(self._raw[pos << 4 : (pos + 1) << 4])

    def __iter__(self) -> Iterator[str]:
        return (self[pos] for pos in range(len(self)))

    def many(self, positions: np.ndarray) -> list[str]:
        """The ids at ``positions``: their bytes gathered and printed at once (a shortlist's candidates)."""
        if positions.size == 0:
            return []
        table = np.frombuffer(self._raw, dtype=np.uint8).reshape(-1, 16)
        h = table[positions].tobytes().hex()
        del table  # a view keeps the bytearray from growing
        out = [f"{h[i : i + 8]}-{h[i + 8 : i + 12]}-{h[i + 12 : i + 16]}-{h[i + 16 : i + 20]}-{h[i + 20 : i + 32]}"
               for i in range(0, len(h), 32)]  # fmt: skip
        if self._other:
            for n, pos in enumerate(positions.tolist()):
                other = self._other.get(pos)
                if other is not None:
                    out[n] = other
        return out

    def extend(self, ids: list[str]) -> int:
        """Appends ``ids`` (not held yet); answers the position of the first."""
        base = len(self)
        if not ids:
            return base
        joined = "".join(ids)
        if all(len(text) == 36 for text in ids) and _UUIDS.fullmatch(joined):  # intake's ids: one conversion
            self._raw += bytes.fromhex(joined.replace("-", ""))
        else:
            for n, text in enumerate(ids):
                raw = _uuid_bytes(text)
                if raw is None:
                    self._other[base + n] = text
                    raw = bytes(16)
                self._raw += raw
        self._keys.add(_id_keys(ids), np.arange(base, base + len(ids), dtype=np.uint64))
        return base

    def positions(self, ids: list[str | None]) -> list[int]:
        """Each id's position (the last, were one added twice), -1 for None and ids not held. An entry found
        under an id's key is checked against the id it stands for (other ids may share the key)."""
        out = [-1] * len(ids)
        asked = [n for n, text in enumerate(ids) if text is not None]
        if not asked or not self._keys.runs:
            return out
        keys = _id_keys([ids[n] for n in asked])  # type: ignore[misc]  # None is not asked
        order = np.argsort(keys)
        low = keys[order] << np.uint64(32)
        for run in self._keys.runs:
            words = run.words
            # One search a key: most are in no run, and a key is rarely in a run twice.
            first = run.first(low)
            hit = np.flatnonzero(words[np.minimum(first, words.size - 1)] >> np.uint64(32) == low >> np.uint64(32))
            for k, at in zip(hit.tolist(), first[hit].tolist(), strict=True):
                n, key = asked[int(order[k])], int(low[k]) >> 32
                while at < words.size and (word := int(words[at])) >> 32 == key:
                    pos = word & 0xFFFFFFFF
                    if pos > out[n] and self[pos] == ids[n]:
                        out[n] = pos
                    at += 1
        return out

    def nbytes(self) -> int:
        return len(self._raw) + self._keys.nbytes()


# How far below the threshold a sketch estimate may fall and still be scored exactly. The estimate is the share of
# the 64 MinHash values two texts have in common (binomial): a pair at the threshold (0.5) estimates below 24/64
# 1.6 times in 100, a pair at 0.55 1.7 times in 1,000, at 0.6 9 times in 100,000, while the bands themselves miss
# 35% of pairs at 0.5 (0.65 collide). On the pipeline's texts (bench/review_lookups.py --margins, 150,000 texts)
# this margin scores 8.8 candidates per initiative and finds 342,283 of the 342,294 shortlisted pairs that reach
# the threshold; 0.1875 scored 16.1 and found them all (docs/benchmarks.md, "Half the exact scores…").
SKETCH_MARGIN = 0.125


def sketch_of(sigs: np.ndarray) -> np.ndarray:
    """The 16-bit sketch of MinHash signatures: each value's high 16 bits (two texts' values are equal exactly as
    often as they share a minimum, plus 1 in 65,536 by chance; the low bits of ``a·x + b`` depend on the low bits
    of ``x`` alone)."""
    return (sigs >> np.uint64(48)).astype(np.uint16)


def may_reach(sketches: np.ndarray, others: np.ndarray, threshold: float = THRESHOLD) -> np.ndarray:
    """Whether each pair of sketches (row by row) estimates a similarity within ``SKETCH_MARGIN`` of ``threshold``:
    the pairs worth scoring exactly."""
    return (sketches == others).mean(axis=1) >= threshold - SKETCH_MARGIN


def earlier_in_batch(keys: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The candidates of a batch's entries among its earlier entries, as the index would give them.

    ``keys``: the band keys of the entries (``band_keys_many``, a row each, in ``seq`` order); ``groups``: each
    entry's campaign, as a number (keys carry no campaign). A pair (row, earlier row) of one group shares a band
    when they have its key and the earlier row is among the first ``MAX_CANDIDATES`` of the batch with that key
    (as a bucket keeps its first entries). Per row, the (at most ``MAX_CANDIDATES``) earlier rows sharing the most
    bands, the earliest first among equals. The pairs, sorted by row then earlier row, as two arrays.

    In NumPy: a Python loop with a ``Counter`` per entry cost ~6% of review's CPU in the pipeline bench."""
    n = len(keys)
    flat = keys.ravel()
    rows = np.repeat(np.arange(n, dtype=np.int64), BANDS)
    group = np.repeat(np.asarray(groups, dtype=np.int64), BANDS)
    order = np.lexsort((rows, flat, group))  # each (group, key) a run of rows, in order
    flat, rows, group = flat[order], rows[order], group[order]
    starts_run = np.ones(flat.size, dtype=bool)
    starts_run[1:] = (flat[1:] != flat[:-1]) | (group[1:] != group[:-1])
    run_start = np.flatnonzero(starts_run)[np.cumsum(starts_run) - 1]
    # Each entry meets the earlier rows of its run that the bucket kept: the run's first ones, at most MAX_CANDIDATES.
    met = np.minimum(np.arange(flat.size) - run_start, MAX_CANDIDATES)
    total = int(met.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    at = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(met) - met - run_start, met)
    later, earlier = np.repeat(rows, met), rows[at]
    before = earlier < later  # a row whose bands repeat a key meets itself
    pairs, shared = sorted_distinct((later[before] << 32) | earlier[before])
    row, doc = pairs >> 32, pairs & 0xFFFFFFFF
    order = np.lexsort((doc, -shared, row))
    row, doc = row[order], doc[order]
    keep = np.arange(row.size) - np.searchsorted(row, np.arange(n))[row] < MAX_CANDIDATES
    row, doc = row[keep], doc[keep]
    order = np.lexsort((doc, row))
    return row[order], doc[order]


class SimilarityIndex:
    """The LSH index of one campaign's initiatives (each with its campaign-wide ``seq``), in memory.

    The band keys of every band live in a few sorted runs of 32-bit keys (a key mixes its band in, so the bands do
    not meet; two keys that collide in 32 bits only add a candidate), so a lookup is two vectorised binary
    searches a run. Each initiative keeps a 128-byte sketch of its signature instead of its shingle set: the sketch
    estimates the Jaccard similarity of the shortlisted candidates, and only those that may reach the threshold
    go on to be scored exactly, on shingle sets the caller reads from the store (``review_signature``). At 2.5 M
    initiatives the index holds about 1 GB where keeping the sets took 3.8 GB (docs/benchmarks.md)."""

    def __init__(self) -> None:
        self.ids = Ids()
        self.seqs = array("q")
        self._sketches: list[np.ndarray] = []
        self._bands = _Table()

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

    def add(self, initiative_id: str, seq: int, sig: np.ndarray) -> None:
        """Index (or re-index, after a revision) one initiative by its MinHash signature."""
        pos = self.ids.positions([initiative_id])[0]
        if pos >= 0:
            # A revision: the old position stays in the band tables but holds the new sketch, so stale keys can
            # only add a candidate that the exact score then judges.
            self.seqs[pos] = seq
        else:
            pos = self.ids.extend([initiative_id])
            self.seqs.append(seq)
        self._store(pos, sketch_of(sig))
        self._bands.add(band_keys32(sig[None, :])[0], np.full(BANDS, pos, dtype=np.uint32))

    def add_many(self, initiative_ids: list[str], seqs: list[int], sigs: np.ndarray) -> None:
        """Bulk-index new initiatives (start-up, consumed batches): band keys computed at once, one new run."""
        held = self.ids.positions(list(initiative_ids))
        fresh = [i for i, pos in enumerate(held) if pos < 0]
        for i, pos in enumerate(held):  # revisions among them take the one-by-one path
            if pos >= 0:
                self.add(initiative_ids[i], seqs[i], sigs[i])
        if not fresh:
            return
        base = self.ids.extend([initiative_ids[i] for i in fresh])
        self.seqs.extend(seqs[i] for i in fresh)
        self._store_many(base, sketch_of(sigs[fresh]))
        docs = np.repeat(np.arange(base, base + len(fresh), dtype=np.uint32), BANDS)
        self._bands.add(band_keys32(sigs[fresh]).ravel(), docs)

    def nbytes(self) -> int:
        """The index's own arrays (band keys and their documents, sketches, seqs, ids), in bytes."""
        blocks = sum(b.nbytes for b in self._sketches)
        return int(self._bands.nbytes() + blocks + self.seqs.itemsize * len(self.seqs) + self.ids.nbytes())

    def shortlist(
        self, sig: np.ndarray, before_seq: int | None, exclude: str | None, threshold: float = THRESHOLD
    ) -> tuple[list[str], list[int]]:
        """``shortlist_many`` of one signature."""
        return self.shortlist_many(sig[None, :], [before_seq], [exclude], threshold)[0]

    def shortlist_many(
        self,
        sigs: np.ndarray,
        before_seqs: list[int | None],
        excludes: list[str | None],
        threshold: float = THRESHOLD,
    ) -> list[tuple[list[str], list[int]]]:
        """For each row of ``sigs``, the candidates worth scoring exactly, as (ids, seqs): of the (at most
        ``MAX_CANDIDATES``) sharing the most bands with it (ties: the oldest), earlier than its ``before_seqs`` and
        other than its ``excludes``, those whose sketch estimate is within ``SKETCH_MARGIN`` of ``threshold``.

        All rows at once: one binary search over every band key, one sort of every (row, candidate) pair, one
        gather of sketches. Done row by row, the NumPy calls' own overhead cost a consumed batch ~240 µs per
        initiative (docs/benchmarks.md, "Review's lookups a batch at a time")."""
        n = len(sigs)
        out: list[tuple[list[str], list[int]]] = [([], []) for _ in range(n)]
        if n == 0 or not self.ids:
            return out
        keys = band_keys32(sigs).ravel()  # row by row, BANDS each
        row_of_key = np.repeat(np.arange(n, dtype=np.uint64) << np.uint64(32), BANDS)
        # The binary searches take the keys in ascending order (each search starts near the one before, in pages
        # the one before brought into the cache): at 150,000 initiatives they cost half what they did in row order.
        # Their answers go back to row order, so each run's buckets are gathered row by row, as the sort below wants.
        by_key = np.argsort(keys)
        low = keys[by_key].astype(np.uint64) << np.uint64(32)
        high = low | _LOW32
        # Each key's bucket, the first MAX_BUCKET indexed (the oldest runs first), as (row << 32 | document).
        taken = np.zeros(keys.size, dtype=np.int64)
        lows = np.empty(keys.size, dtype=np.int64)
        ends = np.empty(keys.size, dtype=np.int64)
        parts: list[np.ndarray] = []
        for run in self._bands.runs:
            words = run.words
            lows[by_key], ends[by_key] = run.bounds(low, high)
            lengths = np.minimum(ends - lows, MAX_BUCKET - taken)
            taken += lengths
            total = int(lengths.sum())
            if total:
                starts = np.cumsum(lengths) - lengths
                at = np.arange(total, dtype=np.int64) - np.repeat(starts - lows, lengths)
                parts.append(np.repeat(row_of_key, lengths) | (words[at] & _LOW32))
        if not parts:
            return out
        # (row, document) sorted, with the number of bands they share. Each part lists a row's buckets in
        # ascending runs: a stable sort (timsort) merges them, faster than sorting from scratch.
        pairs, shared = sorted_distinct(np.concatenate(parts), kind="stable")
        row = (pairs >> np.uint64(32)).astype(np.int64)
        # Per row, the candidates sharing the most bands (the likeliest near-copies), the oldest first among
        # equals. Most pairs share one band; only the oldest MAX_CANDIDATES of those can be among a row's first
        # MAX_CANDIDATES, so the rest are dropped before ordering (the lexsort of every pair cost 43% of a lookup
        # at 300,000 initiatives).
        first = np.searchsorted(row, np.arange(n))
        single = shared == 1
        singles_before = np.cumsum(single) - single
        rank = singles_before - singles_before[np.minimum(first, row.size - 1)][row]
        wanted = ~single | (rank < MAX_CANDIDATES)
        row, shared = row[wanted], shared[wanted]
        doc = (pairs[wanted] & _LOW32).astype(np.int64)
        order = np.lexsort((doc, -shared, row))
        row, doc = row[order], doc[order]
        first = np.searchsorted(row, np.arange(n))
        keep = (np.arange(row.size) - first[row]) < MAX_CANDIDATES
        seqs = np.frombuffer(self.seqs, dtype=np.int64)[doc]  # a copy: ``self.seqs`` stays resizable
        before = np.array([INT64_MAX if b is None else b for b in before_seqs], dtype=np.int64)
        excluded = np.array(self.ids.positions(list(excludes)), dtype=np.int64)
        keep &= (seqs < before[row]) & (doc != excluded[row])
        row, doc, seqs = row[keep], doc[keep], seqs[keep]
        if row.size == 0:
            return out
        kept = np.flatnonzero(may_reach(self._sketches_at(doc), sketch_of(sigs)[row], threshold))
        for r, iid, q in zip(row[kept].tolist(), self.ids.many(doc[kept]), seqs[kept].tolist(), strict=True):
            found_ids, found_seqs = out[r]
            found_ids.append(iid)
            found_seqs.append(q)
        return out

    def _sketches_at(self, positions: np.ndarray) -> np.ndarray:
        """The sketches at ``positions``, one row each, gathered block by block."""
        out = np.empty((positions.size, NUM_PERM), dtype=np.uint16)
        block = positions // SKETCH_CHUNK
        for b in set(block.tolist()):
            mask = block == b
            out[mask] = self._sketches[b][positions[mask] - b * SKETCH_CHUNK]
        return out

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
    return best_matches_many([query], [(ids, seqs, sets)], threshold=threshold, k=k)[0]


def best_matches_many(
    queries: list[np.ndarray],
    candidates: list[tuple[list[str], list[int], list[np.ndarray]]],
    *,
    threshold: float = THRESHOLD,
    k: int = TOP_K,
) -> list[list[Match]]:
    """``best_matches`` of each query among its own candidates (ids, seqs, shingle sets), all scored at once."""
    out: list[list[Match]] = [[] for _ in queries]
    # ~100 queries at a time: the tables and the candidates' values stay in the processor's cache. Best of 9
    # interleaved runs, µs per query (19 candidates of ~210 shingles): batches of 500 in one piece 103, in pieces of
    # 96 65, of 32 66; batches of 50 65.
    for first in range(0, len(queries), SCORE_CHUNK):
        owner: list[int] = []
        ids: list[str] = []
        seqs: list[int] = []
        sets: list[np.ndarray] = []
        for n in range(first, min(first + SCORE_CHUNK, len(queries))):
            cand_ids, cand_seqs, cand_sets = candidates[n]
            if cand_ids and queries[n].size:
                owner += [n - first] * len(cand_ids)
                ids += cand_ids
                seqs += cand_seqs
                sets += cand_sets
        if not owner:
            continue
        scores = np.round(jaccard_pairs(queries[first : first + SCORE_CHUNK], owner, sets), 4)
        for i in np.flatnonzero(scores >= threshold).tolist():
            out[first + owner[i]].append(Match(ids[i], seqs[i], float(scores[i])))
    for found in out:
        if found:
            found.sort(key=lambda m: (-m.score, m.seq))
            del found[k:]
    return out


_EMPTY, _SHARED = -1, -2  # a slot of ``jaccard_pairs``' tables: no value, or more than one


def jaccard_pairs(queries: list[np.ndarray], owner: list[int], sets: list[np.ndarray]) -> np.ndarray:
    """The exact Jaccard similarity of each of ``sets`` with ``queries[owner[i]]`` (all sorted and distinct).

    Each query gets a small hash table (its values by their low bits, at least 4 slots a value); a candidate's
    value is in the query when its slot holds it. Only values whose slot two query values share are looked up by
    binary search. A binary search for every value cost ~33 ns each, ~130 µs per initiative of the pipeline
    bench (19 candidates of ~210 shingles); the tables, a few ns each (docs/benchmarks.md, "Review's lookups a
    batch at a time")."""
    qsizes = np.fromiter((q.size for q in queries), dtype=np.int64, count=len(queries))
    csizes = np.fromiter((s.size for s in sets), dtype=np.int64, count=len(sets))
    own = np.asarray(owner, dtype=np.int64)
    if not sets or int(csizes.sum()) == 0 or int(qsizes.sum()) == 0:
        return np.zeros(len(sets))
    width = 1 << max(10, int(qsizes.max() * 4 - 1).bit_length())  # slots per query, a power of two
    mask = width - 1
    q_of = np.repeat(np.arange(len(queries), dtype=np.int64), qsizes)
    qv = np.concatenate(queries).astype(np.int64)
    slots = q_of * width + (qv & mask)
    table = np.full(len(queries) * width, _EMPTY, dtype=np.int64)
    table[slots] = qv
    ordered = np.sort(slots)
    table[ordered[1:][ordered[1:] == ordered[:-1]]] = _SHARED
    cv = np.concatenate(sets).astype(np.int64)
    c_of = np.repeat(own, csizes)
    held = table[c_of * width + (cv & mask)]
    hit = held == cv
    unsure = np.flatnonzero(held == _SHARED)
    if unsure.size:
        tagged = (q_of << 32) | qv  # sorted: by query, then value
        wanted = (c_of[unsure] << 32) | cv[unsure]
        at = tagged.searchsorted(wanted)
        at[at == tagged.size] = 0
        hit[unsure] = tagged[at] == wanted
    hits = np.concatenate(([0], np.cumsum(hit)))
    ends = np.cumsum(csizes)
    inter = hits[ends] - hits[ends - csizes]
    qsize = qsizes[own]
    union = qsize + csizes - inter
    return np.where((csizes > 0) & (qsize > 0), inter / np.maximum(union, 1), 0.0)
