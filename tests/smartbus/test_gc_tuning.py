"""The collector settings of our long-running processes: every pause is measured, so a latency spike can be
told from a collection."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from smartbus import gc_tuning, metrics


@pytest.fixture
def relaxed() -> Iterator[None]:
    thresholds, callbacks = gc.get_threshold(), list(gc.callbacks)
    gc_tuning.relax_gc(freeze=False)
    yield
    gc.set_threshold(*thresholds)
    gc.callbacks[:] = callbacks


def _pauses(generation: int) -> float:
    for metric in metrics.GC_PAUSE_SECONDS.collect():
        for sample in metric.samples:
            if sample.name.endswith("_count") and sample.labels["generation"] == str(generation):
                return sample.value
    return 0.0


def test_each_full_collection_is_timed_and_relaxing_twice_times_it_once(relaxed: None) -> None:
    gc_tuning.relax_gc(freeze=False)  # an entry point calling it again must not count each pause twice
    before = _pauses(2)
    gc.collect()
    gc.collect()
    assert _pauses(2) == before + 2
    assert gc.get_threshold() == gc_tuning.GC_THRESHOLDS
