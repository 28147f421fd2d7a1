"""Tracker rules a rider or dispatcher would notice: off-route and layover flags, the next trip of a block,
stops passed during a gap, a wrong guess between two routes leaving one terminal, arrival timing from speeds."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from eta.assignment import next_in_block
from eta.engine import Engine
from eta.network import Network
from eta.stop_timing import Ease, covered, pace, segment_clock
from smartbus.messages import Ping, StopEvent
from tests.eta.pings import trip_pings

DAY = dt.date(2014, 6, 3)  # a Tuesday inside the Cairns calendar
SERVICE_DATE = DAY.strftime("%Y%m%d")


def _long_trip(network: Network) -> str:
    ids = network.trips_on(DAY)
    return max(ids[:200], key=lambda t: len(network.trips[t].stop_ids))


def _shifted(ping: Ping, metres: float, network: Network) -> Ping:
    x, y = network.projection.point_xy(ping.latitude, ping.longitude)
    lat, lon = network.projection.to_latlon(np.array([x + metres]), np.array([y + metres]))
    return dataclasses.replace(ping, latitude=float(lat[0]), longitude=float(lon[0]))


def test_a_bus_leaving_its_route_is_flagged_off_route_after_a_few_fixes(cairns: Network) -> None:
    pings, _ = trip_pings(cairns, _long_trip(cairns), DAY, interval_s=30.0, with_trip_id=True)
    engine = Engine(cairns)
    for ping in pings[:20]:
        engine.process(ping)
    statuses = []
    for ping in pings[20:24]:
        state = engine.process(_shifted(ping, 600.0, cairns)).state  # a detour some streets away
        assert state is not None
        statuses.append(state.status)
    threshold = engine.ctx.config.off_route_pings
    assert "off_route" not in statuses[: threshold - 1]
    assert statuses[threshold - 1] == "off_route"


def test_a_bus_waiting_at_its_first_stop_before_departure_is_at_layover(cairns: Network) -> None:
    trip_id = _long_trip(cairns)
    pings, _ = trip_pings(cairns, trip_id, DAY, interval_s=30.0, with_trip_id=True, lead_s=300.0)
    engine = Engine(cairns)
    before = [p for p in pings if p.timestamp < pings[0].timestamp + 270.0]
    states = [engine.process(p).state for p in before]
    assert [s.status if s else None for s in states] == ["layover"] * len(before)
    assert all(s is not None and s.trip_id == trip_id and s.delay_s == 0.0 for s in states)


def _chained_pair(network: Network) -> tuple[str, str]:
    engine = Engine(network)
    day = engine.ctx.day(DAY)
    for trip_id in network.trips_on(DAY)[:300]:
        following = next_in_block(engine.ctx, trip_id, day)
        if following is not None and network.trips[following].start_time - network.trips[trip_id].end_time < 1200:
            return trip_id, following
    raise AssertionError("no chained trips in the feed")


def test_after_the_last_stop_the_bus_runs_its_blocks_next_trip(cairns: Network) -> None:
    first, second = _chained_pair(cairns)
    head, _ = trip_pings(cairns, first, DAY, interval_s=30.0, with_trip_id=True)
    tail, _ = trip_pings(cairns, second, DAY, interval_s=30.0, lead_s=120.0)  # the device no longer says
    tail = [p for p in tail if p.timestamp > head[-1].timestamp]
    engine = Engine(cairns)
    events: list[StopEvent] = []
    for ping in head + tail:
        events += engine.process(ping).events
    second_stops = {e.stop_sequence for e in events if e.trip_id == second}
    assert len(second_stops) >= len(cairns.trips[second].stop_ids) - 1


def test_stops_passed_during_a_gap_are_reported_interpolated(cairns: Network) -> None:
    trip_id = _long_trip(cairns)
    pings, _ = trip_pings(cairns, trip_id, DAY, interval_s=20.0, with_trip_id=True)
    gap_from, gap_to = pings[len(pings) // 3].timestamp, pings[len(pings) // 3].timestamp + 400.0
    kept = [p for p in pings if not gap_from < p.timestamp < gap_to]
    engine = Engine(cairns)
    final: dict[int, StopEvent] = {}
    for ping in kept:
        for event in engine.process(ping).events:
            final[event.stop_sequence] = event
    origin = cairns.service_day_origin(DAY)
    trip = cairns.trips[trip_id]
    in_gap = {
        int(seq)
        for seq, arrival in zip(trip.stop_sequences.tolist(), trip.arrival.tolist(), strict=True)
        if gap_from + 30 < origin + arrival < gap_to - 30
    }
    assert in_gap, "the gap should cover some stops"
    assert all(final[seq].interpolated for seq in in_gap)
    assert not any(e.interpolated for seq, e in final.items() if seq not in in_gap and e.stop_sequence > 1)


def _two_routes_leaving_together(network: Network) -> tuple[str, str]:
    """Two trips of different routes leaving the same first stop within five minutes, whose shapes part."""
    trips = [network.trips[t] for t in network.trips_on(DAY)]
    by_stop: dict[str, list] = {}  # type: ignore[type-arg]
    for trip in trips:
        by_stop.setdefault(trip.stop_ids[0], []).append(trip)
    for group in by_stop.values():
        for a in group:
            for b in group:
                if a.route_id < b.route_id and abs(a.start_time - b.start_time) <= 300 and (
                    a.stop_ids[1:4] != b.stop_ids[1:4]
                ):
                    return a.trip_id, b.trip_id
    raise AssertionError("no two routes leave one stop together")


def test_a_wrong_guess_between_two_routes_leaving_one_terminal_is_switched_without_wrong_events(
    cairns: Network,
) -> None:
    a, b = _two_routes_leaving_together(cairns)
    for truth, other in ((a, b), (b, a)):
        pings, _ = trip_pings(cairns, truth, DAY, interval_s=30.0, noise_m=8.0, seed=11, lead_s=240.0)
        engine = Engine(cairns)
        events: list[StopEvent] = []
        for ping in pings:
            events += engine.process(ping).events
        assert {e.trip_id for e in events} == {truth}, f"events of {other} reported for a bus on {truth}"
        assert len({e.stop_sequence for e in events}) >= 0.9 * len(cairns.trips[truth].stop_ids)


def test_vehicle_view_gives_trip_progress_delay_and_the_blocks_next_trips(cairns: Network) -> None:
    first, second = _chained_pair(cairns)
    pings, _ = trip_pings(cairns, first, DAY, interval_s=30.0, with_trip_id=True)
    engine = Engine(cairns)
    assert engine.vehicle_view("bus-1") is None
    for ping in pings[: len(pings) // 2]:
        engine.process(ping)
    view = engine.vehicle_view("bus-1")
    assert view is not None
    assert (view.trip_id, view.service_date) == (first, SERVICE_DATE)
    assert view.progress > 0 and view.delay_s is not None and abs(view.delay_s) < 60
    assert view.next_trips[:1] == (second,)


@settings(max_examples=80, deadline=None)
@given(
    kind=st.sampled_from(["both", "accel", "brake", "none"]),
    u=st.floats(0.25, 0.95),
    length=st.floats(100.0, 1500.0),
    duration=st.floats(20.0, 300.0),
)
def test_a_fix_on_an_eased_run_gives_back_when_the_run_started_and_ends(
    kind: Ease, u: float, length: float, duration: float
) -> None:
    along = length * covered(u, kind)
    speed = length * pace(u, kind) / duration
    assume(speed > 0.5)  # slower than this the bus counts as standing: no clock to read
    clock = segment_clock(along, length, speed, kind)
    assert clock is not None
    since, until, reliable = clock
    assert reliable
    assert abs(since - u * duration) < 0.01 * duration + 0.1
    assert abs(until - (1 - u) * duration) < 0.01 * duration + 0.1


def test_after_its_last_trip_a_bus_standing_at_the_terminal_stays_on_that_trip(cairns: Network) -> None:
    engine = Engine(cairns)
    day = engine.ctx.day(DAY)
    last = next(t for t in reversed(cairns.trips_on(DAY)) if next_in_block(engine.ctx, t, day) is None)
    pings, _ = trip_pings(cairns, last, DAY, interval_s=30.0, with_trip_id=True)
    end = pings[-1]
    standing = [dataclasses.replace(end, timestamp=end.timestamp + 30.0 * k, trip_id=None) for k in (1, 2, 3)]
    for ping in pings:
        engine.process(ping)
    for ping in standing:
        state = engine.process(ping).state
        assert state is not None
        assert (state.trip_id, state.status) == (last, "at_stop")
        assert state.shape_dist == round(float(cairns.trips[last].stop_dist[-1]), 2)
