"""A bus that goes silent near the end of a trip and is heard again on its block's next trip."""

from __future__ import annotations

import dataclasses
import datetime as dt

from eta.engine import Engine
from eta.network import Network
from eta.tracking_context import TrackerConfig
from smartbus.messages import Ping
from tests.eta.pings import trip_pings

DAY = dt.date(2014, 6, 3)  # a Tuesday inside the Cairns calendar
# Route 110 towards the city, then, on the same bus, back out from the other side of the terminus.
ENDING = "CNS2014-CNS_MUL-Weekday-00-4165883"
NEXT = "CNS2014-CNS_MUL-Weekday-00-4165913"


def test_stops_passed_while_silent_across_the_terminus_are_reported_on_both_trips(cairns: Network) -> None:
    engine = Engine(cairns)
    day = engine.ctx.day_of(DAY.strftime("%Y%m%d"))
    assert day is not None and engine.ctx.chains.next_trip(day.service_date, ENDING) == NEXT
    ending, next_trip = cairns.trips[ENDING], cairns.trips[NEXT]
    before, before_dists = trip_pings(cairns, ENDING, DAY, noise_m=5.0, seed=1)
    # Heard last some 400 m before the end of the trip, then nothing for the layover and the next trip's start.
    silent_from = next(k for k, d in enumerate(before_dists) if d >= float(ending.stop_dist[-1]) - 400.0)
    after, after_dists = trip_pings(cairns, NEXT, DAY, noise_m=5.0, seed=2)
    heard_again = next(k for k, d in enumerate(after_dists) if d >= float(next_trip.stop_dist[3]) + 200.0)
    events = [e for p in before[:silent_from] for e in engine.process(p).events]
    assert engine.tracker("bus-1").trip_id == ENDING

    first_back = engine.process(after[heard_again])
    assert first_back.state is not None and first_back.state.trip_id == NEXT
    events += first_back.events
    for p in after[heard_again + 1 : heard_again + 6]:
        events += engine.process(p).events

    reported = {(e.trip_id, e.stop_sequence): e for e in events}
    assert (ENDING, int(ending.stop_sequences[-1])) in reported, "the terminus it reached while silent"
    passed = [
        int(q)
        for q, d in zip(next_trip.stop_sequences, next_trip.stop_dist, strict=True)
        if d < after_dists[heard_again]
    ]
    assert len(passed) >= 4
    for sequence in passed:
        event = reported.get((NEXT, sequence))
        assert event is not None, f"stop {sequence} of the next trip, passed while silent"
        assert event.interpolated
    # Estimates, but sensible ones: in stop order, between the last fix before the gap and the first after.
    times = [e.arrival_time for e in first_back.events]
    assert times == sorted(times)
    assert all(before[silent_from - 1].timestamp < t <= after[heard_again].timestamp for t in times)
    # The next trip left its first stop no earlier than its timetable says (it was on time).
    departed = reported[(NEXT, int(next_trip.stop_sequences[0]))].departure_time
    assert departed is not None and departed >= day.origin + float(next_trip.departure[0])


def test_a_bus_that_goes_from_its_trips_last_stop_to_the_next_trips_stand_a_street_away_runs_on(
    cairns: Network,
) -> None:
    """Cairns buses often end a trip at one stop and start the next from a stand 90 m away: heard just short
    of the last stop, then standing at the stand, the bus has finished its trip and waits for the next."""
    ending, following = "CNS2014-CNS_MUL-Weekday-00-4166383", "CNS2014-CNS_MUL-Weekday-00-4166400"
    engine = Engine(cairns)
    day = engine.ctx.day(DAY)
    assert engine.ctx.chains.next_trip(day.service_date, ending) == following
    trip, nxt = cairns.trips[ending], cairns.trips[following]
    pings, dists = trip_pings(cairns, ending, DAY, noise_m=5.0, seed=4)
    near_end = [k for k, d in enumerate(dists) if d < float(trip.stop_dist[-1]) - 30.0][-1]
    events = [e for p in pings[: near_end + 1] for e in engine.process(p).events]
    assert engine.tracker("bus-1").trip_id == ending
    stand = cairns.stops[nxt.stop_ids[0]]
    last = pings[near_end]
    states = []
    for k in (1, 2, 3):
        out = engine.process(dataclasses.replace(last, timestamp=last.timestamp + 30.0 * k, latitude=stand.lat,
                                                 longitude=stand.lon, speed=0.0))
        events += out.events
        states.append(out.state)
    assert all(s is not None and s.trip_id == following for s in states), [s and s.trip_id for s in states]
    assert all(s is not None and s.status != "off_route" for s in states)
    ended = [e for e in events if e.trip_id == ending and e.stop_sequence == int(trip.stop_sequences[-1])]
    assert len(ended) == 1, "the trip's last stop, reached between the two fixes"


def test_a_bus_heard_again_on_its_next_trip_ends_the_last_even_where_its_last_two_stops_coincide(
    cairns: Network,
) -> None:
    """Route 110's Sunday trips end at two stops the shape puts at the same point. A bus silent over the end of
    such a trip, heard again along its next, had finished it; held short of the last stop by the stop before
    it, it stayed on the old trip, at a stop 2 km behind it, until the silence rule dropped it."""
    sunday = dt.date(2014, 6, 8)
    ending, following = "CNS2014-CNS_MUL-Sunday-00-4166098", "CNS2014-CNS_MUL-Sunday-00-4166084"
    trip = cairns.trips[ending]
    assert trip.stop_dist[-1] - trip.stop_dist[-2] < TrackerConfig().depart_radius_m
    first, first_dists = trip_pings(cairns, ending, sunday, interval_s=30.0, noise_m=5.0, seed=3)
    second, _ = trip_pings(cairns, following, sunday, interval_s=30.0, noise_m=5.0, seed=4)
    cut = next(k for k, d in enumerate(first_dists) if d > trip.stop_dist[-3] - 400.0)  # silent from here
    resumed = [p for p in second if p.timestamp > second[0].timestamp + 300.0]  # heard again 5 min into it
    engine = Engine(cairns)
    outs = [engine.process(p) for p in [*first[:cut], *resumed[:10]]]

    later = [o.state for o in outs[cut + 3 :] if o.state is not None]
    assert later and all(state.trip_id == following for state in later)
    ended = {e.stop_sequence for o in outs for e in o.events if e.trip_id == ending}
    assert ended >= {int(seq) for seq in trip.stop_sequences[-3:]}  # its last stops, passed during the silence


def test_a_bus_first_heard_after_a_silence_standing_just_short_of_its_last_stop_has_ended_its_trip(
    cairns: Network,
) -> None:
    """Silent over its last few stops, the bus is heard again standing 25 m short of the last one (a terminus
    with its stand before the stop): it is at the terminus, its trip ended, not about to arrive; riders must not
    be shown the last stop still to come."""
    from tests.eta.test_tracker_assignment import _lat_lon, _xy

    trip = cairns.trips[ENDING]
    n = len(trip.stop_dist)
    assert float(trip.stop_dist[-1] - trip.stop_dist[-2]) > 60.0
    pings, dists = trip_pings(cairns, ENDING, DAY, noise_m=5.0, seed=3)
    heard = [p for p, d in zip(pings, dists, strict=True) if d < float(trip.stop_dist[n - 4])]
    engine = Engine(cairns)
    for ping in heard:
        engine.process(ping)
    at_stand = _lat_lon(cairns, _xy(cairns, trip.shape_id, float(trip.stop_dist[-1]) - 25.0))
    out = engine.process(Ping("bus-1", pings[-1].timestamp + 60.0, *at_stand, speed=0.0))

    assert int(trip.stop_sequences[-1]) in {e.stop_sequence for e in out.events if e.trip_id == ENDING}
    assert engine.tracker("bus-1").s.finished == (DAY.strftime("%Y%m%d"), ENDING)


# Route 111 ends its trips along a street that the next trip's line runs back along (the other way).
LOOP_ENDING = "CNS2014-CNS_MUL-Weekday-00-4166151"
LOOP_NEXT = "CNS2014-CNS_MUL-Weekday-00-4166127"


def _loop_ending_until_silent(cairns: Network, late_s: float, named: bool, seed: int) -> Engine:
    """An engine that heard a bus run LOOP_ENDING `late_s` late up to 31.7 km, then nothing."""
    pings, dists = trip_pings(cairns, LOOP_ENDING, DAY, noise_m=5.0, seed=seed, with_trip_id=named)
    engine = Engine(cairns)
    for ping, dist in zip(pings, dists, strict=True):
        if dist > 31700.0:
            break
        engine.process(dataclasses.replace(ping, timestamp=ping.timestamp + late_s))
    assert engine.tracker("bus-1").trip_id == LOOP_ENDING
    return engine


def _due_on_loop_next(engine: Engine, dist: float) -> float:
    """When the timetable has LOOP_NEXT `dist` metres along (UTC epoch seconds)."""
    day = engine.ctx.day_of(DAY.strftime("%Y%m%d"))
    assert day is not None
    return day.origin + engine.ctx.timelines.get(LOOP_NEXT).time_at(dist)


def _on_loop_next(engine: Engine, dist: float, ts: float, speed: float, named: bool) -> Ping:
    """A fix `dist` along LOOP_NEXT at `ts`, heading its way; `named`: its device names the trip."""
    from tests.eta.test_tracker_assignment import _lat_lon, _xy

    shape_id = engine.network.trips[LOOP_NEXT].shape_id
    return Ping(
        "bus-1", ts, *_lat_lon(engine.network, _xy(engine.network, shape_id, dist)),
        bearing=engine.ctx.matchers.get(shape_id).heading_at(dist), speed=speed,
        trip_id=LOOP_NEXT if named else None, start_date=DAY.strftime("%Y%m%d") if named else None,
    )


def test_a_bus_whose_device_names_its_next_trip_takes_it_though_standing_at_the_second_fix_that_does(
    cairns: Network,
) -> None:
    """Silent over the last stretch of its trip, the bus is heard again driving 740 m into its next trip, then
    standing at a stop there, its device naming that trip at both fixes. Standing, it faces the way it was just
    going, the way of the trip its device names: it is on that trip, and riders are not shown the last stretch
    of the trip it ended minutes ago."""
    engine = _loop_ending_until_silent(cairns, late_s=700.0, named=True, seed=4)
    heard = _due_on_loop_next(engine, 740.0) + 700.0
    engine.process(_on_loop_next(engine, 740.0, heard, speed=10.3, named=True))
    out = engine.process(_on_loop_next(engine, 808.0, heard + 33.0, speed=0.0, named=True))

    assert out.state is not None and out.state.trip_id == LOOP_NEXT


def test_a_bus_heard_after_a_silence_driving_back_along_the_end_of_its_trip_is_on_its_next_trip(
    cairns: Network,
) -> None:
    """Silent over the last stretch of its trip and its layover, the bus is heard again driving 740 m into its
    next trip: it matches the end of the trip it ran, but drives the other way. It has ended that trip and set off
    on the next, and riders are not shown the last stop of the trip it ended minutes ago."""
    engine = _loop_ending_until_silent(cairns, late_s=0.0, named=False, seed=5)
    day = engine.ctx.day_of(DAY.strftime("%Y%m%d"))
    assert day is not None and engine.ctx.chains.next_trip(day.service_date, LOOP_ENDING) == LOOP_NEXT
    out = engine.process(_on_loop_next(engine, 740.0, _due_on_loop_next(engine, 740.0), speed=10.3, named=False))

    assert out.state is not None and out.state.trip_id == LOOP_NEXT
    ended = {e.stop_sequence for e in out.events if e.trip_id == LOOP_ENDING}
    assert int(cairns.trips[LOOP_ENDING].stop_sequences[-1]) in ended


def test_a_standing_bus_fits_the_trip_its_device_names_if_last_seen_going_that_trip_s_way(cairns: Network) -> None:
    """Standing 808 m along LOOP_NEXT, its device naming it: a bus last seen going that trip's way (within 60°)
    fits it; one last seen going across or against it does not, nor one on a trip already and not seen moving
    lately. A bus on no trip yet has only its device's word, and it stands."""
    from eta.assignment import trusted_fit

    engine = Engine(cairns)
    ping = _on_loop_next(engine, 808.0, _due_on_loop_next(engine, 808.0), speed=0.0, named=True)
    x, y = cairns.projection.point_xy(ping.latitude, ping.longitude)
    way = engine.ctx.matchers.get(cairns.trips[LOOP_NEXT].shape_id).heading_at(808.0)

    def fits(last_heading: float | None) -> bool:
        return trusted_fit(engine.ctx, ping, x, y, "bus-1", on_a_trip=True, last_heading=last_heading) is not None

    assert fits(way) and fits((way + 40.0) % 360.0)
    assert not fits((way + 90.0) % 360.0) and not fits((way + 180.0) % 360.0) and not fits(None)
    assert trusted_fit(engine.ctx, ping, x, y, "bus-1") is not None
