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
from collections.abc import Awaitable, Callable
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


class FleetClient(Client):
    def __init__(
        self,
        websocket: WebSocket,
        route_id: str | None,
        min_interval_s: float,
        send_timeout_s: float,
        languages: Preference = (),
    ) -> None:
        super().__init__(websocket, min_interval_s, send_timeout_s)
        self.route_id = route_id
        self.languages = languages
        self.pending: dict[str, dict[str, Any]] = {}  # vehicle_id -> latest view not yet sent
        self.removed: set[str] = set()  # vehicles gone from the store since the last message
        self.needs_snapshot = False  # set after the subscription was lost: moves may have been missed

    def offer(self, vehicles: list[dict[str, Any]]) -> None:
        for vehicle in vehicles:
            if self.route_id is None or vehicle.get("route_id") == self.route_id:
                self.pending[vehicle["vehicle_id"]] = vehicle
                self.removed.discard(vehicle["vehicle_id"])
                self.notify()

    def offer_removed(self, vehicle_ids: set[str]) -> None:
        """These vehicles expired; a client that never saw one is told anyway (cheaper than tracking)."""
        for vehicle_id in vehicle_ids:
            self.pending.pop(vehicle_id, None)
        self.removed |= vehicle_ids
        self.notify()

    def resnapshot(self) -> None:
        self.needs_snapshot = True
        self.notify()

    def take_pending(self) -> list[dict[str, Any]]:
        taken, self.pending = self.pending, {}
        return sorted(taken.values(), key=lambda v: str(v["vehicle_id"]))

    def take_removed(self) -> list[str]:
        taken, self.removed = self.removed, set()
        return sorted(taken)
