"""Simple pings generated from a network: a vehicle exactly on its trip's schedule, with GPS noise."""

from __future__ import annotations

import datetime as dt

import numpy as np

from eta.network import Network
from eta.timeline import TripTimeline
from smartbus.messages import Ping


def trip_pings(
    network: Network,
    trip_id: str,
    real_day: dt.date,
    vehicle_id: str = "bus-1",
    interval_s: float = 30.0,
    noise_m: float = 0.0,
    seed: int = 0,
    with_trip_id: bool = False,
    lead_s: float = 0.0,
    pace: float = 1.0,
) -> tuple[list[Ping], np.ndarray]:
    """Pings every `interval_s` from `lead_s` before departure to the last arrival, and their true distances.

    `pace` > 1 stretches the run: 1.3 takes 30% longer than the timetable, so the bus falls ever later."""
    rng = np.random.default_rng(seed)
    trip = network.trips[trip_id]
    shape = network.shapes[trip.shape_id]
    timeline = TripTimeline(trip)
    origin = network.service_day_origin(real_day)
    start = float(trip.departure[0])
    times = np.arange(start - lead_s, start + (trip.arrival[-1] - start) * pace + 0.001, interval_s)
    dists = np.array([timeline.dist_at(start + (t - start) / pace if t > start else t) for t in times])
    x = np.interp(dists, shape.dist, shape.xy[:, 0]) + rng.normal(0, noise_m / np.sqrt(2), len(times))
    y = np.interp(dists, shape.dist, shape.xy[:, 1]) + rng.normal(0, noise_m / np.sqrt(2), len(times))
    lat, lon = network.projection.to_latlon(x, y)
    pings = [
        Ping(
            vehicle_id,
            float(origin + t),
            float(la),
            float(lo),
            trip_id=trip_id if with_trip_id else None,
            start_date=real_day.strftime("%Y%m%d") if with_trip_id else None,
        )
        for t, la, lo in zip(times, lat, lon, strict=True)
    ]
    return pings, dists
