"""The replicator's cyclic GC: a higher threshold for the youngest generation, every collection timed."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY

from consumer.gc_pauses import GEN0_THRESHOLD, _on_gc, tame_gc_pauses


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds, callbacks = gc.get_threshold(), list(gc.callbacks)
    yield
    gc.set_threshold(*thresholds)
    gc.callbacks[:] = callbacks


@pytest.mark.usefixtures("restored_gc")
def test_taming_raises_the_youngest_threshold_keeps_the_others_and_times_collections() -> None:
    gc.set_threshold(700, 10, 10)
    tame_gc_pauses()
    tame_gc_pauses()  # twice, as a restarted loop would: one callback

    assert gc.get_threshold() == (GEN0_THRESHOLD, 10, 10)
    assert gc.callbacks.count(_on_gc) == 1
    before = _collections_timed()
    gc.collect()
    assert _collections_timed() == before + 1


def _collections_timed() -> float:
    return REGISTRY.get_sample_value("scv_gc_pause_seconds_count", {"generation": "2"}) or 0.0
