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
"""

from __future__ import annotations

import gc
from typing import Final

GC_THRESHOLDS: Final = (50_000, 20, 10)


def relax_gc(freeze: bool = True) -> None:
    if freeze:
        gc.collect()
        gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
