"""The learning predictor: stop events in (it learns from them), vehicle states in, predictions out.

For the vehicle's trip it walks the stops ahead: the rest of the current segment, then for each stop a
run time (the model's fused estimate, nudged by the vehicle's own pace) and a dwell (learned; an early
bus waits at holding stops for its scheduled time). After the trip's last stop it carries on onto the
trips the block runs next (method "block_next": at the terminal the bus leaves at its scheduled time or
after its turnaround, whichever is later, so delay is recovered at layovers), up to the horizon.

Never garbage: no stop already passed, no arrival before the state's time, arrivals non-decreasing.
Pure: no I/O except `save`/`load` of the learned state to a file (`state_bytes`/`from_bytes` for elsewhere).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from eta.network import Network
from eta.prediction.blocks import BlockChains, parse_service_date
from eta.prediction.learned_state import (
    Adopted,
    LearnedState,
    LearnedStateError,
    adopt,
    encode_pieces,
    pack,
    segment_lengths,
)
from eta.prediction.model_merge import merge_models
from eta.prediction.travel_model import TOD_BIN_S, TravelModel, tod_bin
from eta.prediction.trip_plan import TripPlan, plan_trip
from eta.rounding import round_to
from smartbus.messages import PredictionMethod, PredictionSet, StopEvent, StopPrediction, VehicleState

DEFAULT_HORIZON_S: Final = 3600.0
# A vehicle's whole walk is redone this often on average (new learning, holds, layovers); in between its first stop
# is re-estimated on every ping and the rest shifts with it. 240 s rather than 120 s: a third fewer run estimates,
# and on the Cairns day (seed 7) scores moved by under 0.05 points (MBTA 95.22 -> 95.18, ETA benchmark 93.27 -> 93.25).
# Each walk is redone after its own share of RECOMPUTE_SPREAD around that, drawn from the vehicle and the time: after
# a restart the whole fleet's walks are made in the same second, and at one fixed age they were all redone (and
# republished) together again every 240 s.
RECOMPUTE_S: Final = 240.0
RECOMPUTE_SPREAD: Final = 0.5
REWRITE_S: Final = 10.0
REFRESH_S: Final = 120.0  # inside a rider's 180 s freshness window even with a 30 s ping interval and jitter
SILENT_MAX_S: Final = 600.0  # a silent bus's last predictions are repeated this long (GPS gaps of a few minutes)
# A silent bus may be running faster than predicted: the longer it has been silent, the more of the stops
# predicted just ahead it may already have reached. Stops predicted sooner than this share of the silence
# from now are taken as passed when its predictions are repeated.
SILENT_PASSED_SHARE: Final = 0.25
MAX_NEXT_TRIPS: Final = 4
APPROACH_SPEED_MPS: Final = 8.0  # heading for a trip's first stop: no segment to learn from yet
LEFT_STOP_M: Final = 10.0  # this far past a stop the bus has left it, whatever the tracker calls it
# Shown times lean early by this share of the time to go: a rider who comes early waits a little, one who
# comes late misses the bus, so every industry yardstick tolerates a bus later than shown more than earlier.
EARLY_LEAN: Final = 0.06
BASE_UNCERTAINTY_S: Final = 20.0
_BASE_VAR: Final = BASE_UNCERTAINTY_S**2
_METHOD: Final[dict[str, PredictionMethod]] = {
    "prior": "schedule_delay",
    "history": "history",
    "recent": "recent",
    "blend": "blend",
}
_RANK: Final = {"prior": 0, "history": 1, "recent": 1, "blend": 2}
# Off its route a bus may be detouring or on another trip than the tracker thinks: its times would mislead.
_NO_PREDICTION_STATUSES: Final = frozenset({"stale", "unassigned", "off_route"})
# A fix this far from its trip's line is not on the trip where the tracker holds the bus: the tracker calls it
# off route only once it stays off (a detour, or a device naming another trip), but its first fixes off the
# line already mislead, as much as the later ones. Not so for a bus on layover before its trip's departure: a
# stand may lie a street away from the first stop, and the timetable, not where it stands, sets when it leaves.
OFF_LINE_M: Final = 80.0
# A bus still at a trip's first stop this long after it should have left is not running that trip (the
# tracker guessed the block's next trip wrong, or the bus is out of service): predict nothing from it.
OVERDUE_AT_START_S: Final = 180.0
# How long after its scheduled start a bus that was early at the first stop leaves it (start lag), and how long
# a late bus stands there before it sets off (turnaround), are learned only from plausible stays. A bus leaving
# hours early, or standing for an hour, is on another trip than the one it was tracked on (a device naming the
# wrong trip): one such stay would move the learned mean by minutes for every bus after it.
START_LAG_LEARNED_S = (-600.0, 1800.0)
TURNAROUND_LEARNED_MAX_S: Final = 1800.0

log = logging.getLogger(__name__)


def ceil_tenth(seconds: float) -> float:
    """Rounded up to a tenth of a second: rounding to the nearest could put an arrival before now."""
    value = math.ceil(seconds * 10.0) / 10.0
    return value if value >= seconds else value + 0.1


# Not frozen: a walk builds one per stop ahead (hundreds of thousands in a replay), and a frozen dataclass's
# __init__ sets each field through object.__setattr__, five times slower. Nothing changes one once built.
@dataclass(slots=True)
class _Entry:
    plan: TripPlan
    service_date: str
    index: int
    arrival: float  # UTC epoch seconds, as walked
    scheduled: float
    method: PredictionMethod
    uncertainty: float  # seconds: one standard deviation of the walk's error up to here
    fixed: float  # the latest scheduled departure the bus waits for before this stop (or -inf)
    log_run: float  # the model's log run of the segment into this stop as walked (nan: no segment walked)


@dataclass(slots=True)
class _Path:
    key: tuple[str, str]  # trip, service date
    redo_at: float  # when the whole walk is made again (see RECOMPUTE_S)
    entries: list[_Entry]
    published_at: float = float("-inf")
    published_shift: float = float("nan")
    state: VehicleState | None = None  # the latest state it serves
    rho: float = 0.0  # the model's pace correlation when walked

    @property
    def trip(self) -> tuple[str, str]:
        """(service_date, trip_id) of the trip the bus is on, as the schedule board keys trips."""
        trip_id, service_date = self.key
        return service_date, trip_id

    def trips(self) -> list[tuple[str, str]]:
        """`trip`, then each later trip the path walks (the block's next ones), in order."""
        found = [self.trip]
        for e in self.entries:
            trip = (e.service_date, e.plan.trip_id)
            if trip != found[-1]:
                found.append(trip)
        return found


@dataclass(slots=True)
class _Seen:
    """The last stop event of one vehicle, and its pace (log residual of its last observed run)."""

    trip_id: str
    service_date: str
    index: int
    arrival: float
    departure: float | None
    interpolated: bool
    pace: float = 0.0
    has_pace: bool = False


@dataclass(slots=True)
class Shown:
    """One vehicle's predictions as computed, before they become a message: the walked stops and the
    arrivals riders are shown (rounded up to the tenth, non-decreasing)."""

    vehicle_id: str
    made_at: float
    entries: list[_Entry]
    arrivals: list[float]
    feed_version: str | None

    def to_set(self) -> PredictionSet:
        # positional, in the fields' order (smartbus.messages checks it at import): the ETA worker builds one per
        # stop of every set it publishes, and keywords take twice as long
        stops = tuple([
            StopPrediction(
                (plan := e.plan).trip_id, e.service_date, plan.stop_ids[e.index], plan.stop_sequences[e.index],
                arrival, e.scheduled, e.method, e.uncertainty, plan.route_id,
            )
            for e, arrival in zip(self.entries, self.arrivals, strict=True)
        ])
        return PredictionSet(self.vehicle_id, self.made_at, stops, self.feed_version)


class LearningPredictor:
    def __init__(self, network: Network, model: TravelModel | None = None,
                 horizon_s: float = DEFAULT_HORIZON_S) -> None:
        self.network = network
        self.model = model if model is not None else TravelModel()
        self.horizon_s = horizon_s
        self._plans: dict[str, TripPlan] = {}
        self._origins: dict[str, float] = {}
        self._seen: dict[str, _Seen] = {}
        # (trip, service date, when) a vehicle was first seen standing at the first stop of that trip: when it
        # came there, as far as we know, while no stop event says so (its first trip of the day, say)
        self._stand_since: dict[str, tuple[str, str, float]] = {}
        self._paths: dict[str, _Path] = {}
        self._lengths: dict[str, float] | None = None
        self.blocks = BlockChains(network)
        # Whole walks it may still make (each is what riders see of one bus: a set of every stop ahead, through
        # Kafka into every board and the history). Unlimited, as in a replay; the stream worker hands out so many
        # a second, so that a fleet first heard all at once (a start, a restart, a rebalance) is walked over
        # seconds rather than in one burst that holds up every fix behind it (see eta.worker).
        self.walk_allowance = math.inf
        self.walks_held_back = 0  # fixes that needed a walk when the allowance had none left

    # --- lookups -----------------------------------------------------------------------------------------
    def plan(self, trip_id: str) -> TripPlan | None:
        plan = self._plans.get(trip_id)
        if plan is None:
            trip = self.network.trips.get(trip_id)
            if trip is None:
                return None
            plan = plan_trip(trip)
            self._plans[trip_id] = plan
        return plan

    def warm(self) -> None:
        """Plan every trip now rather than when a bus first runs it (see Engine.warm)."""
        for trip_id in self.network.trips:
            self.plan(trip_id)

    def origin(self, service_date: str) -> float:
        origin = self._origins.get(service_date)
        if origin is None:
            origin = self.network.service_day_origin(parse_service_date(service_date))
            self._origins[service_date] = origin
        return origin

    # --- learning ----------------------------------------------------------------------------------------
    def observe(self, events: list[StopEvent]) -> None:
        for event in events:
            self._observe(event)

    def _observe(self, event: StopEvent) -> None:
        plan = self.plan(event.trip_id)
        index = plan.index_of.get(event.stop_sequence) if plan is not None else None
        if plan is None or index is None:
            return
        seen = self._seen.get(event.vehicle_id)
        same_trip = seen is not None and seen.trip_id == event.trip_id and seen.service_date == event.service_date
        if seen is not None and same_trip and index == seen.index:
            if seen.departure is None and event.departure_time is not None:  # the departure of a known arrival
                seen.departure = event.departure_time
                self._learn_stay(plan, index, event)
            return
        origin = self.origin(event.service_date)
        pace, has_pace = (seen.pace, seen.has_pace) if seen is not None else (0.0, False)
        if (
            seen is not None and same_trip and index == seen.index + 1 and seen.departure is not None
            and not seen.interpolated and not event.interpolated and event.arrival_time > seen.departure
        ):
            residual = self.model.observe_run(
                plan.segments[index - 1],
                tod_bin(seen.departure - origin),
                plan.prior_log[index - 1],
                seen.departure,
                event.arrival_time - seen.departure,
            )
            if has_pace:
                self.model.observe_pace(pace, residual)
            pace, has_pace = residual, True
        self._seen[event.vehicle_id] = _Seen(
            event.trip_id, event.service_date, index, event.arrival_time, event.departure_time,
            event.interpolated, pace, has_pace,
        )
        if event.departure_time is not None:
            self._learn_stay(plan, index, event)

    def _learn_stay(self, plan: TripPlan, index: int, event: StopEvent) -> None:
        """Learn from how long the bus stayed: turnaround at a first stop, dwell elsewhere (not when it was
        waiting for its time at a holding stop, which says nothing of boarding)."""
        if event.departure_time is None or event.interpolated or index == len(plan.segments):
            return
        stay = event.departure_time - event.arrival_time
        scheduled_departure = self.origin(event.service_date) + plan.departure[index]
        if index == 0:
            lag = event.departure_time - scheduled_departure
            if event.arrival_time >= scheduled_departure:
                if stay <= TURNAROUND_LEARNED_MAX_S:
                    self.model.turnaround.add(stay, 0.05)
            elif event.arrival_time + self.model.turnaround_s() < scheduled_departure:
                if START_LAG_LEARNED_S[0] <= lag <= START_LAG_LEARNED_S[1]:
                    self.model.start_lag.add(lag, 0.05)
            return
        if plan.holds[index] and event.arrival_time + stay <= scheduled_departure + 5.0:
            return
        self.model.observe_dwell(plan.stop_ids[index], stay)

    # --- prediction --------------------------------------------------------------------------------------
    def __call__(self, state: VehicleState) -> PredictionSet | None:
        return self.predict(state)

    def predict(self, state: VehicleState) -> PredictionSet | None:
        """Every stop ahead within the horizon (the vehicle's trip, then its block's next trips)."""
        found = self._current(state)
        if found is None:
            return None
        path, shift = found
        return self._set(state, path, shift)

    def publish(self, state: VehicleState, now: float | None = None) -> PredictionSet | None:
        """Like `predict`, but None when what riders were last shown for this vehicle still holds: nothing
        moved by `REWRITE_S` and the last set is younger than `REFRESH_S` (a live board's traffic); None too when the
        vehicle needs a whole walk and `walk_allowance` has none left (it is walked at a later fix).

        `now`: the clock (the latest fix heard from any bus), when `state` may be older. A fix its device held back
        for minutes (yet newer than the last one heard from the bus) is like a bus silent since it: the stops it
        predicts sooner than a share of that delay from now are taken as passed, as for a silent bus."""
        shown = self.publish_shown(state, now)
        return shown.to_set() if shown is not None else None

    def publish_shown(self, state: VehicleState, now: float | None = None) -> Shown | None:
        """`publish` without building the messages: for a replay writing hundreds of thousands of lines."""
        found = self._current(state)
        if found is None:
            return None
        path, shift = found
        if abs(shift - path.published_shift) < REWRITE_S and state.timestamp - path.published_at < REFRESH_S:
            return None
        path.published_shift, path.published_at = shift, state.timestamp
        held_back = now - state.timestamp if now is not None else 0.0
        if held_back >= REFRESH_S:
            assert now is not None
            return self._shown(state, path, shift, now + SILENT_PASSED_SHARE * held_back)
        return self._shown(state, path, shift)

    def republish_silent(self, now: float) -> list[PredictionSet]:
        """The last predictions of buses silent for a while (a gap in their GPS), made again at `now` so
        riders keep seeing them: stops whose time has gone are taken as passed and left out."""
        return [shown.to_set() for shown in self.republish_silent_shown(now)]

    def republish_silent_shown(self, now: float) -> list[Shown]:
        found: list[Shown] = []
        for path, state in self._silent(now):
            if now - path.published_at < REFRESH_S:
                continue
            shift = path.published_shift if math.isfinite(path.published_shift) else 0.0
            path.published_at = now
            passed_before = now + SILENT_PASSED_SHARE * (now - state.timestamp)
            again = self._shown(dataclasses.replace(state, timestamp=now), path, shift, passed_before)
            if again.entries:
                found.append(again)
        return found

    def silent_trips(self, now: float) -> list[tuple[str, str]]:
        """(service_date, trip_id) of the trip each bus silent for a while (up to `SILENT_MAX_S`) was last on, and of
        the block's next trips it was last predicted to run: it stands for them meanwhile, also while it waits at
        the stand with no stop yet within the horizon, or once every stop it was last predicted to reach soon may
        lie behind it (a bus gone silent on its way to the stand of its next trip may be waiting there now)."""
        return [trip for path, _ in self._silent(now) for trip in path.trips()]

    def _silent(self, now: float) -> Iterator[tuple[_Path, VehicleState]]:
        """Each path whose bus has been silent for a while at `now` (from `REFRESH_S` to `SILENT_MAX_S`), with the
        bus's last state."""
        for path in self._paths.values():
            state = path.state
            if state is not None and REFRESH_S <= now - state.timestamp <= SILENT_MAX_S:
                yield path, state

    def _set(self, state: VehicleState, path: _Path, shift: float) -> PredictionSet:
        return self._shown(state, path, shift).to_set()

    def _shown(self, state: VehicleState, path: _Path, shift: float, passed_before: float = -math.inf) -> Shown:
        """What riders are shown from `path` moved by `shift`; stops predicted before `passed_before` are left out
        (taken as passed)."""
        now = state.timestamp
        floor = now
        # a copy either way: the path drops its passed stops in place later
        if passed_before == -math.inf:
            entries = path.entries[:]
        else:
            entries = [e for e in path.entries if e.arrival + shift >= passed_before]
        arrivals: list[float] = []
        lean = 1.0 - EARLY_LEAN
        ceil = math.ceil
        for e in entries:
            arrival = e.arrival + shift
            start = e.fixed if e.fixed > now else now
            if arrival > start:
                arrival = start + (arrival - start) * lean
            if arrival > floor:
                floor = arrival
            shown = ceil(floor * 10.0) / 10.0  # ceil_tenth, inline: this runs for every stop of every set
            arrivals.append(shown if shown >= floor else shown + 0.1)
        return Shown(state.vehicle_id, now, entries, arrivals, state.feed_version)

    def arrived_at(self, vehicle_id: str, plan: TripPlan, index: int, default: float) -> float:
        """When the vehicle reached stop `index` of `plan`, where it stands now. At a trip's first stop
        that is when it ended the trip before (the tracker reports the first stop only once it leaves), or
        else when it was first seen standing there."""
        seen = self._seen.get(vehicle_id)
        if seen is not None:
            if seen.trip_id == plan.trip_id and seen.index == index:
                return seen.arrival
            if index == 0 and seen.trip_id != plan.trip_id:
                before = self.plan(seen.trip_id)
                if before is not None and seen.index == len(before.segments) and seen.arrival <= default:
                    return seen.arrival
        if index == 0:
            # No trip ended here that we saw: it came no later than when it was first seen standing here.
            # Taking `default` (now) instead put its departure a turnaround after every fix, forever receding.
            since = self._stand_since.get(vehicle_id)
            if since is not None and since[0] == plan.trip_id and since[2] <= default:
                return since[2]
        return default

    def stands_for(self, state: VehicleState) -> tuple[str, str] | None:
        """(service_date, trip_id) of the trip `state` (just predicted from, by `publish_shown` or `predict`) puts
        its bus on, when it is predicted from: the bus stands for that trip whether or not anything riders see
        changed at this fix, and also while it waits at the first stop with every stop beyond the horizon (a
        long layover). None for a bus predicted nothing (lost, off its line, overdue at its stand)."""
        path = self._paths.get(state.vehicle_id)
        return path.trip if path is not None and path.state is state else None

    def _overdue_at_start(self, state: VehicleState, plan: TripPlan) -> bool:
        assert state.service_date is not None
        arrived = self.arrived_at(state.vehicle_id, plan, 0, state.timestamp)
        leave = max(
            self.origin(state.service_date) + plan.departure[0] + self.model.start_lag_s(),
            arrived + self.model.turnaround_s(),
        )
        return state.timestamp - leave > OVERDUE_AT_START_S

    def _head(self, state: VehicleState, plan: TripPlan, index: int, at_stop: bool,
              path: _Path | None = None) -> tuple[TripPlan, int, float] | None:
        """(plan, stop index, arrival) of the first stop ahead; None when it lies beyond the horizon.

        Every fix asks this, and most come between two stops of the trip, at a stop the vehicle's last walk
        (`path`) reached: for those the run into it is the walk's own estimate of that segment, scaled to what is
        left of it and to the vehicle's pace now. What the model learned since (from any bus in the network)
        reaches such a bus's board at its next walk, not at its next fix: learning moves every board of the
        network, and applied at each bus's next fix it made most of the fleet publish again in the same second
        (a cold start's first runs, or a busy network's every run). Walks are spread in time (RECOMPUTE_SPREAD).
        Otherwise (at a stop, before the first stop, no position along the trip), a walk of one stop on the
        model as it is. At the walk's own moment the two are the same floats (tests); later the walk's estimate
        stays as it was, where the model's may have moved (what it learned, the half hour, the recent runs' age)."""
        shape_dist, service_date = state.shape_dist, state.service_date
        assert service_date is not None
        walked = math.nan  # the walk's log run into the stop ahead, when it has one
        if path is not None and not at_stop and index != 0 and shape_dist is not None and index <= len(plan.segments):
            for entry in path.entries[:3]:
                if entry.plan is plan and entry.index == index:
                    walked = entry.log_run
                    break
        if math.isnan(walked):
            walk = _Walk(self, state, max_stops=1)
            walk.trip(plan, service_date, index, at_stop, shape_dist)
            if not walk.out:
                return None
            first = walk.out[0]
            return first.plan, first.index, first.arrival
        assert path is not None and shape_dist is not None
        now = state.timestamp
        pace = _pace(self._seen.get(state.vehicle_id)) * path.rho  # the walk's rho ** 1 is rho
        arrival = now + math.exp(walked + pace) * _share_left(plan, index, shape_dist)
        if arrival < now:
            arrival = now
        return None if arrival > state.timestamp + self.horizon_s else (plan, index, arrival)

    def _current(self, state: VehicleState) -> tuple[_Path, float] | None:
        """The vehicle's predicted path and how far to shift it: the whole walk is redone when the vehicle starts
        another trip, when its stop ahead is not among the walk's first, or when the walk is `RECOMPUTE_S` old; in
        between only the first stop is re-estimated from the new position and the rest moves with it. None when
        there is nothing to predict, or a walk is needed and `walk_allowance` has none left."""
        if (
            state.trip_id is None or state.service_date is None or state.next_stop_sequence is None
            or state.status in _NO_PREDICTION_STATUSES
            or state.offset_m is not None and state.offset_m > OFF_LINE_M and state.status != "layover"
        ):
            if state.status != "unassigned":
                self._paths.pop(state.vehicle_id, None)
            # a bus the tracker has lost for a moment keeps its last predictions, like a silent one
            return None
        plan = self.plan(state.trip_id)
        index = plan.index_of.get(state.next_stop_sequence) if plan is not None else None
        if plan is None or index is None:
            return None
        at_stop = state.status in ("at_stop", "layover")
        if at_stop and index == 0:
            since = self._stand_since.get(state.vehicle_id)
            if since is None or since[0] != plan.trip_id or since[1] != state.service_date:
                self._stand_since[state.vehicle_id] = (plan.trip_id, state.service_date, state.timestamp)
            if self._overdue_at_start(state, plan):
                self._paths.pop(state.vehicle_id, None)
                return None
        key = (plan.trip_id, state.service_date)
        path = self._paths.get(state.vehicle_id)
        if path is not None and path.key == key and (state.timestamp < path.redo_at or self.walk_allowance < 1.0):
            moved = self._moved(path, state, plan, index, at_stop)  # (a walk due again serves until there is one)
            if moved is not None:
                return moved
        if self.walk_allowance < 1.0:
            self.walks_held_back += 1
            if path is not None and path.key != key:
                # on another trip now: its old walk must not stand for it (a silent bus's stops are shown again)
                del self._paths[state.vehicle_id]
            return None  # none to spare: what riders were shown last stands until a later fix
        walk = _Walk(self, state)
        walk.trip(plan, state.service_date, index, at_stop, state.shape_dist)
        chained = 0
        trip_id = plan.trip_id
        while walk.open and chained < MAX_NEXT_TRIPS:
            following = self.blocks.next_trip(state.service_date, trip_id)
            nxt = self.plan(following) if following is not None else None
            if nxt is None:
                break
            walk.next_trip(nxt, state.service_date)
            trip_id = nxt.trip_id
            chained += 1
        if walk.out:  # (one with nothing inside the horizon, a bus on a long layover say, publishes nothing)
            self.walk_allowance -= 1.0
        redo_at = state.timestamp + _recompute_after(state.vehicle_id, state.timestamp)
        fresh = _Path(key, redo_at, walk.out, state=state, rho=walk.rho)  # never published: `publish` sends it at once
        self._paths[state.vehicle_id] = fresh
        return fresh, 0.0

    def _moved(self, path: _Path, state: VehicleState, plan: TripPlan, index: int,
               at_stop: bool) -> tuple[_Path, float] | None:
        """`path` (a walk of the vehicle's trip) and how far to shift it for `state`; None when its stop ahead
        is no longer among the walk's first."""
        first = self._head(state, plan, index, at_stop, path)
        # the stops passed since the walk drop off the front; the rest moves with the first one ahead
        for skip, entry in enumerate(path.entries[:3]):
            if first is not None and entry.plan is first[0] and entry.index == first[1]:
                if skip:
                    del path.entries[:skip]
                path.state = state
                return path, first[2] - entry.arrival
        return None

    # --- persistence -------------------------------------------------------------------------------------
    def segment_lengths(self) -> dict[str, float]:
        """Metres of every segment of the network (computed once: tens of milliseconds on a city's feed)."""
        if self._lengths is None:
            self._lengths = segment_lengths(self.network)
        return self._lengths

    def learned_state(self) -> LearnedState:
        """A copy of what the model has learned, tied to this network's feed version, in memory."""
        return LearnedState.of(self.model, self.network.feed_hash, self.segment_lengths())

    def state_pieces(self) -> Iterator[str]:
        """The learned state's text a slice at a time, for `pack` (see eta.prediction.learned_state)."""
        return encode_pieces(self.model, self.network.feed_hash, self.segment_lengths())

    def state_bytes(self) -> bytes:
        return pack(self.state_pieces())

    def adopt(self, state: LearnedState) -> Adopted:
        """`state` made fit for this predictor's network (see eta.prediction.learned_state); not applied yet.
        Touches nothing the predictor changes as it runs, so it may run in another thread."""
        return adopt(state, self.network, self.segment_lengths())

    def absorb(self, models: Sequence[TravelModel]) -> None:
        """Add what `models` learned to what this predictor has (into an empty one: exactly theirs)."""
        if models:
            self.model = merge_models([self.model, *models])

    @classmethod
    def from_bytes(cls, network: Network, blob: bytes, horizon_s: float = DEFAULT_HORIZON_S) -> LearningPredictor:
        """A predictor that knows what `blob` (from `state_bytes`) learned; carried over if it was learned on
        another feed version (logged)."""
        predictor = cls(network, horizon_s=horizon_s)
        adopted = predictor.adopt(LearnedState.from_bytes(blob))
        if not adopted.same_version:
            log.warning("prediction state %s", adopted.describe())
        predictor.absorb([adopted.model])
        return predictor

    def save(self, path: Path) -> None:
        path.write_bytes(self.state_bytes())

    @classmethod
    def load(cls, network: Network, path: Path, horizon_s: float = DEFAULT_HORIZON_S) -> LearningPredictor:
        try:
            return cls.from_bytes(network, path.read_bytes(), horizon_s)
        except LearnedStateError as exc:
            raise LearnedStateError(f"{path}: {exc}") from exc


class _Walk:
    """One walk along the stops ahead of a vehicle, accumulating predictions until the horizon."""

    # one per fix (the head walk), so built and read often: slots, not a dict
    __slots__ = ("p", "max_stops", "model", "state", "now", "limit", "seen", "pace", "rho", "t", "var", "best", "out",
                 "fixed", "open")

    def __init__(self, predictor: LearningPredictor, state: VehicleState, max_stops: int = 1 << 30) -> None:
        self.p = predictor
        self.max_stops = max_stops
        self.model = predictor.model
        self.state = state
        self.now = state.timestamp
        self.limit = state.timestamp + predictor.horizon_s
        seen = predictor._seen.get(state.vehicle_id)
        self.seen = seen
        self.pace = _pace(seen)
        self.rho = self.model.pace_correlation()
        self.t = state.timestamp  # the clock of the walk: when the bus leaves the last stop walked
        self.var = _BASE_VAR
        self.best = "prior"  # the most informed source used so far on this walk
        self.out: list[_Entry] = []
        self.fixed = -math.inf
        self.open = True  # still inside the horizon at the end of the last trip walked

    def _emit(self, plan: TripPlan, service_date: str, origin: float, index: int, arrival: float,
              method: PredictionMethod) -> bool:
        arrival = max(arrival, self.now, self.out[-1].arrival if self.out else self.now)
        if arrival > self.limit or len(self.out) >= self.max_stops:
            self.open = False
            return False
        self.out.append(_Entry(
            plan, service_date, index, arrival, origin + plan.arrival[index], method, round_to(math.sqrt(self.var), 1),
            self.fixed, math.nan,
        ))
        return True

    def _leave(self, plan: TripPlan, origin: float, index: int, arrival: float) -> float:
        """When the bus leaves stop `index` having reached it at `arrival`."""
        if index == 0:
            scheduled = origin + plan.departure[0] + self.model.start_lag_s()
            leave = arrival + self.model.turnaround_s()
        elif index == len(plan.segments):
            return arrival
        else:
            leave = arrival + self.model.dwell_s(plan.stop_ids[index], plan.scheduled_dwell[index])
            if not plan.holds[index]:
                return leave
            scheduled = origin + plan.departure[index]
        if scheduled >= leave:
            self.fixed = scheduled  # the timetable, not the traffic, sets the time from here
            return scheduled
        return leave

    def _method(self) -> PredictionMethod:
        return _METHOD[self.best]

    def trip(self, plan: TripPlan, service_date: str, index: int, at_stop: bool, shape_dist: float | None) -> None:
        origin = self.p.origin(service_date)
        last = len(plan.segments)
        partial = not at_stop  # the first segment walked is partly done
        if at_stop:
            # the tracker calls a bus "at" a stop until it is clearly past it; a few metres beyond, it has left
            partial = shape_dist is not None and index < last and shape_dist > plan.stop_dist[index] + LEFT_STOP_M
            if partial:
                self.t = self.now
                # Stops closer together than GPS tells apart (two bays 16 m apart): held at the first, the bus
                # has come as near the next as a bus standing at it would be, and may well be standing there.
                # A time for a stop it is at is no prediction of an arrival to come: left out.
                reached = shape_dist + LEFT_STOP_M if shape_dist is not None else -math.inf
                while index + 1 <= last and plan.stop_dist[index + 1] < reached:
                    index += 1
            else:
                arrived = self.p.arrived_at(self.state.vehicle_id, plan, index, self.now)
                self.t = max(self._leave(plan, origin, index, arrived), self.now)
            index += 1
        elif index == 0:
            gap = max(plan.stop_dist[0] - (shape_dist or plan.stop_dist[0]), 0.0)
            arrival = self.now + gap / APPROACH_SPEED_MPS
            if not self._emit(plan, service_date, origin, 0, arrival, self._method()):
                return
            self.t = max(self._leave(plan, origin, 0, arrival), self.now)
            index = 1
        if index > last:
            return
        share = _share_left(plan, index, shape_dist) if partial and shape_dist is not None else 1.0
        self._stops(plan, service_date, origin, index, share, True, None)

    def next_trip(self, plan: TripPlan, service_date: str) -> None:
        """The block's next trip: the bus reaches its first stop as it ends the trip before. Once it has ended
        that trip (it stands at its end now) it is at this first stop already, or pulls in at once, perhaps since a
        GPS gap: a time for it then is no prediction of an arrival to come, and it is left out."""
        origin = self.p.origin(service_date)
        arrival = self.t
        if arrival > self.now and not self._emit(plan, service_date, origin, 0, arrival, "block_next"):
            return
        self.t = self._leave(plan, origin, 0, arrival)
        self.pace *= self.rho  # a new trip: the bus's pace matters less
        self._stops(plan, service_date, origin, 1, 1.0, False, "block_next")

    def _stops(self, plan: TripPlan, service_date: str, origin: float, start: int, share: float,
               pace_fades: bool, method: PredictionMethod | None) -> None:
        """Stops `start`.. of `plan`, each reached from the one before: `_run`, `_emit` and `_leave` in one
        loop (the walk's inner loop, run for every stop ahead of every bus every `RECOMPUTE_S`). The first
        run is `share` of its segment; the bus's pace fades stop by stop when `pace_fades`, else it counts
        as one stop away; `method` None means the most informed source so far."""
        estimate = self.model.estimate
        dwell = self.model.dwell
        segments, prior_log, holds = plan.segments, plan.prior_log, plan.holds
        scheduled, stop_ids, scheduled_dwell = plan.arrival, plan.stop_ids, plan.scheduled_dwell
        now, limit, rho, pace, out, max_stops = self.now, self.limit, self.rho, self.pace, self.out, self.max_stops
        # the walk's clock, variance and best source as locals in the loop, stored back on every way out
        t, var, best = self.t, self.var, self.best
        best_rank = _RANK[best]
        last = len(segments)
        steps = 1
        previous = out[-1].arrival if out else now
        exp, sqrt = math.exp, math.sqrt
        for j in range(start, last + 1):
            if len(out) >= max_stops:  # before estimating: a head walk needs one stop, not two
                self.open = False
                break
            log_run, log_var, source = estimate(segments[j - 1], int((t - origin) // TOD_BIN_S), prior_log[j - 1], now)
            if _RANK[source] > best_rank:
                best, best_rank = source, _RANK[source]
            run = exp(log_run + pace * rho**steps) * share
            share = 1.0
            var += run * run * log_var
            if pace_fades:
                steps += 1
            arrival = t + run
            if arrival < now:
                arrival = now
            if arrival < previous:
                arrival = previous
            if arrival > limit:
                self.open = False
                break
            out.append(_Entry(
                plan, service_date, j, arrival, origin + scheduled[j], method or _METHOD[best],
                round_to(sqrt(var), 1), self.fixed, log_run,
            ))
            previous = arrival
            if j == last:
                t = arrival
            elif holds[j]:
                t = self._leave(plan, origin, j, arrival)
            else:  # `_leave` at a stop where the bus goes as soon as it has served it
                found = dwell.get(stop_ids[j])
                t = arrival + (found.mean if found is not None else scheduled_dwell[j])
        self.t, self.var, self.best = t, var, best


def _pace(seen: _Seen | None) -> float:
    """The vehicle's pace (log residual of its last observed run), 0 before it has one."""
    return seen.pace if seen is not None and seen.has_pace else 0.0


def _share_left(plan: TripPlan, index: int, shape_dist: float) -> float:
    """How much of the segment into stop `index` lies ahead of a bus at `shape_dist` (0 to 1)."""
    span = plan.stop_dist[index] - plan.stop_dist[index - 1]
    return min(max((plan.stop_dist[index] - shape_dist) / span, 0.0), 1.0) if span > 0 else 0.0


def _recompute_after(vehicle_id: str, now: float) -> float:
    """RECOMPUTE_S give or take half of RECOMPUTE_SPREAD of it, the same for the same vehicle and time (a replay
    gives the same files), different from one vehicle to the next and from one walk to the next."""
    share = zlib.crc32(f"{vehicle_id}@{now!r}".encode()) / 2**32
    return RECOMPUTE_S * (1.0 + RECOMPUTE_SPREAD * (share - 0.5))
