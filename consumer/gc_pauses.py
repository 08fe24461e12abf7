"""Time every cyclic-GC collection of this process into ``scv_gc_pause_seconds``.

    watch_gc_pauses()   # once, at start

A collection stops the whole loop; on a replicator holding hundreds of thousands of long-lived
objects a full one lasted a good fraction of a second, which is invisible in CPU metrics and shows
only as a freshness tail. The callback costs two clock reads per collection.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from consumer.metrics import GC_PAUSE

__all__ = ["watch_gc_pauses"]

_started: dict[int, float] = {}


def _on_gc(phase: str, info: dict[str, Any]) -> None:
    generation = int(info.get("generation", 0))
    if phase == "start":
        _started[generation] = time.perf_counter()
    elif (began := _started.pop(generation, None)) is not None:
        GC_PAUSE.labels(str(generation)).observe(time.perf_counter() - began)


def watch_gc_pauses() -> None:
    if _on_gc not in gc.callbacks:
        gc.callbacks.append(_on_gc)
