"""Websocket fan-out: one live-store subscription per process, shared by every connected client.

Each client gets at most one message per `min_interval_s`: the first change after a quiet spell goes out
at once, later ones coalesce into the next message. A client holds one coalesced slot (a dirty flag for
a stop board, the latest state per vehicle for the fleet), so its backlog is bounded by construction; a
client whose socket does not take a message within `send_timeout_s` is dropped, never slowing the others.
Each client has its languages for names; a change is rendered once per language in use, not once per client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.websockets import WebSocket

from api.languages import Preference
from smartbus.live import FLEET_CHANNEL, LiveStore
from smartbus.live.store import ALL_STOPS_PATTERN, STOP_CHANNEL_PREFIX

log = logging.getLogger(__name__)

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

    def notify(self) -> None:
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
            await self._changed.wait()
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
    ) -> None:
        super().__init__(websocket, min_interval_s, send_timeout_s)
        self.stop_id = stop_id
        self.languages = languages


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
                self._changed.set()

    def offer_removed(self, vehicle_ids: set[str]) -> None:
        """These vehicles expired; a client that never saw one is told anyway (cheaper than tracking)."""
        for vehicle_id in vehicle_ids:
            self.pending.pop(vehicle_id, None)
        self.removed |= vehicle_ids
        self._changed.set()

    def resnapshot(self) -> None:
        self.needs_snapshot = True
        self._changed.set()

    def take_pending(self) -> list[dict[str, Any]]:
        taken, self.pending = self.pending, {}
        return sorted(taken.values(), key=lambda v: str(v["vehicle_id"]))

    def take_removed(self) -> list[str]:
        taken, self.removed = self.removed, set()
        return sorted(taken)


class Hub:
    def __init__(
        self,
        live: LiveStore,
        vehicle_view: Callable[[dict[str, Any], Preference], dict[str, Any]],
        *,
        expiry_sweep_s: float = 15.0,
    ) -> None:
        self._live = live
        self._vehicle_view = vehicle_view
        self._stop_clients: dict[str, set[StopClient]] = {}
        self._fleet_clients: set[FleetClient] = set()
        self._task: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._expiry_sweep_s = expiry_sweep_s
        self._known_vehicles: set[str] = set()  # alive at the last sweep or moved since
        # Bumped on every change of a watched stop's board: clients watching the same stop share one
        # rendering of it per generation instead of each reading the store.
        self._stop_generation: dict[str, int] = {}
        self.subscribed = asyncio.Event()  # set while the shared subscription is live

    @property
    def client_count(self) -> int:
        return len(self._fleet_clients) + sum(len(c) for c in self._stop_clients.values())

    def add_stop_client(self, client: StopClient) -> None:
        self._stop_clients.setdefault(client.stop_id, set()).add(client)

    def remove_stop_client(self, client: StopClient) -> None:
        clients = self._stop_clients.get(client.stop_id)
        if clients is not None:
            clients.discard(client)
            if not clients:
                del self._stop_clients[client.stop_id]
                self._stop_generation.pop(client.stop_id, None)

    def stop_generation(self, stop_id: str) -> int:
        return self._stop_generation.get(stop_id, 0)

    def add_fleet_client(self, client: FleetClient) -> None:
        self._fleet_clients.add(client)

    def remove_fleet_client(self, client: FleetClient) -> None:
        self._fleet_clients.discard(client)

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="api-live-subscription")
        self._sweeper = asyncio.create_task(self._sweep_expired(), name="api-vehicle-expiry")

    async def stop(self) -> None:
        for task in (self._task, self._sweeper):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def sweep_once(self) -> None:
        """Tell fleet clients about vehicles the store let expire (no message is published when a key expires)."""
        alive = {state.vehicle_id for state in await self._live.vehicles()}
        gone = self._known_vehicles - alive
        self._known_vehicles = alive
        if gone:
            for client in self._fleet_clients:
                client.offer_removed(gone)

    async def _sweep_expired(self) -> None:
        while True:
            await asyncio.sleep(self._expiry_sweep_s)
            if not self._fleet_clients:
                continue
            try:
                await self.sweep_once()
            except Exception:
                log.warning("vehicle expiry sweep failed; retrying next round", exc_info=True)

    async def _listen(self) -> None:
        backoff = 0.5
        while True:
            try:
                subscription = self._live.subscribe([FLEET_CHANNEL, ALL_STOPS_PATTERN])
                first = asyncio.ensure_future(anext(subscription))
                # A store subscribes lazily on first read; give it a moment before saying it is live.
                await asyncio.sleep(0)
                self.subscribed.set()
                self._resync()  # anything may have changed while we were not listening
                channel, payload = await first
                self._dispatch(channel, payload)
                backoff = 0.5
                async for channel, payload in subscription:
                    self._dispatch(channel, payload)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.subscribed.clear()
                log.exception("live subscription lost; retrying in %.1f s", backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    def _dispatch(self, channel: str, payload: bytes) -> None:
        if channel == FLEET_CHANNEL:
            if not self._fleet_clients:
                return
            try:
                states = json.loads(payload)
                ids = [str(state["vehicle_id"]) for state in states]
            except (ValueError, TypeError, KeyError):
                log.warning("ignoring malformed fleet message")
                return
            self._known_vehicles.update(ids)
            viewed: dict[Preference, list[dict[str, Any]]] = {}
            for fleet_client in self._fleet_clients:
                vehicles = viewed.get(fleet_client.languages)
                if vehicles is None:
                    vehicles = viewed[fleet_client.languages] = [
                        self._vehicle_view(state, fleet_client.languages) for state in states
                    ]
                fleet_client.offer(vehicles)
        elif channel.startswith(STOP_CHANNEL_PREFIX):
            stop_id = channel.removeprefix(STOP_CHANNEL_PREFIX)
            watchers = self._stop_clients.get(stop_id)
            if watchers:
                self._stop_generation[stop_id] = self._stop_generation.get(stop_id, 0) + 1
                for stop_client in watchers:
                    stop_client.notify()

    def _resync(self) -> None:
        for stop_id, clients in self._stop_clients.items():
            self._stop_generation[stop_id] = self._stop_generation.get(stop_id, 0) + 1
            for client in clients:
                client.notify()
        for fleet_client in self._fleet_clients:
            fleet_client.resnapshot()
