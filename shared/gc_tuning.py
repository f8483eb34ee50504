"""Python's cyclic garbage collector and C allocator, tuned for a running service (``collector_tuned_for_batches``,
``allocator_keeps_freed_memory``).

A batch of 1,000 (an intake batch request, a consumer batch) keeps tens of thousands of containers alive
across its awaits (models, records, rows, facts). With Python's default thresholds (700, 10, 10) they are
traversed again and again as they age, up to full collections several times a second. Measured in
intake's batch bench (``bench/intake.py``, phase 3): 1.2–1.5 s of every 13 s in the collector (~6 µs per
initiative) with the defaults, ~0.6 s with the thresholds below; re-measured in docs/benchmarks.md,
"Tricks re-measured (wiring)". ``ServiceSettings.gc_tuned`` (env ``GC_TUNED=false``) turns it off, so
the figure can be measured again.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
from collections.abc import Iterator

log = logging.getLogger("sangkien.tuning")

# Young generation: collect after 20,000 net allocations instead of 700; the oldest: after 100 middle
# collections instead of 10.
GC_THRESHOLDS = (20_000, 10, 100)


@contextlib.contextmanager
def collector_tuned_for_batches(enabled: bool = True) -> Iterator[None]:
    """While the block runs: what was allocated so far (modules, the app, metadata) is frozen out of the
    collector's full passes, and the thresholds are raised. An app stopped inside a longer-lived process
    (tests, the embedded run) leaves what it froze collectable again and the thresholds as it found them."""
    if not enabled:
        yield
        return
    before = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


# glibc's mallopt parameters (malloc.h) and the values a service runs with.
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
# Freed memory at the top of the heap goes back to the kernel only beyond 64 MiB (glibc: 128 KiB, rising with the
# largest block freed), and the heap grows 16 MiB at a time. A consumed batch allocates and frees NumPy arrays of up
# to 8 MB (review's MinHash of ~75 texts at once): with glibc's defaults the heap shrank after the batch and grew
# again in the next, and every page it grew by was faulted in and zeroed anew. Review took ~17,000 page faults a
# second in bench/pipeline.py's (b) (13 per initiative; 12% of its CPU in the kernel); with these values ~1,800
# (docs/benchmarks.md, "Half the exact scores…").
ALLOCATOR = {M_TRIM_THRESHOLD: 64 << 20, M_TOP_PAD: 16 << 20, M_MMAP_THRESHOLD: 32 << 20}


def allocator_keeps_freed_memory(enabled: bool = True) -> bool:
    """Tell glibc's allocator to keep the memory a batch frees for the next one (``ALLOCATOR``); for the whole
    process, once. Another C library (musl, macOS) is left alone. Answers whether the values were taken."""
    if not enabled:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    taken = all(mallopt(option, value) == 1 for option, value in ALLOCATOR.items())
    if not taken:
        log.warning("the C allocator did not take its tuning", extra={"values": str(ALLOCATOR)})
    return taken
