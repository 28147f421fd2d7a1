"""Pings of one bus driving one trip exactly on schedule: input whose right answers are known."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np

from eta.network import Network, Trip
from smartbus.messages import Ping


@dataclass(frozen=True)
class Drive:
    trip: Trip
    service_date: dt.date
    origin: float  # UTC epoch of the service day's time origin
    pings: list[Ping]
    passed: int  # stops (by index) the bus has reached by its last ping: indexes 0 .. passed-1

    def scheduled(self, index: int) -> float:
        return self.origin + float(self.trip.arrival[index])


def _position_at(network: Network, trip: Trip, seconds: float) -> tuple[float, float, float]:
    """Latitude, longitude and distance along the shape at `seconds` of the service day, on schedule."""
    # Knots: arrive at each stop, wait until its departure, drive linearly to the next.
    times = np.empty(2 * len(trip.stop_ids))
    times[0::2], times[1::2] = trip.arrival, trip.departure
    dists = np.repeat(trip.stop_dist, 2)
    distance = float(np.interp(seconds, times, dists))
    shape = network.shapes[trip.shape_id]
    x = float(np.interp(distance, shape.dist, shape.xy[:, 0]))
    y = float(np.interp(distance, shape.dist, shape.xy[:, 1]))
    lat, lon = network.projection.to_latlon(np.array([x]), np.array([y]))
    return float(lat[0]), float(lon[0]), distance


# On schedule a bus may not drive faster than this between two pings: some timetables give stops far apart
# one time, and a drive through them would teleport (the tracker rightly refuses such a fix).
_PLAUSIBLE_MPS = 25.0


def drive_half_a_trip(network: Network, vehicle_id: str, now: float, interval_s: float = 20.0) -> Drive:
    """The trip whose midpoint comes soonest after `now`, driven from its start to its midpoint stop.

    Its remaining stops are then in the future whatever the time of day, so live boards show them. Trips
    whose timetable a bus could not keep to (see `_PLAUSIBLE_MPS`) are passed over for the next.
    """
    tz = ZoneInfo(network.agency_timezone)
    today = dt.datetime.fromtimestamp(now, tz).date()
    candidates: list[tuple[float, str, dt.date]] = []
    for day in (today - dt.timedelta(days=1), today, today + dt.timedelta(days=1)):
        feed_day, _ = network.service_day_for(day)
        origin = network.service_day_origin(day)
        for trip_id in network.trips_on(feed_day):
            trip = network.trips[trip_id]
            if len(trip.stop_ids) < 8:
                continue
            half = len(trip.stop_ids) // 2
            # the stop after the midpoint must still be ahead when the drive ends: some timetables give a
            # run of stops one time, and a bus on schedule would already be past it
            if float(trip.arrival[half + 1]) - float(trip.arrival[half - 1]) < 60.0:
                continue
            # nor a trip whose first stops share one time: a bus on schedule is first heard already past them
            if float(trip.arrival[1]) - float(trip.departure[0]) < 60.0:
                continue
            middle = origin + float(trip.arrival[half])
            if middle >= now + 60:
                candidates.append((middle, trip_id, day))
    for _, trip_id, day in sorted(candidates):
        drive = _drive(network, network.trips[trip_id], day, vehicle_id, interval_s)
        if drive is not None:
            return drive
    raise AssertionError("no trip in the feed around now")


def _drive(network: Network, trip: Trip, day: dt.date, vehicle_id: str, interval_s: float) -> Drive | None:
    """The drive from the trip's start to its midpoint stop; None when it would be faster than plausible."""
    origin = network.service_day_origin(day)
    passed = len(trip.stop_ids) // 2
    start, end = float(trip.departure[0]), float(trip.arrival[passed - 1]) + 5.0
    pings = []
    along = []
    for seconds in np.arange(start, end, interval_s):
        lat, lon, distance = _position_at(network, trip, float(seconds))
        along.append(distance)
        pings.append(
            Ping(
                vehicle_id=vehicle_id,
                timestamp=round(origin + float(seconds), 3),
                latitude=round(lat, 7),
                longitude=round(lon, 7),
                trip_id=trip.trip_id,
                route_id=trip.route_id,
                start_date=day.strftime("%Y%m%d"),
            )
        )
    if np.any(np.diff(along) > _PLAUSIBLE_MPS * interval_s):
        return None
    return Drive(trip, day, origin, pings, passed)
