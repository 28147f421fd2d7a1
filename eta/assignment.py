"""Which trip a vehicle is running: the device's trip_id when it fits, else inferred from position and time."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np

from eta.matching import Match
from eta.tracking_context import DayTrips, TrackingContext
from smartbus.messages import Ping

_SECONDS_TO_METRES: Final = 0.05  # in the fit score, 20 s of schedule deviation weigh like 1 m off the shape
_CLAIMED_PENALTY: Final = 500.0  # a trip another vehicle runs is a poor guess, though not impossible
_TERMINAL_DEG: Final = 0.0027  # a trip's end and the next one's start within ~300 m are one terminal (as dispatched)
_NOISE_M: Final = 15.0  # GPS noise: a fix this close to two shapes fits both equally
_OTHER_ROUTE_PENALTY: Final = 10.0  # a bus mostly stays on its route: at a shared terminal, prefer its route's trips
_WAIT_TO_METRES: Final = 0.002  # waiting at a terminal, the sooner departure is likelier (one hour weighs 7.2 m)
# A moving bus heading against a trip's direction there is on another trip (the same street the other way,
# an opposite direction leaving the same terminal): it weighs like a fix far off the shape.
_WRONG_WAY_PENALTY: Final = 100.0
WRONG_WAY_DEG: Final = 120.0  # a bus heading this far off a line's direction is going the other way
_HEADING_MIN_SPEED_MPS: Final = 2.0  # slower than this, a device's bearing says little
# A standing bus faces the way it was last seen going: a line turned further than this from it does not go its way
# (a bus leaving its trip for the one its device names, while it stands, on a street both trips' lines cross)
_STILL_FACING_DEG: Final = 60.0


def turn_between(a: float, b: float) -> float:
    """Degrees between two compass bearings (0 to 180)."""
    return abs((a - b + 180.0) % 360.0 - 180.0)


def moving_heading(ping: Ping) -> float | None:
    """The ping's bearing when the bus is moving fast enough for it to mean something."""
    if ping.bearing is None or ping.speed is None or ping.speed < _HEADING_MIN_SPEED_MPS:
        return None
    return ping.bearing


@dataclass(frozen=True, slots=True)
class Fit:
    trip_id: str
    day: DayTrips
    match: Match
    delay_s: float
    score: float


def fit_trip(
    ctx: TrackingContext,
    trip_id: str,
    day: DayTrips,
    x: float,
    y: float,
    ts: float,
    own: str | None = None,
    route: str | None = None,
    shape_matches: list[Match] | None = None,
    waiting: bool = False,
    heading: float | None = None,
) -> Fit | None:
    """How well a fix at (x, y, ts) fits a trip on a service day: the best leg within the schedule's reach.

    `shape_matches`: the fix's candidates on the trip's whole shape, when the caller already has them (many
    trips share a shape); else they are found within the schedule's reach. `waiting`: the bus already runs
    this trip and waits at its first stop, however long before departure. `heading`: the moving bus's
    bearing (see `moving_heading`), which a leg going the other way does not fit.
    """
    cfg = ctx.config
    trip = ctx.network.trips[trip_id]
    timeline = ctx.timelines.get(trip_id)
    t_rel = ts - day.origin
    earliest = -math.inf if waiting else trip.start_time - cfg.early_tolerance_s - cfg.terminal_wait_s
    if not (earliest <= t_rel <= trip.end_time + cfg.late_tolerance_s):
        return None
    lo = timeline.dist_at(t_rel - cfg.late_tolerance_s)
    hi = timeline.dist_at(t_rel + cfg.early_tolerance_s)
    best: Fit | None = None
    if shape_matches is None:
        near = ctx.shapes_near(x, y).get(trip.shape_id)  # its segments that pass near the fix, if any
        matcher = ctx.matchers.get(trip.shape_id)
        matches = [] if near is None else matcher.candidates(x, y, lo, hi, cfg.off_route_m, near)
    else:
        matches = [_within(m, lo, hi) for m in shape_matches if lo - cfg.off_route_m <= m.dist <= hi + cfg.off_route_m]
    for match in matches:
        delay = t_rel - timeline.time_at(match.dist)
        wait = 0.0
        if match.dist <= trip.stop_dist[0] + cfg.depart_radius_m and t_rel < trip.departure[0]:
            delay = 0.0  # waiting at the first stop before departure is a layover, not earliness
            wait = trip.departure[0] - t_rel
        holder = ctx.holder(day.service_date, trip_id)
        claimed = holder is not None and holder != own
        score = timetable_score(match.offset, delay) + (_CLAIMED_PENALTY if claimed else 0.0)
        score += wait * _WAIT_TO_METRES + (_OTHER_ROUTE_PENALTY if route and trip.route_id != route else 0.0)
        if heading is not None:
            if turn_between(ctx.matchers.get(trip.shape_id).heading_at(match.dist), heading) > WRONG_WAY_DEG:
                score += _WRONG_WAY_PENALTY
        if best is None or score < best.score:
            best = Fit(trip_id, day, match, delay, score)
    return best


def timetable_score(offset: float, delay_s: float) -> float:
    """A fix's fit to a trip from how far off its shape and off its timetable it is (lower is better)."""
    # offsets within GPS noise say nothing about which of two shapes along the same street it is
    off = offset - _NOISE_M if offset > _NOISE_M else 0.0
    return off + abs(delay_s) * _SECONDS_TO_METRES


def forced_fit(ctx: TrackingContext, trip_id: str, day: DayTrips, x: float, y: float, ts: float) -> Fit:
    """Where on `trip_id` a fix lies when an operator says the bus runs that trip, fit or not.

    Of the legs of the whole shape passing near the fix, the one nearest where the timetable puts the bus
    now; with none near (the bus is away from its route), the nearest point of the shape, so the bus shows
    as off-route on the trip it was given rather than on a trip of our choosing.
    """
    fit = fit_trip(ctx, trip_id, day, x, y, ts, waiting=True)
    if fit is not None:
        return fit
    trip = ctx.network.trips[trip_id]
    timeline = ctx.timelines.get(trip_id)
    matcher = ctx.matchers.get(trip.shape_id)
    t_rel = ts - day.origin
    expected = timeline.dist_at(t_rel)
    options = matcher.candidates(x, y, 0.0, matcher.length, ctx.config.off_route_m)
    match = min(options, key=lambda m: abs(m.dist - expected)) if options else matcher.project(x, y)
    delay = 0.0 if t_rel < trip.departure[0] else t_rel - timeline.time_at(match.dist)
    return Fit(trip_id, day, match, delay, match.offset)


def _within(match: Match, lo: float, hi: float) -> Match:
    """A whole-shape candidate moved into [lo, hi], its offset grown by the move (a close upper bound)."""
    if match.dist < lo:
        return Match(lo, match.offset + lo - match.dist)
    if match.dist > hi:
        return Match(hi, match.offset + match.dist - hi)
    return match


def resolve_trip_id(ctx: TrackingContext, ping: Ping) -> str | None:
    """The network's id for the ping's trip, including expanded frequency trips (trip_id@start_time)."""
    if ping.trip_id is None:
        return None
    if ping.trip_id in ctx.network.trips:
        return ping.trip_id
    if ping.start_time:
        expanded = f"{ping.trip_id}@{ping.start_time}"
        if expanded in ctx.network.trips:
            return expanded
    return None


def trusted_fit(
    ctx: TrackingContext,
    ping: Ping,
    x: float,
    y: float,
    own: str | None = None,
    on_a_trip: bool = False,
    last_heading: float | None = None,
) -> Fit | None:
    """The device's own trip, if the fix fits it on the ping's (or a plausible) service day: where and when the
    trip is, and, once the bus has left its first stop, which way it goes (see `_goes_its_way`)."""
    trip_id = resolve_trip_id(ctx, ping)
    if trip_id is None:
        return None
    days = ctx.days_around(ping.timestamp)
    if ping.start_date:
        given = ctx.day_of(ping.start_date)
        days = [given] if given is not None else days
    heading = moving_heading(ping)
    best: Fit | None = None
    for day in days:
        if ping.timestamp - day.origin < ctx.network.trips[trip_id].start_time - ctx.config.device_trip_wait_s:
            continue  # a device set up with a run hours ahead is likelier wrong than the bus out of service for hours
        # the device says so: a bus may wait long at the first stop before departure
        fit = fit_trip(ctx, trip_id, day, x, y, ping.timestamp, own, waiting=True,
                       heading=heading if heading is not None else last_heading)
        if fit is None or not _goes_its_way(ctx, fit, heading, last_heading, on_a_trip):
            continue
        if best is None or fit.score < best.score:
            best = fit
    return best


def _goes_its_way(
    ctx: TrackingContext, fit: Fit, heading: float | None, last_heading: float | None, on_a_trip: bool
) -> bool:
    """Whether the bus goes the way of the trip `fit` puts it on. A bus moving against the line of the trip its
    device names runs another trip, along the same street the other way, whatever the device says. Standing (no
    `heading`), it faces the way it was last seen going (`last_heading`, if lately), and the trip's line must go
    that way too; a bus on a trip already and not seen moving lately leaves it only once it is. At the trip's
    first stop anything goes: at its stand a bus turns every way."""
    trip = ctx.network.trips[fit.trip_id]
    if fit.match.dist <= float(trip.stop_dist[0]) + ctx.config.depart_radius_m:
        return True
    line = ctx.matchers.get(trip.shape_id).heading_at(fit.match.dist)
    if heading is not None:
        return turn_between(line, heading) <= WRONG_WAY_DEG
    if last_heading is not None:
        return turn_between(line, last_heading) <= _STILL_FACING_DEG
    return not on_a_trip


def infer_trip(
    ctx: TrackingContext, ping: Ping, x: float, y: float, own: str | None = None, route: str | None = None
) -> Fit | None:
    """The trip, among those running around the fix's time (on its route and direction when given),
    whose shape passes nearest the fix at the time its schedule says, trips of other vehicles discounted."""
    ranked = rank_trips(ctx, ping, x, y, own, route)
    return ranked[0] if ranked else None


def rank_trips(
    ctx: TrackingContext, ping: Ping, x: float, y: float, own: str | None = None, route: str | None = None
) -> list[Fit]:
    """Every trip the fix fits, best first (see infer_trip); `route` is the route the bus ran last."""
    cfg = ctx.config
    fits: list[Fit] = []
    near = ctx.shapes_near(x, y)
    if not near:
        return fits
    on_shape: dict[str, list[Match]] = {}  # candidates on each whole shape, found once for all its trips
    heading = moving_heading(ping)
    for day in ctx.days_around(ping.timestamp):
        t_rel = ping.timestamp - day.origin
        latest_start = t_rel + cfg.early_tolerance_s + cfg.terminal_wait_s
        active = np.flatnonzero((day.starts <= latest_start) & (day.ends + cfg.late_tolerance_s >= t_rel))
        for k in active:
            trip_id = day.trip_ids[int(k)]
            trip = ctx.network.trips[trip_id]
            if trip.shape_id not in near:
                continue
            if ping.route_id is not None and trip.route_id != ping.route_id:
                continue
            if ping.direction_id is not None and trip.direction_id not in (None, ping.direction_id):
                continue
            matches = on_shape.get(trip.shape_id)
            if matches is None:
                matcher = ctx.matchers.get(trip.shape_id)
                matches = matcher.candidates_on(x, y, near[trip.shape_id], cfg.off_route_m)
                on_shape[trip.shape_id] = matches
            if not matches:
                continue
            fit = fit_trip(ctx, trip_id, day, x, y, ping.timestamp, own, route, matches, heading=heading)
            if fit is not None:
                fits.append(fit)
    fits.sort(key=lambda f: (f.score, f.trip_id))
    return fits


def next_in_block(ctx: TrackingContext, trip_id: str, day: DayTrips, ignore_claims: bool = False) -> str | None:
    """The trip the same vehicle runs next: the block's next trip, or when the feed has no blocks, the trip the
    day's dispatch plan gives it (eta.prediction.blocks: the same chain the predictor predicts along) unless
    another vehicle runs that one, else the next departure of the same route from the stop where this trip
    ends. Trips another vehicle runs (TrackingContext.holder) are skipped unless `ignore_claims`; then a next
    departure more than `terminal_wait_s` after this trip's end is no one's to guess (None)."""
    planned = ctx.chains.next_trip(day.service_date, trip_id)
    if planned is not None and (ignore_claims or ctx.holder(day.service_date, planned) is None):
        return planned
    following = next_from_terminal(ctx, trip_id, day, ignore_claims)
    if following is not None and not ignore_claims and (
        ctx.network.trips[following].start_time - ctx.network.trips[trip_id].end_time > ctx.config.terminal_wait_s
    ):
        # the trips between went to other buses: this one does not wait hours for the next; where it goes
        # is for inference to find when it moves
        return None
    return following


def next_from_terminal(ctx: TrackingContext, trip_id: str, day: DayTrips, ignore_claims: bool = False) -> str | None:
    """The block's next trip, or the next departure of the same route from where this trip ends (within
    ~300 m) that no other vehicle has claimed (unless `ignore_claims`)."""
    network = ctx.network
    trip = network.trips[trip_id]
    group = f"block:{trip.block_id}" if trip.block_id else f"route:{trip.route_id}"
    for start, other_id in day.departures(group, network):
        if start < trip.end_time or other_id == trip_id:
            continue
        if not trip.block_id:
            if not ignore_claims and ctx.holder(day.service_date, other_id):
                continue
            if not starts_where_ends(ctx, other_id, trip_id):
                continue
        return other_id
    return None


def starts_where_ends(ctx: TrackingContext, later_id: str, trip_id: str) -> bool:
    """Whether trip `later_id` leaves from the terminal where `trip_id` ends (its last stop, or within ~300 m)."""
    network = ctx.network
    return _one_terminal(ctx, network.trips[later_id].stop_ids[0], network.trips[trip_id].stop_ids[-1])


def starts_where_starts(ctx: TrackingContext, other_id: str, trip_id: str) -> bool:
    """Whether trip `other_id` leaves from the terminal `trip_id` leaves from (its first stop, or within ~300 m)."""
    network = ctx.network
    return _one_terminal(ctx, network.trips[other_id].stop_ids[0], network.trips[trip_id].stop_ids[0])


def ends_where_ends(ctx: TrackingContext, other_id: str, trip_id: str) -> bool:
    """Whether trip `other_id` ends at the terminal `trip_id` ends at (its last stop, or within ~300 m)."""
    network = ctx.network
    return _one_terminal(ctx, network.trips[other_id].stop_ids[-1], network.trips[trip_id].stop_ids[-1])


def _one_terminal(ctx: TrackingContext, stop_id: str, other_stop_id: str) -> bool:
    if stop_id == other_stop_id:
        return True
    stop, other = ctx.network.stops[stop_id], ctx.network.stops[other_stop_id]
    return abs(stop.lat - other.lat) <= _TERMINAL_DEG and abs(stop.lon - other.lon) <= _TERMINAL_DEG


def stand_point(ctx: TrackingContext, trip_id: str) -> tuple[float, float]:
    """Where on its line a trip's first stop is (x, y in the network's projection): where its bus waits."""
    trip = ctx.network.trips[trip_id]
    shape = ctx.network.shapes[trip.shape_id]
    at = float(trip.stop_dist[0])
    return float(np.interp(at, shape.dist, shape.xy[:, 0])), float(np.interp(at, shape.dist, shape.xy[:, 1]))


def leaving_beside(ctx: TrackingContext, trip_id: str, day: DayTrips, within_s: float) -> list[str]:
    """The day's trips leaving within `within_s` of `trip_id` from another stop of its terminal."""
    network = ctx.network
    trip = network.trips[trip_id]
    near = np.nonzero(np.abs(day.starts - trip.start_time) <= within_s)[0].tolist()
    return [
        other
        for other in (day.trip_ids[k] for k in near)
        if other != trip_id
        and network.trips[other].stop_ids[0] != trip.stop_ids[0]
        and starts_where_starts(ctx, other, trip_id)
    ]


def next_departure_here(ctx: TrackingContext, trip_id: str, day: DayTrips) -> float | None:
    """When the next trip of the same route (or block) leaves from this trip's first stop, after it
    (seconds of the service day); None when none does that day."""
    network = ctx.network
    trip = network.trips[trip_id]
    group = f"block:{trip.block_id}" if trip.block_id else f"route:{trip.route_id}"
    first = trip.stop_ids[0]
    for start, other_id in day.departures(group, network):
        if start > trip.start_time and network.trips[other_id].stop_ids[0] == first:
            return start
    return None
