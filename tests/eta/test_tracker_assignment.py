"""Trip assignment over a whole trip: a late bus keeps its trip, a bus reaches its terminus and moves on."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

import numpy as np
import pytest

from eta.engine import Engine
from eta.network import Network
from smartbus.messages import Ping
from tests.eta.pings import trip_pings

DAY = dt.date(2014, 6, 3)  # a Tuesday inside the Cairns calendar
# Route 120 (shape 1200001) shares a long stretch of road with route 130 (shape 1300016), whose trips pass
# there half an hour after route 120's: a bus of route 120 running late is, on the timetable alone, a bus
# of route 130 on time.
ROUTE_120_TRIP = "CNS2014-CNS_MUL-Weekday-00-4166384"


def test_a_bus_falling_ever_later_keeps_its_trip_on_a_street_another_route_shares(cairns: Network) -> None:
    pings, _ = trip_pings(cairns, ROUTE_120_TRIP, DAY, interval_s=30.0, noise_m=10.0, seed=4, pace=1.35)
    engine = Engine(cairns)
    trips = [out.state.trip_id for out in map(engine.process, pings) if out.state is not None]
    joined = trips.index(ROUTE_120_TRIP)
    # the run ends some 15 minutes late; the first fixes, at the terminal, may fit other trips
    assert joined < 10
    end = len(trips) - 3  # the last fixes at the terminus belong to the next trip already
    assert set(trips[joined:end]) == {ROUTE_120_TRIP}


def test_a_bus_standing_short_of_its_last_stop_has_reached_the_terminus(cairns: Network) -> None:
    trip = cairns.trips[ROUTE_120_TRIP]
    pings, dists = trip_pings(cairns, ROUTE_120_TRIP, DAY, interval_s=20.0, with_trip_id=True)
    # the stand is 100 m before the stop: the bus stops there and waits ten minutes
    stand = next(k for k, d in enumerate(dists) if d >= float(trip.stop_dist[-1]) - 100.0)
    last = pings[stand]
    waiting = [
        last.__class__(last.vehicle_id, last.timestamp + 20.0 * k, last.latitude, last.longitude, speed=0.0)
        for k in range(1, 30)
    ]
    engine = Engine(cairns)
    events = [e for p in [*pings[: stand + 1], *waiting] for e in engine.process(p).events]
    last_stop = [e for e in events if e.stop_sequence == int(trip.stop_sequences[-1])]
    assert len(last_stop) == 1
    # reached when it stopped at the stand, not when the timetable says
    assert abs(last_stop[0].arrival_time - last.timestamp) <= 30.0
    assert engine.tracker(last.vehicle_id).s.finished == (DAY.strftime("%Y%m%d"), ROUTE_120_TRIP)


def test_a_bus_standing_long_by_the_stop_before_the_last_has_reached_the_terminus(cairns: Network) -> None:
    """Some Cairns trips end at a hail-and-ride location beyond their shape, which stops at the stop before
    the last: both lie at the shape's end. A bus waiting there for its next trip has ended this one."""
    sunday = dt.date(2014, 6, 1)
    trip_id = next(
        t
        for t in cairns.trips_on(sunday)
        if float(cairns.trips[t].stop_dist[-1] - cairns.trips[t].stop_dist[-2]) < 140.0
    )
    trip = cairns.trips[trip_id]
    pings, dists = trip_pings(cairns, trip_id, sunday, interval_s=20.0, with_trip_id=True)
    stand = next(k for k, d in enumerate(dists) if d >= float(trip.stop_dist[-2]))
    at_stand = pings[stand]
    waiting = [
        at_stand.__class__(at_stand.vehicle_id, at_stand.timestamp + 20.0 * k, at_stand.latitude,
                           at_stand.longitude, speed=0.0)
        for k in range(1, 15)
    ]
    engine = Engine(cairns)
    events = [e for p in [*pings[: stand + 1], *waiting] for e in engine.process(p).events]
    sequences = {e.stop_sequence for e in events}
    assert int(trip.stop_sequences[-2]) in sequences and int(trip.stop_sequences[-1]) in sequences
    assert engine.tracker(at_stand.vehicle_id).s.finished == (sunday.strftime("%Y%m%d"), trip_id)


def test_a_bus_ending_its_last_trip_late_leaves_late_on_the_next_rather_than_skipping_it(cairns: Network) -> None:
    from eta.assignment import next_departure_here, next_in_block
    from eta.tracking_context import TrackingContext

    ctx = TrackingContext(cairns)
    day = ctx.day(DAY)

    def chained(previous: str) -> str | None:
        following = next_in_block(ctx, previous, day, ignore_claims=True)
        if following is None:
            return None
        after = next_departure_here(ctx, following, day)
        return following if after is not None and after - cairns.trips[following].start_time >= 1800 else None

    previous = next(t for t in cairns.trips_on(DAY) if cairns.trips[t].route_id == "120-423" and chained(t))
    trip_id = chained(previous)
    assert trip_id is not None
    gap = cairns.trips[trip_id].start_time - cairns.trips[previous].end_time
    # the trip before runs so slowly that the bus reaches this trip's first stop 5 minutes after it should
    # have left; it stands there 2 minutes, then runs the trip 7 minutes late
    slow = 1.0 + (gap + 300.0) / (cairns.trips[previous].end_time - cairns.trips[previous].start_time)
    before, _ = trip_pings(cairns, previous, DAY, interval_s=30.0, noise_m=5.0, seed=1, pace=slow, with_trip_id=True)
    after, _ = trip_pings(cairns, trip_id, DAY, interval_s=30.0, noise_m=5.0, seed=2)
    stand = after[0]  # at the trip's first stop
    standing = [stand.__class__("bus-1", before[-1].timestamp + 30.0 * k, stand.latitude, stand.longitude, speed=0.0)
                for k in range(1, 5)]
    late = [p.__class__("bus-1", p.timestamp + 420.0, p.latitude, p.longitude) for p in after[1:]]
    engine = Engine(cairns)
    trips = [out.state.trip_id for out in map(engine.process, [*before, *standing, *late]) if out.state]
    on_it = trips[len(trips) - len(late) - len(standing) : -3]  # the last fixes, at the terminus, start the next
    assert set(on_it) == {trip_id}


def test_a_bus_ending_its_trip_goes_on_to_the_trip_riders_were_shown_it_would_run(cairns: Network) -> None:
    """The tracker and the predictor chain trips by one plan: the next trip the predictor announced for a
    bus (block_next) is the one the tracker puts it on, also where the next departure from the terminal is
    another trip (the plan gives that one to a bus that arrived earlier)."""
    from eta.assignment import next_from_terminal
    from eta.tracking_context import TrackingContext

    ctx = TrackingContext(cairns)
    day = ctx.day(DAY)
    trip_id, planned = next(
        (t, ctx.chains.next_trip(day.service_date, t))
        for t in cairns.trips_on(DAY)
        if ctx.chains.next_trip(day.service_date, t) not in (None, next_from_terminal(ctx, t, day))
    )
    pings, _ = trip_pings(cairns, trip_id, DAY, interval_s=20.0, with_trip_id=True)
    engine = Engine(cairns)
    for ping in pings:
        engine.process(ping)
    assert engine.tracker("bus-1").s.finished == (day.service_date, trip_id)
    assert engine.tracker("bus-1").trip_id == planned


def _planned_after(engine: Engine, trip_id: str) -> str:
    """The trip the day's dispatch plan gives the bus that ends `trip_id` (on DAY)."""
    day = engine.ctx.day(DAY)
    planned = engine.ctx.chains.next_trip(day.service_date, trip_id)
    assert planned is not None
    return planned


def test_a_vehicle_long_silent_does_not_keep_its_next_trip_from_the_bus_that_comes_to_run_it(cairns: Network) -> None:
    """A bus chained to a trip and then never heard from again (its duty over, its device dead) must not leave
    the bus that does come for the trip to run a later one: riders would see the wrong bus on both."""
    engine = Engine(cairns)
    ctx, day = engine.ctx, engine.ctx.day(DAY)
    ending = "CNS2014-CNS_MUL-Weekday-00-4165883"
    planned = _planned_after(engine, ending)
    before, _ = trip_pings(cairns, ending, DAY, vehicle_id="bus-1", noise_m=5.0, seed=3)
    ghost_heard = before[0].timestamp - 900.0
    engine.process(before[0].__class__("ghost", ghost_heard, before[0].latitude, before[0].longitude))
    ctx.claims[(day.service_date, planned)] = "ghost"  # chained to it, as a bus that went quiet at a terminus
    assert ctx.holder(day.service_date, planned) == "ghost"  # heard lately, as far as anyone knows yet

    outputs = [engine.process(p) for p in before]
    assert ctx.clock - ctx.heard["ghost"] > ctx.config.claim_silence_s
    assert ctx.holder(day.service_date, planned) == "bus-1"  # the bus that came for it runs it
    final = [o.state for o in outputs if o.state is not None][-1]
    # the fix that ends the trip still reports it (at its end); the bus is on its next trip from then
    assert (final.trip_id, final.status) == (ending, "at_stop")
    assert engine.tracker("bus-1").trip_id == planned


def test_a_bus_whose_next_trip_another_bus_runs_is_not_given_one_hours_away(cairns: Network) -> None:
    """When the trip the plan gives a bus after this one is run by another bus, the next departure from the
    terminal may be hours later: no bus waits that long, and riders of that trip must not see this one."""
    engine = Engine(cairns)
    ctx, day = engine.ctx, engine.ctx.day(DAY)
    ending = "CNS2014-CNS_MUL-Weekday-00-4172564"
    planned = _planned_after(engine, ending)
    pings, _ = trip_pings(cairns, ending, DAY, with_trip_id=True)
    engine.process(pings[0].__class__("other", pings[0].timestamp, pings[0].latitude, pings[0].longitude))
    ctx.claims[(day.service_date, planned)] = "other"  # the bus that runs it, heard lately
    for ping in pings:
        ctx.heard["other"] = ping.timestamp
        engine.process(ping)
    tracker = engine.tracker("bus-1")
    assert tracker.s.finished == (day.service_date, ending)
    assert tracker.trip_id is None, f"given {tracker.trip_id}, which leaves hours after {ending} ends"


def test_a_bus_whose_device_names_a_trip_hours_later_runs_the_trip_it_sets_off_on(cairns: Network) -> None:
    """A device set up with the wrong trip of the route: trusted while the bus waits at the stand (a bus may wait
    there long), not once it sets off three hours before that trip's time on the timetable of the one due now."""
    named = "CNS2014-CNS_MUL-Weekday-00-4166387"  # the same route, shape and stand, three hours later
    pings, _ = trip_pings(cairns, ROUTE_120_TRIP, DAY, interval_s=30.0, noise_m=5.0, with_trip_id=True, lead_s=600.0)
    pings = [dataclasses.replace(p, trip_id=named) for p in pings]
    engine = Engine(cairns)
    outs = [engine.process(p) for p in pings]
    events = [e for out in outs for e in out.events]
    departed = next(k for k, p in enumerate(pings) if p.timestamp > pings[0].timestamp + 700.0)

    assert {out.state.trip_id for out in outs[departed:] if out.state is not None} == {ROUTE_120_TRIP}
    assert {e.trip_id for e in events} == {ROUTE_120_TRIP}
    reported = {e.stop_sequence for e in events}
    assert int(cairns.trips[ROUTE_120_TRIP].stop_sequences[0]) in reported  # its first stop too
    assert len(reported) >= len(cairns.trips[ROUTE_120_TRIP].stop_ids) - 1






def test_a_bus_standing_at_the_stand_for_the_trip_its_device_names_keeps_it_whatever_gps_error_says(
    cairns: Network,
) -> None:
    """While the bus stands at the stand, a fix that GPS error puts 45 m along the line is not a departure:
    the bus is not moved off the trip its device names, an hour ahead, onto the one due now."""
    named = "CNS2014-CNS_MUL-Weekday-00-4166385"  # route 120's next trip from the same stand, an hour later
    pings, _ = trip_pings(cairns, ROUTE_120_TRIP, DAY, interval_s=30.0, with_trip_id=True, lead_s=600.0)
    trip = cairns.trips[ROUTE_120_TRIP]
    departs = cairns.service_day_origin(DAY) + float(trip.departure[0])
    lat, lon = _lat_lon(cairns, _xy(cairns, trip.shape_id, float(trip.stop_dist[0]) + 45.0))
    waiting = [dataclasses.replace(p, trip_id=named, speed=0.0) for p in pings if p.timestamp < departs - 60.0]
    waiting[10] = dataclasses.replace(waiting[10], latitude=lat, longitude=lon)
    engine = Engine(cairns)
    states = [engine.process(p).state for p in waiting]

    assert {state.trip_id for state in states if state is not None} == {named}


def test_a_bus_standing_at_the_stand_of_the_trip_due_now_runs_it_though_its_device_names_a_run_hours_ahead(
    cairns: Network,
) -> None:
    """A device set up with a run three hours ahead, at a stand a trip leaves in ten minutes: more likely a wrong
    log-in than a bus out of service there for hours. Riders waiting for the trip due now see this bus."""
    named = "CNS2014-CNS_MUL-Weekday-00-4166387"  # route 120 from the same stand, three hours later
    pings, _ = trip_pings(cairns, ROUTE_120_TRIP, DAY, interval_s=30.0, with_trip_id=True, lead_s=600.0)
    departs = cairns.service_day_origin(DAY) + float(cairns.trips[ROUTE_120_TRIP].departure[0])
    waiting = [dataclasses.replace(p, trip_id=named, speed=0.0) for p in pings if p.timestamp < departs - 60.0]
    engine = Engine(cairns)
    states = [engine.process(p).state for p in waiting]

    assert {state.trip_id for state in states if state is not None} == {ROUTE_120_TRIP}


def test_a_bus_held_up_later_than_inference_reaches_keeps_its_trip(cairns: Network) -> None:
    """Without trip ids, a bus held up for 40 minutes (an incident on the road) late in its trip is then later
    than the timetable lets inference consider it for that trip. It still follows the trip's line: it keeps
    the trip and reports the rest of its stops, rather than being put on whatever trip fits the timetable."""
    pings, _ = trip_pings(cairns, ROUTE_120_TRIP, DAY, interval_s=30.0, noise_m=5.0, seed=1)
    pings = _moving(cairns, pings)
    k = int(0.7 * len(pings))
    held = [dataclasses.replace(pings[k], timestamp=pings[k].timestamp + 30.0 * j, speed=0.0, bearing=None)
            for j in range(1, 80)]
    after = [dataclasses.replace(p, timestamp=p.timestamp + 2400.0) for p in pings[k + 1 :]]
    engine = Engine(cairns)
    outs = [engine.process(p) for p in [*pings[: k + 1], *held, *after]]

    assert {o.state.trip_id for o in outs if o.state is not None} == {ROUTE_120_TRIP}
    events = [e for o in outs for e in o.events]
    assert {e.trip_id for e in events} == {ROUTE_120_TRIP}
    trip = cairns.trips[ROUTE_120_TRIP]
    assert len({e.stop_sequence for e in events}) >= len(trip.stop_ids) - 2



def test_a_device_naming_a_trip_of_the_other_direction_does_not_keep_inference_from_the_bus_s_own(
    cairns: Network,
) -> None:
    """A device set up with the route's trip the other way, hours later: the trip does not fit, and neither does
    the direction the device reports with it. Inference reads the route, not that direction."""
    named = "CNS2014-CNS_MUL-Weekday-00-4166402"  # route 120 the other way, at 09:00
    assert cairns.trips[named].direction_id != cairns.trips[ROUTE_120_TRIP].direction_id
    pings, _ = trip_pings(cairns, ROUTE_120_TRIP, DAY, interval_s=30.0, noise_m=5.0, seed=6)
    pings = [
        dataclasses.replace(p, trip_id=named, route_id=cairns.trips[named].route_id,
                            direction_id=cairns.trips[named].direction_id)
        for p in _moving(cairns, pings)
    ]
    engine = Engine(cairns)
    outs = [engine.process(p) for p in pings]

    trips = [o.state.trip_id for o in outs if o.state is not None]
    assert trips.count(ROUTE_120_TRIP) >= 0.9 * len(trips)
    events = [e for o in outs for e in o.events]
    assert {e.trip_id for e in events} == {ROUTE_120_TRIP}


def test_a_device_naming_the_trip_the_other_way_along_the_street_does_not_turn_the_bus_round(cairns: Network) -> None:
    """Route 110 runs out (4165893 at 13:20) and back (4165921 at 13:40) along the same streets. A bus running
    the way out a few minutes early, its device set up with the trip back, is where and when that trip would be
    on its way back along the last few kilometres. The bus goes the other way: it is not shown to riders waiting
    for the trip back, and its position does not run backwards along that trip."""
    out, back = "CNS2014-CNS_MUL-Weekday-00-4165893", "CNS2014-CNS_MUL-Weekday-00-4165921"
    assert cairns.trips[out].direction_id != cairns.trips[back].direction_id
    named = cairns.trips[back]
    pings = [
        dataclasses.replace(p, trip_id=back, route_id=named.route_id, direction_id=named.direction_id,
                            start_date=DAY.strftime("%Y%m%d"))
        for p in _late_run(cairns, out, -150.0, seed=1)
    ]
    engine = Engine(cairns)
    trips = [o.state.trip_id for o in map(engine.process, pings) if o.state is not None]
    assert set(trips) == {out}


def _moving(network: Network, pings: list[Ping]) -> list[Ping]:
    """The pings with the speed and bearing a device reports, from each fix to the next."""
    out = []
    for ping, following in zip(pings, pings[1:], strict=False):
        x0, y0 = network.projection.point_xy(ping.latitude, ping.longitude)
        x1, y1 = network.projection.point_xy(following.latitude, following.longitude)
        speed = math.hypot(x1 - x0, y1 - y0) / (following.timestamp - ping.timestamp)
        bearing = math.degrees(math.atan2(x1 - x0, y1 - y0)) % 360.0 if speed > 2.0 else None
        out.append(dataclasses.replace(ping, speed=speed, bearing=bearing))
    return [*out, pings[-1]]


def _standing(network: Network, trip_id: str, start: float, end: float, named: str) -> list[Ping]:
    """A bus standing at `trip_id`'s first stop from `start` to `end`, every 30 s, its device naming `named`."""
    trip = network.trips[trip_id]
    lat, lon = _lat_lon(network, _xy(network, trip.shape_id, float(trip.stop_dist[0])))
    return [
        Ping("bus-1", float(t), lat, lon, speed=0.0, trip_id=named)
        for t in np.arange(start, end, 30.0)
    ]


def test_a_bus_at_the_stand_of_its_next_trip_runs_it_before_the_later_trip_its_device_names(cairns: Network) -> None:
    """A bus ends its trip at the stand its next trip leaves from, and its device names a trip of the route two
    hours later: the bus stands for the trip due first (riders of that trip see it there, not a timetable with no
    bus), unless it is still standing well after that trip has gone."""
    ending = "CNS2014-CNS_MUL-Weekday-00-4166383"
    named = "CNS2014-CNS_MUL-Weekday-00-4166402"  # from the same stand, two hours after the next trip
    engine = Engine(cairns)
    planned = _planned_after(engine, ending)
    assert cairns.trips[planned].stop_ids[0] == cairns.trips[named].stop_ids[0]
    before, _ = trip_pings(cairns, ending, DAY, interval_s=30.0, noise_m=5.0, with_trip_id=True)
    departs = cairns.service_day_origin(DAY) + float(cairns.trips[planned].departure[0])
    overdue = departs + engine.ctx.config.stand_overdue_s
    waiting = _standing(cairns, planned, before[-1].timestamp + 30.0, overdue + 300.0, named)
    for ping in before:
        engine.process(ping)
    states = [(p.timestamp, engine.process(p).state) for p in waiting]

    assert {s.trip_id for t, s in states if s is not None and t <= departs} == {planned}
    assert {s.trip_id for t, s in states if s is not None and t > overdue + 60.0} == {named}


def test_a_bus_whose_device_names_the_trip_inference_gave_it_keeps_it_however_late_it_leaves(
    cairns: Network,
) -> None:
    """A bus is put on its trip by inference while it waits at the stand; then its device names that same trip.
    It leaves 35 minutes late: the device's word holds, as for a trip the device named first, and the bus is not
    moved onto the route's next trip, which the timetable alone would fit better."""
    pings, _ = trip_pings(cairns, ROUTE_120_TRIP, DAY, interval_s=30.0, noise_m=5.0, with_trip_id=True)
    late_s = 35 * 60.0
    stand = pings[0]
    waiting = [
        dataclasses.replace(stand, timestamp=stand.timestamp - 300.0 + 30.0 * k, speed=0.0,
                            trip_id=None if k < 3 else stand.trip_id, start_date=None if k < 3 else stand.start_date)
        for k in range(int((300.0 + late_s) / 30.0))
    ]
    driving = [dataclasses.replace(p, timestamp=p.timestamp + late_s) for p in pings[1:]]
    engine = Engine(cairns)
    outs = [engine.process(p) for p in [*waiting, *driving]]

    assert outs[0].state is not None and outs[0].state.trip_id == ROUTE_120_TRIP  # inference's own choice
    assert {out.state.trip_id for out in outs if out.state is not None} == {ROUTE_120_TRIP}
    reported = {e.stop_sequence for out in outs for e in out.events if e.trip_id == ROUTE_120_TRIP}
    assert len(reported) >= len(cairns.trips[ROUTE_120_TRIP].stop_ids) - 1


def test_a_device_naming_the_trip_another_bus_runs_by_its_own_device_does_not_take_it_over(cairns: Network) -> None:
    """Two devices name one trip: bus-1 runs it, and says so; bus-2, on the route's trip the other way at the
    same time, was set up with bus-1's trip. Both cannot be right, and the bus already on the trip keeps it:
    bus-2 is found on its own trip, and riders of bus-1's trip are not shown bus-2."""
    other_way = "CNS2014-CNS_MUL-Weekday-00-4166400"  # route 120 the other way, during ROUTE_120_TRIP
    first, _ = trip_pings(cairns, ROUTE_120_TRIP, DAY, "bus-1", noise_m=5.0, with_trip_id=True, lead_s=120.0)
    second, _ = trip_pings(cairns, other_way, DAY, "bus-2", noise_m=5.0, seed=1, with_trip_id=True, lead_s=120.0)
    second = [dataclasses.replace(p, trip_id=ROUTE_120_TRIP) for p in second]
    engine = Engine(cairns)
    states: dict[str, list[str | None]] = {"bus-1": [], "bus-2": []}
    for ping in sorted([*first, *second], key=lambda p: p.timestamp):
        state = engine.process(ping).state
        states[ping.vehicle_id].append(state.trip_id if state is not None else None)

    assert set(states["bus-1"]) == {ROUTE_120_TRIP}
    assert ROUTE_120_TRIP not in states["bus-2"]
    assert states["bus-2"].count(other_way) >= 0.9 * len(states["bus-2"])


def test_a_device_naming_a_trip_another_bus_ran_to_its_end_does_not_run_it_again(cairns: Network) -> None:
    """A trip runs once a day: after bus-1, its device naming the trip, has run it to its end, bus-2 along the
    trip's last stretch 20 minutes behind, its device set up with the same trip, is not put on it (it would
    fit a bus running late on it): riders of that trip are not shown a bus after theirs has come."""
    first, _ = trip_pings(cairns, ROUTE_120_TRIP, DAY, "bus-1", noise_m=5.0, with_trip_id=True)
    last_stretch = [p for p in first if p.timestamp >= first[-1].timestamp - 900.0]
    second = [dataclasses.replace(p, vehicle_id="bus-2", timestamp=p.timestamp + 1200.0) for p in last_stretch]
    engine = Engine(cairns)
    for ping in first:
        engine.process(ping)
    assert engine.tracker("bus-1").s.finished == (engine.ctx.day(DAY).service_date, ROUTE_120_TRIP)
    trips = {out.state.trip_id for out in map(engine.process, second) if out.state is not None}

    assert ROUTE_120_TRIP not in trips


def test_a_bus_first_heard_at_the_stand_of_its_next_trip_after_a_gap_runs_it_before_the_later_trip_named(
    cairns: Network,
) -> None:
    """As above, but the bus, its trip inferred (its device named none), ends that trip during a GPS gap: it is
    next heard standing at the stand, still on the trip before as far as the tracker knows, its device now naming
    the later trip. It runs the one due first."""
    ending = "CNS2014-CNS_MUL-Weekday-00-4166383"
    named = "CNS2014-CNS_MUL-Weekday-00-4166402"
    engine = Engine(cairns)
    planned = _planned_after(engine, ending)
    before, _ = trip_pings(cairns, ending, DAY, interval_s=30.0, noise_m=5.0)
    heard = [p for p in before if p.timestamp < before[-1].timestamp - 300.0]  # silent for its last 5 minutes
    departs = cairns.service_day_origin(DAY) + float(cairns.trips[planned].departure[0])
    waiting = _standing(cairns, planned, before[-1].timestamp + 60.0, departs - 60.0, named)
    for ping in heard:
        engine.process(ping)
    states = [engine.process(p).state for p in waiting]

    assert {s.trip_id for s in states[1:] if s is not None} == {planned}


# Route 142's trip 4180087 ends at a stop its next trip from that terminal (4180066, the same route) passes
# about a kilometre after its own first stop: a bus running late on the last stretch of 4180087 is, on the
# timetable alone, a bus on 4180066 a kilometre out.
ENDS_ON_NEXT_TRIPS_LINE = "CNS2014-CNS_MUL-Weekday-00-4180087"


def test_a_late_bus_on_the_last_stretch_of_its_trip_finishes_it_rather_than_skip_into_the_next(
    cairns: Network,
) -> None:
    trip = cairns.trips[ENDS_ON_NEXT_TRIPS_LINE]
    pings, dists = trip_pings(cairns, ENDS_ON_NEXT_TRIPS_LINE, DAY, interval_s=30.0, noise_m=10.0, seed=2, pace=1.3)
    engine = Engine(cairns)
    states = [out.state for out in map(engine.process, pings)]
    joined = next(k for k, s in enumerate(states) if s is not None and s.trip_id == ENDS_ON_NEXT_TRIPS_LINE)
    before_end = [k for k, d in enumerate(dists) if d < float(trip.stop_dist[-1]) - 300.0]
    wrong = [(k, s.trip_id) for k in before_end[joined:] if (s := states[k]) is not None and s.trip_id != trip.trip_id]
    assert not wrong, f"moved off its trip before its end: {wrong[:3]}"


# Route 110's trip 4165900 ends 70 m off the line of the route's next trip from that terminal, 4165930, beside
# a point some 300 m beyond its first stop: the bus sets its riders down, then goes back round to the stand.
ENDS_BESIDE_NEXT_TRIPS_LINE = "CNS2014-CNS_MUL-Weekday-00-4165900"
NEXT_FROM_THE_STAND = "CNS2014-CNS_MUL-Weekday-00-4165930"


def test_a_bus_going_back_to_the_stand_of_its_next_trip_waits_for_it_there_not_part_way_along_it(
    cairns: Network,
) -> None:
    ended, following = cairns.trips[ENDS_BESIDE_NEXT_TRIPS_LINE], cairns.trips[NEXT_FROM_THE_STAND]
    pings, _ = trip_pings(cairns, ENDS_BESIDE_NEXT_TRIPS_LINE, DAY, interval_s=30.0, with_trip_id=True)
    engine = Engine(cairns)
    for ping in pings:
        engine.process(ping)
    end_xy = _xy(cairns, ended.shape_id, float(ended.stop_dist[-1]))
    stand_xy = _xy(cairns, following.shape_id, float(following.stop_dist[0]))
    # a minute at the end of the trip, two minutes' drive to the stand, then the wait there until departure
    departs = cairns.service_day_origin(DAY) + float(following.departure[0])
    t0 = pings[-1].timestamp
    fixes = [(t0 + 30.0 * k, end_xy, 0.0) for k in (1, 2)]
    fixes += [(t0 + 60.0 + 30.0 * k, end_xy + (stand_xy - end_xy) * k / 4, 5.0) for k in range(1, 4)]
    fixes += [(ts, stand_xy, 0.0) for ts in np.arange(t0 + 180.0, departs - 10.0, 30.0)]
    states = []
    for ts, xy, speed in fixes:
        states.append(engine.process(Ping("bus-1", float(ts), *_lat_lon(cairns, xy), speed=speed)).state)

    assert all(s is not None and s.trip_id == NEXT_FROM_THE_STAND for s in states)
    moved_on = [(s.status, s.shape_dist) for s in states if s is not None and s.status not in ("layover", "at_stop")]
    assert not moved_on, "waiting for its trip, not under way on it"
    assert {s.shape_dist for s in states if s is not None} == {round(float(following.stop_dist[0]), 2)}


def _xy(network: Network, shape_id: str, dist: float) -> np.ndarray:
    """The point `dist` metres along a shape, in the network's projection."""
    shape = network.shapes[shape_id]
    return np.array([np.interp(dist, shape.dist, shape.xy[:, 0]), np.interp(dist, shape.dist, shape.xy[:, 1])])


def _lat_lon(network: Network, xy: np.ndarray) -> tuple[float, float]:
    lat, lon = network.projection.to_latlon(np.array([xy[0]]), np.array([xy[1]]))
    return float(lat[0]), float(lon[0])


# Route 141's trip 4179908 comes in along the street its next trip from the terminal, 4179934, leaves by: the
# next trip's second stop lies on 4179908's line some 430 m before its end.
COMES_IN_THE_WAY_THE_NEXT_LEAVES = "CNS2014-CNS_MUL-Weekday-00-4179908"
LEAVES_THE_WAY_IT_CAME = "CNS2014-CNS_MUL-Weekday-00-4179934"


def test_a_bus_heard_again_after_a_silence_on_the_street_its_next_trip_leaves_by_is_on_that_trip(
    cairns: Network,
) -> None:
    ending, following = cairns.trips[COMES_IN_THE_WAY_THE_NEXT_LEAVES], cairns.trips[LEAVES_THE_WAY_IT_CAME]
    pings, dists = trip_pings(cairns, COMES_IN_THE_WAY_THE_NEXT_LEAVES, DAY, interval_s=30.0, noise_m=5.0, seed=3)
    late = 300.0  # five minutes late: it ends its trip ten minutes before the next one leaves
    heard = [dataclasses.replace(p, timestamp=p.timestamp + late) for p, d in zip(pings, dists, strict=True)
             if d <= float(ending.stop_dist[-2]) + 80.0]
    # silent from just past the stop before the last until it has left on the next trip and passed its second stop
    again_at = cairns.service_day_origin(DAY) + float(following.departure[1]) + 30.0
    lat, lon = _lat_lon(cairns, _xy(cairns, following.shape_id, float(following.stop_dist[1]) + 150.0))
    engine = Engine(cairns)
    events = [e for p in heard for e in engine.process(p).events]
    out = engine.process(Ping("bus-1", again_at, lat, lon, speed=9.0))
    events += out.events

    # on the next trip, past its second stop (whose events wait, as for any guess, until the trip is confirmed)
    assert out.state is not None and out.state.trip_id == LEAVES_THE_WAY_IT_CAME
    assert out.state.shape_dist is not None and out.state.shape_dist > float(following.stop_dist[1])
    reported = {(e.trip_id, e.stop_sequence) for e in events}
    assert (COMES_IN_THE_WAY_THE_NEXT_LEAVES, int(ending.stop_sequences[-1])) in reported  # its trip ended


# At The Pier, Cairns, buses set down at Stop E; route 111 leaves from Stop A, 90 m away, route 143 from Stop D,
# 21 m from Stop E. Route 111's trip 4166131 ends at Stop E; the day's plan gives its bus 4166160 from Stop A next.
SETS_DOWN_BY_ANOTHER_ROUTES_STAND = "CNS2014-CNS_MUL-Weekday-00-4166131"
NEXT_FROM_ITS_OWN_STAND = "CNS2014-CNS_MUL-Weekday-00-4166160"


def test_a_bus_set_down_nearer_another_route_s_stand_than_its_own_waits_for_its_own_trip(cairns: Network) -> None:
    ending, following = cairns.trips[SETS_DOWN_BY_ANOTHER_ROUTES_STAND], cairns.trips[NEXT_FROM_ITS_OWN_STAND]
    engine = Engine(cairns)
    assert _planned_after(engine, SETS_DOWN_BY_ANOTHER_ROUTES_STAND) == NEXT_FROM_ITS_OWN_STAND
    # ten minutes late: it ends its trip a few minutes before the next one is due out
    pings, _ = trip_pings(cairns, SETS_DOWN_BY_ANOTHER_ROUTES_STAND, DAY, noise_m=5.0, seed=5, pace=1.17)
    for ping in pings:
        engine.process(ping)
    set_down = _xy(cairns, ending.shape_id, float(ending.stop_dist[-1]))
    stand = _xy(cairns, following.shape_id, float(following.stop_dist[0]))
    assert 60.0 < float(np.hypot(*(stand - set_down))) < 150.0
    departs = cairns.service_day_origin(DAY) + float(following.departure[0])
    t0 = pings[-1].timestamp
    # a minute where it set its riders down, a minute's crawl to its stand, then the wait there
    fixes = [(t0 + 30.0 * k, set_down, 0.0) for k in (1, 2)]
    fixes += [(t0 + 60.0 + 30.0 * k, set_down + (stand - set_down) * k / 2, 1.5) for k in (1, 2)]
    fixes += [(ts, stand, 0.0) for ts in np.arange(t0 + 150.0, departs - 10.0, 30.0)]
    assert len(fixes) > 8
    states = [engine.process(Ping("bus-1", float(ts), *_lat_lon(cairns, xy), speed=v)).state for ts, xy, v in fixes]
    trips = [s.trip_id if s is not None else None for s in states]
    # the first fix may still report the trip it ended (its riders getting off); then only its own next trip
    assert set(trips[:1]) <= {SETS_DOWN_BY_ANOTHER_ROUTES_STAND, NEXT_FROM_ITS_OWN_STAND}
    assert set(trips[1:]) == {NEXT_FROM_ITS_OWN_STAND}


# Route 121's trip 4166549 is its bus's last of the day's plan (the plan gives the route's next trip from there,
# 4166565, to a bus that got there first); it ends at The Pier, by the stand route 143's 4180617 leaves from 28
# minutes later.
LAST_OF_ITS_DUTY = "CNS2014-CNS_MUL-Weekday-00-4166549"
ROUTE_S_NEXT_FROM_THERE = "CNS2014-CNS_MUL-Weekday-00-4166565"
LEAVES_LATER_FROM_BESIDE_IT = "CNS2014-CNS_MUL-Weekday-00-4180617"


def test_a_bus_done_with_its_day_s_trips_claims_no_later_trip_while_it_stands_but_is_tracked_once_it_sets_off(
    cairns: Network,
) -> None:
    engine = Engine(cairns)
    day = engine.ctx.day(DAY)
    assert engine.ctx.chains.next_trip(day.service_date, LAST_OF_ITS_DUTY) is None
    ending, later = cairns.trips[LAST_OF_ITS_DUTY], cairns.trips[LEAVES_LATER_FROM_BESIDE_IT]
    pings, _ = trip_pings(cairns, LAST_OF_ITS_DUTY, DAY, noise_m=5.0, seed=6, with_trip_id=True)
    engine.process(Ping("other", pings[0].timestamp, pings[0].latitude, pings[0].longitude))
    engine.ctx.claims[(day.service_date, ROUTE_S_NEXT_FROM_THERE)] = "other"  # the bus that runs it, heard lately
    for ping in pings:
        engine.ctx.heard["other"] = ping.timestamp
        engine.process(ping)
    assert engine.tracker("bus-1").s.finished == (day.service_date, LAST_OF_ITS_DUTY)
    assert engine.tracker("bus-1").trip_id is None
    set_down = _xy(cairns, ending.shape_id, float(ending.stop_dist[-1]))
    stand = _xy(cairns, later.shape_id, float(later.stop_dist[0]))
    assert float(np.hypot(*(stand - set_down))) < 50.0
    t0 = pings[-1].timestamp
    standing = []
    for k in range(1, 11):
        engine.ctx.heard["other"] = t0 + 30.0 * k
        standing.append(engine.process(Ping("bus-1", t0 + 30.0 * k, *_lat_lon(cairns, set_down), speed=0.0)).state)
    # reported where it ended its trip; riders of the later trip are not shown this bus, and the bus the plan
    # gives that trip is free to take it
    assert {(s.trip_id, s.status) for s in standing if s is not None} == {(LAST_OF_ITS_DUTY, "at_stop")}
    assert engine.ctx.holder(day.service_date, LEAVES_LATER_FROM_BESIDE_IT) is None

    # the bus does run that trip after all (the plan is a guess where the feed gives no blocks): tracked on it
    off, _ = trip_pings(cairns, LEAVES_LATER_FROM_BESIDE_IT, DAY, noise_m=5.0, seed=7)
    outs = [engine.process(p) for p in off[1:12]]
    assert outs[-1].state is not None and outs[-1].state.trip_id == LEAVES_LATER_FROM_BESIDE_IT


def _late_run(network: Network, trip_id: str, late_s: float, seed: int, named: bool = False) -> list[Ping]:
    """`trip_id` run `late_s` late throughout, from its first stop on; `named`: its device names it."""
    pings, _ = trip_pings(network, trip_id, DAY, noise_m=5.0, seed=seed, with_trip_id=named)
    return _moving(network, [dataclasses.replace(p, timestamp=p.timestamp + late_s) for p in pings])


def _on_to_next_trip_late(engine: Engine, before: str, late_s: float, other: str | None = None) -> list[str | None]:
    """A bus runs `before` `late_s` late (its device naming it), stands a minute at the first stop of the trip the
    day's plan gives it next, then runs that trip as late as it got there (its device naming none); its trip at
    every fix from its departure. `other` is heard on every fix (a bus on its way somewhere)."""
    cairns = engine.ctx.network
    following = _planned_after(engine, before)
    came = _late_run(cairns, before, late_s, seed=8, named=True)
    ended = came[-1].timestamp
    due = cairns.service_day_origin(DAY) + float(cairns.trips[following].departure[0])
    off = _late_run(cairns, following, ended + 60.0 - due, seed=9)
    standing = [dataclasses.replace(off[0], timestamp=ended + wait) for wait in (30.0, 60.0)]
    trips = []
    for k, ping in enumerate([*came, *standing, *off[1:]]):
        if other is not None:
            engine.ctx.heard[other] = ping.timestamp
        out = engine.process(ping)
        if k >= len(came) + len(standing):
            trips.append(out.state.trip_id if out.state is not None else None)
    return trips


def test_a_bus_leaving_its_terminal_late_is_not_taken_for_on_time_on_the_route_s_next_trip(cairns: Network) -> None:
    """Route 142 leaves every 30 minutes from one stand. A bus that ends its trip there 26 minutes late and leaves
    a minute later on its next runs that one 22 minutes late: it is not on the route's trip after, due out 8 minutes
    after the bus left (no bus leaves its terminal that early), nor coming in on the trip before that, whose line
    loops round the terminal by the street the bus leaves along."""
    engine = Engine(cairns)
    before = "CNS2014-CNS_MUL-Weekday-00-4180054"
    following = _planned_after(engine, before)
    trips = _on_to_next_trip_late(engine, before, late_s=26 * 60.0)
    assert len(trips) > 60
    assert set(trips) == {following}


def test_a_late_bus_on_its_planned_trip_keeps_it_on_a_street_where_another_route_s_trip_fits_better(
    cairns: Network,
) -> None:
    """Routes 142 and 140 leave from one stop and share their first 9 km. A route 142 bus leaving 20 minutes late
    fits route 140's trip due out then, on time, better than its own; but the bus the day's plan gives that trip
    is still on its way in on the trip before, and riders of both would be shown the wrong bus."""
    engine = Engine(cairns)
    day = engine.ctx.day(DAY)
    before, route_140 = "CNS2014-CNS_MUL-Weekday-00-4180087", "CNS2014-CNS_MUL-Weekday-00-4173204"
    coming = engine.ctx.chains.previous_trip(day.service_date, route_140)
    assert coming is not None
    first = cairns.trips[route_140]
    engine.process(Ping("other", cairns.service_day_origin(DAY) + float(first.departure[0]) - 3600.0,
                        *_lat_lon(cairns, _xy(cairns, first.shape_id, 0.0))))
    # the bus for route 140's trip is on its way in; other routes' trips leaving about then have their buses
    # (one vehicle stands for all of them here: what counts is that each is run by a bus heard lately)
    engine.ctx.claims[(day.service_date, coming)] = "other"
    for trip_id in cairns.trips_on(DAY):
        trip = cairns.trips[trip_id]
        if trip.route_id not in (first.route_id, cairns.trips[before].route_id) and (
            abs(trip.start_time - first.start_time) < 1800.0
        ):
            engine.ctx.claims[(day.service_date, trip_id)] = "other"
    following = _planned_after(engine, before)
    trips = _on_to_next_trip_late(engine, before, late_s=20 * 60.0, other="other")
    assert len(trips) > 60
    assert set(trips) == {following}


def test_a_bus_at_its_stand_a_headway_late_leaves_on_its_planned_trip_not_on_one_due_an_hour_on(
    cairns: Network,
) -> None:
    """Simulated pings (tests/data/pings/README.md), trip fields removed: a bus ends its trip 28 minutes late at
    the stand of its next, 4166127, and sets off on it two minutes later. The route's next departure, on time
    then, has its own bus on its way in; a trip due out an hour and a half later fits a bus standing at the stand
    as well as any. The bus is not taken for one waiting that long, then for the other bus's trip once it moves:
    it runs the trip the day's plan gives it, as late as it got there."""
    from collections import Counter
    from pathlib import Path

    from eta.replay import read_pings

    engine = Engine(cairns)
    pings = Path(__file__).parents[1] / "data" / "pings" / "late_bus_at_its_stand.csv"
    trips = []
    for ping in read_pings(pings, Counter()):
        out = engine.process(ping)
        if ping.vehicle_id == "bus-0018" and ping.timestamp > 1715642830.0 and out.state is not None:
            trips.append(out.state.trip_id)
    assert len(trips) > 20
    assert set(trips) == {"CNS2014-CNS_MUL-Weekday-00-4166127"}


@pytest.mark.parametrize(
    ("before", "late_min"),
    [("CNS2014-CNS_MUL-Weekday-00-4180087", 20), ("CNS2014-CNS_MUL-Weekday-00-4173226", 30)],
    ids=["route 142 on route 140's street", "route 140 on the street of routes 142 and 113"],
)
def test_a_late_bus_on_its_planned_trip_keeps_it_where_another_route_s_trip_fits_better_and_no_bus_is_heard_for_it(
    cairns: Network, before: str, late_min: int
) -> None:
    """As above, but no other bus reports (their devices are off, or the agency equips only some): nothing says
    the other routes' trips have buses of their own. A bus that came off its last trip late and set off on the next
    as late is still on its own route's line, which the timetable alone cannot tell from the others' here."""
    engine = Engine(cairns)
    following = _planned_after(engine, before)
    trips = _on_to_next_trip_late(engine, before, late_s=late_min * 60.0)
    assert len(trips) > 60
    assert set(trips) == {following}


# At The Pier, route 150's trip 4179079 leaves from Stop C and route 143's 4180713 from Stop D, 19 m away, both at
# 19:15: GPS error makes one fix no evidence of which stand a bus waits at.
FROM_STOP_C, FROM_STOP_D = "CNS2014-CNS_MUL-Weekday-00-4179079", "CNS2014-CNS_MUL-Weekday-00-4180713"


def test_two_buses_waiting_at_stands_a_few_metres_apart_run_the_trips_leaving_from_where_they_wait(
    cairns: Network,
) -> None:
    from eta.assignment import stand_point

    engine = Engine(cairns)
    departs = cairns.service_day_origin(DAY) + float(cairns.trips[FROM_STOP_C].departure[0])
    assert departs == cairns.service_day_origin(DAY) + float(cairns.trips[FROM_STOP_D].departure[0])
    at_c, at_d = (np.array(stand_point(engine.ctx, t)) for t in (FROM_STOP_C, FROM_STOP_D))
    assert 10.0 < float(np.hypot(*(at_c - at_d))) < 30.0
    rng = np.random.default_rng(11)

    def fix(vehicle: str, ts: float, xy: np.ndarray) -> None:
        engine.process(Ping(vehicle, ts, *_lat_lon(cairns, xy + rng.normal(0.0, 3.0, 2)), speed=0.0))

    # bus-d's first fix, blown towards Stop C, makes it route 150's bus; bus-c, heard a minute later at Stop C,
    # is left route 143's trip. Then both wait ten minutes where they are.
    fix("bus-d", departs - 700.0, at_c)
    fix("bus-c", departs - 640.0, at_c)
    assert (engine.tracker("bus-d").trip_id, engine.tracker("bus-c").trip_id) == (FROM_STOP_C, FROM_STOP_D)
    for ts in np.arange(departs - 670.0, departs - 60.0, 30.0):
        fix("bus-d", float(ts), at_d)
        fix("bus-c", float(ts) + 5.0, at_c)

    assert (engine.tracker("bus-d").trip_id, engine.tracker("bus-c").trip_id) == (FROM_STOP_D, FROM_STOP_C)


def test_the_stops_an_inferred_trip_held_back_are_reported_when_the_device_then_names_that_trip(
    cairns: Network,
) -> None:
    """A device that sends no trip at first: the trip inferred for it is checked against its rivals before its
    stop events go out, and they are held meanwhile. When the device then names that same trip, the trip is
    confirmed and the held events go out with that fix's own."""
    pings, _ = trip_pings(cairns, ROUTE_120_TRIP, DAY, interval_s=30.0, seed=1)
    named = [dataclasses.replace(p, trip_id=ROUTE_120_TRIP, start_date=DAY.strftime("%Y%m%d")) for p in pings[4:14]]
    engine = Engine(cairns)
    reported = {e.stop_sequence for p in [*pings[:4], *named] for e in engine.process(p).events}
    first_two = {int(q) for q in cairns.trips[ROUTE_120_TRIP].stop_sequences[:2]}  # passed by the 14th fix
    assert first_two <= reported, f"stops {sorted(first_two - reported)} never reported"
