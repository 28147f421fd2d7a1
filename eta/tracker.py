"""One vehicle's tracker: pings in delivery order in, its state and its stop arrivals/departures out.

Pure and single-threaded: the stream keeps one vehicle's pings on one worker, so no locks.
Seam for prediction: `trip_id`, `service_date`, `progress` (metres along the shape) and `delay_s`.
"""

from __future__ import annotations

import dataclasses
import math
from array import array
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field, fields
from typing import Final

from eta.assignment import (
    WRONG_WAY_DEG,
    Fit,
    ends_where_ends,
    fit_trip,
    forced_fit,
    leaving_beside,
    moving_heading,
    next_departure_here,
    next_in_block,
    rank_trips,
    stand_point,
    starts_where_ends,
    starts_where_starts,
    timetable_score,
    trusted_fit,
    turn_between,
)
from eta.matching import Match, ShapeMatcher
from eta.rounding import round_to
from eta.stop_timing import ease_kind, segment_clock, timed_run_end
from eta.timeline import TripTimeline
from eta.tracking_context import DayTrips, TrackerConfig, TrackingContext
from smartbus.messages import Ping, StopEvent, VehicleState, VehicleStatus

# VehicleState's fields in order: the per-fix state is built positionally (see _state); should the shared
# record ever change, fail on import rather than fill the wrong fields
_STATE_FIELDS = (
    "vehicle_id",
    "timestamp",
    "latitude",
    "longitude",
    "status",
    "trip_id",
    "route_id",
    "service_date",
    "shape_dist",
    "offset_m",
    "delay_s",
    "next_stop_id",
    "next_stop_sequence",
    "speed",
    "bearing",
    "feed_version",
)


def _require_fields(record: type, names: tuple[str, ...], built_in: str) -> None:
    """Fail at import when a message record's fields are no longer those `built_in` passes it by position."""
    if tuple(f.name for f in fields(record)) != names:
        raise ImportError(f"smartbus.messages.{record.__name__} changed its fields: update eta.tracker.{built_in}")


_require_fields(VehicleState, _STATE_FIELDS, "_state")
# StopEvent's, likewise (see _event)
_EVENT_FIELDS = (
    "vehicle_id",
    "trip_id",
    "service_date",
    "stop_id",
    "stop_sequence",
    "arrival_time",
    "departure_time",
    "interpolated",
    "route_id",
    "scheduled_arrival",
    "feed_version",
)
_require_fields(StopEvent, _EVENT_FIELDS, "_event")

# (time, progress) of the fixes on the trip over this long are kept, to place fixes delivered late (devices
# that buffer through a dead spot deliver minutes late), at most one per spacing so a 1 Hz device keeps few.
_RECENT_S: Final = 900.0
_RECENT_SPACING_S: Final = 10.0
# Refused fixes remembered, so a replayed batch refuses them again: more than one vehicle's share of a batch.
_REFUSED_KEPT: Final = 16
# A late fix that as nearly fits (within this much offset) a pass of the line this far along from the best is
# left unplaced: no live fix says which pass it was on.
_LATE_AMBIGUOUS_OFFSET_M: Final = 15.0
_LATE_AMBIGUOUS_ALONG_M: Final = 150.0
_TIMING_FIXES: Final = 3  # moving fixes kept on the run into the next stop, to time its arrival
_HELD_SHORT_M: Final = 1.0  # where progress waits for a bus GPS puts past a stop it has not reached
_AHEAD_SLACK_S: Final = 3.0  # ... when its run reaches the stop more than this after the fix
_STAND_REACH_M: Final = 1500.0  # a trip's end may lie on the next trip's line up to this far beyond its first stop
_SET_OFF_FROM_END_M: Final = 300.0  # a bus this far along its next trip's line past where it ended the last has set off
_SILENT_CRAWL_MPS: Final = 1.5  # over a silence, slower than this on average is hardly moving (a jam at worst)
_GAP_NEAR_M: Final = 200.0  # a stop this near the last fix before a silence is timed by that fix's run
_STAND_FIXES: Final = 4  # fixes standing at a stand before their mean says which stand it is
_STAND_SPREAD_M: Final = 30.0  # ... none of them farther than this from their mean (GPS error, not a bus on the move)
_AT_STAND_M: Final = 12.0  # a bus whose mean position is this near a trip's first stop waits at its stand
_STANDS_APART_M: Final = 8.0  # ... when it is also this much nearer that stand than its trip's
_SAME_WAVE_S: Final = 600.0  # trips leaving a terminal within this of each other: its buses wait there together
_STILL_WAITING_S: Final = 60.0  # a bus seen waiting at a stand this recently is still there
_STILL_FACING_S: Final = 120.0  # a bus standing still faces the way it was going this recently (it pulled in to stand)
_LEAVES_EARLY_S: Final = 300.0  # no bus leaves its terminal this much before its trip is due out
_LATE_SHARE_OF_HEADWAY: Final = 0.9  # late for its trip by this share of the wait for the next: still that trip
_PATH_FIXES: Final = 8  # the fixes a rival trip must also explain before the bus is moved onto it
_NOISE_M: Final = 15.0  # GPS noise: per fix, a rival's shape may pass this much farther than ours
_FAR_FROM_GUESS_M: Final = 100.0  # a match this far along from where the speeds put the bus: check the other passes
_CORNER_M: Final = 25.0  # how far round a corner GPS error can put a fix
_GPS_SIGMA_M: Final = 10.0  # typical GPS error, off the line
_GUESS_SPREAD: Final = 0.15  # where the bus is now may be off by this share of the fastest it could have gone
_MIN_GUESS_SPREAD_M: Final = 50.0  # ... but never less than this
_BEHIND_SPREAD: Final = 2.0  # ... and twice that short of the guess (stops and lights the speeds know nothing of)
_AGAINST_PENALTY: Final = 9.0  # a pass going against the bus's heading weighs like 3 GPS errors off the line
_LEAST_CLOCK_ERROR_S: Final = 0.5  # no run-in clock counts as surer than this when clocks are averaged
_LOST_FIX_S: Final = 40.0  # two fixes farther apart than this: one or more between them was lost (30 s reporting)
_STOP_TO_STOP_S: Final = 40.0  # standing at two fixes this far apart, a bus may have driven to the next stop between
_CREEPING_MPS: Final = 2.0  # ... standing, or pulling in or out
_HEADING_SIGMA_DEG: Final = 45.0  # a pass turned further than this from the bus's heading, even at a bend, is doubtful
_STANDING_AWAY_PENALTY: Final = 4.0  # ... and one where a bus standing or creeping would be away from any stop, like 2
_DROVE_PAST_PENALTY: Final = 1.0  # a bus driving past a stop rather than serving it weighs like one spread along
_ALONG_TO_OFFSET: Final = 0.1  # choosing between legs, 100 m from the expected progress weigh like 10 m off the line


@dataclass(frozen=True, slots=True)
class _ServedOnTheWay:
    """A stop between the last progress and where the speeds put the bus, and where the bus would be had it
    stood there for a typical dwell."""

    stop: float
    guess: float


@dataclass(slots=True, init=False)
class TrackerOutput:
    state: VehicleState | None
    events: list[StopEvent]
    rejected_reason: str | None  # why the ping was not used (out_of_order, duplicate, ...)
    # a ping delivered after a newer one (rejected for tracking) still placed on the trip, as a position of the
    # past: stored with the vehicle's history, never its live state and never a source of predictions
    past: VehicleState | None

    # Written out, not generated: compiled, this __init__ is native code, where dataclass's own (made at import
    # time) runs in the interpreter, and one output is built for every ping. (`events` None: a new empty list.)
    def __init__(
        self,
        state: VehicleState | None,
        events: list[StopEvent] | None = None,
        rejected_reason: str | None = None,
        past: VehicleState | None = None,
    ) -> None:
        self.state = state
        self.events = [] if events is None else events
        self.rejected_reason = rejected_reason
        self.past = past


def _no_fixes() -> array[float]:
    return array("d")


@dataclass
class TrackState:
    """Everything a tracker remembers (picklable, for restarts)."""

    last_ts: float | None = None
    last_lat: float = 0.0
    last_lon: float = 0.0
    last_x: float = 0.0
    last_y: float = 0.0
    last_speed: float | None = None  # m/s as the device reported it
    speed_rejects: int = 0
    trip_id: str | None = None
    service_date: str | None = None
    confirmed: bool = True  # False while an inferred trip is still being checked against its rivals
    confirm_wins: int = 0
    held: list[StopEvent] = field(default_factory=list)  # events of a trip not yet confirmed
    history: list[tuple[float, float, float, float | None]] = field(default_factory=list)  # (ts, x, y, speed)
    progress: float = 0.0  # metres along the trip's shape, never decreasing within a trip
    progress_ts: float = 0.0
    progress_speed: float | None = None  # the device's speed at progress_ts
    next_stop: int = 0  # index of the first stop not yet departed
    pending_arrival: float | None = None  # arrival at next_stop when the vehicle is there now
    pending_interpolated: bool = False
    trusted: bool = False  # the trip came from the device's own trip_id
    other_trip_id: str | None = None  # a trip_id the device reports that is not ours, and on how many fixes
    other_trip_fixes: int = 0
    fixes_since_check: int = 0
    provisional_fixes: int = 0  # fixes since departure while the trip was provisional
    route_id: str | None = None  # the route of the trip the bus ran last (kept when it is unassigned)
    parked: bool = False  # standing at the end of `finished`, no next trip known
    finished: tuple[str, str] | None = None  # (service_date, trip_id) of the trip it last ran to the end
    # the last few moving fixes on the run into the next stop, (stop index, ts, dist, speed, from rest): at
    # the arrival, the one that times it best gives when the bus reached the stop
    timing_fixes: list[tuple[int, float, float, float, bool]] = field(default_factory=list)
    prev_served: bool = True  # whether the bus stood at the last stop it passed (it then pulled away slowly)
    delay_s: float | None = None
    cruise_mps: float = 7.0
    off_route_count: int = 0
    last_offset: float | None = None
    trip_since: float = 0.0  # when the bus joined its current trip (UTC epoch seconds)
    # the last fixes on it, (ts, progress) pairs flat in one array of doubles: 16 bytes a fix, where a list of
    # tuples took 112 (at 90 fixes a bus, 90 MB of a 10,000-bus worker's memory) and pickled three times slower
    recent: array[float] = field(default_factory=_no_fixes)
    # timestamps of the last fixes refused (impossible speed, off the network): a worker that replays a batch
    # after a crash or a rebalance meets them again as late fixes, and must refuse them again, not store them.
    # A tuple, so that snapshots pickled before it existed load with the class default.
    refused_ts: tuple[float, ...] = ()
    # where on its next trip's line a bus ended its last trip, when that is beyond the next trip's first stop: it
    # goes back to the stand from there (None otherwise; a class default, like refused_ts, for older snapshots)
    to_stand_from: float | None = None
    left_first_at: float | None = None  # when the bus left its trip's first stop (UTC epoch seconds; as above)
    last_heading: tuple[float, float] | None = None  # (when, bearing) of its last fix moving fast enough to say


def _estimated_after(events: list[StopEvent], heard_last: float) -> list[StopEvent]:
    """Events timed after the last fix before a gap are our estimates, whatever the path: flag them interpolated."""
    return [dataclasses.replace(e, interpolated=True) if e.arrival_time > heard_last else e for e in events]


def _misalignment(matcher: ShapeMatcher, along: float, heading: float) -> float:
    """Degrees between a bus's heading and the line's at `along`, the least of it and a corner's length either
    side (GPS error puts a fix a few metres round a corner, where the line already points elsewhere). Beyond
    `WRONG_WAY_DEG` the bus goes against the line there."""
    # three calls spelled out rather than a generator: this runs on most fixes
    here = turn_between(matcher.heading_at(along), heading)
    before = turn_between(matcher.heading_at(along - _CORNER_M), heading)
    after = turn_between(matcher.heading_at(along + _CORNER_M), heading)
    return min(here, before, after)


def _stop_cost_s(cfg: TrackerConfig, speed: float) -> float:
    """Seconds a stop it serves costs a bus running at `speed`: a typical dwell, and braking in and pulling away."""
    return cfg.typical_dwell_s + speed / cfg.brake_mps2


def _near_stop(stop_dist: list[float], along: float, radius: float) -> bool:
    """Whether `along` is within `radius` metres of one of the stops at `stop_dist` (ascending)."""
    k = bisect_left(stop_dist, along)
    return (k < len(stop_dist) and stop_dist[k] - along <= radius) or (k > 0 and along - stop_dist[k - 1] <= radius)


class _GapClock:
    """When a bus passed the stops between two fixes far apart in time: the time between them shared out
    over the schedule's running time (the distance at cruising speed where the schedule has none) and a
    typical stand at each stop on the way, not all of it spent at the first stop (which would put every later
    stop late), nor spread evenly over the distance (the schedule knows where streets are slow).
    A silence that ends with the bus standing at a stop (`standing_at`, its index) ends part way through its
    stand there: half a stand is counted at that stop.
    A silence that ends with the bus at the end of its trip may end in a wait there (a layover, at any length):
    the bus is taken to have kept the delay it had before the silence, unless the silence was shorter."""

    __slots__ = (
        "_stop_dist", "_t1", "_t2", "_d1", "_per_metre", "_per_stop", "_first", "_rate", "_timeline", "_s1",
        "_stood_at",
    )

    def __init__(
        self, stop_dist: list[float], d1: float, t1: float, d2: float, t2: float, cruise_mps: float, stop_s: float,
        timeline: TripTimeline | None = None, ends_trip: bool = False, standing_at: int | None = None,
        leaves: tuple[int, float] | None = None,
    ) -> None:
        self._stop_dist, self._t2, self._d1 = stop_dist, t2, d1
        self._per_metre, self._per_stop = 1.0 / cruise_mps, stop_s
        self._timeline = timeline if timeline is not None and timeline.time_at(d2) > timeline.time_at(d1) else None
        self._s1 = self._timeline.time_at(d1) if self._timeline is not None else 0.0
        self._first = bisect_right(stop_dist, d1)  # the first stop wholly ahead of the fix before the gap
        # standing at a stop before the silence, the bus left it no sooner than its stand there was over (`leaves`:
        # the stop's index, and when): the silence is shared out from then, the stops after it
        self._stood_at = -1
        if leaves is not None and t1 < leaves[1] < t2:
            self._stood_at, t1 = leaves[0], leaves[1]
            self._first = max(self._first, leaves[0] + 1)
        self._t1 = t1
        if standing_at is not None and standing_at >= self._first:
            # heard again standing at a stop (GPS may put it a little either side): on average half way through
            # its stand there, after whole stands at the stops before it
            effort = self._effort(d2, standing_at) + 0.5 * stop_s
        else:
            effort = self._effort(d2, len(stop_dist))
        end = t2
        if ends_trip and self._timeline is not None:
            end = min(t2, t1 + self._timeline.time_at(d2) - self._s1)
        self._rate = (end - t1) / effort if effort > 0 and end > t1 else None

    def _effort(self, d: float, stops_before: int) -> float:
        """Typical seconds from the fix before the gap to `d`, standing at the stops before index
        `stops_before` on the way."""
        passed = bisect_left(self._stop_dist, d, lo=self._first, hi=max(stops_before, self._first))
        if self._timeline is not None:
            running = self._timeline.time_at(d) - self._s1
        else:
            running = (d - self._d1) * self._per_metre
        return running + max(passed - self._first, 0) * self._per_stop

    def arrival(self, i: int, not_before: float, otherwise: float) -> float:
        if self._rate is None:
            return otherwise
        at = self._t1 + self._effort(self._stop_dist[i], i) * self._rate
        return min(max(at, not_before), self._t2)

    def departure(self, i: int, arrival: float, dwell_s: float) -> float:
        """A served stop's departure: a typical stand after its arrival, stretched or squeezed as the gap (at the
        stop the bus stood at before the silence, when that stand was over)."""
        if self._rate is None:
            return arrival
        if i == self._stood_at:
            return max(self._t1, arrival)
        return min(max(arrival + dwell_s * self._rate, arrival), self._t2)


def _recent_fixes(s: TrackState) -> array[float]:
    """The state's recent fixes; a snapshot pickled when they were a list of tuples starts them again (they only
    place fixes that arrive late, and fill again within _RECENT_S)."""
    recent = s.recent
    if type(recent) is not array:
        recent = s.recent = _no_fixes()
    return recent


class VehicleTracker:
    def __init__(self, ctx: TrackingContext, vehicle_id: str, state: TrackState | None = None) -> None:
        self.ctx = ctx
        self.vehicle_id = vehicle_id
        self.s = state if state is not None else TrackState(cruise_mps=ctx.config.default_cruise_mps)
        self._day_date: str | None = None
        self._day_trips: DayTrips | None = None
        self._projection = ctx.network.projection
        self._feed_version = ctx.network.feed_hash
        # the current trip's timeline and matcher, looked up once per trip rather than a few times per fix
        self._trip_key: str | None = None
        self._timeline: TripTimeline | None = None
        self._matcher: ShapeMatcher | None = None
        # (ts, service date, trip, where on it, delay at its end) of the trip the fix at ts finished: that fix
        # reports the bus at the end of that trip, the next fix on the one it runs next
        self._ended: tuple[float, str, str, float, float | None] | None = None

    # the seam for predictors
    @property
    def trip_id(self) -> str | None:
        return self.s.trip_id

    @property
    def service_date(self) -> str | None:
        return self.s.service_date

    @property
    def progress(self) -> float:
        return self.s.progress

    @property
    def delay_s(self) -> float | None:
        return self.s.delay_s

    def update(self, ping: Ping) -> TrackerOutput:
        s, cfg = self.s, self.ctx.config
        ts, last_ts = ping.timestamp, s.last_ts
        if last_ts is not None:
            if ts == last_ts or ts in s.refused_ts:
                return TrackerOutput(None, rejected_reason="duplicate")
            if ts < last_ts:
                return TrackerOutput(None, rejected_reason="out_of_order", past=self._place_late(ping))
        lat, lon = ping.latitude, ping.longitude
        x, y = self._projection.point_xy(lat, lon)
        if not self.ctx.inside(x, y):
            return self._refuse(ts, "off_network")
        if last_ts is not None:
            jump = math.hypot(x - s.last_x, y - s.last_y)
            if jump > cfg.max_speed_mps * (ts - last_ts) + 50.0:
                s.speed_rejects += 1
                if s.speed_rejects < cfg.reject_streak_reset:
                    return self._refuse(ts, "impossible_speed")
                self._unassign()  # several fixes agree with each other, not with the anchor: re-anchor
            if s.trip_id is not None and ts - last_ts > cfg.silence_unassign_s:
                self._unassign()
        s.speed_rejects = 0
        s.last_ts, s.last_lat, s.last_lon, s.last_x, s.last_y, s.last_speed = ts, lat, lon, x, y, ping.speed
        self.ctx.heard[self.vehicle_id] = ts
        if ts > self.ctx.clock:
            self.ctx.clock = ts
        out = self._track(ping, x, y)
        heading = moving_heading(ping)
        if heading is not None:
            s.last_heading = (ts, heading)
        if s.trip_id is not None:
            recent = _recent_fixes(s)
            if not recent or ts - recent[-2] >= _RECENT_SPACING_S:
                recent.append(ts)
                recent.append(s.progress)
                stale = 0
                while ts - recent[stale] > _RECENT_S:
                    stale += 2
                if stale:
                    del recent[:stale]
        if s.trip_id is not None and not s.confirmed:
            out.events = self._recheck(ping, x, y, out.events)
            if s.confirmed:
                out.state = self._state(ping, out.state.status if out.state else self._status(ping.timestamp))
        elif s.trip_id is not None and not s.trusted and self._doubtful():
            if self._reconsider(ping, x, y):
                out.state = self._state(ping, self._status(ping.timestamp))
        return out

    def _refuse(self, ts: float, reason: str) -> TrackerOutput:
        if ts not in self.s.refused_ts:  # (a replay refuses a fix newer than the last accepted once more)
            self.s.refused_ts = (*self.s.refused_ts[-(_REFUSED_KEPT - 1):], ts)
        return TrackerOutput(None, rejected_reason=reason)

    def _place_late(self, ping: Ping) -> VehicleState | None:
        """Where on its current trip the bus was when it took a fix that arrived after newer ones: behind
        its progress, between where it was at the fixes taken just before and just after. None when the fix
        predates the trip or the fixes kept, or lies off the trip."""
        s, cfg = self.s, self.ctx.config
        ts = ping.timestamp
        if s.trip_id is None or s.service_date is None or ts < s.trip_since:
            return None
        # between the progress of the fixes taken just before and just after it
        before = after = None
        before_ts = after_ts = ts
        recent = _recent_fixes(s)
        for fix_ts, fix_progress in (*zip(recent[0::2], recent[1::2], strict=True), (s.progress_ts, s.progress)):
            if fix_ts <= ts:
                before, before_ts = fix_progress, fix_ts
            elif after is None:
                after, after_ts = fix_progress, fix_ts
        if before is None or after is None:
            return None
        x, y = self._projection.point_xy(ping.latitude, ping.longitude)
        timeline = self._trip()
        matcher = self._matcher
        assert matcher is not None
        lo, hi = before - cfg.window_back_m, after + cfg.window_back_m
        options = matcher.candidates(x, y, lo, hi, cfg.off_route_m)
        if not options:
            return None
        # where the line passes twice between the two fixes, the pass nearer where the bus should have been: as
        # far through the timetable's run between the two as the fix is through the time between them (over
        # minutes of buffered fixes the timetable knows the slow and the fast stretches; a straight line does not)
        share = (ts - before_ts) / max(after_ts - before_ts, 1e-9)
        t_before, t_after = timeline.time_at(before), timeline.time_at(after)
        if t_after > t_before:
            expected = timeline.dist_at(t_before + share * (t_after - t_before))
        else:
            expected = before + share * (after - before)
        best = min(options, key=lambda m: m.offset + _ALONG_TO_OFFSET * abs(m.dist - expected))
        if any(
            abs(m.dist - best.dist) > _LATE_AMBIGUOUS_ALONG_M and m.offset <= best.offset + _LATE_AMBIGUOUS_OFFSET_M
            for m in options
        ):
            return None  # two passes of the same street fit it about as well: better no position than a wrong one
        along, offset = best.dist, best.offset
        along = min(max(along, before), after)
        day = self._day()
        nxt = timeline.next_stop(along, cfg.arrive_radius_m)
        at_end = nxt >= len(timeline.stop_ids)
        return VehicleState(
            self.vehicle_id,
            ts,
            ping.latitude,
            ping.longitude,
            "in_transit",
            s.trip_id,
            timeline.route_id,
            s.service_date,
            round_to(along, 2),
            round_to(offset, 2),
            None if day is None else round_to(ts - day.origin - timeline.time_at(along), 1),
            None if at_end else timeline.stop_ids[nxt],
            None if at_end else timeline.stop_sequences[nxt],
            ping.speed,
            ping.bearing,
            self._feed_version,
        )

    def _doubtful(self) -> bool:
        """Whether an inferred trip that was confirmed now looks wrong: far off its timetable (another trip
        of the route, or of a route sharing the street, may fit better). Checked every few fixes."""
        s, cfg = self.s, self.ctx.config
        s.fixes_since_check += 1
        if s.fixes_since_check < cfg.recheck_every_fixes:
            return False
        s.fixes_since_check = 0
        return s.delay_s is not None and abs(s.delay_s) > cfg.recheck_delay_s

    def _as_evidence(self, ping: Ping) -> Ping:
        """The ping as inference reads it. A device that names a trip the bus is not on (it did not fit) has the
        wrong trip set up: the direction it reports is that trip's, so it says nothing of the bus's own."""
        if ping.trip_id is None or ping.direction_id is None:
            return ping
        if self.s.trip_id is not None and ping.trip_id == self._trip().base_trip_id:
            return ping
        return dataclasses.replace(ping, direction_id=None)

    def _just_ran(self, fit: Fit | None) -> bool:
        """Whether `fit` is the trip the bus has just run to its end. It does not run that again: a bus the way
        it came fits best stands at its end, or goes back along a street driven out and back, on its next trip."""
        return fit is not None and (fit.day.service_date, fit.trip_id) == self.s.finished

    def _reconsider(self, ping: Ping, x: float, y: float) -> bool:
        """Move to a rival trip that fits the fix clearly better than ours; True when it did."""
        s, cfg = self.s, self.ctx.config
        ranked = rank_trips(self.ctx, self._as_evidence(ping), x, y, self.vehicle_id, s.route_id)
        ours = next((f for f in ranked if f.trip_id == s.trip_id and f.day.service_date == s.service_date), None)
        day = self._day()
        if ours is None and day is not None:
            ours = self._tracked_fit(day)  # later than inference reaches, still on our line
        ranked = [f for f in ranked if f is ours or not self._implausible_rival(f, ours)]
        best = ranked[0] if ranked else None
        if best is None or best is ours or (ours is not None and best.score + cfg.confirm_margin >= ours.score):
            return False
        if self._just_ran(best) or self._skips_into_next_trip(best):
            return False
        if ours is not None and not self._explains_path(best.trip_id, ours.trip_id):
            return False  # a late bus on its own route's street, not another route's trip that joins it here
        self._assign(best, ping.timestamp, confirmed=False, speed=ping.speed)
        s.history = [(ping.timestamp, x, y, ping.speed)]
        self._advance(best.match.dist, ping.timestamp, ping.speed, fresh=True)
        return True

    def _skips_into_next_trip(self, fit: Fit) -> bool:
        """Whether `fit` puts the bus part way along a trip leaving from where ours ends, while the bus has not
        reached that end. It could get onto such a trip only through the end of ours: a bus running late on a
        stretch of ours that the trips out of its terminal run along too (a line that comes back past its
        terminal, or leaves the way the trip before came in) fits their timetable better, yet is on ours."""
        s, cfg = self.s, self.ctx.config
        if s.trip_id is None or fit.trip_id == s.trip_id:
            return False
        if s.progress >= self._trip().stop_dist[-1] - cfg.end_radius_m:
            return False
        if not starts_where_ends(self.ctx, fit.trip_id, s.trip_id):
            return False
        return fit.match.dist > float(self.ctx.network.trips[fit.trip_id].stop_dist[0]) + cfg.depart_radius_m

    def _explains_path(self, rival: str, ours: str) -> bool:
        """Whether the rival trip's shape passes the bus's last few fixes about as closely as ours does.

        A rival that fits the latest fix better on the timetable alone is often another route that shares
        this street with ours: the road the bus came along tells them apart.
        """
        history = self.s.history
        if len(history) < 2:
            return True
        # the whole road since the bus joined this trip, sampled, and its latest stretch in full
        step = max(1, len(history) // _PATH_FIXES)
        fixes = history[-_PATH_FIXES:] + history[-_PATH_FIXES - 1 :: -step][:_PATH_FIXES]
        rival_off = self._offsets(rival, fixes)
        ours_off = self._offsets(ours, fixes)
        limit = 0.5 * self.ctx.config.off_route_m
        return max(rival_off) <= limit and sum(rival_off) <= sum(ours_off) + _NOISE_M * len(fixes)

    def _offsets(self, trip_id: str, fixes: list[tuple[float, float, float, float | None]]) -> list[float]:
        matcher = self.ctx.matchers.get(self.ctx.network.trips[trip_id].shape_id)
        return [matcher.project(x, y).offset for _, x, y, _ in fixes]

    def _track(self, ping: Ping, x: float, y: float) -> TrackerOutput:
        s, cfg = self.s, self.ctx.config
        # the ping's fields read once each: Ping is an interpreted class, where every read is a generic look-up
        ts, speed, device_trip = ping.timestamp, ping.speed, ping.trip_id
        events: list[StopEvent] = []

        override = self.ctx.overrides.get(self.vehicle_id) if self.ctx.overrides else None
        if device_trip is not None:
            self.ctx.named[self.vehicle_id] = device_trip
        if override is not None and (override[1], override[0]) == s.finished:
            override = None  # the bus has run the trip it was given to its end: its block goes on as usual
        if override is not None:
            if (s.trip_id, s.service_date) != override:
                taken = self._take_override(override, ping, x, y)
                if taken is not None:
                    return taken
        elif device_trip is not None and (s.trip_id is None or device_trip != self._trip().base_trip_id):
            # devices now and then report a wrong trip for one fix: leave a trip the device itself gave us
            # only when it reports another one twice running
            s.other_trip_fixes = s.other_trip_fixes + 1 if s.other_trip_id == device_trip else 1
            s.other_trip_id = device_trip
            if s.trip_id is None or not s.trusted or s.other_trip_fixes >= 2:
                fit = trusted_fit(
                    self.ctx, ping, x, y, self.vehicle_id, on_a_trip=s.trip_id is not None,
                    last_heading=self._last_heading(ts),
                )
                if fit is not None and (fit.day.service_date, fit.trip_id) == s.finished:
                    fit = None  # the device still names the trip the bus has just run to its end
                if fit is not None and self._runs_sooner_trip_first(fit, ts):
                    fit = None
                if fit is not None and self.ctx.run_by_another_device(
                    fit.day.service_date, fit.trip_id, self.vehicle_id
                ):
                    fit = None  # the device names another bus's trip: inference finds this one's
                if fit is not None:
                    self._assign(fit, ts, confirmed=True)
                    s.trusted = True
                    events += self._advance(fit.match.dist, ts, speed, fresh=True)
                    return TrackerOutput(self._state(ping, self._status(ts)), events)
        else:
            s.other_trip_id, s.other_trip_fixes = None, 0
            if device_trip is not None and not s.trusted and ping.start_date in (None, s.service_date):
                events += self._trust_device()
        if s.trip_id is None:
            ranked = rank_trips(self.ctx, self._as_evidence(ping), x, y, self.vehicle_id, s.route_id)
            fit = ranked[0] if ranked else None
            if fit is not None and (fit.day.service_date, fit.trip_id) == s.finished:
                # still at the end of the trip it just finished: it is not running that again; wait for the
                # next trip to fit better
                return TrackerOutput(self._state(ping, "at_stop" if s.parked else "unassigned"))
            if fit is not None and s.parked and self._standing_at_a_terminal(fit):
                # done with its last known trip, the bus stands where some later trip leaves from or another
                # ends: it may as well be going out of service. Claimed now, that trip would be kept from the bus
                # the day's plan gives it; inference takes this bus once it sets off.
                return TrackerOutput(self._state(ping, "at_stop"))
            s.parked = False
            if fit is None:
                return TrackerOutput(self._state(ping, "unassigned"))
            self._assign(fit, ts, confirmed=False, speed=speed)
            s.history.append((ts, x, y, speed))
            events += self._advance(fit.match.dist, ts, speed, fresh=True)
            return TrackerOutput(self._state(ping, self._status(ts)), events)
        if not s.trusted:
            # an inferred trip's fixes are kept, to re-run them on a rival should ours turn out wrong
            s.history.append((ts, x, y, speed))
            if len(s.history) > cfg.history_max_fixes:
                del s.history[1]  # keep the first: where the trip was joined
        along, offset = self._match(x, y, ts, speed, moving_heading(ping))
        s.last_offset = offset
        if s.to_stand_from is not None and self._going_to_stand(along):
            # waiting for its trip, as if standing at the first stop: heard now, as late as the wait makes it
            s.off_route_count = 0
            s.progress_ts, s.progress_speed = ts, speed
            self._update_delay(ts)
            return TrackerOutput(self._state(ping, "layover"), events)
        if offset > cfg.off_route_m:
            carried = self._ran_on_to_next_trip(ping, x, y)
            if carried is not None:
                return carried
        elif ts - s.progress_ts > cfg.gap_s and (
            self._barely_moved_in_silence(along, ts) or self._turned_in_silence(along, ping)
        ):  # (both ask about a silence: the gap is checked here first, since most fixes follow one closely)
            # as likely on the next trip, whose line runs here too: the one it fits as well decides
            carried = self._ran_on_to_next_trip(ping, x, y, max_offset=offset + _NOISE_M)
            if carried is not None:
                return carried
        if offset > cfg.off_route_m:
            s.off_route_count += 1
            if s.confirmed and not s.trusted and s.off_route_count == cfg.off_route_pings:
                # two routes share the street out of a terminal, and the bus just took the other one
                ranked = rank_trips(self.ctx, self._as_evidence(ping), x, y, self.vehicle_id, s.route_id)
                if ranked and ranked[0].trip_id != s.trip_id and not self._just_ran(ranked[0]):
                    self._switch(ranked[0])
                    return TrackerOutput(self._state(ping, self._status(ts)), events)
            if s.off_route_count >= 2 * cfg.off_route_pings:
                self._unassign()  # perhaps another trip: infer again on the next fix
                return TrackerOutput(self._state(ping, "off_route"), events)
            status: VehicleStatus = "off_route" if s.off_route_count >= cfg.off_route_pings else "in_transit"
            return TrackerOutput(self._state(ping, status), events)
        s.off_route_count = 0
        if (
            s.trusted and override is None and s.next_stop == 0
            and self._leaves_too_early(along, ts, speed)
        ):
            moved = self._leave_device_trip(ping, x, y)
            if moved is not None:
                return moved
        events += self._advance(along, ts, speed)  # (after any events a confirmation released, above)
        return TrackerOutput(self._state(ping, self._status(ts)), events)

    def _going_to_stand(self, along: float) -> bool:
        """Whether a bus put on its next trip where the last one ended, on the next trip's line beyond its first
        stop (`TrackState.to_stand_from`), is still between there and the stand: waiting for the trip, not part way
        along it. It has got to the stand once it is within reach of the first stop, and set off without going
        there (the stand is elsewhere, or it was skipped) once it is well beyond where it ended the last trip."""
        s, cfg = self.s, self.ctx.config
        assert s.to_stand_from is not None
        first = self._trip().stop_dist[0]
        if (
            s.next_stop != 0
            or s.pending_arrival is None
            or along <= first + cfg.depart_radius_m
            or along > s.to_stand_from + _SET_OFF_FROM_END_M
        ):
            s.to_stand_from = None
            return False
        return True

    def _trust_device(self) -> list[StopEvent]:
        """The device names the trip inference (or the block) put the bus on: its word settles it, as if it had
        named it first. A provisional trip is confirmed, its held events released; the bus keeps it however late
        it runs, as it keeps any trip its device names."""
        self.s.trusted = True
        return [] if self.s.confirmed else self._confirm()

    def _confirm(self) -> list[StopEvent]:
        """Confirm the provisional trip: its route becomes the bus's, and its held events are released."""
        s = self.s
        released, s.held = s.held, []
        s.confirmed = True
        s.route_id = self._trip().route_id
        return released

    def _last_heading(self, ts: float) -> float | None:
        """The way the bus was going at its last fix moving fast enough to say, if within `_STILL_FACING_S` of `ts`."""
        last = self.s.last_heading
        return last[1] if last is not None and ts - last[0] <= _STILL_FACING_S else None

    def _runs_sooner_trip_first(self, named: Fit, ts: float) -> bool:
        """Whether the bus stands at the first stop of the trip its block runs next, which leaves that stand
        before the trip its device names: it runs ours first, whatever the device says (a driver logged in to
        a later run, or to a wrong one). Ours is the trip it waits at the stand for, as the block put it there;
        or, when the bus is first heard at the stand still on the trip before (it ended that trip during a GPS
        gap), the block's trip after that one. Once ours is overdue by `stand_overdue_s` and the bus still
        stands, the device is believed: the bus waits for its own trip."""
        s, cfg = self.s, self.ctx.config
        day = self._day()
        if s.trip_id is None or s.trusted and s.next_stop == 0 or day is None:
            return False
        theirs = self.ctx.timelines.get(named.trip_id)
        if s.next_stop == 0:
            ours = self._trip()
        else:
            following = next_in_block(self.ctx, s.trip_id, day)
            if following is None or named.match.dist > theirs.stop_dist[0] + cfg.depart_radius_m:
                return False  # (the device's trip fits the bus along its line, not at its stand)
            ours = self.ctx.timelines.get(following)
        if ours.trip is theirs.trip or ours.stop_ids[0] != theirs.stop_ids[0]:
            return False
        leaves = day.origin + ours.departure[0]
        return leaves < named.day.origin + theirs.departure[0] and ts <= leaves + cfg.stand_overdue_s

    def _leaves_too_early(self, along: float, ts: float, speed: float | None) -> bool:
        """Whether the bus sets off from its trip's first stop longer before the trip's departure than any trip
        fits a bus running early: a device's trip fits the bus only while the time fits it too."""
        cfg, trip, day = self.ctx.config, self._trip(), self._day()
        if speed is not None and speed < cfg.stopped_mps:
            return False  # standing at the stand: GPS error, not a departure
        if day is None or along <= trip.stop_dist[0] + cfg.depart_radius_m:
            return False
        return ts - day.origin < trip.departure[0] - cfg.early_tolerance_s

    def _leave_device_trip(self, ping: Ping, x: float, y: float) -> TrackerOutput | None:
        """The bus has set off on another trip than its device names (a trip hours later, say, of the same route):
        go on along the trip that fits where and when it is, held until confirmed like any inferred trip; None
        when no other trip fits (an extra run, early: the device's trip stays)."""
        s = self.s
        # the device's direction belongs to the trip it names; its route is still the bus's best word
        unnamed = dataclasses.replace(ping, trip_id=None, direction_id=None, start_date=None, start_time=None)
        ranked = rank_trips(self.ctx, unnamed, x, y, self.vehicle_id, s.route_id)
        best = next(
            (
                f for f in ranked
                if f.trip_id != s.trip_id and not self._just_ran(f)
                and self.ctx.holder(f.day.service_date, f.trip_id) in (None, self.vehicle_id)
            ),
            None,
        )
        if best is None:
            return None  # (a trip another bus runs is no better a guess than the device's)
        ours, theirs = self._trip(), self.ctx.timelines.get(best.trip_id)
        if theirs.shape_id == ours.shape_id and theirs.stop_ids[0] == ours.stop_ids[0]:
            # the same run from the same stand: keep how long it stood there, so its first stop is reported
            self._release_claim()
            s.trip_id, s.service_date = best.trip_id, best.day.service_date
            self.ctx.claims[(best.day.service_date, best.trip_id)] = self.vehicle_id
            s.trusted, s.confirmed, s.confirm_wins, s.provisional_fixes = False, False, 0, 0
            fresh = False
        else:
            self._assign(best, ping.timestamp, confirmed=False, speed=ping.speed)
            fresh = True
        s.history = [(ping.timestamp, x, y, ping.speed)]
        events = self._advance(best.match.dist, ping.timestamp, ping.speed, fresh=fresh)
        return TrackerOutput(self._state(ping, self._status(ping.timestamp)), events)

    def _barely_moved_in_silence(self, along: float, ts: float) -> bool:
        """Whether a fix after a silence puts the bus hardly farther along its trip than before it, slower than a
        crawl on average, where it could have reached the trip's end meanwhile: a bus on a last stretch that the
        next trip's line runs along too has more likely ended its trip and set off on the next."""
        s, cfg = self.s, self.ctx.config
        elapsed = ts - s.progress_ts
        if s.trip_id is None or elapsed <= cfg.gap_s or along - s.progress >= _SILENT_CRAWL_MPS * elapsed:
            return False
        return self._trip().stop_dist[-1] - s.progress <= s.cruise_mps * elapsed

    def _turned_in_silence(self, along: float, ping: Ping) -> bool:
        """Whether a fix after a silence shows the bus driving across or against its trip's line where it matched
        (even a corner's length either side): where the next trip's line runs back along the end of the last (a
        loop the route ends with), the bus may have ended its trip and set off on the next meanwhile."""
        s = self.s
        heading = moving_heading(ping)
        if heading is None or s.trip_id is None or ping.timestamp - s.progress_ts <= self.ctx.config.gap_s:
            return False
        matcher = self._matcher
        assert matcher is not None
        return _misalignment(matcher, along, heading) > 2.0 * _HEADING_SIGMA_DEG

    def _ran_on_to_next_trip(
        self, ping: Ping, x: float, y: float, max_offset: float | None = None
    ) -> TrackerOutput | None:
        """After a gap, or from the end of its trip, a fix off the trip but on its block's next trip: the bus
        finished the trip and set off on the next (or went to its stand, a street away) while we heard nothing of
        it. Finish the trip there and then, and go on along the next one, reporting the stops of both passed
        meanwhile (interpolated); None when the fix says no such thing. `max_offset`: how near the next trip's line
        the fix must be (for a fix on our own line too, see `_barely_moved_in_silence`); else off-route's reach."""
        s, cfg = self.s, self.ctx.config
        heard_last = s.progress_ts
        elapsed = ping.timestamp - heard_last
        day = self._day()
        if s.trip_id is None or day is None:
            return None
        trip = self._trip()
        end = float(trip.stop_dist[-1])
        if elapsed <= cfg.gap_s and end - s.progress > cfg.end_radius_m:
            return None
        if end - s.progress > cfg.max_speed_mps * elapsed:
            return None  # it could not have got to the end of this trip since
        following = next_in_block(self.ctx, s.trip_id, day)
        if following is None:
            return None
        fit = fit_trip(self.ctx, following, day, x, y, ping.timestamp, self.vehicle_id, heading=moving_heading(ping))
        if fit is None or fit.match.offset > (cfg.off_route_m if max_offset is None else max_offset):
            return None
        nxt = self.ctx.network.trips[following]
        # At cruising speed to the end; and it must have left the next trip's first stop in time to be here now.
        cruise = max(s.cruise_mps, 1.0)
        onward_s = max(fit.match.dist - float(nxt.stop_dist[0]), 0.0) / cruise
        got_there = s.progress_ts + (end - s.progress) / cruise
        last = len(trip.stop_dist) - 1
        if s.next_stop == last and s.progress_speed is not None and s.pending_arrival is None:
            reach, sure = self._run_reach(last, s.progress, s.progress_ts, s.progress_speed)
            if reach is not None and sure:
                got_there = reach  # the run into the last stop, braking, rather than at cruising speed
        reached_end = min(got_there, ping.timestamp - onward_s - cfg.typical_dwell_s)
        reached_end = max(reached_end, s.progress_ts + 1.0)
        ending = s.trip_id
        events = self._advance(end, reached_end, None)
        if s.trip_id == ending:
            # a stop a few metres short of the last holds a bus at the end short of it (GPS cannot tell the two
            # apart), yet the bus is on its next trip now: it passed every stop left
            self._run_out(reached_end, events)
        if s.trip_id != following:  # not on to the trip we fitted after all (see _finish_if_at_end): next fixes decide
            return TrackerOutput(self._state(ping, self._status(ping.timestamp)), _estimated_after(events, heard_last))
        s.history = [(ping.timestamp, x, y, ping.speed)]
        s.last_offset, s.off_route_count = fit.match.offset, 0
        # It waited at the first stop for its departure time, unless it was too late for that to get here now.
        departure = min(day.origin + float(nxt.departure[0]), ping.timestamp - onward_s)
        s.progress_ts = max(s.progress_ts, departure)
        events += self._advance(fit.match.dist, ping.timestamp, ping.speed)
        return TrackerOutput(self._state(ping, self._status(ping.timestamp)), _estimated_after(events, heard_last))

    def _run_out(self, ended: float, events: list[StopEvent]) -> None:
        """End the trip at `ended`, reporting the stops still ahead of the bus as passed by then."""
        s, cfg = self.s, self.ctx.config
        last = len(self._trip().stop_dist) - 1
        if s.pending_arrival is not None and s.next_stop < last:
            departure = min(s.pending_arrival + cfg.typical_dwell_s, ended)
            events.append(self._event(s.next_stop, s.pending_arrival, max(departure, s.pending_arrival),
                                      s.pending_interpolated))
            s.pending_arrival, s.next_stop = None, s.next_stop + 1
        while s.next_stop < last:
            events.append(self._event(s.next_stop, ended, ended, True))
            s.next_stop += 1
        if s.next_stop == last and s.pending_arrival is None:
            s.pending_arrival, s.pending_interpolated = ended, True
        self._finish_if_at_end(ended, events)

    def _take_override(self, override: tuple[str, str], ping: Ping, x: float, y: float) -> TrackerOutput | None:
        """Put the bus on the trip an operator gave it, wherever the fix is; None for a trip or day this
        network does not have (the operator's notice outlived a feed change)."""
        s, cfg = self.s, self.ctx.config
        trip_id, service_date = override
        day = self.ctx.day_of(service_date)
        if trip_id not in self.ctx.network.trips or day is None:
            return None
        fit = forced_fit(self.ctx, trip_id, day, x, y, ping.timestamp)
        self._assign(fit, ping.timestamp, confirmed=True, speed=ping.speed)
        s.trusted = True  # neither the device's trip_id nor inference moves it while the override lasts
        s.last_offset = fit.match.offset
        events = self._advance(fit.match.dist, ping.timestamp, ping.speed, fresh=True)
        status: VehicleStatus = "off_route" if fit.match.offset > cfg.off_route_m else self._status(ping.timestamp)
        return TrackerOutput(self._state(ping, status), events)

    # --- matching -------------------------------------------------------------------------------
    def _match(
        self, x: float, y: float, ts: float, speed: float | None, heading: float | None = None
    ) -> tuple[float, float]:
        """(metres along the trip's shape, metres off it) of the fix (a plain pair: one per fix)."""
        s, cfg = self.s, self.ctx.config
        self._trip()
        matcher = self._matcher
        assert matcher is not None
        elapsed = max(ts - s.progress_ts, 1.0)
        lo = s.progress - cfg.window_back_m
        hi = s.progress + cfg.max_speed_mps * elapsed + cfg.window_margin_m
        if hi - lo <= cfg.long_window_m or elapsed <= cfg.gap_s:
            # where the bus should be now: the reported speeds say how far it went
            v0 = s.progress_speed if s.progress_speed is not None else s.cruise_mps
            v1 = speed if speed is not None else s.cruise_mps
            # between the two: steady from the fix before with the change of speed at the end (braking
            # into a stop the fix shows it standing at), and a steady change all along
            farthest = (v0 if v0 > v1 else v1) * elapsed  # the farthest the two speeds allow
            change = (v0 - v1) * (v0 - v1) / (2.0 * cfg.brake_mps2)
            gradual = 0.5 * (v0 + v1) * elapsed
            guess = s.progress + 0.5 * (gradual + (farthest - change if change < farthest else gradual))
            # standing (or creeping) at this fix, a while after the last: it stopped somewhere between, and its
            # speeds do not say where (standing at both, it may have driven from one stop to the next between; so
            # too when it stood at the last and is braking into a stop at this one)
            stop_to_stop = elapsed > _STOP_TO_STOP_S and (
                v1 < _CREEPING_MPS or v0 < _CREEPING_MPS and v1 < cfg.crawl_mps
            )
            if stop_to_stop:
                farthest = max(v0, s.cruise_mps) * elapsed
                if v0 < _CREEPING_MPS:
                    guess = s.progress + 0.5 * farthest
            served: _ServedOnTheWay | None = None
            if not stop_to_stop and s.pending_arrival is None and elapsed > _STOP_TO_STOP_S:
                # a stop on the way: a bus that served it stood there for a dwell its two speeds know nothing of
                stop_dist = self._trip().stop_dist
                i = s.next_stop
                if i < len(stop_dist) and s.progress < stop_dist[i] < guess:
                    mean_speed = gradual / elapsed
                    lost = _stop_cost_s(cfg, mean_speed) * mean_speed
                    served = _ServedOnTheWay(stop_dist[i], max(stop_dist[i], guess - lost))
            along, offset = matcher.locate(x, y, lo, hi, guess)
            if offset <= cfg.off_route_m * 0.5:
                misaligned = _misalignment(matcher, along, heading) if heading is not None else 0.0
                against, turned = misaligned > WRONG_WAY_DEG, misaligned > _HEADING_SIGMA_DEG
                doubtful = turned or stop_to_stop or abs(along - guess) > _FAR_FROM_GUESS_M or offset > _NOISE_M
                # (where the line comes back past itself, the pass the speeds alone point to may be a lap ahead of
                # one where the bus stood at the stop on the way)
                doubtful = doubtful or served is not None and abs(along - served.guess) > _FAR_FROM_GUESS_M
                if against or doubtful and matcher.has_twin(along):
                    # the walk ended going against the bus, turned across it, far from where the speeds put
                    # it, or farther from the line than GPS error goes: where the line comes back to the same
                    # place (a street driven out and back, a loop round a block) it may be on the wrong pass;
                    # standing a while after the fix before, it may be at a stop of the window or where it stood,
                    # which GPS error may put farther off the line than the pass the walk found: every pass counts
                    reach = cfg.off_route_m if against or turned or stop_to_stop else offset + _NOISE_M
                    options = matcher.candidates(x, y, lo, hi, reach)
                    if len(options) > 1 or against and options:
                        best = self._likeliest_pass(options, guess, farthest, speed, heading, stop_to_stop, served)
                        return best.dist, best.offset
                return along, offset
            # a noisy fix where the route passes near itself (a spur driven out and back): of the legs in
            # the window, take the one that is near both the fix and where the bus should be by now
            options = matcher.candidates(x, y, lo, hi, cfg.off_route_m)
            if not options:
                best = matcher.project(x, y, lo, hi)
                return best.dist, best.offset
            best = self._likeliest_pass(options, guess, farthest, speed, heading)
            return best.dist, best.offset
        # a long gap: the window spans several legs; take the one nearest where the schedule (with the
        # current delay) puts the vehicle, though over a silence this long that is no better than anywhere as far
        # either side (the fix's own fit, its heading and standing at a stop then decide)
        options = matcher.candidates(x, y, lo, hi, cfg.off_route_m)
        if not options:
            best = matcher.project(x, y, lo, hi)
            return best.dist, best.offset
        day = self._day()
        timeline = self._trip()
        expected = timeline.dist_at(ts - day.origin - (s.delay_s or 0.0)) if day else s.progress
        best = self._likeliest_pass(options, expected, max(expected - s.progress, 0.0), speed, heading, vague=True)
        return best.dist, best.offset

    def _likeliest_pass(
        self,
        options: list[Match],
        guess: float,
        farthest: float,
        speed: float | None,
        heading: float | None,
        vague: bool = False,
        served: _ServedOnTheWay | None = None,
    ) -> Match:
        """Of the passes of the line near a fix, the likeliest: the fix, the guess of where the bus is (it
        could have gone `farthest` metres) and its heading as three measurements, each pass scored by how far
        off each would be. `vague`: the guess is no better than anywhere within `farthest` either side.
        `served`: a stop lies on the way; a pass beyond it is measured against the better of the two guesses, the
        bus having stood there (served.guess) or driven past it (`guess`, which most buses do not)."""
        cfg = self.ctx.config
        matcher = self._matcher
        assert matcher is not None
        # how far off the guess may be: the speeds say little about stops and lights between the fixes; and
        # a bus stops at stops and lights its two speeds know nothing of, so short of it is likelier
        ahead = max(farthest if vague else _GUESS_SPREAD * farthest, _MIN_GUESS_SPREAD_M)
        behind = ahead if vague else _BEHIND_SPREAD * ahead
        # standing, or creeping in or out: where a bus does that is most often a stop
        standing_or_creeping = speed is not None and speed < _CREEPING_MPS
        stop_dist = self._trip().stop_dist

        def along_error(at: float, expected: float) -> float:
            error = (at - expected) / (ahead if at >= expected else behind)
            return error * error

        def score(m: Match) -> float:
            along = along_error(m.dist, guess)
            if served is not None and m.dist >= served.stop:
                along = min(along + _DROVE_PAST_PENALTY, along_error(m.dist, served.guess))
            total = (m.offset / _GPS_SIGMA_M) ** 2 + along
            if heading is not None:
                turned = _misalignment(matcher, m.dist, heading)
                if turned > WRONG_WAY_DEG:
                    total += _AGAINST_PENALTY
                if turned > _HEADING_SIGMA_DEG:
                    total += (turned / _HEADING_SIGMA_DEG) ** 2
            if standing_or_creeping and not _near_stop(stop_dist, m.dist, cfg.depart_radius_m):
                total += _STANDING_AWAY_PENALTY
            return total

        return min(options, key=score)

    def _trip(self) -> TripTimeline:
        """The current trip's timeline (with its stops and times as plain lists); a trip must be assigned."""
        trip_id = self.s.trip_id
        if trip_id != self._trip_key or self._timeline is None:
            assert trip_id is not None
            self._timeline = self.ctx.timelines.get(trip_id)
            self._matcher = self.ctx.matchers.get(self._timeline.shape_id)
            self._trip_key = trip_id
        return self._timeline

    def _day(self) -> DayTrips | None:
        date = self.s.service_date
        if date is None:
            return None
        if date != self._day_date:  # a few lookups per fix: remember the last one
            self._day_date, self._day_trips = date, self.ctx.day_of(date)
        return self._day_trips

    # --- stops --------------------------------------------------------------------------------------
    def _advance(self, dist: float, ts: float, speed: float | None, fresh: bool = False) -> list[StopEvent]:
        """Move progress to `dist` at `ts`, emitting the arrivals and departures passed on the way."""
        s, cfg = self.s, self.ctx.config
        stop_dist = self._trip().stop_dist
        n = len(stop_dist)
        d1, t1, v1 = s.progress, s.progress_ts, s.progress_speed
        d2 = dist if dist > d1 else d1
        # standing on both fixes: what moves is GPS noise, unless it moved farther than noise goes (a bus
        # caught standing at two stops); at a terminal (its street often doubles back) ask for more
        jitter = cfg.standing_at_stop_m if s.pending_arrival is not None and s.next_stop == 0 else cfg.standing_jitter_m
        if speed is not None and speed < cfg.stopped_mps and v1 is not None and v1 < cfg.stopped_mps and (
            d2 - d1 < jitter
        ):
            d2 = d1  # standing still: what moves is GPS noise, which would only ratchet progress forward
        events: list[StopEvent] = []
        if fresh:
            # joined mid-trip: stops already behind are not ours to report
            while s.next_stop < n and stop_dist[s.next_stop] + cfg.depart_radius_m < d2:
                s.next_stop += 1
            if s.next_stop < n and stop_dist[s.next_stop] - cfg.arrive_radius_m <= d2 and s.pending_arrival is None:
                s.pending_arrival, s.pending_interpolated = ts, False
            s.progress, s.progress_ts, s.progress_speed = d2, ts, speed
            self._finish_if_at_end(ts, events)
            self._update_delay(ts)
            return events
        dt = ts - t1
        moved = d2 - d1
        standing = speed is not None and speed < cfg.stopped_mps
        # standing a little short of the trip's last stop: at the terminus (its stand is often off the stop,
        # sometimes by the stop before the last, where the bus then stands far longer than a dwell); also when
        # it is first heard there after a silence in which it passed the stops before
        at_end = (
            standing
            and stop_dist[n - 1] - cfg.end_radius_m <= d2
            and (
                s.next_stop == n - 1
                or n >= 2 and stop_dist[n - 2] + cfg.depart_radius_m < d2
                or s.next_stop == n - 2
                and s.pending_arrival is not None
                and ts - s.pending_arrival >= cfg.terminal_stand_s
            )
        )
        if (
            s.next_stop < n
            and stop_dist[s.next_stop] - cfg.arrive_radius_m > d2
            and s.pending_arrival is None
            and not at_end
            and not (standing and stop_dist[s.next_stop] - 2.0 * cfg.arrive_radius_m <= d2)
        ):
            # the common case: between stops, nothing to report
            if dt > 0 and moved / dt > 2.0:
                s.cruise_mps = 0.8 * s.cruise_mps + 0.2 * min(moved / dt, cfg.max_speed_mps)
            s.progress, s.progress_ts, s.progress_speed = d2, ts, speed
            self._note_timing_fix(stop_dist, d2, ts, speed)
            self._update_delay(ts)
            return events
        interpolated = dt > cfg.gap_s
        gap: _GapClock | None = None
        cursor_t, cursor_d, cursor_v = t1, d1, v1
        while s.next_stop < n:
            i = s.next_stop
            stop = stop_dist[i]
            if s.pending_arrival is not None:
                if at_end and i == n - 2 and stop + cfg.depart_radius_m >= d2:
                    # standing at the terminus by the stop before the last: served it, then on to the end
                    departure = min(s.pending_arrival + cfg.typical_dwell_s, ts)
                    events.append(self._event(i, s.pending_arrival, departure, s.pending_interpolated))
                    s.pending_arrival, s.prev_served = None, True
                    s.next_stop += 1
                    # it went on to the last stop then: as long after as the distance takes
                    last = stop_dist[n - 1]
                    arrival = min(departure + self._travel_s(max(last - stop, 0.0), None, braking=True), ts)
                    s.pending_arrival, s.pending_interpolated = arrival, False
                    events.append(self._event(n - 1, arrival, None, False))
                    break
                if stop + cfg.depart_radius_m < d2:
                    if interpolated and self._reached_stop_after(stop_dist, i, d2):
                        # the silence took the bus past more stops: the fix after it cannot time this departure
                        # as if the bus had driven straight there; share the silence out as for those stops
                        if gap is None:
                            gap = self._gap_clock(stop_dist, d1, t1, d2, ts, standing)
                        departure = max(gap.departure(i, s.pending_arrival, cfg.typical_dwell_s), cursor_t)
                        cursor_t, cursor_d, cursor_v = departure, stop, 0.0
                    elif stop < d1 and v1 is not None and v1 >= cfg.crawl_mps and s.pending_arrival <= t1:
                        # the fix before was past the stop already, on the move (GPS error alone could not say it
                        # had left): it times the departure better than this one, farther on, and the run on (the
                        # cursor stays at that fix)
                        departure = self._left_at(i, s.pending_arrival, d1, t1, v1)
                    else:
                        departure = self._left_at(i, cursor_t, d2, ts, speed)
                        if stop_dist[i + 1] < d2 and self._reached_stop_after(stop_dist, i, d2):
                            # past the next stop too: the bus most likely stood there as well, so it left this
                            # one no later than a run and a typical stand before it left that one (timed as if it
                            # drove straight to the fix, both would come out late by that whole stand)
                            next_left = self._left_at(i + 1, cursor_t, d2, ts, speed)
                            run_s = self._travel_s(stop_dist[i + 1] - stop, None, braking=True)
                            departure = min(departure, max(cursor_t, next_left - cfg.typical_dwell_s - run_s))
                        cursor_t, cursor_d, cursor_v = departure, stop, 0.0
                    events.append(self._event(i, s.pending_arrival, departure, s.pending_interpolated))
                    s.pending_arrival, s.prev_served = None, True
                    s.next_stop += 1
                    continue
                break
            if stop - cfg.arrive_radius_m > d2 and not (at_end and i == n - 1):
                if standing and stop - 2.0 * cfg.arrive_radius_m <= d2:
                    # standing a little farther short than GPS error usually puts a bus, when its run in
                    # says it got there already: at the stop
                    due = self._due_arrival(i, cursor_d, cursor_t, cursor_v, ts, _AHEAD_SLACK_S)
                    if due is not None:
                        s.pending_arrival, s.pending_interpolated = due, interpolated
                        events.append(self._event(i, due, None, interpolated))
                break
            if d2 < stop and speed is not None and speed >= cfg.stopped_mps:
                overdue = self._overdue_arrival(i, cursor_d, cursor_t, cursor_v, d2, ts, speed)
                if overdue is None:
                    break  # near the stop but still rolling towards it: the next fix times the arrival better
                # the run in should have ended well before this fix: the bus stood at the stop and is
                # pulling away, with a few metres of GPS error putting it short
                s.pending_arrival, s.pending_interpolated = overdue, interpolated
                events.append(self._event(i, overdue, None, interpolated))
                break
            if (
                d2 >= stop
                and speed is not None
                and speed >= cfg.stopped_mps
                and d2 - stop <= cfg.depart_radius_m
                and self._arrival_ahead(i, cursor_d, cursor_t, cursor_v, ts)
            ):
                # still rolling in (its run says it gets there later): GPS error puts it past the stop;
                # progress waits short of it so that the next fix times the arrival
                d2 = max(stop - _HELD_SHORT_M, d1)
                break
            arrival, served = self._reached_at(i, cursor_d, cursor_t, cursor_v, d2, ts, speed)
            if interpolated and (cursor_t != t1 or stop - d1 > _GAP_NEAR_M):
                # (the first stop after the fix before the gap, when near it, is timed by that fix's run)
                if gap is None:
                    gap = self._gap_clock(stop_dist, d1, t1, d2, ts, standing)
                arrival = gap.arrival(i, cursor_t, arrival)
            if stop + cfg.depart_radius_m < d2:
                if gap is None and interpolated and self._reached_stop_after(stop_dist, i, d2):
                    gap = self._gap_clock(stop_dist, d1, t1, d2, ts, standing)  # as for a pending stop, above
                if gap is not None:
                    departure = gap.departure(i, arrival, cfg.typical_dwell_s) if served else arrival
                else:
                    departure = self._left_at(i, arrival, d2, ts, speed) if served else arrival
                events.append(self._event(i, arrival, departure, interpolated))
                s.prev_served = served
                s.next_stop += 1
                cursor_t, cursor_d, cursor_v = departure, stop, (0.0 if served else cursor_v)
                continue
            s.pending_arrival, s.pending_interpolated = arrival, interpolated
            events.append(self._event(i, arrival, None, interpolated))
            break
        s.progress, s.progress_ts, s.progress_speed = d2, ts, speed
        if s.trip_id is not None:
            self._note_timing_fix(stop_dist, d2, ts, speed)
        self._finish_if_at_end(ts, events)
        self._update_delay(ts)
        return events

    def _reached_stop_after(self, stop_dist: list[float], i: int, d2: float) -> bool:
        """Whether progress `d2` reaches the stop after stop `i` too."""
        return i + 1 < len(stop_dist) and stop_dist[i + 1] - self.ctx.config.arrive_radius_m <= d2

    def _gap_clock(
        self, stop_dist: list[float], d1: float, t1: float, d2: float, t2: float, standing: bool
    ) -> _GapClock:
        s, cfg = self.s, self.ctx.config
        ends_trip = d2 >= stop_dist[-1] - cfg.end_radius_m
        # heard again standing at a stop: part way through its stand there, not done with it
        k = bisect_right(stop_dist, d2 + cfg.arrive_radius_m) - 1
        at = k if standing and k >= 0 and d2 - stop_dist[k] <= cfg.depart_radius_m else None
        stop_s = _stop_cost_s(cfg, s.cruise_mps)
        return _GapClock(
            stop_dist, d1, t1, d2, t2, s.cruise_mps, stop_s, self._trip(), ends_trip, at, self._stand_over()
        )

    def _stand_over(self) -> tuple[int, float] | None:
        """(index, when) of the stop the bus stood at on its last fix, and when its stand there was over at the
        soonest: a typical dwell after it got there, and at its trip's first stop not before the trip is due out."""
        s = self.s
        if s.pending_arrival is None or s.progress_speed is None or s.progress_speed >= self.ctx.config.stopped_mps:
            return None
        over = s.pending_arrival + self.ctx.config.typical_dwell_s
        day = self._day()
        if s.next_stop == 0 and day is not None:
            over = max(over, day.origin + self._trip().departure[0])
        return s.next_stop, over

    def _note_timing_fix(self, stop_dist: list[float], d: float, ts: float, speed: float | None) -> None:
        """Remember a moving fix on the run into the next stop, but not one just out of the last stop
        (where a few metres of noise are much of the distance)."""
        s = self.s
        i = s.next_stop
        if speed is None or speed < 1.0 or i <= 0 or i >= len(stop_dist) or s.pending_arrival is not None:
            return
        prev, stop = stop_dist[i - 1], stop_dist[i]
        if stop > prev and 0.1 <= (d - prev) / (stop - prev) < 1.0:
            fixes = s.timing_fixes
            if fixes and fixes[-1][0] != i:
                fixes.clear()
            elif len(fixes) >= _TIMING_FIXES:
                del fixes[0]
            fixes.append((i, ts, d, speed, s.prev_served))

    def _travel_s(self, metres: float, speed: float | None, braking: bool) -> float:
        """Seconds to cover `metres` from (or, accelerating, up to) `speed`, to (or from) a standstill."""
        cfg = self.ctx.config
        if speed is None or speed < cfg.stopped_mps:
            return metres / self.s.cruise_mps + (self.s.cruise_mps / (2 * cfg.brake_mps2))
        ramp = speed / (2 * cfg.brake_mps2)  # the time lost braking to (or starting from) a standstill
        return metres / speed + ramp if braking or metres > speed * ramp else 2 * metres / speed

    def _reached_at(
        self, i: int, d1: float, t1: float, v1: float | None, d2: float, t2: float, v2: float | None
    ) -> tuple[float, bool]:
        """When the bus reached stop `i` between fixes (t1, d1, v1) and (t2, d2, v2), and whether it stopped
        there (the fixes leave room for a dwell) or drove past."""
        cfg = self.ctx.config
        stop_dist = self._trip().stop_dist
        stop = stop_dist[i]
        a = max(stop - d1, 0.0)
        b = max(d2 - stop, 0.0)
        span = t2 - t1
        if span <= 0 or a <= 0.0:
            return t1, True
        if v1 is None or v2 is None:
            # no reported speeds to tell a dwell from steady driving: interpolate by distance
            return t1 + span * a / (a + b), b <= 0.0
        reach, reach_sure = self._run_reach(i, d1, t1, v1)
        dwelling = v2 < cfg.stopped_mps and b <= cfg.depart_radius_m
        if dwelling:
            # (a rough clock, from a fix just out of the stop before, still beats half a dwell back from the
            # standing fix once a fix or more between was lost)
            if reach is not None and (reach_sure or span > _LOST_FIX_S):
                return min(max(reach, t1), t2), True
            return max(t1, t2 - 0.5 * cfg.typical_dwell_s), True
        # the run out of it, read from the fix after it: when it left
        leave = self._left_clock(i, d2, t2, v2)
        # slow at the stop, or just pulling away from it: it stopped there
        crawled = v1 < cfg.crawl_mps and a <= cfg.arrive_radius_m or v2 < cfg.crawl_mps and b <= cfg.arrive_radius_m
        if reach is not None and leave is not None and leave[0] - reach < cfg.min_dwell_s and reach_sure and (
            not crawled
        ):
            # no room for a dwell: it drove past; split the time by each side's distance over its speed
            va = v1 if v1 >= 1.0 else self.s.cruise_mps
            vb = v2 if v2 >= 1.0 else self.s.cruise_mps
            wa, wb = a / va, b / vb
            return t1 + span * wa / (wa + wb), False
        if reach is not None and reach_sure:
            # (a clock read from a crawl just out of the stop is mostly GPS error: no limit)
            limit = leave[0] if leave is not None and leave[1] else t2
            return min(max(reach, t1), limit), True
        before = self._travel_s(a, v1, braking=True)
        if leave is not None and leave[1] and leave[0] - (t1 + before) >= cfg.min_dwell_s:
            # it left with time to have stood there since it could have got there
            return min(max(leave[0] - cfg.typical_dwell_s, t1 + before), t2), True
        after = self._travel_s(b, v2, braking=False) if b > 0 else 0.0
        if before + after <= span:
            return t1 + before, True
        va = v1 if v1 >= 1.0 else self.s.cruise_mps
        vb = v2 if v2 >= 1.0 else self.s.cruise_mps
        wa, wb = a / va, b / vb
        return t1 + span * wa / (wa + wb), False

    def _overdue_arrival(
        self, i: int, d1: float, t1: float, v1: float | None, d2: float, t2: float, v2: float
    ) -> float | None:
        """When the bus reached stop `i`, for a moving fix (t2, d2, v2) just short of it that comes long
        after the run in (from the fix at t1) should have brought it there; None when it may still be
        rolling in."""
        # (at walking pace a few metres of GPS error are many seconds: no slower than a crawl)
        still_to_go = (self._trip().stop_dist[i] - d2) / max(v2, self.ctx.config.crawl_mps)
        return self._due_arrival(i, d1, t1, v1, t2, still_to_go + self.ctx.config.overdue_slack_s)

    def _due_arrival(self, i: int, d1: float, t1: float, v1: float | None, t2: float, margin: float) -> float | None:
        """When the run into stop `i` (timed from the fixes up to t1) reached it, if that was more than
        `margin` seconds before t2; else None."""
        if v1 is None:
            return None
        reach, sure = self._run_reach(i, d1, t1, v1)
        if reach is None or not sure or t2 - reach < margin:
            return None
        return min(max(reach, t1), t2)

    def _arrival_ahead(self, i: int, d1: float, t1: float, v1: float | None, t2: float) -> bool:
        """Whether the run into stop `i` (timed from the fixes up to t1) reaches it well after t2."""
        if v1 is None:
            return False
        reach, sure = self._run_reach(i, d1, t1, v1)
        return reach is not None and sure and reach > t2 + _AHEAD_SLACK_S

    def _run_reach(self, i: int, d1: float, t1: float, v1: float) -> tuple[float | None, bool]:
        """(when the run into stop `i` would stand at it, reliable), read from the last few moving fixes on the
        run and the fix (t1, d1, v1), each weighted by how far GPS error may move its clock: a fast fix a little
        way back times it better than one crawling in; None when none of them moves."""
        if i <= 0:
            return None, False
        cfg = self.ctx.config
        stop_dist = self._trip().stop_dist
        prev, length = stop_dist[i - 1], stop_dist[i] - stop_dist[i - 1]
        fixes = [(ts, d, v, from_rest) for k, ts, d, v, from_rest in self.s.timing_fixes if k == i and ts <= t1]
        if v1 >= cfg.stopped_mps and not (fixes and fixes[-1][0] == t1):
            fixes.append((t1, d1, v1, self.s.prev_served))
        # the reliable clocks each err their own way (GPS puts each fix a few metres off, this way or that): their
        # mean, each weighted by the inverse square of its error, beats the one that looks best alone; with no
        # reliable clock, the least bad one
        weights = weighted = 0.0
        rough: tuple[float, float] | None = None  # (error, reach) of the best unreliable clock
        for ts, d, v, from_rest in fixes:
            timed = timed_run_end(d - prev, length, v, ease_kind(from_rest, True), cfg.gps_along_sigma_m)
            if timed is None:
                continue
            until, error, reliable = timed
            if reliable:
                weight = 1.0 / math.pow(max(error, _LEAST_CLOCK_ERROR_S), 2.0)
                weights += weight
                weighted += weight * (ts + until)
            elif rough is None or error < rough[0]:
                rough = (error, ts + until)
        if weights > 0.0:
            return weighted / weights, True
        return (None, False) if rough is None else (rough[1], False)

    def _left_clock(self, i: int, d2: float, t2: float, v2: float | None) -> tuple[float, bool] | None:
        """(when the bus left stop `i`, reliable) read from a moving fix on the segment after it."""
        stop_dist = self._trip().stop_dist
        if v2 is None or i + 1 >= len(stop_dist) or d2 <= stop_dist[i]:
            return None
        stop, nxt = stop_dist[i], stop_dist[i + 1]
        if d2 >= nxt:
            return None
        clock = segment_clock(d2 - stop, nxt - stop, v2, "both")
        return None if clock is None else (t2 - clock[0], clock[2])

    def _left_at(self, i: int, not_before: float, d2: float, t2: float, v2: float | None) -> float:
        """When the bus left stop `i`, seen at d2 at t2 (not before `not_before`)."""
        stop = self._trip().stop_dist[i]
        clock = self._left_clock(i, d2, t2, v2)
        if clock is not None and clock[1]:
            leave = clock[0]
        else:
            leave = t2 - self._travel_s(max(d2 - stop, 0.0), v2, braking=False)
        return min(max(leave, not_before), t2)

    def _finish_if_at_end(self, ts: float, events: list[StopEvent]) -> None:
        """At the last stop the trip is done: report it and move on to the block's next trip."""
        s = self.s
        assert s.trip_id is not None
        trip = self._trip()
        last = len(trip.stop_ids) - 1
        if s.next_stop < last or s.pending_arrival is None and s.next_stop == last:
            return
        arrival = s.pending_arrival if s.next_stop == last and s.pending_arrival is not None else ts
        if s.next_stop == last:
            if not events or events[-1].stop_sequence != trip.stop_sequences[last]:
                events.append(self._event(last, arrival, None, s.pending_interpolated))
        if not s.confirmed:
            events[:0] = s.held  # nothing rivalled it to the end
        day = self._day()
        finished, where = s.trip_id, s.progress
        s.route_id = trip.route_id
        s.finished = (s.service_date or "", finished)
        if s.trusted and s.service_date is not None:
            self.ctx.note_completed(s.service_date, finished, self.vehicle_id)
        self._unassign()
        if day is None:
            return
        following = next_in_block(self.ctx, finished, day)
        if following is None:
            s.parked = True  # at the end of its last known trip: report it there until it moves on
            return
        alighted = arrival + 0.5 * self.ctx.config.typical_dwell_s
        if ts < alighted:  # its riders are still getting off: the fix is still that trip's
            self._ended = (ts, day.service_date, finished, where, arrival - (day.origin + trip.arrival[last]))
        nxt = self.ctx.network.trips[following]
        s.trip_id, s.service_date, s.trip_since = following, day.service_date, ts
        self.ctx.claims[(day.service_date, following)] = self.vehicle_id
        s.progress, s.progress_ts, s.progress_speed, s.next_stop = float(nxt.stop_dist[0]), ts, s.last_speed, 0
        # waiting at the first stop: there once the last trip's riders are off
        s.pending_arrival, s.pending_interpolated = alighted, False
        # a guess from the timetable: checked like an inferred trip
        s.confirmed, s.confirm_wins, s.history = False, 0, [(ts, s.last_x, s.last_y, s.last_speed)]
        s.provisional_fixes = 0
        # a trip may end by the next one's line a way beyond its first stop (riders are set down there, then the
        # bus goes round to the stand): matched on the next trip there, the bus has not set off on it
        cfg = self.ctx.config
        here = self.ctx.matchers.get(nxt.shape_id).project(s.last_x, s.last_y, s.progress, s.progress + _STAND_REACH_M)
        if here.offset <= cfg.off_route_m and here.dist > s.progress + cfg.depart_radius_m:
            s.to_stand_from = here.dist

    def _event(self, i: int, arrival: float, departure: float | None, interpolated: bool) -> StopEvent:
        s = self.s
        assert s.trip_id is not None and s.service_date is not None
        trip = self._trip()
        day = self._day()
        if i == 0 and departure is not None:
            s.left_first_at = departure
        # positional (in _EVENT_FIELDS order): with keywords the record's __init__ takes half as long again (790
        # against 490 ns, timeit), and a bus passes a stop every other fix or so
        return StopEvent(
            self.vehicle_id,
            s.trip_id,
            s.service_date,
            trip.stop_ids[i],
            trip.stop_sequences[i],
            round_to(arrival, 3),
            None if departure is None else round_to(departure, 3),
            interpolated,
            trip.route_id,
            None if day is None else day.origin + trip.arrival[i],
            self._feed_version,
        )

    # --- assignment ---------------------------------------------------------------------------------
    def _assign(self, fit: Fit, ts: float, confirmed: bool, speed: float | None = None) -> None:
        self._unassign()
        s = self.s
        s.parked = False
        s.trip_id, s.service_date = fit.trip_id, fit.day.service_date
        if confirmed:
            s.route_id = self.ctx.network.trips[fit.trip_id].route_id
        s.progress, s.progress_ts, s.progress_speed, s.next_stop = fit.match.dist, ts, speed, 0
        s.trip_since = ts
        s.pending_arrival, s.delay_s, s.off_route_count = None, fit.delay_s, 0
        s.confirmed, s.confirm_wins, s.provisional_fixes = confirmed, 0, 0
        self.ctx.claims[(fit.day.service_date, fit.trip_id)] = self.vehicle_id

    def _recheck(self, ping: Ping, x: float, y: float, events: list[StopEvent]) -> list[StopEvent]:
        """While an inferred trip is provisional, hold its events and check it against its rivals on every
        fix: switch (re-running the fixes since the guess) when a rival fits clearly better; confirm, and
        release the held events, once it has clearly beaten them on a few fixes."""
        s, cfg = self.s, self.ctx.config
        ours_now = [e for e in events if e.trip_id == s.trip_id and e.service_date == s.service_date]
        passing = [e for e in events if not (e.trip_id == s.trip_id and e.service_date == s.service_date)]
        s.held.extend(ours_now)
        if self._waiting_to_depart(ping.timestamp):
            # no rival can fit clearly better than a trip whose departure is still to come, but for one leaving
            # about then from the stand of the terminal the bus is seen waiting at
            self._take_the_stand_it_waits_at(ping.timestamp)
            return passing
        ranked = rank_trips(self.ctx, self._as_evidence(ping), x, y, self.vehicle_id, s.route_id)
        ours = next((f for f in ranked if f.trip_id == s.trip_id and f.day.service_date == s.service_date), None)
        day = self._day()
        if ours is None and s.trip_id is not None and day is not None:
            if s.next_stop == 0:
                # a long layover: too early for inference to consider our trip, yet the bus waits for it
                ours = fit_trip(
                    self.ctx, s.trip_id, day, x, y, ping.timestamp, self.vehicle_id, s.route_id, waiting=True,
                    heading=moving_heading(ping),
                )
            else:
                # running later than inference reaches, the bus still follows our trip's line: it keeps the trip
                # unless a rival fits clearly better than a bus that late on ours (one another bus runs will not)
                ours = self._tracked_fit(day)
            if ours is not None:
                ranked = sorted([*ranked, ours], key=lambda f: (f.score, f.trip_id))
        ranked = [f for f in ranked if f is ours or not self._implausible_rival(f, ours)]
        best = ranked[0] if ranked else None
        if self._just_ran(best):
            return passing  # nothing to learn from this fix: wait for one away from the way the bus came
        if best is not None and (ours is None or best.score + cfg.confirm_margin < ours.score):
            self._switch(best)
            return passing
        rival = next((f for f in ranked if f is not ours), None)
        if ours is not None and (rival is None or rival.score - ours.score > cfg.confirm_margin):
            s.confirm_wins += 1
        at_terminal = s.next_stop == 0  # before its first departure every trip from here fits as well
        if not at_terminal:
            s.provisional_fixes += 1
        decided = s.confirm_wins >= cfg.confirm_fixes or s.provisional_fixes >= cfg.provisional_max_fixes
        if not at_terminal and decided:
            return passing + self._confirm()
        return passing

    def _take_the_stand_it_waits_at(self, ts: float) -> None:
        """Where a terminal's stands lie a few metres apart and trips leave from them at about the same time,
        GPS error makes one fix no evidence of the stand (inference went by one); the mean of the fixes while
        the bus waits is. Take the trip leaving from the stand the bus clearly waits at, from another bus if
        that bus waits at our trip's stand (the two then swap)."""
        s, ctx = self.s, self.ctx
        day = self._day()
        if day is None or s.trip_id is None or self._on_planned_trip():
            return  # a bus on the trip its last one leads to by the plan may stand anywhere in the terminal
        standing = [(x, y) for _, x, y, v in s.history[-_STAND_FIXES:] if v is None or v < ctx.config.stopped_mps]
        if len(standing) < _STAND_FIXES:
            return
        mx, my = sum(p[0] for p in standing) / len(standing), sum(p[1] for p in standing) / len(standing)
        if max(math.hypot(x - mx, y - my) for x, y in standing) > _STAND_SPREAD_M:
            return  # still moving about the terminal
        ctx.stands[self.vehicle_id] = (mx, my, ts)
        ours = stand_point(ctx, s.trip_id)
        from_ours = math.hypot(mx - ours[0], my - ours[1])
        for other in leaving_beside(ctx, s.trip_id, day, _SAME_WAVE_S):
            theirs = stand_point(ctx, other)
            from_theirs = math.hypot(mx - theirs[0], my - theirs[1])
            if from_theirs > _AT_STAND_M or from_theirs + _STANDS_APART_M > from_ours:
                continue
            holder = ctx.holder(day.service_date, other)
            if holder is not None and holder != self.vehicle_id:
                where = ctx.stands.get(holder)
                if where is None or ts - where[2] > _STILL_WAITING_S or (
                    math.hypot(where[0] - ours[0], where[1] - ours[1]) > _AT_STAND_M
                ):
                    continue  # the bus on it is not waiting at our trip's stand (or no longer waiting): it stays
            fit = fit_trip(ctx, other, day, s.last_x, s.last_y, ts, self.vehicle_id, waiting=True)
            if fit is not None:
                self._switch(fit)
                return

    def _implausible_rival(self, rival: Fit, ours: Fit | None) -> bool:
        """Whether `rival`, fitting the bus's fixes better than its own trip, cannot be the one it runs: the bus
        left its terminal minutes before the rival was due out, or the rival comes into the terminal the bus has
        just left (where a line loops round its terminal, a bus setting off is where one coming in will be), or,
        the bus being on the trip the day's plan gives it, the bus the plan gives the rival is still on its way
        to it (on the trip before), or the rival is another route's while the bus keeps to its own line, or the
        bus still stands at its trip's first stop and the rival is due out later from there."""
        return (
            self._left_before(rival)
            or self._comes_in_where_it_left(rival)
            or self._on_planned_trip() and (
                self._bus_on_its_way(rival) or self._keeps_to_its_line(rival, ours) or self._waits_for(rival)
            )
        )

    def _waits_for(self, rival: Fit) -> bool:
        """Whether the bus, standing at its trip's first stop, would be waiting there for `rival`, due out later
        from there. A bus that got to its stand late, after its trip was due out, leaves late on that trip: that
        it stands for an hour for a later one is no likelier, and its next fix away from the stand tells."""
        s, cfg = self.s, self.ctx.config
        if s.next_stop != 0 or s.left_first_at is not None:
            return False
        trip = self.ctx.network.trips[rival.trip_id]
        due_out = rival.day.origin + float(trip.departure[0])
        return rival.match.dist <= float(trip.stop_dist[0]) + cfg.depart_radius_m and due_out > s.progress_ts

    def _keeps_to_its_line(self, rival: Fit, ours: Fit | None) -> bool:
        """Whether the bus, on the trip the day's plan gives it, is on that trip's line (within half the off-route
        distance) while `rival` is another route's. Having come off its last trip late, a bus sets off on the next
        as late: along a street its line shares with another route, that route's later trip fits the timetable
        better. The timetable does not tell the two apart there; where the lines part, the road the bus takes does."""
        # (too late for the timetable to fit ours at all, the bus may still be on its line)
        offset = ours.match.offset if ours is not None else self.s.last_offset
        if offset is None or offset > 0.5 * self.ctx.config.off_route_m:
            return False
        return self.ctx.network.trips[rival.trip_id].route_id != self._trip().route_id

    def _comes_in_where_it_left(self, rival: Fit) -> bool:
        s = self.s
        if s.left_first_at is None or s.finished is None or s.trip_id is None:
            return False
        finished = s.finished[1]
        return starts_where_ends(self.ctx, s.trip_id, finished) and ends_where_ends(self.ctx, rival.trip_id, finished)

    def _on_planned_trip(self) -> bool:
        s = self.s
        if s.finished is None or s.trip_id is None or s.finished[0] != s.service_date:
            return False
        return self.ctx.chains.next_trip(s.finished[0], s.finished[1]) == s.trip_id

    def _bus_on_its_way(self, rival: Fit) -> bool:
        before = self.ctx.chains.previous_trip(rival.day.service_date, rival.trip_id)
        if before is None:
            return False
        return self.ctx.holder(rival.day.service_date, before) not in (None, self.vehicle_id)

    def _left_before(self, rival: Fit) -> bool:
        """Whether the bus set off from our trip's first stop minutes before `rival`, which leaves from there
        too, was due out. Buses do not leave a terminal minutes early; they do leave late: a bus running late
        on our trip is not on time for a later one."""
        s = self.s
        left = s.left_first_at
        if left is None or s.trip_id is None or not starts_where_starts(self.ctx, rival.trip_id, s.trip_id):
            return False
        return rival.day.origin + float(self.ctx.network.trips[rival.trip_id].departure[0]) > left + _LEAVES_EARLY_S

    def _tracked_fit(self, day: DayTrips) -> Fit | None:
        """Our trip's fit where the tracker has the bus, however late, scored as inference scores its trips;
        None when the bus is off our line or runs early. A bus later than inference reaches is held up on its
        trip; one earlier than it reaches is far likelier on the trip before, which then fits better."""
        s = self.s
        assert s.trip_id is not None
        offset = s.last_offset or 0.0
        if offset > self.ctx.config.off_route_m:
            return None
        delay = s.progress_ts - day.origin - self._trip().time_at(s.progress)
        if delay < 0.0:
            return None
        return Fit(s.trip_id, day, Match(s.progress, offset), delay, timetable_score(offset, delay))

    def _waiting_to_depart(self, ts: float) -> bool:
        """Standing at the trip's first stop (on the shape, or at another stand of the terminal a street
        away), before its departure with time to spare, or after it by less than most of the wait for the
        route's next departure from there: a bus that ended its last trip late leaves late on this one, it does
        not skip it for the next. At a terminal the bus stands where its last trip set it down, perhaps nearer
        another route's stand than its own: that is no evidence of which trip it runs next."""
        s, cfg = self.s, self.ctx.config
        if s.trip_id is None or s.next_stop != 0 or s.pending_arrival is None:
            return False
        if (s.last_offset or 0.0) > 0.5 * cfg.off_route_m and not self._at_first_stop():
            return False
        day = self._day()
        if day is None:
            return False
        t_rel = ts - day.origin
        departure = self._trip().departure[0]
        if t_rel < departure - cfg.gap_s:
            return True
        following = next_departure_here(self.ctx, s.trip_id, day)
        grace = cfg.late_tolerance_s if following is None else _LATE_SHARE_OF_HEADWAY * (following - departure)
        return t_rel < departure + min(grace, cfg.late_tolerance_s)

    def _standing_at_a_terminal(self, fit: Fit) -> bool:
        """Whether `fit` has the bus at its trip's first stop, not yet away from it, or at its last."""
        stop_dist, cfg = self.ctx.network.trips[fit.trip_id].stop_dist, self.ctx.config
        return fit.match.dist <= float(stop_dist[0]) + cfg.depart_radius_m or (
            fit.match.dist >= float(stop_dist[-1]) - cfg.end_radius_m
        )

    def _at_first_stop(self) -> bool:
        """Within `standing_at_stop_m` of the current trip's first stop (the stands of a terminal)."""
        s = self.s
        stop = self.ctx.network.stops[self._trip().stop_ids[0]]
        x, y = self._projection.point_xy(stop.lat, stop.lon)
        return math.hypot(s.last_x - x, s.last_y - y) <= self.ctx.config.standing_at_stop_m

    def _switch(self, fit: Fit) -> None:
        """Re-run the fixes seen since the wrong guess on the better trip."""
        s = self.s
        # the fixes since the guess, or its last stretch only when the guess is old: a trip joined hours ago
        # was right for most of them
        since = s.history[-1][0] - self.ctx.config.rerun_window_s
        history = [fix for fix in s.history if fix[0] >= since] or s.history[-1:]
        self._unassign()
        t0, x0, y0, v0 = history[0]
        first = fit_trip(self.ctx, fit.trip_id, fit.day, x0, y0, t0, self.vehicle_id) or fit
        self._assign(first, t0, confirmed=False, speed=v0)
        s.history = [history[0]]
        s.held = self._advance(first.match.dist, t0, v0, fresh=True)
        for ts, x, y, v in history[1:]:
            if s.trip_id is None:
                break
            s.history.append((ts, x, y, v))
            along, offset = self._match(x, y, ts, v)
            s.last_offset = offset
            if offset <= self.ctx.config.off_route_m:
                s.held.extend(self._advance(along, ts, v))

    def _release_claim(self) -> None:
        s = self.s
        if s.trip_id is not None and s.service_date is not None:
            key = (s.service_date, s.trip_id)
            if self.ctx.claims.get(key) == self.vehicle_id:
                del self.ctx.claims[key]

    def _unassign(self) -> None:
        s = self.s
        self._release_claim()
        s.trip_id = s.service_date = None
        s.confirmed, s.confirm_wins, s.held, s.history, s.prev_served = True, 0, [], [], True
        s.trusted, s.timing_fixes, s.recent = False, [], _no_fixes()
        s.progress, s.next_stop, s.pending_arrival, s.delay_s, s.off_route_count = 0.0, 0, None, None, 0
        s.to_stand_from = s.left_first_at = None
        self.ctx.stands.pop(self.vehicle_id, None)

    def _update_delay(self, ts: float) -> None:
        s = self.s
        day = self._day()
        if s.trip_id is None or day is None:
            return
        trip = self._trip()
        t_rel = ts - day.origin
        if s.next_stop == 0 and t_rel < trip.departure[0]:
            s.delay_s = 0.0  # layover before the first departure
            return
        s.delay_s = t_rel - trip.time_at(s.progress)

    def _status(self, ts: float) -> VehicleStatus:
        s = self.s
        if s.trip_id is None:
            return "unassigned"
        if s.next_stop != 0:
            return "at_stop" if s.pending_arrival is not None else "in_transit"
        day = self._day()
        if day is not None and ts - day.origin < self._trip().departure[0]:
            return "layover"
        return "at_stop" if s.pending_arrival is not None else "in_transit"

    def _state(self, ping: Ping, status: VehicleStatus) -> VehicleState:
        s = self.s
        ended = self._ended
        if ended is not None and ended[0] == ping.timestamp and s.trip_id is not None:
            return self._end_state(ping, *ended[1:])
        if not s.trip_id:
            if s.trip_id is None and s.parked and s.finished is not None:
                return self._parked_state(ping, s.finished)
            return VehicleState(
                vehicle_id=self.vehicle_id,
                timestamp=ping.timestamp,
                latitude=ping.latitude,
                longitude=ping.longitude,
                status=status,
                trip_id=s.trip_id,
                route_id=ping.route_id,
                service_date=s.service_date,
                delay_s=None if s.delay_s is None else round_to(s.delay_s, 1),
                speed=ping.speed,
                bearing=ping.bearing,
                feed_version=self.ctx.network.feed_hash,
            )
        trip = self._trip()
        nxt = s.next_stop
        at_end = nxt >= len(trip.stop_ids)
        # once per fix: positional (in _STATE_FIELDS order), which builds the record a quarter faster
        return VehicleState(
            self.vehicle_id,
            ping.timestamp,
            ping.latitude,
            ping.longitude,
            status,
            s.trip_id,
            trip.route_id,
            s.service_date,
            round_to(s.progress, 2),
            None if s.last_offset is None else round_to(s.last_offset, 2),
            None if s.delay_s is None else round_to(s.delay_s, 1),
            None if at_end else trip.stop_ids[nxt],
            None if at_end else trip.stop_sequences[nxt],
            ping.speed,
            ping.bearing,
            self._feed_version,
        )

    def _end_state(
        self, ping: Ping, service_date: str, trip_id: str, where: float, delay: float | None
    ) -> VehicleState:
        """At the last stop of the trip this fix finished: that trip, `where` along it (at its end, or its
        stand a little short of it), as late as it got there (the next fix finds it on its next trip); its
        last stop as the next, from which predictions follow the bus onto the trips it runs next."""
        trip = self.ctx.timelines.get(trip_id)
        return VehicleState(
            self.vehicle_id,
            ping.timestamp,
            ping.latitude,
            ping.longitude,
            "at_stop",
            trip_id,
            trip.route_id,
            service_date,
            round_to(where, 2),
            None if self.s.last_offset is None else round_to(self.s.last_offset, 2),
            None if delay is None else round_to(delay, 1),
            trip.stop_ids[-1],
            trip.stop_sequences[-1],
            ping.speed,
            ping.bearing,
            self._feed_version,
        )

    def _parked_state(self, ping: Ping, finished: tuple[str, str]) -> VehicleState:
        """At the last stop of the trip it finished, with no next trip known: that trip, at its end."""
        service_date, trip_id = finished
        trip = self.ctx.network.trips[trip_id]
        return VehicleState(
            vehicle_id=self.vehicle_id,
            timestamp=ping.timestamp,
            latitude=ping.latitude,
            longitude=ping.longitude,
            status="at_stop",
            trip_id=trip_id,
            route_id=trip.route_id,
            service_date=service_date,
            shape_dist=round_to(float(trip.stop_dist[-1]), 2),
            speed=ping.speed,
            bearing=ping.bearing,
            feed_version=self.ctx.network.feed_hash,
        )

    def stale_state(self, now: float) -> VehicleState | None:
        """The vehicle's state marked stale when it has been silent too long, else None."""
        s = self.s
        if s.last_ts is None or now - s.last_ts < self.ctx.config.stale_after_s:
            return None
        ping = Ping(self.vehicle_id, s.last_ts, s.last_lat, s.last_lon)
        return self._state(ping, "stale")
