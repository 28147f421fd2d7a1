"""The simplest honest predictor: the schedule, shifted by the vehicle's current delay.

It is the fallback of the learning predictor and the baseline it is scored against. Pure: it reads the
compiled network and a VehicleState. Guarantees: no stop already passed, no arrival before the ping's
time, arrivals non-decreasing along the trip, nothing beyond the horizon.
"""

from __future__ import annotations

import datetime as dt
import math
from functools import lru_cache

import numpy as np

from eta.network import Network
from smartbus.messages import PredictionMethod, PredictionSet, StopEvent, StopPrediction, VehicleState

DEFAULT_HORIZON_S = 3600.0
# Uncertainty grows with how far ahead we look: a base plus a share of the time to go.
BASE_UNCERTAINTY_S = 30.0
UNCERTAINTY_PER_SECOND_AHEAD = 0.15


@lru_cache(maxsize=64)
def _parse_service_date(service_date: str) -> dt.date:
    return dt.date(int(service_date[:4]), int(service_date[4:6]), int(service_date[6:8]))


class SchedulePredictor:
    def __init__(self, network: Network, horizon_s: float = DEFAULT_HORIZON_S) -> None:
        self._network = network
        self._horizon_s = horizon_s
        self._origins: dict[str, float] = {}
        self.walk_allowance = math.inf  # the stage's allowance of whole walks: the timetable walks none
        self.walks_held_back = 0

    def _origin(self, service_date: str) -> float:
        origin = self._origins.get(service_date)
        if origin is None:
            origin = self._network.service_day_origin(_parse_service_date(service_date))
            self._origins[service_date] = origin
        return origin

    def observe(self, events: list[StopEvent]) -> None:
        """The schedule learns nothing: the baseline's answer to the stage's contract."""

    def __call__(self, state: VehicleState) -> PredictionSet | None:
        return self.predict(state)

    def publish(self, state: VehicleState, now: float | None = None) -> PredictionSet | None:
        """What riders should be shown after this state: for the schedule, always its prediction (`now` plays
        no part: the baseline shows what the timetable and the fix say)."""
        return self.predict(state)

    def predict(self, state: VehicleState) -> PredictionSet | None:
        if state.trip_id is None or state.service_date is None or state.shape_dist is None:
            return None
        trip = self._network.trips.get(state.trip_id)
        if trip is None:
            return None
        now = state.timestamp
        origin = self._origin(state.service_date)
        delay = state.delay_s if state.delay_s is not None else 0.0
        method: PredictionMethod = "schedule_delay" if state.delay_s is not None else "schedule"
        first = int(np.searchsorted(trip.stop_dist, state.shape_dist, side="right"))
        stops: list[StopPrediction] = []
        latest = now
        for index in range(first, len(trip.stop_ids)):
            scheduled = origin + float(trip.arrival[index])
            latest = max(latest, scheduled + delay)
            ahead = latest - now
            if ahead > self._horizon_s:
                break
            stops.append(
                StopPrediction(
                    trip_id=trip.trip_id,
                    service_date=state.service_date,
                    stop_id=trip.stop_ids[index],
                    stop_sequence=int(trip.stop_sequences[index]),
                    predicted_arrival=round(latest, 1),
                    scheduled_arrival=scheduled,
                    method=method,
                    uncertainty_s=round(BASE_UNCERTAINTY_S + UNCERTAINTY_PER_SECOND_AHEAD * ahead, 1),
                    route_id=trip.route_id,
                )
            )
        return PredictionSet(vehicle_id=state.vehicle_id, made_at=now, stops=tuple(stops),
                             feed_version=state.feed_version)
