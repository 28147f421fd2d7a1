"""CPython's cyclic garbage collector, set for long-running smartbus processes.

By default a young collection runs every 700 allocations and a full one walks every live object. Our
processes hold a large, long-lived heap (the compiled network; the api's thousands of connections) and
allocate short-lived records at a high rate (pings, states, board renders): at 700 allocations apart even
a few-millisecond round's objects outlive two young collections, reach the oldest generation, and bring
on full collections, each stopping the process for the whole heap (5.6 s measured in an api with 10,000
riders; hundreds of ms in an ETA worker with a few thousand buses, showing up as latency spikes).

`relax_gc` freezes what is alive at start-up (out of the collector's sight for good) and collects the
young generation every 50,000 allocations, so short-lived objects are gone before a collection looks and
full collections come with real growth, not with traffic. Process-wide: call it from an entry point, after
the big start-up structures are loaded, never from a library.

It also times every collection (smartbus_gc_pause_seconds, by generation) and logs a full one that stops
the process for more than LOGGED_PAUSE_S: a latency spike can then be told from a pause of our own.
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Any, Final

from smartbus import metrics

log = logging.getLogger(__name__)

GC_THRESHOLDS: Final = (50_000, 20, 10)
LOGGED_PAUSE_S: Final = 0.05

_started: list[float] = []


def relax_gc(freeze: bool = True) -> None:
    if freeze:
        gc.collect()
        gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    if _time_collection not in gc.callbacks:
        gc.callbacks.append(_time_collection)


def _time_collection(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _started.append(time.perf_counter())
        return
    if not _started:
        return
    paused = time.perf_counter() - _started.pop()
    generation = int(info["generation"])
    metrics.GC_PAUSE_SECONDS.labels(str(generation)).observe(paused)
    if generation == 2 and paused > LOGGED_PAUSE_S:
        log.info("a full garbage collection stopped this process for %.0f ms (%d objects freed)",
                 1000 * paused, info["collected"])
