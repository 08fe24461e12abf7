"""Fewer cyclic-GC collections, and every one timed into ``scv_gc_pause_seconds``.

    tame_gc_pauses()   # once, at start

A collection stops the whole loop; on a replicator holding hundreds of thousands of long-lived
objects a full one lasted a good fraction of a second, which is invisible in CPU metrics and shows
only as a freshness tail. The callback costs two clock reads per collection.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from consumer.metrics import GC_PAUSE

__all__ = ["GEN0_THRESHOLD", "tame_gc_pauses"]

# CPython collects the youngest generation whenever 700 more containers were allocated than freed. A
# batch holds tens of thousands at once (a dict per decoded record, its mutations), nearly all freed by
# reference counting when the batch ends: at 1,000 changes/s that was ~30 collections a second, each
# promoting the batch still in flight towards the older generations, whose collections then stalled
# the loop for 10-300 ms. At 10,000 the same batch sees a few collections, which find it mostly gone.
GEN0_THRESHOLD = 10_000

_started: dict[int, float] = {}


def _on_gc(phase: str, info: dict[str, Any]) -> None:
    generation = int(info.get("generation", 0))
    if phase == "start":
        _started[generation] = time.perf_counter()
    elif (began := _started.pop(generation, None)) is not None:
        GC_PAUSE.labels(str(generation)).observe(time.perf_counter() - began)


def tame_gc_pauses() -> None:
    """Raise the youngest generation's threshold to ``GEN0_THRESHOLD`` and time every collection."""
    _gen0, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
    if _on_gc not in gc.callbacks:
        gc.callbacks.append(_on_gc)
