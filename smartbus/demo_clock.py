"""The demo's clock: simulated time that runs at `speed` and starts where the feed has buses on the road.

At 3 a.m. in the agency's time zone a timetable has no bus running, and a demo showing an empty map
tells a new user nothing; so the demo starts its simulated clock at the next moment with service and
says so. Every component that asks for "now" (the simulator's pacing, the api's boards) uses this clock.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from eta.network import Network

STEP_S = 300.0
# Fewer buses than this on the road counts as "no service" (a night bus or two makes a dull demo).
MIN_BUSES = 3


def trips_running_at(network: Network, at: float) -> int:
    """How many of the feed's trips (after the date mapping) are between their first and last stop at `at`."""
    local_day = dt.datetime.fromtimestamp(at, ZoneInfo(network.agency_timezone)).date()
    running = 0
    for day in (local_day - dt.timedelta(days=1), local_day):  # yesterday's trips may run past midnight
        feed_day, _ = network.service_day_for(day)
        seconds = at - network.service_day_origin(day)
        running += sum(
            1 for trip_id in network.trips_on(feed_day)
            if network.trips[trip_id].start_time <= seconds <= network.trips[trip_id].end_time
        )
    return running


def first_moment_with_service(network: Network, now: float, min_buses: int = MIN_BUSES) -> float:
    """`now` if enough buses are running, else the next 5-minute step within a day when they are."""
    for step in range(int(86400 / STEP_S) + 1):
        candidate = now + step * STEP_S
        if trips_running_at(network, candidate) >= min_buses:
            return candidate
    return now  # a feed with (almost) no service at all: run the clock as it is


@dataclass
class DemoClock:
    sim_start: float  # UTC epoch seconds, simulated
    speed: float = 1.0
    wall: Callable[[], float] = time.time
    wall_start: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.wall_start = self.wall()

    def __call__(self) -> float:
        return self.sim_start + (self.wall() - self.wall_start) * self.speed
