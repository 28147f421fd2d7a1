"""A trip's schedule as a function of distance: where the bus should be at a time, and when at a place."""

from __future__ import annotations

from bisect import bisect_left

import numpy as np

from eta.network import Trip


class TripTimeline:
    """Piecewise-linear schedule: the bus moves between stops and waits from arrival to departure."""

    __slots__ = ("trip", "_dist", "_time")

    def __init__(self, trip: Trip) -> None:
        self.trip = trip
        self._dist = np.repeat(trip.stop_dist, 2)
        self._time = np.column_stack((trip.arrival, trip.departure)).ravel()

    def time_at(self, dist: float) -> float:
        """Scheduled seconds (since the service day's origin) of reaching `dist` metres along the shape."""
        return float(np.interp(dist, self._dist, self._time))

    def dist_at(self, time: float) -> float:
        """Scheduled metres along the shape at `time` seconds since the origin (clamped to the trip)."""
        return float(np.interp(time, self._time, self._dist))

    def next_stop(self, dist: float, tolerance: float = 0.0) -> int:
        """Index of the first stop at or beyond `dist - tolerance`; len(stops) past the last one."""
        return bisect_left(self.trip.stop_dist.tolist(), dist - tolerance)


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
