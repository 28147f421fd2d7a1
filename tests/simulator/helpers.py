"""Hand-built trips and shapes for the simulator's unit tests: a straight 4 km street along x."""

from __future__ import annotations

import numpy as np

from eta.network import Shape, Trip


def straight_shape(length_m: float = 4000.0) -> Shape:
    x = np.linspace(0.0, length_m, 41)
    xy = np.column_stack((x, np.zeros_like(x)))
    return Shape("line", xy, x.copy(), np.zeros_like(x), x / 111_000.0)


def street_trip(
    stops: int = 21,
    length_m: float = 4000.0,
    start_s: float = 8 * 3600.0,
    run_s: float = 60.0,
    timepoint_every: int | None = None,
    trip_id: str = "t1",
) -> Trip:
    """Evenly spaced stops, `run_s` between them, no scheduled dwell. With `timepoint_every`, only
    every n-th stop is a designated timepoint (the rest interpolated)."""
    dist = np.linspace(0.0, length_m, stops)
    times = start_s + run_s * np.arange(stops)
    timepoint = np.ones(stops, dtype=bool)
    if timepoint_every:
        timepoint = np.arange(stops) % timepoint_every == 0
        timepoint[-1] = True
    return Trip(
        trip_id, "R", "ALL", 0, None, "line", "East", None,
        tuple(f"s{i}" for i in range(stops)), np.arange(1, stops + 1) * 10, dist, times, times.copy(), timepoint,
    )
