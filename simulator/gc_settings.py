"""Garbage-collector settings for processes whose main job is to simulate: smartbus.gc_tuning's.

A simulated day allocates tens of millions of short-lived tuples and records, and the default collector's
older generations rescanned every live object (the whole compiled network included): about 40 % of the
simulator's time. None of these records form cycles, so fewer, younger collections lose nothing.
"""

from __future__ import annotations

from smartbus.gc_tuning import relax_gc

__all__ = ["relax_gc"]
