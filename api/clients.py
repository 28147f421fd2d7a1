"""One connected websocket client each: its rate-limited sender and what it is waiting to be sent.

Each client gets at most one message per `min_interval_s`: the first change after a quiet spell goes out at
once, later ones coalesce into the next message. A client holds one coalesced slot (a dirty flag for a stop
board, the latest state per vehicle for the fleet), so its backlog is bounded by construction; a client whose
socket does not take a message within `send_timeout_s` is dropped, never slowing the others.

A stop client may also be written to directly, an encoded frame shared with the stop's other watchers
(api.stop_boards), while its own sender is idle; its sender task is then never woken for that message.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from starlette.websockets import WebSocket

from api.frames import FrameWriter
from api.languages import Preference

CLOSE_TOO_SLOW = 1013  # "try again later": the client could not keep up


class SlowClient(Exception):
    pass


class Client:
    """One websocket and its rate-limited sender."""

    def __init__(self, websocket: WebSocket, min_interval_s: float, send_timeout_s: float) -> None:
        self.websocket = websocket
        self._min_interval_s = min_interval_s
        self._send_timeout_s = send_timeout_s
        self._changed = asyncio.Event()
        self._next_send_at = 0.0
        # True while the sender waits with nothing to send: only then may someone else write to the socket.
        self.idle = False

    @property
    def next_send_at(self) -> float:
        """The event loop's time from which the interval allows another message."""
        return self._next_send_at

    def notify(self) -> None:
        """There is something to send: wake the sender."""
        self.idle = False
        self._changed.set()

    async def send(self, message: dict[str, Any] | str) -> None:
        """Send a message, or its JSON text when several clients share one rendering."""
        text = message if isinstance(message, str) else json.dumps(message, separators=(",", ":"), ensure_ascii=False)
        try:
            # asyncio.timeout, not wait_for: no extra task per message, which is most of a send's cost at scale.
            async with asyncio.timeout(self._send_timeout_s):
                await self.websocket.send_text(text)
        except TimeoutError as exc:
            raise SlowClient from exc
        self._next_send_at = asyncio.get_running_loop().time() + self._min_interval_s

    async def run(self, next_message: Callable[[], Awaitable[dict[str, Any] | str | None]]) -> None:
        """Send `next_message()` after each change, no more often than the interval allows."""
        loop = asyncio.get_running_loop()
        while True:
            if not self._changed.is_set():
                self.idle = True
                await self._changed.wait()
            self.idle = False
            delay = self._next_send_at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self._changed.clear()  # changes from here on wake the next round
            message = await next_message()
            if message is not None:
                await self.send(message)


class StopClient(Client):
    def __init__(
        self,
        websocket: WebSocket,
        stop_id: str,
        min_interval_s: float,
        send_timeout_s: float,
        languages: Preference = (),
        writer: FrameWriter | None = None,
    ) -> None:
        super().__init__(websocket, min_interval_s, send_timeout_s)
        self.stop_id = stop_id
        self.languages = languages
        self.writer = writer  # writes straight to the connection, where the server allows it (api.frames)
        self.behind = False  # the board changed since this client was last sent it

    def deliver(self, frame: bytes, now: float) -> bool:
        """Write the board, encoded as a frame, straight to the socket. False, and nothing written, unless the
        sender is idle, the interval has passed (`now` is the loop's time) and the socket is taking data."""
        if not self.idle or now < self._next_send_at or self.writer is None or not self.writer.ready():
            return False
        self.writer.write(frame)
        self.behind = False
        self._next_send_at = now + self._min_interval_s
        return True


@dataclass(frozen=True, slots=True)
class FleetFilter:
    """Which vehicles a fleet socket shows: all, one route's, those inside a box, or one vehicle."""

    route_id: str | None = None
    bbox: tuple[float, float, float, float] | None = None  # min_lon, min_lat, max_lon, max_lat
    vehicle_id: str | None = None

    def matches(self, vehicle: dict[str, Any]) -> bool:
        if self.vehicle_id is not None and vehicle.get("vehicle_id") != self.vehicle_id:
            return False
        if self.route_id is not None and vehicle.get("route_id") != self.route_id:
            return False
        if self.bbox is not None:
            lon, lat = vehicle.get("longitude"), vehicle.get("latitude")
            min_lon, min_lat, max_lon, max_lat = self.bbox
            if lon is None or lat is None or not (min_lon <= lon <= max_lon and min_lat <= lat <= max_lat):
                return False
        return True


class FleetClient(Client):
    """A fleet socket: the latest view of each vehicle it shows that moved since its last message, and the ids of
    those it stopped showing (expired, or moved out of its route or box)."""

    def __init__(
        self,
        websocket: WebSocket,
        route_id: str | None,
        min_interval_s: float,
        send_timeout_s: float,
        languages: Preference = (),
        *,
        bbox: tuple[float, float, float, float] | None = None,
        vehicle_id: str | None = None,
    ) -> None:
        super().__init__(websocket, min_interval_s, send_timeout_s)
        self.filter = FleetFilter(route_id, bbox, vehicle_id)
        self.languages = languages
        self.pending: dict[str, dict[str, Any]] = {}  # vehicle_id -> latest view not yet sent
        self.removed: set[str] = set()  # vehicles it stopped showing since the last message
        self.shown: set[str] = set()  # vehicles the client has on screen, as of the messages queued for it
        self.needs_snapshot = False  # set after the subscription was lost: moves may have been missed

    @property
    def route_id(self) -> str | None:
        return self.filter.route_id

    def offer(self, vehicles: list[dict[str, Any]]) -> None:
        for vehicle in vehicles:
            vehicle_id = vehicle["vehicle_id"]
            if self.filter.matches(vehicle):
                self.pending[vehicle_id] = vehicle
                self.shown.add(vehicle_id)
                self.removed.discard(vehicle_id)
                self.notify()
            elif vehicle_id in self.shown:  # it left the route or the box: take it off the client's map
                self.shown.discard(vehicle_id)
                self.pending.pop(vehicle_id, None)
                self.removed.add(vehicle_id)
                self.notify()

    def offer_removed(self, vehicle_ids: set[str]) -> None:
        """These vehicles expired from the live store."""
        gone = vehicle_ids & self.shown
        if not gone:
            return
        for vehicle_id in gone:
            self.pending.pop(vehicle_id, None)
        self.shown -= gone
        self.removed |= gone
        self.notify()

    def resnapshot(self) -> None:
        self.needs_snapshot = True
        self.notify()

    def start_snapshot(self) -> None:
        """A snapshot is about to be read: it supersedes everything queued so far."""
        self.pending = {}
        self.removed = set()
        self.shown = set()
        self.needs_snapshot = False

    def snapshot_shown(self, vehicle_ids: Iterable[str]) -> None:
        """The snapshot just read holds these vehicles (moves offered while it was read are kept too)."""
        self.shown.update(vehicle_ids)

    def take_pending(self) -> list[dict[str, Any]]:
        taken, self.pending = self.pending, {}
        return sorted(taken.values(), key=lambda v: str(v["vehicle_id"]))

    def take_removed(self) -> list[str]:
        taken, self.removed = self.removed, set()
        return sorted(taken)
