"""Matching where a route comes back to the same corner: the bus is on the pass it has reached, not the next.

Cairns trip 4172293 goes round a block after its stop at 4952 m and comes back past the same corner at about
5390 m; a bus near that corner must be put on the first pass until it has driven the block.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from eta.engine import Engine
from eta.matching import ShapeMatcher
from eta.network import Network
from eta.timeline import TripTimeline
from smartbus.messages import Ping

DAY = dt.date(2014, 6, 3)  # a Tuesday inside the Cairns calendar
TRIP = "CNS2014-CNS_MUL-Weekday-00-4172293"
CORNER_STOP_M = 4952.0  # the stop at the corner; the line is back within metres of it at ~5390 m
OUT_AND_BACK_STREET = "CNS2014-CNS_MUL-Weekday-00-4166173"
BACK_STOP_M = 26607.0  # a stop on its way back along a street, 12 m from the way out at ~25910 m


class Bus:
    def __init__(self, network: Network, trip_id: str = TRIP) -> None:
        self.network = network
        self.trip = network.trips[trip_id]
        self.shape = network.shapes[self.trip.shape_id]
        self.matcher = ShapeMatcher(self.shape)
        self.timeline = TripTimeline(self.trip)
        self.origin = network.service_day_origin(DAY)
        self.engine = Engine(network)

    def ping(
        self, ts: float, dist: float, speed: float, heading_from: float | None = None,
        aside: tuple[float, float] = (0.0, 0.0),
    ) -> float | None:
        """Sends a fix at `dist` along the shape, moved by `aside` (east, north metres: GPS error), reporting the
        line's heading at `heading_from` (default `dist`); returns where the tracker puts the bus."""
        x = float(np.interp(dist, self.shape.dist, self.shape.xy[:, 0])) + aside[0]
        y = float(np.interp(dist, self.shape.dist, self.shape.xy[:, 1])) + aside[1]
        lat, lon = self.network.projection.to_latlon(np.array([x]), np.array([y]))
        bearing = self.matcher.heading_at(dist if heading_from is None else heading_from)
        ping = Ping("bus-1", ts, float(lat[0]), float(lon[0]), bearing=bearing, speed=speed,
                    trip_id=self.trip.trip_id, start_date=DAY.strftime("%Y%m%d"))
        state = self.engine.process(ping).state
        return None if state is None else state.shape_dist

    def drive_to(self, until_m: float, speed: float) -> float:
        """Fixes every 30 s on the timetable up to `until_m`; returns the time of the last."""
        start = self.origin + float(self.trip.departure[1])
        ts = start
        while True:
            dist = self.timeline.dist_at(ts - self.origin)
            if dist > until_m:
                return ts - 30.0
            self.ping(ts, dist, speed)
            ts += 30.0


def test_a_bus_braking_into_the_corner_stop_is_on_the_first_pass(cairns: Network) -> None:
    bus = Bus(cairns)
    last = bus.drive_to(CORNER_STOP_M - 300.0, 9.0)
    # fast on the last fix, and the next one 35 s later just round the corner, still heading the way it came
    got = bus.ping(last + 35.0, CORNER_STOP_M - 10.0, 4.0, heading_from=CORNER_STOP_M - 60.0)
    assert got is not None and abs(got - (CORNER_STOP_M - 10.0)) <= 40.0, f"put at {got} m"


# Cairns trip 4180600 (route 143) reaches a corner at about 14,010 m heading north-west, goes round a loop and
# comes back by the same corner at about 14,790 m heading south-east.
ROUND_A_LOOP = "CNS2014-CNS_MUL-Weekday-00-4180600"


def test_a_fix_after_a_gap_at_a_corner_a_loop_comes_back_to_is_on_the_pass_the_bus_heads_along(
    cairns: Network,
) -> None:
    """The bus is heard again after 70 s, reporting a high speed: from speeds alone it could be round the loop
    already. Its heading says which pass it is on."""
    bus = Bus(cairns, ROUND_A_LOOP)
    assert bus.matcher.has_twin(14015.0)
    last = bus.drive_to(13720.0, 5.0)
    got = bus.ping(last + 70.0, 14015.0, 21.9)
    assert got is not None and abs(got - 14015.0) <= 40.0, f"put at {got} m"



# Cairns trip 4172935 (route 133) has stops at 15,490 m and 16,300 m; between them, at about 15,940 m, the line
# passes 20 m from the second stop going the other way.
STOP_TO_STOP_NEAR_ITSELF = "CNS2014-CNS_MUL-Weekday-00-4172935"


def test_a_bus_standing_at_one_stop_and_a_minute_later_at_the_next_is_at_that_stop(cairns: Network) -> None:
    """Both fixes report it standing: its speeds say nothing of the 800 m it drove between, and the fix lies on
    the line at the next stop, not 20 m off the nearer pass."""
    bus = Bus(cairns, STOP_TO_STOP_NEAR_ITSELF)
    assert bus.matcher.has_twin(16300.0)
    last = bus.drive_to(15400.0, 8.0)
    assert bus.ping(last + 30.0, 15490.0, 0.7) is not None
    got = bus.ping(last + 93.0, 16300.0, 0.0)
    assert got is not None and abs(got - 16300.0) <= 40.0, f"put at {got} m"


def test_a_bus_heard_after_a_minute_standing_at_a_stop_on_a_street_it_drives_back_along_is_at_that_stop(
    cairns: Network,
) -> None:
    """Trip 4166173 drives a street out and back, the two passes 12 m apart. Last heard at speed, a minute later
    the bus stands at the stop 800 m on, on the way back; GPS error puts the fix nearer the way out. Standing,
    it stopped somewhere between, and its speed a minute ago does not say where: the way out, 70 m on from the
    last fix and away from any stop, is no likelier than the stop on the way back."""
    bus = Bus(cairns, OUT_AND_BACK_STREET)
    assert bus.matcher.has_twin(BACK_STOP_M)
    last = bus.drive_to(BACK_STOP_M - 800.0, 10.8)
    # the fix as GPS gave it: 21 m off the way back, 12 m off the way out
    got = bus.ping(last + 64.0, BACK_STOP_M, 0.0, aside=(-21.1, 8.4))
    assert got is not None and abs(got - BACK_STOP_M) <= 40.0, f"put at {got} m"


def test_the_matcher_knows_where_a_line_comes_back_near_itself(cairns: Network) -> None:
    bus = Bus(cairns)
    matcher, shape = bus.matcher, bus.shape
    assert matcher.has_twin(CORNER_STOP_M - 40.0) and matcher.has_twin(5390.0)  # both passes of the corner
    # against brute force: a point has a twin when the line, 200 m or more away along it, comes within 100 m
    along = np.arange(0.0, shape.length, 25.0)
    points = np.column_stack([np.interp(along, shape.dist, shape.xy[:, i]) for i in (0, 1)])
    for k in range(0, len(along), 7):
        far = np.abs(along - along[k]) >= 200.0
        near = np.hypot(*(points[far] - points[k]).T).min() <= 100.0 if far.any() else False
        assert matcher.has_twin(float(along[k])) == near, f"at {along[k]:.0f} m"


# Cairns trip 4166572 stops at 6,521 m, then passes a corner at about 6,810 m, goes round a loop by its stop at
# 7,304 m and comes back along the same street, the same way, at about 7,430 m.
LOOP_AFTER_A_STOP = "CNS2014-CNS_MUL-Weekday-00-4166572"


def test_a_fix_after_a_stop_its_speeds_know_nothing_of_is_on_the_pass_before_the_loop(cairns: Network) -> None:
    """Last heard 120 m short of a stop, heard again a minute later at speed on the street the loop comes back
    to. At the two speeds alone it could be round the loop; but a bus that served the stop stood there."""
    bus = Bus(cairns, LOOP_AFTER_A_STOP)
    assert bus.matcher.has_twin(6810.0)
    last = bus.drive_to(6300.0, 11.6)
    assert bus.ping(last + 20.0, 6400.0, 11.6) is not None
    got = bus.ping(last + 83.0, 6810.0, 20.1)
    assert got is not None and abs(got - 6810.0) <= 40.0, f"put at {got} m"


# Cairns trip 4180085 leaves its terminal along a street it comes back to: its first stop after it, at 1,737 m,
# is near where the line passed 490 m earlier, going the same way.
BACK_PAST_THE_START = "CNS2014-CNS_MUL-Weekday-00-4180085"


def test_a_bus_creeping_where_the_line_passes_twice_is_on_the_pass_with_the_stop(cairns: Network) -> None:
    """Heard at speed just out of the terminal, then not for 87 s, then creeping into the stop: its speeds put
    it near the first pass, but a bus creeping along is most often at a stop, and only the second pass has one."""
    bus = Bus(cairns, BACK_PAST_THE_START)
    stop = float(bus.trip.stop_dist[1])
    assert bus.matcher.has_twin(stop)
    start = bus.origin + float(bus.trip.departure[0])
    for k in range(3):
        bus.ping(start - 90.0 + 30.0 * k, 0.0, 0.0)
    assert bus.ping(start + 15.0, 256.0, 16.1) is not None
    got = bus.ping(start + 102.0, stop - 2.0, 1.8)
    assert got is not None and abs(got - (stop - 2.0)) <= 40.0, f"put at {got} m"


def test_a_fix_a_lap_on_at_the_speed_the_bus_kept_is_on_the_pass_after_the_loop(cairns: Network) -> None:
    """The other way round: last heard past the stop before the loop, at speed; a minute later at the same speed
    where the loop has brought the line back. Had it stood at the loop's stop it would be on the first pass, but
    it has not reached that stop there; driving on at the speed both fixes report, it is round the loop."""
    bus = Bus(cairns, LOOP_AFTER_A_STOP)
    assert bus.matcher.has_twin(7531.0)
    last = bus.drive_to(6600.0, 11.9)
    assert bus.ping(last + 20.0, 6650.0, 11.9) is not None
    got = bus.ping(last + 82.0, 7531.0, 12.2)
    assert got is not None and abs(got - 7531.0) <= 40.0, f"put at {got} m"


def test_a_bus_heard_after_a_long_silence_standing_at_the_corner_stop_is_at_that_stop(cairns: Network) -> None:
    """Heard 150 m short of the corner stop, then not for over a minute and a half, then standing at the stop.
    The timetable has it round the block by now, at the corner again on the second pass; but a timetable a
    silence that long away says little about where a bus is, and a bus standing is most often at a stop."""
    bus = Bus(cairns)
    last = bus.drive_to(CORNER_STOP_M - 200.0, 4.0)
    assert bus.ping(last + 10.0, CORNER_STOP_M - 150.0, 3.6) is not None
    got = bus.ping(last + 107.0, CORNER_STOP_M, 0.0)
    assert got is not None and abs(got - CORNER_STOP_M) <= 40.0, f"put at {got} m"


def _places(network: Network, fixture: str, trip_id: str) -> dict[int, float]:
    """Where the tracker puts the bus on `trip_id` at each fix of a recorded excerpt (tests/data/pings)."""
    from collections import Counter
    from pathlib import Path

    from eta.replay import read_pings

    engine = Engine(network)
    along: dict[int, float] = {}
    for ping in read_pings(Path(__file__).parents[1] / "data" / "pings" / fixture, Counter()):
        out = engine.process(ping)
        if out.state is not None and out.state.trip_id == trip_id and out.state.shape_dist is not None:
            along[round(ping.timestamp)] = out.state.shape_dist
    return along


def test_a_bus_standing_at_its_stand_stays_there_though_gps_puts_it_nearer_its_line_coming_back_past(
    cairns: Network,
) -> None:
    """Simulated pings (tests/data/pings/README.md), trip fields removed: a bus waits at the stand of its trip,
    whose line loops back past the stand 620 m on. Standing at two fixes a minute apart, it may have driven on to
    a stop between, so where the second fix lands is weighed over every pass near it: it is not put on the later
    pass, where no stop is, because GPS error put the fix a few metres nearer that street than the stand's."""
    along = _places(cairns, "waiting_by_its_own_loop.csv", "CNS2014-CNS_MUL-Weekday-00-4166300")
    # standing at the stand, then 44 m along at 5 m/s, then 288 m (the simulator's truth)
    assert along[1715632489] < 30.0
    assert abs(along[1715632519] - 44.0) < 30.0
    assert abs(along[1715632546] - 288.0) < 30.0


def test_a_bus_seen_standing_then_braking_into_the_next_stop_is_not_put_on_the_line_coming_back_past(
    cairns: Network,
) -> None:
    """Simulated pings: a bus stands at a stop, then is heard 84 s later at 2.5 m/s, braking into the next stop
    780 m on. Slow at both fixes, it still drove fast between them: its two speeds do not say how far it went,
    any more than when it stands at both. Judged by them it went 200 m at most, which made a pass of the line
    400 m on, coming back the other way 78 m from the fix, likelier than the stop it brakes into; it is put at
    that stop, the way it heads, and the fix after it stays on that pass."""
    along = _places(cairns, "standing_then_braking_into_the_next_stop.csv", "CNS2014-CNS_MUL-Weekday-00-4166577")
    # the simulator's truth: 6,521 m standing, then 7,308 and 7,676 m
    assert abs(along[1715686949] - 6521.0) < 30.0
    assert abs(along[1715687033] - 7308.0) < 30.0
    assert abs(along[1715687065] - 7676.0) < 30.0
