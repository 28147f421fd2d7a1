"""A fix delivered after newer ones: rejected for tracking (the issue's rule), kept as a position of the past."""

from __future__ import annotations

import dataclasses
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


def test_fixes_a_device_buffered_through_a_dead_spot_are_placed_when_they_arrive_minutes_late(
    cairns: Network,
) -> None:
    """Devices that lose the network keep their fixes and send them when it comes back, minutes later."""
    pings, dists = trip_pings(cairns, ROUTE_120_TRIP, DAY, interval_s=10.0, noise_m=5.0, with_trip_id=True)
    engine = Engine(cairns)
    buffered = range(40, 70)  # five minutes of fixes, delivered after the next ten minutes of live ones
    for ping in [*pings[:40], *pings[70:130]]:
        engine.process(ping)
    placed = {k: engine.process(pings[k]).past for k in buffered}
    # Kept as positions of the past, all but where the street passes the same spot twice within the five minutes:
    # no live fix says which pass such a fix was on, and no position beats a wrong one.
    kept = {k: past for k, past in placed.items() if past is not None}
    assert len(kept) >= 0.8 * len(buffered)
    for k, past in kept.items():
        assert past.shape_dist is not None and abs(past.shape_dist - float(dists[k])) <= 20.0


def test_a_late_fix_from_before_the_trip_began_is_not_placed_on_it(cairns: Network) -> None:
    pings, _ = trip_pings(cairns, ROUTE_120_TRIP, DAY, interval_s=30.0, with_trip_id=True)
    engine = Engine(cairns)
    engine.process(pings[5])
    engine.process(pings[6])
    out = engine.process(pings[2])  # older than anything the tracker has seen of this trip
    assert out.rejected_reason == "out_of_order" and out.past is None


def test_a_fix_refused_as_impossible_is_refused_again_when_a_replay_brings_it_late(cairns: Network) -> None:
    """A worker that takes over after a crash replays the batch the dead one had started: fixes it already refused
    come back older than the state. Stored now as positions of the past, they would add rows the first pass did
    not (the writer's natural key cannot tell), and history would keep a reading the tracker judged impossible."""
    pings, dists = trip_pings(cairns, ROUTE_120_TRIP, DAY, interval_s=30.0, with_trip_id=True)
    k = next(i for i in range(10, len(pings) - 2) if float(dists[i + 1] - dists[i - 1]) > 250.0)
    # a reading one second after the fix before it, already where the bus is 30 s later: 40 m/s cannot do it
    glitch = dataclasses.replace(pings[k + 1], timestamp=pings[k - 1].timestamp + 1.0)
    engine = Engine(cairns)
    for ping in pings[:k]:
        engine.process(ping)
    assert engine.process(glitch).rejected_reason == "impossible_speed"
    for ping in pings[k + 1 : k + 3]:
        assert engine.process(ping).state is not None

    replayed = engine.process(glitch)

    assert replayed.past is None and replayed.state is None
    assert replayed.rejected_reason == "duplicate"
