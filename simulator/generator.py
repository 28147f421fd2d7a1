"""The pure core: a day of service on a network, as a lazy stream of pings and truth in delivery order.

Each vehicle is its own generator with its own seeded random streams (motion and device apart), so a
vehicle's day does not depend on how many others run or in what order they are drawn. The vehicles'
streams are merged by delivery time; only each vehicle's current trip is held in memory.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import math
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import numpy as np

from eta.network import Network, Trip
from simulator.blocks import Duty, chain_blocks, select_duties
from simulator.config import SimConfig
from simulator.device import DeviceClock, FixFaults, draw_faults, fix_times
from simulator.motion import TripRun, TripStatics, drive_trip
from simulator.records import Delivery, Event, PositionTruth, StopTruth
from smartbus.messages import Ping

SAME_TERMINAL_M = 300.0
LATEST_DELIVERY_S = 700.0  # no fix is delivered later than this after it was taken (late and out of order)
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


def simulate(plan: DayPlan, *, start_at: float | None = None, truth: bool = True) -> Iterator[Event]:
    """Every ping (as a Delivery) and every StopTruth of the day, in delivery order.

    With `start_at` (UTC epoch) the stream starts there: buses already out are mid-trip, earlier events
    are not produced. Truth records are ordered by when they become known (a stop at its departure).
    A vehicle's stream is only started when the merged stream reaches its first possible event, so
    vehicles that have not yet pulled out cost nothing. `truth=False` (live publishing) leaves out
    StopTruth records and the Deliveries' truth, which nobody downstream may see anyway.
    """
    shared = _Shared(plan, with_truth=truth)
    model = plan.config.delay
    trips = plan.network.trips
    waiting = sorted(
        (plan.origin + trips[d.trip_ids[0]].start_time + d.offset_s - model.pull_in_s, d.index)
        for d in plan.duties
        # with a late start, skip vehicles that are surely back at the depot (3 h of delay to spare)
        if start_at is None or plan.origin + trips[d.trip_ids[-1]].end_time + d.offset_s + 3 * 3600 > start_at
    )
    duties = {d.index: d for d in plan.duties}
    # Vehicles on the road, keyed by their next event: (key, vehicle index, that event, its stream).
    active: list[tuple[float, int, Keyed, Iterator[Keyed]]] = []
    w = 0
    slice_end = -math.inf
    while active or w < len(waiting):
        # One slice of delivery time at a time: gather every vehicle's events before the slice's end, then
        # one sort of those already-sorted runs gives the merged order (cheaper than a heap per event).
        slice_start = min(active[0][0] if active else math.inf, waiting[w][0] if w < len(waiting) else math.inf)
        slice_end = max(slice_start, slice_end) + SLICE_S
        while w < len(waiting) and waiting[w][0] < slice_end:
            stream = _vehicle_stream(shared, duties[waiting[w][1]], start_at)
            w += 1
            first = next(stream, None)
            if first is not None:
                heapq.heappush(active, (first[0], first[1], first, stream))
        batch: list[Keyed] = []
        while active and active[0][0] < slice_end:
            _, index, item, stream = heapq.heappop(active)
            batch.append(item)
            for item in stream:
                if item[0] >= slice_end:
                    heapq.heappush(active, (item[0], index, item, stream))
                    break
                batch.append(item)
        batch.sort()
        for item in batch:
            yield item[3]


SLICE_S = 120.0  # seconds of delivery time merged at once: ~40,000 events for 10,000 buses pinging every 30 s


@dataclass
class _Shared:
    """Read-only lookups every vehicle uses; built lazily, independent of vehicle order."""

    plan: DayPlan
    with_truth: bool = True
    headings: dict[str, np.ndarray] = field(default_factory=dict)
    route_trips: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    origin_hour: float = 0.0
    service_date: str = ""
    statics: dict[str, TripStatics] = field(default_factory=dict)

    def __post_init__(self) -> None:
        net = self.plan.network
        for trip_id in sorted({t for d in self.plan.duties for t in d.trip_ids}):
            self.route_trips[net.trips[trip_id].route_id].append(trip_id)
        local = dt.datetime.fromtimestamp(self.plan.origin, ZoneInfo(net.agency_timezone))
        self.origin_hour = local.hour + local.minute / 60.0
        self.service_date = self.plan.service_date

    def heading(self, shape_id: str) -> np.ndarray:
        h = self.headings.get(shape_id)
        if h is None:
            xy = self.plan.network.shapes[shape_id].xy
            d = np.diff(xy, axis=0)
            h = np.degrees(np.arctan2(d[:, 0], d[:, 1])) % 360.0 if len(d) else np.zeros(1)
            self.headings[shape_id] = h
        return h


Keyed = tuple[float, int, int, Event]  # (key, vehicle index, sequence, event): sorts without touching events
CHUNK_FIXES = 120  # fixes are drawn and built this many at a time: memory per vehicle stays small


def _vehicle_stream(shared: _Shared, duty: Duty, start_at: float | None) -> Iterator[Keyed]:
    """One vehicle's events in delivery order. Every event's key is at least the start of the chunk it
    is made in, so an event is released once the chunk being made starts after it."""
    plan, config = shared.plan, shared.plan.config
    net, origin, model = plan.network, plan.origin, config.delay
    motion_rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([config.seed, duty.index, 1])))
    device_rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([config.seed, duty.index, 2])))
    trips = [net.trips[t] for t in duty.trip_ids]
    ready = trips[0].start_time + duty.offset_s - model.pull_in_s * motion_rng.uniform(0.5, 1.0)
    clock = DeviceClock(next_fix=ready + device_rng.uniform(0.0, config.ping_interval_s))
    carried: list[Keyed] = []
    counter = itertools.count()
    run = _drive(shared, trips[0], ready, motion_rng, 0.0, duty.offset_s, 0.0)
    for j, trip in enumerate(trips):
        nxt: TripRun | None = None
        window_end = run.finished_at + PULL_OUT_S
        if j + 1 < len(trips):
            gap_m = _terminal_distance(net, trip, run.passed - 1, trips[j + 1])
            same_terminal = gap_m <= SAME_TERMINAL_M
            next_ready = run.finished_at + (0.0 if same_terminal else gap_m / DEADHEAD_SPEED + 120.0)
            nxt = _drive(
                shared, trips[j + 1], next_ready, motion_rng, run.noise_out, duty.offset_s, model.min_layover_s
            )
            if same_terminal:
                window_end = next_ready
        if start_at is not None and origin + window_end + LATEST_DELIVERY_S < start_at:
            if nxt is not None:  # all of this trip was delivered before the stream starts: only drive it
                run = nxt
            continue
        trip_device = _TripDevice(shared, duty, run, device_rng)
        chunk_start = run.ready_at
        while chunk_start < window_end:
            chunk_end = min(chunk_start + CHUNK_FIXES * config.ping_interval_s, window_end)
            if window_end - chunk_end < 1.0:
                chunk_end = window_end
            skip_fixes = start_at is not None and origin + chunk_end + LATEST_DELIVERY_S < start_at
            fresh = trip_device.chunk(chunk_start, chunk_end, clock, counter, skip_fixes)
            last_chunk = chunk_end >= window_end
            horizon = origin + (chunk_end if not last_chunk or nxt is None else nxt.ready_at)
            if last_chunk and nxt is None:
                horizon = math.inf
            kept: list[Keyed] = []
            for item in heapq.merge(carried, fresh) if carried else fresh:
                if item[0] > horizon:
                    kept.append(item)
                elif start_at is None or item[0] >= start_at:
                    yield item
            carried = kept
            chunk_start = chunk_end
        if nxt is not None:
            run = nxt


class _TripDevice:
    """The device's view of one trip: which trip it reports, and its fixes chunk by chunk."""

    def __init__(self, shared: _Shared, duty: Duty, run: TripRun, rng: np.random.Generator) -> None:
        self.shared, self.duty, self.run, self.rng = shared, duty, run, rng
        plan, config, trip = shared.plan, shared.plan.config, run.trip
        u_missing, u_wrong, u_pick = rng.random(3)
        self.reported: Trip | None = trip
        self.trip_label = ""
        if u_missing < config.device.missing_trip_rate:
            self.reported, self.trip_label = None, "missing_trip"
        elif u_wrong < config.device.wrong_trip_rate:
            others = [t for t in shared.route_trips[trip.route_id] if t != trip.trip_id]
            if others:
                self.reported = plan.network.trips[others[int(u_pick * len(others))]]
                self.trip_label = "wrong_trip"
        self.stops_done = 0

    def chunk(
        self, start: float, end: float, clock: DeviceClock, counter: Iterator[int], skip_fixes: bool
    ) -> Iterator[Keyed]:
        """Events whose key falls in this chunk (stops left in [start, end), fixes taken in it), sorted."""
        shared, run, duty = self.shared, self.run, self.duty
        plan, config, trip = shared.plan, shared.plan.config, run.trip
        origin, vehicle, service_date = plan.origin, duty.vehicle_id, shared.service_date
        last = end >= run.finished_at
        stop_end = run.passed if last else int(np.searchsorted(run.departure, end, side="left"))
        stops = range(self.stops_done, max(stop_end, self.stops_done) if shared.with_truth else self.stops_done)
        self.stops_done = max(stop_end, self.stops_done)
        times = fix_times(clock, start, end, self.rng, config.ping_interval_s, config.ping_jitter)
        if skip_fixes:
            times = times[:0]
        faults = draw_faults(times, clock, self.rng, config.device, config.ping_interval_s, config.gps_noise_m)
        sent = np.flatnonzero(faults.sent)
        dup = np.flatnonzero(faults.duplicate)
        keys = np.concatenate((
            origin + run.departure[stops.start : stops.stop], origin + faults.deliver_at[sent],
            origin + faults.duplicate_at[dup],
        ))
        order_a = np.argsort(keys, kind="stable")
        order, sorted_keys = order_a.tolist(), keys[order_a].tolist()
        n_stops, n_sent = len(stops), len(sent)
        if n_sent:
            rows, labels = self._fix_rows(times, faults)
            fields = self.ping_fields
        sent_l, dup_l = sent.tolist(), dup.tolist()
        del times, faults, keys, order_a, sent, dup  # this generator lives on: keep only what the loop reads
        index, true_trip, with_truth = duty.index, trip.trip_id, shared.with_truth
        pings: dict[int, Ping] = {}
        for k, key in zip(order, sorted_keys, strict=True):
            if k < n_stops:
                i = stops.start + k
                event: Event = StopTruth(
                    vehicle, true_trip, service_date, trip.stop_ids[i], int(trip.stop_sequences[i]),
                    origin + float(run.arrival[i]), origin + float(run.departure[i]), bool(run.served[i]),
                )
            elif k < n_stops + n_sent:
                i = sent_l[k - n_stops]
                stamp, lat, lon, bearing, speed, true_lat, true_lon, dist = rows[i].tolist()
                ping = Ping(vehicle, stamp, lat, lon, bearing, speed, *fields)
                event = Delivery(key, ping, PositionTruth(
                    vehicle, stamp, true_trip, true_lat, true_lon, dist, key, labels[i]
                ) if with_truth else None)
                pings[i] = ping
            else:  # the second copy of a duplicated fix: the very same report, delivered again
                event = Delivery(key, pings[dup_l[k - n_stops - n_sent]], None)
            yield key, index, next(counter), event

    def _fix_rows(self, times: np.ndarray, faults: FixFaults) -> tuple[np.ndarray, list[str]]:
        """Per fix: timestamp, reported lat, lon, bearing, speed, true lat, lon, shape_dist; fault labels."""
        shared, run = self.shared, self.run
        plan, trip = shared.plan, run.trip
        net, origin = plan.network, plan.origin
        shape = net.shapes[trip.shape_id]
        s, speed = run.progress(times)
        x = np.interp(s, shape.dist, shape.xy[:, 0])
        y = np.interp(s, shape.dist, shape.xy[:, 1])
        true_lat, true_lon = net.projection.to_latlon(x, y)
        noise, jump = faults.noise_xy, faults.jump_xy
        dx = np.where(faults.jump, jump[:, 0], noise[:, 0])
        dy = np.where(faults.jump, jump[:, 1], noise[:, 1])
        lat, lon = net.projection.to_latlon(x + dx, y + dy)
        lat, lon = np.where(faults.swapped, lon, lat), np.where(faults.swapped, lat, lon)
        lat[faults.zero] = 0.0
        lon[faults.zero] = 0.0
        headings = shared.heading(trip.shape_id)
        segment = np.clip(np.searchsorted(shape.dist, s, side="right") - 1, 0, len(headings) - 1)
        rows = np.column_stack((
            np.round(origin + times, 3), np.round(lat, 7), np.round(lon, 7), np.round(headings[segment]),
            np.round(speed, 2), true_lat, true_lon, s,
        ))
        return rows, _labels(faults, self.trip_label)

    @property
    def ping_fields(self) -> tuple[str | None, str, int | None, str | None, str | None]:
        """trip_id, route_id, direction_id, start_date, start_time as the device reports them."""
        reported, trip = self.reported, self.run.trip
        if reported is None:
            return None, trip.route_id, None, None, None
        return (
            reported.trip_id, reported.route_id, reported.direction_id, self.shared.service_date,
            _hhmmss(reported.start_time),
        )


def _drive(
    shared: _Shared, trip: Trip, ready: float, rng: np.random.Generator, noise: float, offset: float, layover: float
) -> TripRun:
    config = shared.plan.config
    statics = shared.statics.get(trip.trip_id)
    if statics is None:
        statics = shared.statics[trip.trip_id] = TripStatics.of(trip, config.seed, config.delay)
    return drive_trip(
        trip, ready, rng, seed=config.seed, model=config.delay, driving=config.driving, noise_in=noise,
        origin_hour=shared.origin_hour, offset_s=offset, layover_s=layover, statics=statics,
    )


def _terminal_distance(net: Network, trip: Trip, last_index: int, following: Trip) -> float:
    a, b = net.stops[trip.stop_ids[last_index]], net.stops[following.stop_ids[0]]
    ax, ay = net.projection.point_xy(a.lat, a.lon)
    bx, by = net.projection.point_xy(b.lat, b.lon)
    return math.hypot(ax - bx, ay - by)


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
