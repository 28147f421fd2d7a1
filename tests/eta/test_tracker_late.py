"""A fix delivered after newer ones: rejected for tracking (the issue's rule), kept as a position of the past."""

from __future__ import annotations

import datetime as dt

from eta.engine import Engine
from eta.network import Network
from tests.eta.pings import trip_pings
from tests.eta.test_tracker_assignment import ROUTE_120_TRIP

DAY = dt.date(2014, 6, 3)


def test_a_late_fix_is_placed_behind_the_bus_without_moving_it(cairns: Network) -> None:
    pings, dists = trip_pings(cairns, ROUTE_120_TRIP, DAY, interval_s=30.0, noise_m=5.0, with_trip_id=True)
    engine = Engine(cairns)
    late = 20  # delivered after the two fixes taken after it
    for ping in [*pings[:late], pings[late + 1], pings[late + 2]]:
        engine.process(ping)
    progress = engine.tracker("bus-1").progress

    out = engine.process(pings[late])

    assert out.state is None and out.rejected_reason == "out_of_order"
    assert out.past is not None
    assert out.past.timestamp == pings[late].timestamp and out.past.trip_id == ROUTE_120_TRIP
    assert out.past.shape_dist is not None and abs(out.past.shape_dist - float(dists[late])) <= 20.0
    assert engine.tracker("bus-1").progress == progress  # the live state did not go back


def test_a_late_fix_from_before_the_trip_began_is_not_placed_on_it(cairns: Network) -> None:
    pings, _ = trip_pings(cairns, ROUTE_120_TRIP, DAY, interval_s=30.0, with_trip_id=True)
    engine = Engine(cairns)
    engine.process(pings[5])
    engine.process(pings[6])
    out = engine.process(pings[2])  # older than anything the tracker has seen of this trip
    assert out.rejected_reason == "out_of_order" and out.past is None
