"""The garbage collector as ``tokenpulse serve`` runs it (``bench/history.py`` measures the
history query under the same settings)."""

from __future__ import annotations

import gc

#: Allocations between young-generation collections (CPython's default is 700).
YOUNG_THRESHOLD = 100_000
THRESHOLDS = (YOUNG_THRESHOLD, 50, 100)


def tune_gc() -> None:
    """Long-lived objects made at start-up are never collected: keep them out of every GC
    pass (``gc.freeze``), and collect the young generation less often (GC pauses were the
    streams' p99 tail; a 7-day series read allocates ~100 000 objects)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)


__all__ = ["THRESHOLDS", "YOUNG_THRESHOLD", "tune_gc"]
