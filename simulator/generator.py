"""The pure core: a day of service on a network, as a lazy stream of pings and truth in delivery order.

Each vehicle is its own generator with its own seeded random streams (motion and device apart), so a
vehicle's day does not depend on how many others run or in what order they are drawn. The vehicles'
streams are merged by delivery time; only each vehicle's current trip is held in memory.
"""

from __future__ import annotations

import datetime as dt
import heapq
import math
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import numpy as np

from eta.network import Network, Trip
from simulator.blocks import Duty, chain_blocks, select_duties
from simulator.config import SimConfig
from simulator.device import DeviceClock, draw_faults, fix_times
from simulator.motion import TripRun, drive_trip
from simulator.records import Delivery, Event, PositionTruth, StopTruth
from smartbus.messages import Ping

SAME_TERMINAL_M = 300.0
DEADHEAD_SPEED = 8.0  # m/s between terminals that are apart: no pings while deadheading
PULL_OUT_S = 60.0  # the device keeps reporting this long after the block's last trip


@dataclass(frozen=True)
class DayPlan:
    """What will run: the real day, the feed day whose service it borrows, and each vehicle's duty."""

    network: Network
    real_day: dt.date
    feed_day: dt.date
    mapped: bool  # True when the feed has no service on real_day and feed_day stands in for it
    origin: float  # UTC epoch of the GTFS time origin of real_day
    config: SimConfig
    duties: tuple[Duty, ...]

    @property
    def service_date(self) -> str:
        return self.real_day.strftime("%Y%m%d")


def plan_day(network: Network, real_day: dt.date, config: SimConfig) -> DayPlan:
    feed_day, mapped = network.service_day_for(real_day)
    trip_ids = network.trips_on(feed_day)
    blocks = chain_blocks(network, trip_ids, config.delay.min_layover_s)
    duties = select_duties(network, blocks, config.vehicles, config.seed, config.delay.pull_in_s)
    origin = network.service_day_origin(real_day)
    return DayPlan(network, real_day, feed_day, mapped, origin, config, tuple(duties))


def simulate(plan: DayPlan, *, start_at: float | None = None) -> Iterator[Event]:
    """Every ping (as a Delivery) and every StopTruth of the day, in delivery order.

    With `start_at` (UTC epoch) the stream starts there: buses already out are mid-trip, earlier events
    are not produced. Truth records are ordered by when they become known (a stop at its departure).
    """
    shared = _Shared(plan)
    streams = [_vehicle_stream(shared, duty, start_at) for duty in plan.duties]
    for _, _, _, event in heapq.merge(*streams):
        yield event


@dataclass
class _Shared:
    """Read-only lookups every vehicle uses; built lazily, independent of vehicle order."""

    plan: DayPlan
    headings: dict[str, np.ndarray] = field(default_factory=dict)
    route_trips: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    origin_hour: float = 0.0

    def __post_init__(self) -> None:
        net = self.plan.network
        for trip_id in sorted({t for d in self.plan.duties for t in d.trip_ids}):
            self.route_trips[net.trips[trip_id].route_id].append(trip_id)
        local = dt.datetime.fromtimestamp(self.plan.origin, ZoneInfo(net.agency_timezone))
        self.origin_hour = local.hour + local.minute / 60.0

    def heading(self, shape_id: str) -> np.ndarray:
        h = self.headings.get(shape_id)
        if h is None:
            xy = self.plan.network.shapes[shape_id].xy
            d = np.diff(xy, axis=0)
            h = np.degrees(np.arctan2(d[:, 0], d[:, 1])) % 360.0 if len(d) else np.zeros(1)
            self.headings[shape_id] = h
        return h


def _vehicle_stream(shared: _Shared, duty: Duty, start_at: float | None) -> Iterator[tuple[float, int, int, Event]]:
    plan, config = shared.plan, shared.plan.config
    net, origin, model = plan.network, plan.origin, config.delay
    motion_rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([config.seed, duty.index, 1])))
    device_rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([config.seed, duty.index, 2])))
    trips = [net.trips[t] for t in duty.trip_ids]
    first = trips[0]
    ready = first.start_time + duty.offset_s - model.pull_in_s * motion_rng.uniform(0.5, 1.0)
    clock = DeviceClock(next_fix=ready + device_rng.uniform(0.0, config.ping_interval_s))
    pending: list[tuple[float, int, int, Event]] = []
    seq = 0
    noise = 0.0
    run = _drive(shared, first, ready, motion_rng, noise, duty.offset_s, 0.0)
    for j, trip in enumerate(trips):
        noise = run.noise_out
        nxt: TripRun | None = None
        if j + 1 < len(trips):
            gap_m = _terminal_distance(net, trip, run.passed - 1, trips[j + 1])
            next_ready = run.finished_at + (0.0 if gap_m <= SAME_TERMINAL_M else gap_m / DEADHEAD_SPEED + 120.0)
            nxt = _drive(shared, trips[j + 1], next_ready, motion_rng, noise, duty.offset_s, model.min_layover_s)
            window_end = next_ready if gap_m <= SAME_TERMINAL_M else run.finished_at + PULL_OUT_S
        else:
            window_end = run.finished_at + PULL_OUT_S
        for event in _trip_events(shared, duty, run, window_end, clock, device_rng, start_at):
            key = event.deliver_at if isinstance(event, Delivery) else event.departure_time
            heapq.heappush(pending, (key, duty.index, seq, event))
            seq += 1
        horizon = origin + (nxt.ready_at if nxt is not None else math.inf)
        while pending and pending[0][0] <= horizon:
            item = heapq.heappop(pending)
            if start_at is None or item[0] >= start_at:
                yield item
        if nxt is not None:
            run = nxt


def _drive(
    shared: _Shared, trip: Trip, ready: float, rng: np.random.Generator, noise: float, offset: float, layover: float
) -> TripRun:
    config = shared.plan.config
    return drive_trip(
        trip, ready, rng, seed=config.seed, model=config.delay, driving=config.driving, noise_in=noise,
        origin_hour=shared.origin_hour, offset_s=offset, layover_s=layover,
    )


def _terminal_distance(net: Network, trip: Trip, last_index: int, following: Trip) -> float:
    a, b = net.stops[trip.stop_ids[last_index]], net.stops[following.stop_ids[0]]
    ax, ay = net.projection.point_xy(a.lat, a.lon)
    bx, by = net.projection.point_xy(b.lat, b.lon)
    return math.hypot(ax - bx, ay - by)


def _trip_events(
    shared: _Shared,
    duty: Duty,
    run: TripRun,
    window_end: float,
    clock: DeviceClock,
    rng: np.random.Generator,
    start_at: float | None,
) -> Iterator[Event]:
    plan, config = shared.plan, shared.plan.config
    net, origin, trip, vehicle = plan.network, plan.origin, run.trip, duty.vehicle_id
    service_date = plan.service_date
    for i in range(run.passed):
        yield StopTruth(
            vehicle, trip.trip_id, service_date, trip.stop_ids[i], int(trip.stop_sequences[i]),
            origin + float(run.arrival[i]), origin + float(run.departure[i]), bool(run.served[i]),
        )
    u_missing, u_wrong, u_pick = rng.random(3)
    times = fix_times(clock, run.ready_at, window_end, rng, config.ping_interval_s, config.ping_jitter)
    if len(times) == 0 or (start_at is not None and origin + window_end + 700.0 < start_at):
        return  # nothing to send, or all of it delivered before the stream starts
    faults = draw_faults(times, clock, rng, config.device, config.ping_interval_s, config.gps_noise_m)
    reported: Trip | None = trip
    trip_label = ""
    if u_missing < config.device.missing_trip_rate:
        reported, trip_label = None, "missing_trip"
    elif u_wrong < config.device.wrong_trip_rate:
        others = [t for t in shared.route_trips[trip.route_id] if t != trip.trip_id]
        if others:
            reported, trip_label = net.trips[others[int(u_pick * len(others))]], "wrong_trip"

    shape = net.shapes[trip.shape_id]
    s, speed = run.progress(times)
    x = np.interp(s, shape.dist, shape.xy[:, 0])
    y = np.interp(s, shape.dist, shape.xy[:, 1])
    true_lat, true_lon = net.projection.to_latlon(x, y)
    lat, lon = net.projection.to_latlon(x + faults.noise_xy[:, 0], y + faults.noise_xy[:, 1])
    jx, jy = net.projection.to_latlon(x + faults.jump_xy[:, 0], y + faults.jump_xy[:, 1])
    lat = np.where(faults.jump, jx, lat)
    lon = np.where(faults.jump, jy, lon)
    lat, lon = np.where(faults.swapped, lon, lat), np.where(faults.swapped, lat, lon)
    lat = np.where(faults.zero, 0.0, lat)
    lon = np.where(faults.zero, 0.0, lon)
    headings = shared.heading(trip.shape_id)
    segment = np.clip(np.searchsorted(shape.dist, s, side="right") - 1, 0, len(headings) - 1)
    bearing = np.round(headings[segment])

    trip_id = reported.trip_id if reported else None
    route_id = reported.route_id if reported else trip.route_id
    direction_id = reported.direction_id if reported else None
    start_date = service_date if reported else None
    start_time = _hhmmss(reported.start_time) if reported else None
    labels = _labels(faults, trip_label)
    stamps = np.round(origin + times, 3).tolist()
    deliver = (origin + faults.deliver_at).tolist()
    again = (origin + faults.duplicate_at).tolist()
    lat_l, lon_l = np.round(lat, 7).tolist(), np.round(lon, 7).tolist()
    tlat, tlon = true_lat.tolist(), true_lon.tolist()
    bearing_l, speed_l, s_l = bearing.tolist(), np.round(speed, 2).tolist(), s.tolist()
    duplicate = faults.duplicate.tolist()
    for i in np.flatnonzero(faults.sent).tolist():
        ping = Ping(
            vehicle, stamps[i], lat_l[i], lon_l[i], bearing_l[i], speed_l[i],
            trip_id, route_id, direction_id, start_date, start_time,
        )
        truth = PositionTruth(vehicle, stamps[i], trip.trip_id, tlat[i], tlon[i], s_l[i], deliver[i], labels[i])
        yield Delivery(deliver[i], ping, truth)
        if duplicate[i]:
            yield Delivery(again[i], ping, None)


_FAULT_NAMES = ("duplicate", "late", "out_of_order", "zero", "swapped", "jump")


def _labels(faults: object, trip_label: str) -> list[str]:
    columns = [np.asarray(getattr(faults, name)) for name in _FAULT_NAMES]
    n = len(columns[0])
    base = [trip_label] * n
    for name, column in zip(_FAULT_NAMES, columns, strict=True):
        for i in np.flatnonzero(column).tolist():
            base[i] = f"{base[i]};{name}" if base[i] else name
    return base


def _hhmmss(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"
