"""Websocket fan-out: one live-store subscription per process, shared by every connected client.

Clients (api.clients) are rate-limited and coalescing. Each client has its languages for names; a change is
rendered once per language in use, not once per client. Stop boards' changes go to api.stop_boards.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from api.clients import FleetClient
from api.languages import Preference
from api.stop_boards import StopBoards
from smartbus.live import FLEET_CHANNEL, LiveStore
from smartbus.live.store import ALL_STOPS_PATTERN, STOP_CHANNEL_PREFIX

log = logging.getLogger(__name__)


class Hub:
    def __init__(
        self,
        live: LiveStore,
        vehicle_view: Callable[[dict[str, Any], Preference], dict[str, Any]],
        boards: StopBoards,
        *,
        expiry_sweep_s: float = 15.0,
    ) -> None:
        self._live = live
        self._vehicle_view = vehicle_view
        self.boards = boards
        self._fleet_clients: set[FleetClient] = set()
        # Clients following one vehicle, by its id: a move is offered to its few followers, not to all of them.
        self._vehicle_clients: dict[str, set[FleetClient]] = {}
        self._vehicle_client_count = 0
        self._task: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._expiry_sweep_s = expiry_sweep_s
        self._known_vehicles: set[str] = set()  # alive at the last sweep or moved since
        self.subscribed = asyncio.Event()  # set while the shared subscription is live

    @property
    def client_count(self) -> int:
        return len(self._fleet_clients) + self._vehicle_client_count + self.boards.count

    def add_fleet_client(self, client: FleetClient) -> None:
        vehicle_id = client.filter.vehicle_id
        if vehicle_id is None:
            self._fleet_clients.add(client)
        elif client not in self._vehicle_clients.setdefault(vehicle_id, set()):
            self._vehicle_clients[vehicle_id].add(client)
            self._vehicle_client_count += 1

    def remove_fleet_client(self, client: FleetClient) -> None:
        vehicle_id = client.filter.vehicle_id
        if vehicle_id is None:
            self._fleet_clients.discard(client)
            return
        followers = self._vehicle_clients.get(vehicle_id)
        if followers is not None and client in followers:
            followers.discard(client)
            self._vehicle_client_count -= 1
            if not followers:
                del self._vehicle_clients[vehicle_id]

    def _all_fleet_clients(self) -> list[FleetClient]:
        return [*self._fleet_clients, *(c for followers in self._vehicle_clients.values() for c in followers)]

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="api-live-subscription")
        self._sweeper = asyncio.create_task(self._sweep_expired(), name="api-vehicle-expiry")

    async def stop(self) -> None:
        for task in (self._task, self._sweeper):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.boards.close()

    async def sweep_once(self) -> None:
        """Tell fleet clients about vehicles the store let expire (no message is published when a key expires)."""
        alive = {state.vehicle_id for state in await self._live.vehicles()}
        gone = self._known_vehicles - alive
        self._known_vehicles = alive
        if gone:
            for client in self._all_fleet_clients():
                client.offer_removed(gone)

    async def _sweep_expired(self) -> None:
        while True:
            await asyncio.sleep(self._expiry_sweep_s)
            if not self._fleet_clients and not self._vehicle_clients:
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
            if not self._fleet_clients and not self._vehicle_clients:
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
            if self._vehicle_clients:
                for vehicle_id, state in zip(ids, states, strict=True):
                    for follower in self._vehicle_clients.get(vehicle_id, ()):
                        follower.offer([self._vehicle_view(state, follower.languages)])
        elif channel.startswith(STOP_CHANNEL_PREFIX):
            self.boards.changed(channel.removeprefix(STOP_CHANNEL_PREFIX))

    def _resync(self) -> None:
        self.boards.changed_all()
        for fleet_client in self._all_fleet_clients():
            fleet_client.resnapshot()
