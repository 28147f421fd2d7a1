"""The contract every live-state store keeps (Redis in production, in-memory for the embedded demo)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Final, Protocol

from smartbus.live.board import Arrival
from smartbus.messages import EncodedState, PredictionSet, StopEvent, VehicleState

# Channels published on. "fleet" carries a JSON array of the vehicle states just accepted (each the vehicle_state
# message as smartbus.messages encodes it, of a readable schema version); "stop:{stop_id}" carries an empty
# payload: the board changed, read it.
FLEET_CHANNEL: Final = "fleet"
STOP_CHANNEL_PREFIX: Final = "stop:"
ALL_STOPS_PATTERN: Final = "stop:*"

# Wall-clock lifetimes: a vehicle or board nobody writes to any more disappears by itself.
DEFAULT_VEHICLE_TTL_S: Final = 3600.0
DEFAULT_BOARD_TTL_S: Final = 900.0


def stop_channel(stop_id: str) -> str:
    return STOP_CHANNEL_PREFIX + stop_id


class LiveStore(Protocol):
    async def put_states(self, states: Sequence[VehicleState | EncodedState]) -> None:
        """Keep the latest state per vehicle (an older timestamp is ignored); publish accepted ones on "fleet".
        A state may come as the message or as the bytes the bus carried it in."""

    async def vehicles(self) -> list[VehicleState]:
        """Every vehicle still alive, ordered by vehicle_id."""

    async def vehicle(self, vehicle_id: str) -> VehicleState | None: ...

    async def put_predictions(self, sets: Sequence[PredictionSet]) -> None:
        """Replace each vehicle's previous predictions on the stop boards; publish "stop:{id}" per stop touched.

        A set older than the vehicle's latest set is ignored.
        """

    async def put_stop_events(self, events: Sequence[StopEvent]) -> None:
        """The trip reached the stop: drop it from that stop's board, publishing when it was there.

        The stop remembers the trip arrived (for the board's lifetime): a prediction made before the
        arrival but written after it does not put the bus back on the board.
        """

    async def stop_arrivals(self, stop_id: str, now: float) -> list[Arrival]:
        """The stop's board at `now` (UTC epoch seconds), soonest first."""

    async def arrived_trips(self, stop_id: str, now: float) -> set[str]:
        """Board keys (smartbus.live.board.trip_key) of the trips that reached the stop, within the board's
        lifetime: the timetable must not show them as still to come either."""

    async def vehicle_arrivals(self, vehicle_id: str, now: float) -> list[Arrival]:
        """The vehicle's latest predictions still on the boards at `now`, soonest first (for TripUpdates)."""

    def subscribe(self, channels: Sequence[str]) -> AsyncIterator[tuple[str, bytes]]:
        """Yield (channel, payload) as published; a channel may be a glob pattern such as "stop:*"."""

    async def ping(self) -> bool:
        """True when the store answers."""

    async def close(self) -> None: ...
