"""In-process live state for the embedded demo: same behaviour as RedisLiveStore, no server."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

from smartbus.live.board import Arrival, arrivals_of, is_expired, trip_key, visible_board
from smartbus.live.glob import redis_glob
from smartbus.live.store import (
    DEFAULT_BOARD_TTL_S,
    DEFAULT_VEHICLE_TTL_S,
    FLEET_CHANNEL,
    stop_channel,
)
from smartbus.messages import EncodedState, PredictionSet, StopEvent, VehicleState, decode_as, to_dict

log = logging.getLogger(__name__)

# A subscriber that falls this far behind loses messages rather than growing memory without bound.
SUBSCRIBER_QUEUE_LIMIT = 10_000


@dataclass(slots=True)
class _VehiclePredictions:
    made_at: float
    entries: list[tuple[str, str]]  # (stop_id, trip_key) written by the vehicle's latest set
    expires_at: float


@dataclass(slots=True)
class _Board:
    entries: dict[str, Arrival] = field(default_factory=dict)  # trip_key -> arrival
    expires_at: float = 0.0


@dataclass(slots=True)
class _Subscriber:
    patterns: tuple[str, ...]
    queue: asyncio.Queue[tuple[str, bytes]]
    dropped: int = 0


class MemoryLiveStore:
    def __init__(
        self,
        *,
        vehicle_ttl_s: float = DEFAULT_VEHICLE_TTL_S,
        board_ttl_s: float = DEFAULT_BOARD_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._vehicle_ttl_s = vehicle_ttl_s
        self._board_ttl_s = board_ttl_s
        self._clock = clock  # only for expiry, like Redis key TTLs
        self._states: dict[str, tuple[VehicleState, float]] = {}
        self._boards: dict[str, _Board] = {}
        self._vehicle_predictions: dict[str, _VehiclePredictions] = {}
        self._subscribers: list[_Subscriber] = []
        # stop_id -> trip_key -> expiry: trips that reached a stop, so a late prediction cannot bring them back.
        self._arrived: dict[str, dict[str, float]] = {}

    async def put_states(self, states: Sequence[VehicleState | EncodedState]) -> None:
        expires_at = self._clock() + self._vehicle_ttl_s
        accepted = []
        for given in states:
            state = decode_as(given.raw, VehicleState) if isinstance(given, EncodedState) else given
            current = self._live_state(state.vehicle_id)
            if current is not None and state.timestamp < current.timestamp:
                continue
            self._states[state.vehicle_id] = (state, expires_at)
            accepted.append(to_dict(state))
        if accepted:
            payload = json.dumps(accepted, separators=(",", ":"), ensure_ascii=False).encode()
            self._publish(FLEET_CHANNEL, payload)

    async def vehicles(self) -> list[VehicleState]:
        now = self._clock()
        for vehicle_id in [v for v, (_, exp) in self._states.items() if exp <= now]:
            del self._states[vehicle_id]
        return [self._states[v][0] for v in sorted(self._states)]

    async def vehicle(self, vehicle_id: str) -> VehicleState | None:
        return self._live_state(vehicle_id)

    async def put_predictions(self, sets: Sequence[PredictionSet]) -> None:
        for prediction_set in sets:
            touched = self._replace_vehicle_predictions(prediction_set)
            for stop_id in sorted(touched):
                self._publish(stop_channel(stop_id), b"")

    async def put_stop_events(self, events: Sequence[StopEvent]) -> None:
        expires_at = self._clock() + self._board_ttl_s
        for event in events:
            board = self._live_board(event.stop_id)
            key = trip_key(event.trip_id, event.service_date)
            self._arrived.setdefault(event.stop_id, {})[key] = expires_at
            if board is not None and key in board.entries:
                del board.entries[key]
                self._publish(stop_channel(event.stop_id), b"")

    async def stop_arrivals(self, stop_id: str, now: float) -> list[Arrival]:
        board = self._live_board(stop_id)
        if board is None:
            return []
        for key in [k for k, a in board.entries.items() if is_expired(a, now)]:
            del board.entries[key]
        return visible_board(board.entries.values(), now)

    async def arrived_trips(self, stop_id: str, now: float) -> set[str]:
        now = self._clock()  # expiry runs on the store's clock, like Redis key TTLs
        return {key for key in list(self._arrived.get(stop_id, ())) if self._has_arrived(stop_id, key, now)}

    async def vehicle_arrivals(self, vehicle_id: str, now: float) -> list[Arrival]:
        index = self._vehicle_predictions.get(vehicle_id)
        if index is None or index.expires_at <= self._clock():
            return []
        arrivals = []
        for stop_id, key in index.entries:
            board = self._live_board(stop_id)
            arrival = board.entries.get(key) if board is not None else None
            if arrival is not None and arrival.vehicle_id == vehicle_id:
                arrivals.append(arrival)
        return visible_board(arrivals, now)

    async def subscribe(self, channels: Sequence[str]) -> AsyncIterator[tuple[str, bytes]]:
        subscriber = _Subscriber(tuple(channels), asyncio.Queue(SUBSCRIBER_QUEUE_LIMIT))
        self._subscribers.append(subscriber)
        try:
            while True:
                yield await subscriber.queue.get()
        finally:
            self._subscribers.remove(subscriber)

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self._subscribers.clear()

    def _live_state(self, vehicle_id: str) -> VehicleState | None:
        entry = self._states.get(vehicle_id)
        if entry is None:
            return None
        if entry[1] <= self._clock():
            del self._states[vehicle_id]
            return None
        return entry[0]

    def _live_board(self, stop_id: str) -> _Board | None:
        board = self._boards.get(stop_id)
        if board is not None and board.expires_at <= self._clock():
            del self._boards[stop_id]
            return None
        return board

    def _replace_vehicle_predictions(self, prediction_set: PredictionSet) -> set[str]:
        """Swap the vehicle's previous entries for this set's; return the stops whose board changed."""
        vehicle_id = prediction_set.vehicle_id
        now = self._clock()
        previous = self._vehicle_predictions.get(vehicle_id)
        if previous is not None and previous.expires_at <= now:
            previous = None
        if previous is not None and prediction_set.made_at < previous.made_at:
            return set()
        touched: set[str] = set()
        if previous is not None:
            for stop_id, key in previous.entries:
                board = self._live_board(stop_id)
                # Another vehicle may have taken the trip over since: leave its entry alone.
                if board is not None and (old := board.entries.get(key)) and old.vehicle_id == vehicle_id:
                    del board.entries[key]
                    touched.add(stop_id)
        entries = []
        for arrival in arrivals_of(prediction_set):
            if self._has_arrived(arrival.stop_id, arrival.trip_key, now):
                continue
            board = self._live_board(arrival.stop_id)
            if board is None:
                board = self._boards[arrival.stop_id] = _Board()
            board.entries[arrival.trip_key] = arrival
            board.expires_at = now + self._board_ttl_s
            entries.append((arrival.stop_id, arrival.trip_key))
            touched.add(arrival.stop_id)
        self._vehicle_predictions[vehicle_id] = _VehiclePredictions(
            prediction_set.made_at, entries, now + self._board_ttl_s
        )
        return touched

    def _has_arrived(self, stop_id: str, key: str, now: float) -> bool:
        at_stop = self._arrived.get(stop_id)
        expires_at = at_stop.get(key) if at_stop is not None else None
        if at_stop is not None and expires_at is not None and expires_at <= now:
            del at_stop[key]
            if not at_stop:
                del self._arrived[stop_id]
            return False
        return expires_at is not None

    def _publish(self, channel: str, payload: bytes) -> None:
        for subscriber in self._subscribers:
            if any(redis_glob(p).fullmatch(channel.encode()) for p in subscriber.patterns):
                try:
                    subscriber.queue.put_nowait((channel, payload))
                except asyncio.QueueFull:
                    subscriber.dropped += 1
                    if subscriber.dropped % 1000 == 1:
                        log.warning("live subscriber too slow: %d messages dropped", subscriber.dropped)
