"""Predictions for trips no vehicle is expected to run yet (the first trip of a block before its bus pulls
out): the timetable, marked "schedule". Riders see these, so they count for availability and accuracy.

A trip is left to the vehicles once one has predicted it within the last `COVERED_S`. `tick(now)` is
called with the clock (the replay's, or the worker's every minute) and answers every `INTERVAL_S`.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left
from collections.abc import Iterable
from itertools import islice
from typing import Final
from zoneinfo import ZoneInfo

from eta.prediction.predictor import LearningPredictor
from smartbus.messages import PredictionSet, StopPrediction

INTERVAL_S: Final = 120.0  # well inside a rider's 180 s freshness window
COVERED_S: Final = 180.0
SILENT_CHECK_S: Final = 30.0
STARTED_GRACE_S: Final = 600.0  # a trip whose bus is late to pull out is still shown for this long


class ScheduleBoard:
    def __init__(self, predictor: LearningPredictor) -> None:
        self.predictor = predictor
        self._zone = ZoneInfo(predictor.network.agency_timezone)
        self._covered: dict[tuple[str, str], float] = {}  # (service_date, trip) -> last predicted at
        self._next_tick = float("-inf")
        self._next_silent = float("-inf")
        self._days: dict[str, list[tuple[float, str]]] = {}  # service_date -> (scheduled start, trip)

    def due_silent(self, now: float) -> bool:
        """Whether to look for silent buses now: every `SILENT_CHECK_S` of the clock."""
        if now < self._next_silent:
            return False
        self._next_silent = now + SILENT_CHECK_S
        return True

    def covered(self, prediction: PredictionSet, now: float) -> None:
        self.covered_trips(((stop.service_date, stop.trip_id) for stop in prediction.stops), now)

    def covered_trips(self, trips: Iterable[tuple[str, str]], now: float) -> None:
        """Mark each (service_date, trip_id) as predicted by a vehicle at `now`."""
        for trip in trips:
            self._covered[trip] = now

    def _starts(self, service_date: str, real_day: dt.date) -> list[tuple[float, str]]:
        """(scheduled start, trip_id) of the service day's trips, in that order."""
        found = self._days.get(service_date)
        if found is None:
            network = self.predictor.network
            feed_day, _ = network.service_day_for(real_day)
            origin = self.predictor.origin(service_date)
            found = [(origin + network.trips[t].start_time, t) for t in network.trips_on(feed_day)]
            self._days[service_date] = found
        return found

    def tick(self, now: float) -> list[PredictionSet]:
        if now < self._next_tick:
            return []
        self._next_tick = now + INTERVAL_S
        horizon = self.predictor.horizon_s
        today = dt.datetime.fromtimestamp(now, self._zone).date()
        sets: list[PredictionSet] = []
        for real_day in (today - dt.timedelta(days=1), today):
            service_date = real_day.strftime("%Y%m%d")
            starts = self._starts(service_date, real_day)
            # from the first trip that started no longer than the grace ago (by start, then id)
            for start, trip_id in islice(starts, bisect_left(starts, (now - STARTED_GRACE_S,)), None):
                if start > now + horizon:
                    break
                seen = self._covered.get((service_date, trip_id))
                if seen is not None and now - seen <= COVERED_S:
                    continue
                stops = self._trip(service_date, trip_id, now)
                if stops:
                    sets.append(PredictionSet("", now, stops, self.predictor.network.feed_hash))
        return sets

    def _trip(self, service_date: str, trip_id: str, now: float) -> tuple[StopPrediction, ...]:
        trip = self.predictor.network.trips[trip_id]
        origin = self.predictor.origin(service_date)
        out: list[StopPrediction] = []
        for i, stop_id in enumerate(trip.stop_ids):
            scheduled = origin + float(trip.arrival[i])
            if scheduled > now + self.predictor.horizon_s:
                break
            if scheduled < now:
                continue  # its bus is late: the timetable has nothing sensible to say about a time gone
            out.append(StopPrediction(
                trip_id=trip_id, service_date=service_date, stop_id=stop_id,
                stop_sequence=int(trip.stop_sequences[i]), predicted_arrival=scheduled,
                scheduled_arrival=scheduled, method="schedule", uncertainty_s=60.0, route_id=trip.route_id,
            ))
        return tuple(out)
