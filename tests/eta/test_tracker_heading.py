"""A moving bus's bearing tells the two directions of one street apart: the leg it is on, and the trip."""

from __future__ import annotations

import datetime as dt

import numpy as np

from eta.engine import Engine
from eta.matching import ShapeMatcher
from eta.network import Network
from smartbus.messages import Ping
from tests.eta.conftest import edge_network
from tests.eta.pings import trip_pings

DAY = dt.date(2014, 6, 3)


def _with_bearing(
    network: Network, trip_id: str, pings: list[Ping], dists: np.ndarray, speed_factor: float
) -> list[Ping]:
    """The pings with the shape's bearing where the bus is, and its speed (times `speed_factor`)."""
    matcher = ShapeMatcher(network.shapes[network.trips[trip_id].shape_id])
    out = []
    for k, (ping, dist) in enumerate(zip(pings, dists.tolist(), strict=True)):
        dt_s = pings[k + 1].timestamp - ping.timestamp if k + 1 < len(pings) else 1.0
        speed = (float(dists[k + 1]) - dist) / dt_s if k + 1 < len(pings) else 0.0
        out.append(Ping(ping.vehicle_id, ping.timestamp, ping.latitude, ping.longitude,
                        bearing=matcher.heading_at(dist), speed=speed * speed_factor, trip_id=ping.trip_id,
                        start_date=ping.start_date))
    return out


def test_a_bus_reporting_too_high_a_speed_stays_on_its_leg_of_an_out_and_back_street() -> None:
    network = edge_network("out_and_back")
    feed_day, _ = network.service_day_for(DAY)
    trip_id = network.trips_on(feed_day)[0]
    pings, dists = trip_pings(network, trip_id, feed_day, interval_s=30.0, with_trip_id=True)
    # a device whose speed reads double: the guess from speed overshoots onto the way back
    fast = _with_bearing(network, trip_id, pings, dists, speed_factor=2.0)
    engine = Engine(network)
    got = [engine.process(p).state for p in fast]
    errors = [abs(s.shape_dist - float(d)) for s, d in zip(got, dists.tolist(), strict=True)
              if s is not None and s.trip_id == trip_id and s.shape_dist is not None]
    assert len(errors) >= 0.9 * len(fast)
    assert max(errors) < 100.0  # never on the other leg (hundreds of metres away along the line)


def test_of_two_trips_passing_one_place_the_other_way_the_bus_s_bearing_picks_its_own(cairns: Network) -> None:
    from eta.assignment import Fit, rank_trips
    from eta.timeline import TripTimeline
    from eta.tracking_context import TrackingContext

    ctx = TrackingContext(cairns)
    day = ctx.day(DAY)
    # a place where trips of both directions of a route are due within a few minutes of each other
    def against(fit: Fit, heading: float) -> bool:
        """The fitted trip goes the other way at the fix."""
        shape_heading = ctx.matchers.get(cairns.trips[fit.trip_id].shape_id).heading_at(fit.match.dist)
        return abs((shape_heading - heading + 180.0) % 360.0 - 180.0) > 120.0

    def found() -> tuple[str, Ping, float, float] | None:
        for trip_id in cairns.trips_on(DAY)[::7]:
            trip = cairns.trips[trip_id]
            timeline = TripTimeline(trip)
            shape = cairns.shapes[trip.shape_id]
            for share in (0.3, 0.5, 0.7):
                t_own = trip.start_time + share * (trip.end_time - trip.start_time)
                along = timeline.dist_at(t_own)
                x = float(np.interp(along, shape.dist, shape.xy[:, 0]))
                y = float(np.interp(along, shape.dist, shape.xy[:, 1]))
                lat, lon = cairns.projection.to_latlon(np.array([x]), np.array([y]))
                heading = ctx.matchers.get(trip.shape_id).heading_at(along)
                for late in (300.0, 600.0, 900.0, 1200.0):  # running late: another trip may be due here then
                    ts = day.origin + t_own + late
                    bare = rank_trips(ctx, Ping("bus-9", ts, float(lat[0]), float(lon[0])), x, y)
                    if bare and against(bare[0], heading) and any(f.trip_id == trip_id for f in bare):
                        ping = Ping("bus-9", ts, float(lat[0]), float(lon[0]), bearing=heading, speed=8.0)
                        return trip_id, ping, x, y
        return None

    case = found()
    assert case is not None, "no place where the other direction fits best on position and time alone"
    trip_id, ping, x, y = case
    steered = rank_trips(ctx, ping, x, y)
    assert ping.bearing is not None and not against(steered[0], ping.bearing)
