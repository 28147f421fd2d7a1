"""When a bus reached a stop, as a rider or an analyst would check it against a stopwatch.

Pings are laid out by hand along a Cairns trip, with the speeds a device reports, so that each test shows one
situation the tracker must read right: GPS error putting a fix on the wrong side of the stop, and a long
silence over several stops.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from eta.engine import Engine
from eta.network import Network
from eta.stop_timing import covered, pace
from smartbus.messages import Ping, StopEvent

DAY = dt.date(2014, 6, 3)  # a Tuesday inside the Cairns calendar


class Run:
    """One bus on one trip, with a ping at any distance along the shape and a GPS error we choose."""

    def __init__(self, network: Network) -> None:
        self.network = network
        ids = network.trips_on(DAY)
        self.trip_id = max(ids[:200], key=lambda t: len(network.trips[t].stop_ids))
        self.trip = network.trips[self.trip_id]
        self.shape = network.shapes[self.trip.shape_id]
        self.origin = network.service_day_origin(DAY)
        self.engine = Engine(network)
        self.events: dict[int, StopEvent] = {}

    def stop_with_long_runs(self, metres: float) -> int:
        """A stop with at least `metres` of street on either side of it."""
        gaps = np.diff(self.trip.stop_dist)
        return next(i for i in range(2, len(gaps) - 1) if gaps[i - 1] >= metres and gaps[i] >= metres)

    def ping(self, ts: float, dist: float, speed: float) -> None:
        x = float(np.interp(dist, self.shape.dist, self.shape.xy[:, 0]))
        y = float(np.interp(dist, self.shape.dist, self.shape.xy[:, 1]))
        lat, lon = self.network.projection.to_latlon(np.array([x]), np.array([y]))
        ping = Ping(
            "bus-1", ts, float(lat[0]), float(lon[0]), speed=speed, trip_id=self.trip_id,
            start_date=DAY.strftime("%Y%m%d"),
        )
        for event in self.engine.process(ping).events:
            self.events[event.stop_sequence] = event

    def arrival(self, i: int) -> float:
        event = self.events.get(int(self.trip.stop_sequences[i]))
        assert event is not None, f"no arrival reported at stop index {i}"
        return event.arrival_time


def _brake_in(run: Run, i: int, leave_prev: float, duration: float, u: float) -> tuple[float, float, float]:
    """(time, distance, speed) at share `u` of the run from stop i-1 (left at `leave_prev`) to stop i, a bus
    pulling away from one stop and braking into the next."""
    prev, stop = float(run.trip.stop_dist[i - 1]), float(run.trip.stop_dist[i])
    length = stop - prev
    return leave_prev + u * duration, prev + length * covered(u, "both"), length * pace(u, "both") / duration


def _start_trip_before(run: Run, i: int, at: float) -> None:
    """Fixes at the stop before `i`, standing, then leaving at `at`: the trip is under way and timed."""
    prev = float(run.trip.stop_dist[i - 1])
    run.ping(at - 60.0, prev, 0.0)
    run.ping(at - 30.0, prev, 0.0)


def _run_in(run: Run, duration: float, shares: tuple[float, ...]) -> tuple[int, float, float]:
    """A bus leaving on time the stop before one with long runs either side, seen at `shares` of its
    `duration` s run in: (the stop's index, its distance, when the bus gets there)."""
    i = run.stop_with_long_runs(300.0)
    leave_prev = run.origin + float(run.trip.departure[i - 1])
    _start_trip_before(run, i, leave_prev)
    for u in shares:
        run.ping(*_brake_in(run, i, leave_prev, duration, u))
    return i, float(run.trip.stop_dist[i]), leave_prev + duration


def test_a_bus_gps_puts_short_of_the_stop_as_it_pulls_away_arrived_when_its_run_in_ended(cairns: Network) -> None:
    run = Run(cairns)
    i, stop, arrived = _run_in(run, 80.0, (0.45, 0.85))
    dwell = 25.0
    # pulling away 4 s after a 25 s stand, but a few metres of GPS error put the fix 5 m short of the stop
    run.ping(arrived + dwell + 4.0, stop - 5.0, 1.5)
    run.ping(arrived + dwell + 34.0, stop + 150.0, 8.0)
    assert abs(run.arrival(i) - arrived) <= 5.0, "the arrival, not the moment it was seen leaving"


def test_a_bus_gps_puts_past_the_stop_while_it_brakes_in_arrived_when_it_got_there(cairns: Network) -> None:
    run = Run(cairns)
    i, stop, arrived = _run_in(run, 100.0, (0.4, 0.75))
    ts, _, speed = _brake_in(run, i, arrived - 100.0, 100.0, 0.92)  # 8 s and 9 m before the stop
    run.ping(ts, stop + 3.0, speed)  # GPS error: 12 m along the street, past the stop
    run.ping(arrived + 12.0, stop, 0.0)  # standing at the stop
    run.ping(arrived + 45.0, stop + 200.0, 9.0)
    assert abs(run.arrival(i) - arrived) <= 3.0, "the arrival, not the fix GPS put past the stop"


def _drive(run: Run, start: float, at: float, stops: range, stand: float) -> dict[int, float]:
    """Arrival times at `stops` of a bus leaving distance `at` at time `start`: 10% slower than the timetable
    between stops (the timetable knows which streets are slow), and `stand` s at each."""
    stop_dist, arrival, departure = run.trip.stop_dist, run.trip.arrival, run.trip.departure
    truth: dict[int, float] = {}
    clock = start
    for k in stops:
        length = float(stop_dist[k] - stop_dist[k - 1])
        share = (float(stop_dist[k]) - at) / length if length > 0 else 1.0
        clock += 1.1 * share * float(arrival[k] - departure[k - 1])
        truth[k] = clock
        clock, at = clock + stand, float(stop_dist[k])
    return truth


def _heard_short_of_a_stop_then_silent(run: Run, speed: float, stand: float) -> tuple[int, int, dict[int, float]]:
    """A bus heard on its way to stop i, 250 m short of it, then silent over stops i to i + 4 (see `_drive`):
    (i, i + 4, the true arrival at each of them)."""
    stop_dist = run.trip.stop_dist.tolist()
    i = run.stop_with_long_runs(300.0)
    last = i + 4
    start_dist = stop_dist[i] - 250.0
    t0 = run.origin + float(run.trip.arrival[i]) - 250.0 / speed
    truth = _drive(run, t0, start_dist, range(i, last + 1), stand)
    for back in (60.0, 30.0):
        run.ping(t0 - back, start_dist - speed * back, speed)
    run.ping(t0, start_dist, speed)
    return i, last, truth


def _heard_standing_at_a_stop(run: Run, speed: float, after_s: float) -> tuple[list[float], int, float]:
    """A bus heard running in to stop i (60 and 30 s out), then standing at it `after_s` after it got there:
    (every stop's distance, i, the true arrival at stop i)."""
    stop_dist = run.trip.stop_dist.tolist()
    i = run.stop_with_long_runs(300.0)
    arrived = run.origin + float(run.trip.arrival[i])
    run.ping(arrived - 60.0, stop_dist[i] - 60.0 * speed, speed)
    run.ping(arrived - 30.0, stop_dist[i] - 30.0 * speed, speed)
    run.ping(arrived + after_s, stop_dist[i], 0.0)
    return stop_dist, i, arrived


def test_stops_passed_while_silent_get_the_silence_shared_out_not_piled_on_the_first(cairns: Network) -> None:
    run = Run(cairns)
    # the tracker hears the bus before stop i, then not again until it is past stop i + 4
    speed, stand = 8.0, 25.0
    i, last, truth = _heard_short_of_a_stop_then_silent(run, speed, stand)
    run.ping(truth[last] + stand + 150.0 / speed, float(run.trip.stop_dist[last]) + 150.0, speed)
    errors = [run.arrival(k) - truth[k] for k in range(i, last + 1)]
    assert all(run.events[int(run.trip.stop_sequences[k])].interpolated for k in range(i, last + 1))
    assert max(abs(e) for e in errors) <= 15.0, f"arrival errors {[round(e) for e in errors]} s"


def test_a_stop_driven_past_right_after_leaving_the_last_is_reached_when_the_bus_got_there(
    cairns: Network,
) -> None:
    run = Run(cairns)
    gaps = np.diff(run.trip.stop_dist)
    # a short run (200-300 m) from a stop the bus stood at to one it drives past, then one of 300-500 m
    i = next(k for k in range(2, len(gaps) - 1) if 200.0 <= gaps[k - 1] <= 300.0 and 300.0 <= gaps[k] <= 500.0)
    stop, length = float(run.trip.stop_dist[i]), float(gaps[i - 1])
    passed_at = run.origin + float(run.trip.arrival[i])
    # standing at the stop before until 23 s earlier, then away without stopping at stop i
    leave = passed_at - 23.0 * length / 240.0
    _start_trip_before(run, i, leave)
    run.ping(leave, float(run.trip.stop_dist[i - 1]), 0.0)
    run.ping(passed_at + 5.0, stop + 70.0, 14.0)
    assert abs(run.arrival(i) - passed_at) <= 10.0, "when it passed, not when it left the stop before"


def test_a_bus_standing_at_the_stop_that_gps_puts_25_m_short_arrived_when_its_run_in_ended(
    cairns: Network,
) -> None:
    run = Run(cairns)
    i, stop, arrived = _run_in(run, 80.0, (0.45, 0.85))
    run.ping(arrived + 15.0, stop - 25.0, 0.0)  # standing at the stop; GPS error puts it 25 m short
    run.ping(arrived + 45.0, stop + 150.0, 8.0)
    assert abs(run.arrival(i) - arrived) <= 5.0, "the arrival, not the first fix seen past the stop"



def test_stops_passed_while_silent_after_a_stand_at_a_stop_are_not_put_late_by_the_stops_between(
    cairns: Network,
) -> None:
    run = Run(cairns)
    speed, stand = 8.0, 25.0
    # heard running in to stop i and standing at it; then nothing until it is past stop i + 4
    stop_dist, i, arrived = _heard_standing_at_a_stop(run, speed, after_s=10.0)
    left = arrived + stand
    truth = _drive(run, left, stop_dist[i], range(i + 1, i + 5), stand)
    run.ping(truth[i + 4] + stand + 150.0 / speed, stop_dist[i + 4] + 150.0, speed)
    # the fix after the silence cannot time the departure from stop i as if the bus drove straight there
    departure = run.events[int(run.trip.stop_sequences[i])].departure_time
    assert departure is not None
    assert abs(departure - left) <= 20.0, f"left {departure - left:+.0f} s off"
    errors = [run.arrival(k) - truth[k] for k in range(i + 1, i + 5)]
    assert max(abs(e) for e in errors) <= 20.0, f"arrival errors {[round(e) for e in errors]} s"


def test_a_silence_ending_at_the_terminus_does_not_put_the_last_stops_at_its_end(cairns: Network) -> None:
    run = Run(cairns)
    stop_dist = run.trip.stop_dist.tolist()
    last = len(stop_dist) - 1
    # on time, heard last running in to the stop four before the end; then nothing until it has stood at the
    # terminus for 15 minutes (a layover before its next trip)
    k = last - 4
    arrived = run.origin + float(run.trip.arrival[k])
    speed = 8.0
    for back in (90.0, 60.0, 30.0):
        run.ping(arrived - back, stop_dist[k] - back * speed, speed)
    run.ping(run.origin + float(run.trip.arrival[last]) + 900.0, stop_dist[last], 0.0)
    errors = [run.arrival(j) - (run.origin + float(run.trip.arrival[j])) for j in range(k, last + 1)]
    assert max(abs(e) for e in errors) <= 60.0, f"arrival errors against the timetable {[round(e) for e in errors]} s"


def test_a_bus_seen_just_past_a_stop_on_the_move_had_left_it_by_then(cairns: Network) -> None:
    """Cairns trip 4166383: stop index 11 at 23,562 m, the next 172 m on. The bus stands at the first; the next
    fix puts it 22 m past, within GPS error of the stop but at 12 m/s; the one after is past the next stop too.
    It left the first stop before the fix that saw it moving away, and reached the next after that fix."""
    run = Run(cairns)
    run.trip_id = "CNS2014-CNS_MUL-Weekday-00-4166383"
    run.trip = cairns.trips[run.trip_id]
    run.shape = cairns.shapes[run.trip.shape_id]
    stop_dist = run.trip.stop_dist
    stand = run.origin + float(run.trip.departure[11]) - 40.0
    run.ping(stand - 60.0, float(stop_dist[10]), 0.0)
    run.ping(stand - 30.0, float(stop_dist[10]), 0.0)
    run.ping(stand, float(stop_dist[11]), 0.0)
    moving = stand + 25.0
    run.ping(moving, float(stop_dist[11]) + 22.0, 12.0)
    run.ping(moving + 30.0, float(stop_dist[12]) + 60.0, 11.8)
    left = run.events[int(run.trip.stop_sequences[11])].departure_time
    assert left is not None, "no departure reported"
    assert left <= moving, f"left {left - moving:+.1f} s after it was seen away"
    assert moving < run.arrival(12) < moving + 30.0


def test_a_bus_seen_pulling_away_then_not_until_it_stands_at_the_next_stop_arrived_when_its_run_ended(
    cairns: Network,
) -> None:
    """One fix just out of the stop before (where a few metres of GPS error are much of the way covered, so its
    clock is rough), the next lost, the one after with the bus standing at the stop 20 s after it got there: over
    70 s the run's own clock, rough as it is, beats guessing half a typical dwell back from the standing fix."""
    run = Run(cairns)
    i, stop, arrived = _run_in(run, 60.0, (0.15,))
    run.ping(arrived + 20.0, stop, 0.0)
    run.ping(arrived + 50.0, stop + 150.0, 8.0)
    assert abs(run.arrival(i) - arrived) <= 5.0


@pytest.mark.parametrize("gps_error_m", [-5.0, 0.0, 3.0], ids=["put short of the stop", "on it", "put past it"])
def test_stops_passed_while_silent_are_not_put_early_by_a_silence_that_ends_with_the_bus_standing_at_a_stop(
    cairns: Network, gps_error_m: float
) -> None:
    """Heard again standing at a stop, the bus is part way through its stand there, not done with it: the
    silence is shared out as if it had got there about half a stand before, not a whole stand, whichever side
    of the stop GPS error puts the fix."""
    run = Run(cairns)
    stand = 25.0
    i, last, truth = _heard_short_of_a_stop_then_silent(run, 8.0, stand)
    # half way through its stand at stop i + 4
    run.ping(truth[last] + 0.5 * stand, float(run.trip.stop_dist[last]) + gps_error_m, 0.0)
    errors = [run.arrival(k) - truth[k] for k in range(i, last + 1)]
    assert all(run.events[int(run.trip.stop_sequences[k])].interpolated for k in range(i, last))
    assert max(abs(e) for e in errors) <= 10.0, f"arrival errors {[round(e) for e in errors]} s"


def test_a_silence_that_begins_with_the_bus_just_arrived_at_a_stop_is_shared_out_from_the_end_of_its_stand(
    cairns: Network,
) -> None:
    """Heard standing at stop i two seconds after it got there, then not until it is past stop i + 4: it stood
    there a while before it drove on, so the silence is shared out from about then, not from the fix, which
    would put every stop after it early."""
    run = Run(cairns)
    speed, stand = 8.0, 25.0
    stop_dist, i, arrived = _heard_standing_at_a_stop(run, speed, after_s=2.0)
    truth = _drive(run, arrived + stand, stop_dist[i], range(i + 1, i + 5), stand)
    run.ping(truth[i + 4] + stand + 150.0 / speed, stop_dist[i + 4] + 150.0, speed)
    errors = [run.arrival(k) - truth[k] for k in range(i + 1, i + 5)]
    assert max(abs(e) for e in errors) <= 10.0, f"arrival errors {[round(e) for e in errors]} s"


def test_a_bus_seen_twice_on_its_run_in_arrived_when_both_clocks_say_not_when_the_nearer_one_alone_does(
    cairns: Network,
) -> None:
    """Two fixes on the run in, GPS error putting the first 12 m ahead of the bus and the second 12 m behind: one
    clock reads early, the other late (the nearer alone puts the arrival nearly 4 s late). Both are good clocks,
    so the arrival is read from both, each weighted by how far its own error may put it."""
    run = Run(cairns)
    i = run.stop_with_long_runs(300.0)
    duration = 80.0
    leave_prev = run.origin + float(run.trip.departure[i - 1])
    arrived = leave_prev + duration
    _start_trip_before(run, i, leave_prev)
    for u, gps_error_m in ((0.5, 12.0), (0.8, -12.0)):
        ts, dist, speed = _brake_in(run, i, leave_prev, duration, u)
        run.ping(ts, dist + gps_error_m, speed)
    stop = float(run.trip.stop_dist[i])
    run.ping(arrived + 20.0, stop, 0.0)  # standing at the stop
    run.ping(arrived + 50.0, stop + 150.0, 8.0)
    assert abs(run.arrival(i) - arrived) <= 2.5, f"arrived {run.arrival(i) - arrived:+.1f} s off"


def test_a_bus_seen_standing_at_a_stop_then_past_the_next_stood_at_both(cairns: Network) -> None:
    """Standing at stop i, then a minute later past stop i + 1 (150-250 m on) and pulling away from it: in
    between it left stop i, ran to i + 1 and stood there too. Its departure from stop i is not timed as if it
    had driven straight to the fix, which would put both that departure and the arrival at i + 1 late by the
    whole stand at i + 1."""
    run = Run(cairns)
    gaps = np.diff(run.trip.stop_dist)
    i = next(k for k in range(1, len(gaps) - 1) if 150.0 <= gaps[k] <= 250.0 and gaps[k + 1] >= 300.0)
    stop_dist = run.trip.stop_dist
    t0 = run.origin + float(run.trip.departure[i])
    _start_trip_before(run, i + 1, t0)  # standing at stop i 60 and 30 s before t0
    run.ping(t0, float(stop_dist[i]), 0.0)
    # away 2 s later, 6.5 m/s on average from a standstill to a standstill, 15 s at stop i + 1
    left, run_s, stand = t0 + 2.0, float(gaps[i]) / 6.5, 15.0
    arrived = left + run_s
    # then 13 s into a 40 s run over the 300 m after stop i + 1
    u, length, duration = 13.0 / 40.0, 300.0, 40.0
    run.ping(arrived + stand + 13.0, float(stop_dist[i + 1]) + length * covered(u, "both"),
             length * pace(u, "both") / duration)
    departure = run.events[int(run.trip.stop_sequences[i])].departure_time
    assert departure is not None
    assert abs(departure - left) <= 5.0, f"left stop i {departure - left:+.1f} s off"
    assert abs(run.arrival(i + 1) - arrived) <= 5.0, f"arrived at i + 1 {run.arrival(i + 1) - arrived:+.1f} s off"
