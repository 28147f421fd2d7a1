"""A trip's schedule as a function of distance: where the bus should be at a time, and when at a place."""

from __future__ import annotations

from eta.bisection import bisect_left, bisect_right
from eta.network import Trip


def _interp(x: float, xs: list[float], ys: list[float]) -> float:
    """np.interp for one scalar on plain lists (clamped at both ends; on a flat run of xs, its first y)."""
    if x <= xs[0]:
        return ys[0]
    if x >= xs[-1]:
        return ys[-1]
    j = bisect_right(xs, x)
    x0, x1 = xs[j - 1], xs[j]
    if x1 == x0:
        return ys[j]
    return ys[j - 1] + (ys[j] - ys[j - 1]) * (x - x0) / (x1 - x0)


class TripTimeline:
    """Piecewise-linear schedule: the bus moves between stops and waits from arrival to departure."""

    __slots__ = (
        "trip",
        "_dist",
        "_time",
        "stop_dist",
        "stop_ids",
        "stop_sequences",
        "arrival",
        "departure",
        "route_id",
        "shape_id",
        "base_trip_id",
    )

    def __init__(self, trip: Trip) -> None:
        self.trip = trip
        self.stop_dist: list[float] = trip.stop_dist.tolist()
        # the trip's arrays as plain Python values: the tracker reads one element per fix, where indexing
        # numpy (and converting its scalars) costs more than the arithmetic around it
        self.stop_ids = trip.stop_ids
        self.stop_sequences: list[int] = trip.stop_sequences.tolist()
        self.arrival: list[float] = trip.arrival.tolist()
        self.departure: list[float] = trip.departure.tolist()
        self.route_id = trip.route_id
        self.shape_id = trip.shape_id
        self.base_trip_id = trip.trip_id.split("@")[0]  # the feed's id of an expanded frequency trip
        self._dist = [d for d in self.stop_dist for _ in (0, 1)]
        self._time = [t for pair in zip(trip.arrival.tolist(), trip.departure.tolist(), strict=True) for t in pair]

    def time_at(self, dist: float) -> float:
        """Scheduled seconds (since the service day's origin) of reaching `dist` metres along the shape."""
        return _interp(dist, self._dist, self._time)

    def dist_at(self, time: float) -> float:
        """Scheduled metres along the shape at `time` seconds since the origin (clamped to the trip)."""
        return _interp(time, self._time, self._dist)

    def next_stop(self, dist: float, tolerance: float = 0.0) -> int:
        """Index of the first stop at or beyond `dist - tolerance`; len(stops) past the last one."""
        return bisect_left(self.stop_dist, dist - tolerance)


class TimelineCache:
    def __init__(self, trips: dict[str, Trip]) -> None:
        self._trips = trips
        self._timelines: dict[str, TripTimeline] = {}

    def get(self, trip_id: str) -> TripTimeline:
        timeline = self._timelines.get(trip_id)
        if timeline is None:
            timeline = TripTimeline(self._trips[trip_id])
            self._timelines[trip_id] = timeline
        return timeline
