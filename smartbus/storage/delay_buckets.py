"""Delay histograms and percentiles from the delay rollups' buckets (migration 009), without the arrivals.

A bucket holds the delays d with edge <= d < edge + BUCKET_S seconds, `on_edge` of them exactly on its edge.
Whatever is counted on whole buckets is exact: a histogram whose bins and range are multiples of BUCKET_S,
and an on-time window whose edges are (see analytics). A percentile needs the delays themselves, so from
buckets it is an estimate: the delays of a bucket taken as spread evenly over it (those on its edge on it),
never off by BUCKET_S or more, as each estimated delay lies in the same bucket as the true one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

BUCKET_S: Final = 10  # the width the rollups of migration 009 are made with


@dataclass(frozen=True, slots=True)
class Bucket:
    edge_s: int  # lower edge, seconds (a multiple of BUCKET_S)
    count: int  # delays in [edge_s, edge_s + BUCKET_S)
    on_edge: int  # of which exactly edge_s


def on_bucket_edges(*seconds: float) -> bool:
    """Whether every value falls on a bucket edge, so that what is counted between them is exact."""
    return all(math.isfinite(s) and s % BUCKET_S == 0 for s in seconds)


def histogram(buckets: Sequence[Bucket], bin_s: float, low_s: float, high_s: float) -> list[tuple[float, int]]:
    """(lower edge, count) of each non-empty bin, delays clamped to [low_s, high_s] first (so the end bins
    collect everything beyond), as `floor(greatest(least(delay, high), low) / bin) * bin` does in SQL.

    Exact when bin_s, low_s and high_s are on bucket edges: each bucket then lies in one bin, or wholly
    beyond an end of the range.
    """
    if not on_bucket_edges(bin_s, low_s, high_s):
        raise ValueError(f"bins of {bin_s} s from {low_s} to {high_s} s do not fall on {BUCKET_S} s buckets")
    counts: dict[float, int] = {}
    for bucket in buckets:
        clamped = min(max(float(bucket.edge_s), low_s), high_s)
        edge = math.floor(clamped / bin_s) * bin_s
        counts[edge] = counts.get(edge, 0) + bucket.count
    return sorted(counts.items())


def percentiles(buckets: Sequence[Bucket], fractions: Sequence[float]) -> list[float | None]:
    """Each fraction's percentile as PostgreSQL's percentile_cont gives it (interpolated between the two
    delays around rank fraction * (n - 1)), estimated from buckets in ascending order of edge_s."""
    total = sum(b.count for b in buckets)
    if total == 0:
        return [None] * len(fractions)
    ends = []  # ranks after each bucket
    seen = 0
    for bucket in buckets:
        seen += bucket.count
        ends.append(seen)

    def delay_at(rank: int) -> float:
        i = next(i for i, end in enumerate(ends) if rank < end)
        bucket = buckets[i]
        within = rank - (ends[i] - bucket.count)
        if within < bucket.on_edge:
            return float(bucket.edge_s)
        spread = bucket.count - bucket.on_edge
        return bucket.edge_s + (within - bucket.on_edge + 0.5) * BUCKET_S / spread

    found: list[float | None] = []
    for fraction in fractions:
        rank = fraction * (total - 1)
        below, above = math.floor(rank), math.ceil(rank)
        low = delay_at(below)
        found.append(low + (rank - below) * (delay_at(above) - low))
    return found
