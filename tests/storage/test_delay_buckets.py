"""Histograms and percentiles from 10 s delay buckets against the same computed from the delays themselves."""

from __future__ import annotations

import math
import random

import pytest

from smartbus.storage.delay_buckets import BUCKET_S, Bucket, histogram, on_bucket_edges, percentiles

FRACTIONS = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)


def bucketed(delays: list[float]) -> list[Bucket]:
    """What the rollup holds for these delays: floor(delay / 10) * 10, and how many are on that edge."""
    found: dict[int, tuple[int, int]] = {}
    for d in delays:
        edge = math.floor(d / BUCKET_S) * BUCKET_S
        count, on_edge = found.get(edge, (0, 0))
        found[edge] = (count + 1, on_edge + (d == edge))
    return [Bucket(edge, count, on_edge) for edge, (count, on_edge) in sorted(found.items())]


def exact_histogram(delays: list[float], bin_s: float, low_s: float, high_s: float) -> list[tuple[float, int]]:
    counts: dict[float, int] = {}
    for d in delays:
        edge = math.floor(min(max(d, low_s), high_s) / bin_s) * bin_s
        counts[edge] = counts.get(edge, 0) + 1
    return sorted(counts.items())


def percentile_cont(delays: list[float], fraction: float) -> float:
    ordered = sorted(delays)
    rank = fraction * (len(ordered) - 1)
    below = math.floor(rank)
    return ordered[below] + (rank - below) * (ordered[math.ceil(rank)] - ordered[below])


def sample(seed: int, n: int) -> list[float]:
    """Delays as a feed gives them: milliseconds, wide tails, and a share on whole seconds and on edges."""
    rng = random.Random(seed)
    delays = []
    for _ in range(n):
        d = rng.choice([rng.gauss(60, 200), rng.gauss(0, 30), rng.uniform(-3000, 5000)])
        delays.append(round(d, 3) if rng.random() < 0.7 else float(round(d / 10) * 10))
    return delays


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("bin_s", [10.0, 60.0, 70.0, 300.0])
def test_a_histogram_on_whole_buckets_counts_exactly_what_the_delays_give(seed: int, bin_s: float) -> None:
    delays = sample(seed, 500)
    assert histogram(bucketed(delays), bin_s, -600.0, 1800.0) == exact_histogram(delays, bin_s, -600.0, 1800.0)


@pytest.mark.parametrize("seed", range(50))
def test_percentiles_from_buckets_are_less_than_a_bucket_from_the_exact_ones(seed: int) -> None:
    delays = sample(seed, random.Random(seed).choice([1, 2, 3, 10, 500]))
    estimated = percentiles(bucketed(delays), FRACTIONS)
    for fraction, value in zip(FRACTIONS, estimated, strict=True):
        assert value is not None
        assert abs(value - percentile_cont(delays, fraction)) < BUCKET_S


def test_delays_on_bucket_edges_give_exact_percentiles() -> None:
    delays = [-60.0, 0.0, 0.0, 300.0, 600.0]
    assert percentiles(bucketed(delays), FRACTIONS) == [percentile_cont(delays, f) for f in FRACTIONS]


def test_no_delays_no_percentiles() -> None:
    assert percentiles([], (0.5, 0.95)) == [None, None]


def test_only_bins_and_windows_on_bucket_edges_are_served() -> None:
    assert on_bucket_edges(60, 300, -600.0, 1800.0, 0)
    assert not on_bucket_edges(45) and not on_bucket_edges(60.5) and not on_bucket_edges(math.inf)
    with pytest.raises(ValueError, match="15"):
        histogram([], 15.0, -600.0, 1800.0)
