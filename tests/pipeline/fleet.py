"""A fleet of buses driving distinct trips exactly on schedule, and what the pipeline must make of it.

The reference is the same pings through an in-process Engine: the tracker is deterministic, so a pipeline
that loses nothing and duplicates nothing stores exactly its positions and stop events, however often
its workers crash, move partitions or wait for a service.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

import numpy as np

from eta.engine import Engine
from eta.network import Network, Trip
from smartbus.messages import Ping


def fresh_day() -> dt.date:
    """A Tuesday of its own for each run: stop events are keyed by (trip, stop, service day), so runs on the
    same day would collide with each other's rows. Future years: no retention job drops them meanwhile."""
    return dt.date(2030, 1, 1) + dt.timedelta(weeks=random.randrange(5000))


@dataclass(frozen=True)
class Fleet:
    pings: list[Ping]  # every vehicle's pings, merged in time order
    stop_events: set[tuple[str, str, int]]  # (vehicle_id, trip_id, stop_sequence) the reference records
    positions: int  # vehicle states the reference emits (one stored position each)
    positions_after: list[int]  # positions_after[n]: states emitted by the first n pings

    def vehicles(self) -> set[str]:
        return {p.vehicle_id for p in self.pings}


def _position(network: Network, trip: Trip, seconds: float) -> tuple[float, float]:
    times = np.empty(2 * len(trip.stop_ids))
    times[0::2], times[1::2] = trip.arrival, trip.departure
    distance = float(np.interp(seconds, times, np.repeat(trip.stop_dist, 2)))
    shape = network.shapes[trip.shape_id]
    x = float(np.interp(distance, shape.dist, shape.xy[:, 0]))
    y = float(np.interp(distance, shape.dist, shape.xy[:, 1]))
    lat, lon = network.projection.to_latlon(np.array([x]), np.array([y]))
    return round(float(lat[0]), 7), round(float(lon[0]), 7)


def drive_fleet(network: Network, tag: str, vehicles: int, interval_s: float = 10.0) -> Fleet:
    """`vehicles` buses, each on its own trip among those starting from 07:00, pinging every `interval_s`."""
    day = fresh_day()
    feed_day, _ = network.service_day_for(day)
    origin = network.service_day_origin(day)
    trips = [
        network.trips[t]
        for t in network.trips_on(feed_day)
        if network.trips[t].start_time >= 7 * 3600 and len(network.trips[t].stop_ids) >= 8
    ][:vehicles]
    assert len(trips) == vehicles, "not enough trips in the feed"
    pings: list[Ping] = []
    for number, trip in enumerate(trips):
        vehicle_id = f"{tag}-{number:03d}"
        for seconds in np.arange(float(trip.departure[0]), float(trip.arrival[-1]) + 5.0, interval_s):
            lat, lon = _position(network, trip, float(seconds))
            pings.append(
                Ping(
                    vehicle_id=vehicle_id,
                    timestamp=round(origin + float(seconds), 3),
                    latitude=lat,
                    longitude=lon,
                    trip_id=trip.trip_id,
                    route_id=trip.route_id,
                    start_date=day.strftime("%Y%m%d"),
                )
            )
    pings.sort(key=lambda p: (p.timestamp, p.vehicle_id))
    engine = Engine(network)
    events: set[tuple[str, str, int]] = set()
    positions_after = [0]
    for ping in pings:
        out = engine.process(ping)
        positions_after.append(positions_after[-1] + (out.state is not None))
        events.update((e.vehicle_id, e.trip_id, e.stop_sequence) for e in out.events)
    return Fleet(pings, events, positions_after[-1], positions_after)
