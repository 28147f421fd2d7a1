"""Riders' stop boards over websockets: who watches which stop, and each change sent to all of them.

A change of a stop's board is read from the store and encoded once per language in use, however many riders
watch it, and written as one encoded frame straight to each watcher that may have it now (api.frames), as
`websockets.broadcast` does. A watcher whose interval has not passed yet is served by a later round of its
stop, timed for when it has: the rate limit costs one timer per stop, not a task wake-up per rider. Only a
watcher whose own sender is busy (its snapshot, say), whose socket is not taking data, or whose connection
has no direct writer is handed to its sender task (api.clients), which sends the ordinary ASGI way, with
its timeout: a client too slow to take its messages is still dropped, and never holds up the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
from collections.abc import Awaitable, Callable

from api.clients import StopClient
from api.frames import text_frame
from api.languages import Preference

log = logging.getLogger(__name__)

# A round for riders held back by their interval runs this long after the first of them may have another
# message: timers may fire a little early, and a round that found nobody due would only set another.
TIMER_SLACK_S = 0.001


class _Stop:
    """One watched stop: its watchers, its board's generation, and its round in progress or to come."""

    __slots__ = ("again", "clients", "generation", "round", "timer")

    def __init__(self) -> None:
        self.clients: set[StopClient] = set()
        self.generation = 0
        self.round: asyncio.Task[None] | None = None
        self.again = False  # the board changed during the round in progress: go round once more
        self.timer: asyncio.TimerHandle | None = None


class StopBoards:
    """`render(stop_id, languages)` reads a stop's board and gives the update message's JSON text."""

    def __init__(self, render: Callable[[str, Preference], Awaitable[str]], *, max_renderings: int = 10_000) -> None:
        self._render = render
        self._stops: dict[str, _Stop] = {}
        self._count = 0
        # Every change gets a number no other change of any stop had: a rendering kept from before a stop's
        # last watcher left cannot pass for a later change.
        self._generations = itertools.count(1)
        self._renderings: dict[tuple[str, Preference], tuple[int, asyncio.Task[str]]] = {}
        self._max_renderings = max_renderings
        self.written_directly = 0  # updates written as shared frames, not by a rider's own sender

    @property
    def count(self) -> int:
        return self._count

    def add(self, client: StopClient) -> None:
        stop = self._stops.get(client.stop_id)
        if stop is None:
            stop = self._stops[client.stop_id] = _Stop()
        if client not in stop.clients:
            stop.clients.add(client)
            self._count += 1

    def remove(self, client: StopClient) -> None:
        stop = self._stops.get(client.stop_id)
        if stop is None or client not in stop.clients:
            return
        stop.clients.discard(client)
        self._count -= 1
        if not stop.clients:
            del self._stops[client.stop_id]
            if stop.timer is not None:
                stop.timer.cancel()

    def changed(self, stop_id: str) -> None:
        """The stop's board changed: every watcher is behind until it has been sent the new board."""
        stop = self._stops.get(stop_id)
        if stop is None:
            return
        stop.generation = next(self._generations)
        for client in stop.clients:
            client.behind = True
        self._start_round(stop_id, stop)

    def changed_all(self) -> None:
        """Anything may have changed (the subscription was lost for a while)."""
        for stop_id in list(self._stops):
            self.changed(stop_id)

    async def close(self) -> None:
        rounds = [stop.round for stop in self._stops.values() if stop.round is not None]
        for stop in self._stops.values():
            if stop.timer is not None:
                stop.timer.cancel()
        for task in rounds:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def next_update(self, client: StopClient) -> str:
        """The board for a client's own sender: it is no longer behind once it takes it."""
        client.behind = False
        return await self.text(client.stop_id, client.languages)

    async def text(self, stop_id: str, languages: Preference) -> str:
        """The stop's board as update JSON, read and encoded once per change and language."""
        stop = self._stops.get(stop_id)
        if stop is None:  # nobody watches it (any more): nothing to share
            return await self._render(stop_id, languages)
        key = (stop_id, languages)
        entry = self._renderings.get(key)
        if entry is None or entry[0] != stop.generation:
            if len(self._renderings) >= self._max_renderings:
                self._renderings.clear()
            task = asyncio.ensure_future(self._render(stop_id, languages))
            # Nobody may be left to await a failed rendering; retrieving it here keeps asyncio quiet.
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            entry = self._renderings[key] = (stop.generation, task)
        try:
            # Shielded: a rider who leaves mid-read must not cancel the reading the others wait for.
            return await asyncio.shield(entry[1])
        except Exception:
            if self._renderings.get(key) is entry:
                del self._renderings[key]  # the next one tries again
            raise

    def _start_round(self, stop_id: str, stop: _Stop) -> None:
        if stop.round is not None:
            stop.again = True
        else:
            stop.round = asyncio.create_task(self._rounds(stop_id, stop), name=f"stop-board-{stop_id}")

    async def _rounds(self, stop_id: str, stop: _Stop) -> None:
        try:
            while True:
                stop.again = False
                await self._round(stop_id, stop)
                if not stop.again:
                    return
        except Exception:
            log.exception("sending stop %s's board failed", stop_id)
        finally:
            stop.round = None

    async def _round(self, stop_id: str, stop: _Stop) -> None:
        """Send the board to every watcher that is behind and may have it now; time a round for the rest."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        due: dict[Preference, list[StopClient]] = {}
        first_due_later = math.inf
        for client in stop.clients:
            if not client.behind:
                continue
            if not client.idle or client.writer is None:
                client.notify()  # its own sender takes it from here
            elif now < client.next_send_at:
                first_due_later = min(first_due_later, client.next_send_at)
            else:
                due.setdefault(client.languages, []).append(client)
        if first_due_later < math.inf:
            self._time_round(stop_id, stop, first_due_later + TIMER_SLACK_S)
        for languages, clients in due.items():
            try:
                text = await self.text(stop_id, languages)
            except Exception:
                for client in clients:
                    client.notify()  # their own senders read it again, and fail the ordinary way if it fails
                continue
            frame = text_frame(text)
            now = loop.time()
            for client in clients:
                if not client.behind or client not in stop.clients:
                    continue  # sent meanwhile by its own sender, or gone
                if client.deliver(frame, now):
                    self.written_directly += 1
                else:
                    client.notify()  # not taking data, or its sender woke meanwhile: the ordinary way

    def _time_round(self, stop_id: str, stop: _Stop, when: float) -> None:
        if stop.timer is not None:
            if stop.timer.when() <= when:
                return
            stop.timer.cancel()
        stop.timer = asyncio.get_running_loop().call_at(when, self._on_timer, stop_id, stop)

    def _on_timer(self, stop_id: str, stop: _Stop) -> None:
        stop.timer = None
        if self._stops.get(stop_id) is stop:
            self._start_round(stop_id, stop)
