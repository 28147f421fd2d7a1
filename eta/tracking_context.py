"""What all of one network's vehicle trackers share: matchers, timelines, service days and trip claims."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np

from eta.matching import MatcherCache
from eta.network import Network
from eta.prediction.blocks import BlockChains
from eta.timeline import TimelineCache

_GRID_M: Final = 250.0  # cell size of the index of which shapes pass where
_NOWHERE: Final[dict[str, tuple[int, ...]]] = {}


@dataclass(frozen=True)
class TrackerConfig:
    max_speed_mps: float = 40.0  # faster than this between two fixes is a bad reading
    off_route_m: float = 80.0  # farther than this from the shape counts as off the route
    off_route_pings: int = 3  # consecutive off-route fixes before the vehicle is flagged (then re-assigned)
    window_back_m: float = 40.0  # how far behind the last progress a fix may still match (GPS noise)
    window_margin_m: float = 150.0
    long_window_m: float = 1500.0  # wider than this, choose between legs with the schedule
    silence_unassign_s: float = 1800.0  # silent longer than this: forget the trip
    stale_after_s: float = 180.0
    arrive_radius_m: float = 20.0  # within this before a stop counts as arrived
    end_radius_m: float = 150.0  # standing within this before its trip's last stop, a bus is at the terminus
    terminal_stand_s: float = 90.0  # ... also when it has stood this long at the stop before the last
    depart_radius_m: float = 30.0  # beyond this after a stop counts as departed
    gap_s: float = 90.0  # a stop passed between fixes further apart than this is flagged interpolated
    default_cruise_mps: float = 7.0
    late_tolerance_s: float = 1800.0  # how late (or early, below) a vehicle may run for a trip to fit it
    early_tolerance_s: float = 600.0
    terminal_wait_s: float = 5400.0  # how long before its departure a bus may stand at a trip's first stop
    device_trip_wait_s: float = 7200.0  # ... at the first stop of the trip its device names
    # a bus standing at its trip's first stop this long after the trip's departure is waiting for another one
    stand_overdue_s: float = 600.0
    reject_streak_reset: int = 3  # this many speed rejections in a row: the anchor was the bad fix
    bbox_margin_m: float = 5000.0
    gps_along_sigma_m: float = 8.0  # how far GPS error typically moves a fix along the line
    stopped_mps: float = 0.5  # a reported speed below this is standing still
    standing_jitter_m: float = 30.0  # standing on two fixes and moved less than this: GPS noise, not motion
    standing_at_stop_m: float = 150.0  # the same, for a bus standing at its trip's first stop
    crawl_mps: float = 3.0  # a fix this slow within the arrival radius of a stop means the bus served it
    min_dwell_s: float = 3.0  # a stop whose arrival and departure are closer than this was driven past
    # a moving fix just short of a stop this long after the run in should have ended there: the bus has
    # stood at the stop and is leaving (a slower run in would still be braking, not moving off)
    overdue_slack_s: float = 10.0
    typical_dwell_s: float = 20.0  # a served stop's dwell, when only its departure can be timed
    brake_mps2: float = 1.0  # how hard a bus brakes into (and pulls away from) a stop
    confirm_margin: float = 25.0  # fit score (metres-equivalent) by which an inferred trip must beat its rivals
    confirm_fixes: int = 2  # fixes on which it must do so before its events are released
    provisional_max_fixes: int = 40  # still undecided after this many fixes (once departed): keep the guess
    rerun_window_s: float = 1200.0  # moving a bus onto a rival trip re-runs at most this much of its past
    history_max_fixes: int = 240  # an inferred trip's fixes kept for re-running on a rival (two hours)
    recheck_every_fixes: int = 4  # how often a confirmed inferred trip is checked against the timetable
    recheck_delay_s: float = 300.0  # running further off its timetable than this: look for a better trip
    # A vehicle silent this long holds no trip against another: its duty ended, or its device died, and the
    # bus that comes for the trip is the one running it.
    claim_silence_s: float = 600.0


@dataclass
class DayTrips:
    real_day: dt.date
    service_date: str  # YYYYMMDD of the real day
    origin: float  # UTC epoch seconds of the service day's time origin
    trip_ids: list[str]
    starts: np.ndarray
    ends: np.ndarray
    _groups: dict[str, list[tuple[float, str]]] | None = None

    def departures(self, group: str, network: Network) -> list[tuple[float, str]]:
        """(start, trip_id) of the day's trips in `group` ("block:<id>" or "route:<id>"), soonest first."""
        if self._groups is None:
            groups: dict[str, list[tuple[float, str]]] = {}
            for trip_id, start in zip(self.trip_ids, self.starts.tolist(), strict=True):
                trip = network.trips[trip_id]
                key = f"block:{trip.block_id}" if trip.block_id else f"route:{trip.route_id}"
                groups.setdefault(key, []).append((start, trip_id))
            for entries in groups.values():
                entries.sort()
            self._groups = groups
        return self._groups.get(group, [])


@dataclass
class TrackingContext:
    network: Network
    config: TrackerConfig = field(default_factory=TrackerConfig)
    matchers: MatcherCache = field(init=False)
    chains: BlockChains = field(init=False)  # the day's dispatch plan: which trip follows which
    timelines: TimelineCache = field(init=False)
    claims: dict[tuple[str, str], str] = field(default_factory=dict)  # (service_date, trip_id) -> vehicle
    named: dict[str, str] = field(default_factory=dict)  # vehicle -> the trip its device named at its latest fix
    # service_date -> trip_id -> the vehicle that ran it to its end, its device naming it: a trip runs once a day
    completed: dict[str, dict[str, str]] = field(default_factory=dict)
    heard: dict[str, float] = field(default_factory=dict)  # vehicle -> timestamp of its latest fix
    # vehicle -> (x, y, when): where it stands (the mean of its fixes there) while it waits at the first stop of a
    # trip inference gave it, and when it was last seen there: which of a terminal's stands it is at
    stands: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    clock: float = 0.0  # the latest fix's timestamp of any vehicle: "now" for the trackers
    # vehicle -> (trip_id, service_date) an operator assigned it: taken whatever inference thinks
    overrides: dict[str, tuple[str, str]] = field(default_factory=dict)
    _days: dict[dt.date, DayTrips] = field(default_factory=dict)
    _by_date: dict[str, DayTrips] = field(default_factory=dict)  # day_of's parse, once per date
    _shape_grid: dict[tuple[int, int], dict[str, tuple[int, ...]]] | None = None
    _zone: ZoneInfo = field(init=False)
    _bbox: tuple[float, float, float, float] = field(init=False)

    def __post_init__(self) -> None:
        self.matchers = MatcherCache(self.network.shapes)
        self.chains = BlockChains(self.network)
        self.timelines = TimelineCache(self.network.trips)
        self._zone = ZoneInfo(self.network.agency_timezone)
        xs, ys = [], []
        for shape in self.network.shapes.values():
            xs += [float(shape.xy[:, 0].min()), float(shape.xy[:, 0].max())]
            ys += [float(shape.xy[:, 1].min()), float(shape.xy[:, 1].max())]
        m = self.config.bbox_margin_m
        self._bbox = (min(xs) - m, min(ys) - m, max(xs) + m, max(ys) + m) if xs else (0.0, 0.0, 0.0, 0.0)

    def holder(self, service_date: str, trip_id: str) -> str | None:
        """The vehicle running this trip: the one that claimed it, unless it has been silent for longer than
        `claim_silence_s` (a vehicle not heard from since a restart counts as heard now)."""
        vehicle = self.claims.get((service_date, trip_id))
        if vehicle is None or self.clock - self.heard.get(vehicle, self.clock) > self.config.claim_silence_s:
            return None
        return vehicle

    def note_completed(self, service_date: str, trip_id: str, vehicle_id: str) -> None:
        """`vehicle_id`, its device naming `trip_id`, has run it to its end (days before the latest two are
        forgotten: their service is over)."""
        if service_date not in self.completed:
            for old in sorted(self.completed)[:-1]:
                del self.completed[old]
        self.completed.setdefault(service_date, {})[trip_id] = vehicle_id

    def run_by_another_device(self, service_date: str, trip_id: str, vehicle_id: str) -> bool:
        """Whether a vehicle other than `vehicle_id` runs the trip, or has run it to its end, its own device naming
        it: two devices naming one trip cannot both be right, and the bus already on it has the better claim."""
        holder = self.holder(service_date, trip_id)
        if holder is not None and holder != vehicle_id and self.named.get(holder) == trip_id:
            return True
        done = self.completed.get(service_date, {}).get(trip_id)
        return done is not None and done != vehicle_id

    def inside(self, x: float, y: float) -> bool:
        x0, y0, x1, y1 = self._bbox
        return x0 <= x <= x1 and y0 <= y <= y1

    def warm(self) -> None:
        """Build now what the first pings would otherwise build: every shape's matcher and the grid of shapes
        (together about 0.2 s on the bundled feed, on the first batch of a worker that has just started)."""
        self.matchers.warm()
        if self._shape_grid is None:
            self._shape_grid = self._build_shape_grid()

    def shapes_near(self, x: float, y: float) -> dict[str, tuple[int, ...]]:
        """Shapes passing within about `off_route_m` of (x, y), each with the indices of its segments there:
        trip inference scores only these trips, and only on these segments."""
        if self._shape_grid is None:
            self._shape_grid = self._build_shape_grid()
        return self._shape_grid.get((int(x // _GRID_M), int(y // _GRID_M)), _NOWHERE)

    def _build_shape_grid(self) -> dict[tuple[int, int], dict[str, tuple[int, ...]]]:
        reach = self.config.off_route_m + 30.0  # sampling every reach/2 leaves gaps of a quarter of it
        cells: dict[tuple[int, int], dict[str, set[int]]] = {}
        for shape_id, shape in self.network.shapes.items():
            xy = shape.xy
            # points every ~reach/2 metres along each segment, each marking the cells within `reach` of it
            for j, ((x0, y0), (x1, y1)) in enumerate(zip(xy[:-1].tolist(), xy[1:].tolist(), strict=True)):
                steps = max(1, int(math.hypot(x1 - x0, y1 - y0) // (reach / 2)) + 1)
                marked: set[tuple[int, int]] = set()
                for k in range(steps + 1):
                    px, py = x0 + (x1 - x0) * k / steps, y0 + (y1 - y0) * k / steps
                    for cx in range(int((px - reach) // _GRID_M), int((px + reach) // _GRID_M) + 1):
                        for cy in range(int((py - reach) // _GRID_M), int((py + reach) // _GRID_M) + 1):
                            marked.add((cx, cy))
                for cell in marked:
                    cells.setdefault(cell, {}).setdefault(shape_id, set()).add(j)
        return {cell: {sid: tuple(sorted(js)) for sid, js in shapes.items()} for cell, shapes in cells.items()}

    def days_around(self, timestamp: float) -> list[DayTrips]:
        """The service days a vehicle may be running at `timestamp`: today's and yesterday's (past midnight)."""
        today = dt.datetime.fromtimestamp(timestamp, self._zone).date()
        return [self.day(today), self.day(today - dt.timedelta(days=1))]

    def day(self, real_day: dt.date) -> DayTrips:
        cached = self._days.get(real_day)
        if cached is None:
            feed_day, _ = self.network.service_day_for(real_day)
            ids = self.network.trips_on(feed_day)
            trips = [self.network.trips[t] for t in ids]
            cached = DayTrips(
                real_day,
                real_day.strftime("%Y%m%d"),
                self.network.service_day_origin(real_day),
                ids,
                np.array([t.start_time for t in trips]),
                np.array([t.end_time for t in trips]),
            )
            self._days[real_day] = cached
        return cached

    def day_of(self, service_date: str) -> DayTrips | None:
        cached = self._by_date.get(service_date)
        if cached is not None:
            return cached
        try:
            real_day = dt.date(int(service_date[:4]), int(service_date[4:6]), int(service_date[6:8]))
        except (ValueError, IndexError):
            return None
        found = self._by_date[service_date] = self.day(real_day)
        return found
