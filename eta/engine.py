"""The façade the worker, the demo and replays use: one tracker per vehicle, pings in, records out."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import Final

from eta.assignment import next_in_block
from eta.network import Network
from eta.tracker import TrackerOutput, TrackState, VehicleTracker
from eta.tracking_context import TrackerConfig, TrackingContext
from smartbus.messages import Ping, VehicleState

_SNAPSHOT_VERSION: Final = 3


@dataclass(frozen=True, slots=True)
class VehicleView:
    """What prediction needs from the tracker about one vehicle after its latest ping."""

    vehicle_id: str
    trip_id: str | None
    service_date: str | None  # YYYYMMDD
    progress: float  # metres along the trip's shape
    delay_s: float | None  # positive = late
    next_stop_index: int  # index into the trip's stops of the first stop not yet departed
    at_stop: bool  # standing at that stop (arrived, not yet departed)
    confirmed: bool  # False while an inferred trip is still being checked against its rivals
    last_timestamp: float | None
    next_trips: tuple[str, ...]  # the trips the vehicle runs after this one (its block), soonest first


# what one ping gives: the vehicle's state, its stop events, or why the ping was not used (out_of_order,
# duplicate, ...); the tracker's own record, handed on as it is rather than copied once per ping
EngineOutput = TrackerOutput


class Engine:
    def __init__(self, network: Network, config: TrackerConfig | None = None) -> None:
        self.network = network
        self.ctx = TrackingContext(network, config or TrackerConfig())
        self.trackers: dict[str, VehicleTracker] = {}

    def warm(self) -> None:
        """Build what the first pings would otherwise build (each shape's matcher, the grid of shapes), so that a
        worker that has just started, when every bus is new to it, is not slowest exactly then."""
        self.ctx.warm()

    def tracker(self, vehicle_id: str) -> VehicleTracker:
        tracker = self.trackers.get(vehicle_id)
        if tracker is None:
            tracker = VehicleTracker(self.ctx, vehicle_id)
            self.trackers[vehicle_id] = tracker
        return tracker

    def set_overrides(self, overrides: dict[str, tuple[str, str]]) -> None:
        """Operators' trip assignments, vehicle_id -> (trip_id, service_date YYYYMMDD), replacing the last
        set: each vehicle named takes its trip at its next ping; one no longer named goes back to inference."""
        self.ctx.overrides = dict(overrides)

    def process(self, ping: Ping) -> EngineOutput:
        tracker = self.trackers.get(ping.vehicle_id)
        if tracker is None:
            tracker = self.tracker(ping.vehicle_id)
        return tracker.update(ping)

    def vehicle_view(self, vehicle_id: str, following: int = 3) -> VehicleView | None:
        """The vehicle's trip, progress and delay now, with up to `following` next trips of its block;
        None for a vehicle never seen."""
        tracker = self.trackers.get(vehicle_id)
        if tracker is None:
            return None
        s = tracker.s
        chain: list[str] = []
        day = self.ctx.day_of(s.service_date) if s.service_date else None
        current = s.trip_id
        while day is not None and current is not None and len(chain) < following:
            current = next_in_block(self.ctx, current, day, ignore_claims=True)
            if current is not None:
                chain.append(current)
        return VehicleView(
            vehicle_id,
            s.trip_id,
            s.service_date,
            s.progress,
            s.delay_s,
            s.next_stop,
            s.pending_arrival is not None,
            s.confirmed,
            s.last_ts,
            tuple(chain),
        )

    def stale(self, now: float) -> list[VehicleState]:
        """States of vehicles silent for longer than the stale threshold (call periodically)."""
        found = (t.stale_state(now) for t in self.trackers.values())
        return [state for state in found if state is not None]

    def snapshot(self) -> bytes:
        """Per-vehicle state, for a restart (tied to this network's feed version)."""
        body = {vid: t.s for vid, t in self.trackers.items()}
        return pickle.dumps((_SNAPSHOT_VERSION, self.network.feed_hash, body), protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def restore(cls, network: Network, blob: bytes, config: TrackerConfig | None = None) -> Engine:
        engine = cls(network, config)
        version, feed_hash, body = pickle.loads(blob)
        if version != _SNAPSHOT_VERSION or feed_hash != network.feed_hash:
            return engine  # another feed or format: start clean rather than misapply state
        for vehicle_id, state in body.items():
            assert isinstance(state, TrackState)
            engine.trackers[vehicle_id] = VehicleTracker(engine.ctx, vehicle_id, state)
            if state.trip_id is not None and state.service_date is not None:
                engine.ctx.claims[(state.service_date, state.trip_id)] = vehicle_id
        return engine
