"""An operator's trip assignment wins over inference and over the device's trip_id, and lapses cleanly."""

from __future__ import annotations

import datetime as dt

from eta.engine import Engine
from eta.network import Network
from tests.eta.pings import trip_pings

DAY = dt.date(2014, 6, 3)  # a Tuesday inside the Cairns calendar
SERVICE_DATE = DAY.strftime("%Y%m%d")


def _same_shape_pair(network: Network) -> tuple[str, str]:
    """Two trips on one shape, the second leaving 20 to 90 min after the first (the bus could run either)."""
    by_shape: dict[str, list[tuple[float, str]]] = {}
    for trip_id in network.trips_on(DAY):
        trip = network.trips[trip_id]
        if len(trip.stop_ids) >= 15:
            by_shape.setdefault(trip.shape_id, []).append((trip.start_time, trip_id))
    for trips in by_shape.values():
        trips.sort()
        for (start_a, a), (start_b, b) in zip(trips, trips[1:], strict=False):
            if 1200 <= start_b - start_a <= 5400:
                return a, b
    raise AssertionError("no two trips share a shape in the feed")


def _far_trip(network: Network, trip_id: str) -> str:
    """A trip of another route whose shape never comes within 2 km of `trip_id`'s first stop."""
    first = network.stops[network.trips[trip_id].stop_ids[0]]
    x0, y0 = network.projection.point_xy(first.lat, first.lon)
    for other_id in network.trips_on(DAY):
        other = network.trips[other_id]
        if other.route_id == network.trips[trip_id].route_id:
            continue
        xy = network.shapes[other.shape_id].xy
        if (((xy[:, 0] - x0) ** 2 + (xy[:, 1] - y0) ** 2) ** 0.5).min() > 2000:
            return other_id
    raise AssertionError("no far trip")


def test_the_bus_runs_the_trip_the_operator_gave_it_and_its_arrivals_are_that_trip_s(cairns: Network) -> None:
    inferred, given = _same_shape_pair(cairns)
    pings, _ = trip_pings(cairns, inferred, DAY, interval_s=30.0, noise_m=5.0, seed=1)
    engine = Engine(cairns)
    half, most = len(pings) // 2, len(pings) * 9 // 10  # stop short of the end, where the block goes on
    for ping in pings[:half]:
        engine.process(ping)
    assert engine.tracker("bus-1").trip_id == inferred  # inference got there on its own

    engine.set_overrides({"bus-1": (given, SERVICE_DATE)})
    states, events = [], []
    for ping in pings[half:most]:
        out = engine.process(ping)
        states.append(out.state)
        events += out.events

    assert all(s is not None and s.trip_id == given for s in states)
    assert events and {e.trip_id for e in events} == {given}
    # running the later trip's path at the earlier trip's time: the bus is early, not on time
    assert states[-1] is not None and states[-1].delay_s is not None and states[-1].delay_s < -600


def test_an_override_outweighs_the_device_s_own_trip_id(cairns: Network) -> None:
    reported, given = _same_shape_pair(cairns)
    pings, _ = trip_pings(cairns, reported, DAY, interval_s=30.0, with_trip_id=True)
    engine = Engine(cairns)
    engine.set_overrides({"bus-1": (given, SERVICE_DATE)})
    trips = {out.state.trip_id for out in map(engine.process, pings[:20]) if out.state is not None}
    assert trips == {given}


def test_a_bus_given_a_trip_far_away_shows_off_route_on_that_trip(cairns: Network) -> None:
    driven, _ = _same_shape_pair(cairns)
    elsewhere = _far_trip(cairns, driven)
    pings, _ = trip_pings(cairns, driven, DAY, interval_s=30.0)
    engine = Engine(cairns)
    engine.set_overrides({"bus-1": (elsewhere, SERVICE_DATE)})
    state = engine.process(pings[3]).state
    assert state is not None
    assert (state.trip_id, state.status) == (elsewhere, "off_route")
    assert state.offset_m is not None and state.offset_m > 2000


def test_an_override_naming_a_trip_the_feed_lacks_is_ignored(cairns: Network) -> None:
    trip_id, _ = _same_shape_pair(cairns)
    pings, _ = trip_pings(cairns, trip_id, DAY, interval_s=30.0, with_trip_id=True)
    engine = Engine(cairns)
    engine.set_overrides({"bus-1": ("no-such-trip", SERVICE_DATE)})
    state = engine.process(pings[2]).state
    assert state is not None and state.trip_id == trip_id


def test_once_the_given_trip_is_run_to_its_end_the_block_goes_on(cairns: Network) -> None:
    first, second = _same_shape_pair(cairns)
    pings, _ = trip_pings(cairns, first, DAY, interval_s=30.0)
    engine = Engine(cairns)
    engine.set_overrides({"bus-1": (first, SERVICE_DATE)})
    for ping in pings:
        engine.process(ping)
    tracker = engine.tracker("bus-1")
    assert tracker.s.finished == (SERVICE_DATE, first)
    # the override still names the finished trip: the bus is not put back on it
    later = pings[-1].__class__("bus-1", pings[-1].timestamp + 30, pings[-1].latitude, pings[-1].longitude)
    state = engine.process(later).state
    assert state is not None and state.trip_id != first
