"""A stop's timetable, for the trips no vehicle tells riders about: the first trips of the morning before their
buses pull out, trips of buses without a working device. Shown on the board marked "schedule" (not live), as
OneBusAway and TheTransitClock show scheduled arrivals where they have no real-time data.

Pure: the compiled network and a clock in, board rows out. Which trips a vehicle does tell riders about is the
caller's to say (see `api.app`).
"""

from __future__ import annotations

import bisect
import datetime as dt
from typing import Final
from zoneinfo import ZoneInfo

from eta.network import Network
from smartbus.live import Arrival

# As far ahead as vehicles' predictions reach (eta.prediction.predictor.DEFAULT_HORIZON_S).
HORIZON_S: Final = 3600.0
# The timetable's error, one standard deviation: what riders can expect of a time no vehicle backs.
SCHEDULE_UNCERTAINTY_S: Final = 60.0


class StopTimetable:
    def __init__(self, network: Network, horizon_s: float = HORIZON_S) -> None:
        self._network = network
        self._zone = ZoneInfo(network.agency_timezone)
        self.horizon_s = horizon_s
        # stop_id -> (seconds of the service day, trip_id, index of the stop in the trip), by time; built once
        by_stop: dict[str, list[tuple[float, str, int]]] = {}
        for trip in network.trips.values():
            for index, (stop_id, arrival) in enumerate(zip(trip.stop_ids, trip.arrival.tolist(), strict=True)):
                by_stop.setdefault(stop_id, []).append((arrival, trip.trip_id, index))
        for calls in by_stop.values():
            calls.sort()
        self._calls = by_stop
        self._days: dict[dt.date, frozenset[str]] = {}  # real day -> ids of the trips running on it

    def arrivals(self, stop_id: str, now: float) -> list[Arrival]:
        """Every trip running today (or on yesterday's service day, past midnight) due at `stop_id` from `now`
        to the horizon, by its timetable, soonest first."""
        calls = self._calls.get(stop_id)
        if not calls:
            return []
        today = dt.datetime.fromtimestamp(now, self._zone).date()
        found: list[Arrival] = []
        for real_day in (today - dt.timedelta(days=1), today):
            origin = self._network.service_day_origin(real_day)
            running = self._running_on(real_day)
            service_date = real_day.strftime("%Y%m%d")
            start = bisect.bisect_left(calls, (now - origin,))
            end = bisect.bisect_right(calls, (now + self.horizon_s - origin, "\U0010ffff"))
            for seconds, trip_id, index in calls[start:end]:
                if trip_id not in running:
                    continue
                trip = self._network.trips[trip_id]
                at = origin + seconds
                found.append(Arrival(
                    stop_id=stop_id, trip_id=trip_id, service_date=service_date, route_id=trip.route_id,
                    vehicle_id="", stop_sequence=int(trip.stop_sequences[index]), scheduled_arrival=at,
                    predicted_arrival=at, method="schedule", uncertainty_s=SCHEDULE_UNCERTAINTY_S, updated_at=now,
                ))
        found.sort(key=lambda a: (a.predicted_arrival, a.trip_id))
        return found

    def _running_on(self, real_day: dt.date) -> frozenset[str]:
        running = self._days.get(real_day)
        if running is None:
            feed_day, _ = self._network.service_day_for(real_day)
            running = frozenset(self._network.trips_on(feed_day))
            if len(self._days) > 8:
                self._days.clear()  # a few days at a time are asked for: yesterday and today
            self._days[real_day] = running
        return running
