"""Python's cyclic garbage collector, tuned for a running service (``collector_tuned_for_batches``).

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
import gc
from collections.abc import Iterator

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
