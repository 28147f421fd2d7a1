"""The two sink stages: durable history in PostgreSQL, live state in Redis (or its in-process twin)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

import psycopg

from smartbus.bus.base import Record
from smartbus.live import LiveStore
from smartbus.storage.writer import StorageWriter
from smartbus.stream.decode import decode_batch

log = logging.getLogger(__name__)

Connect = Callable[[], Awaitable[psycopg.AsyncConnection]]


class StorageSink:
    """Writes batches through a StorageWriter, reconnecting when the database went away and came back."""

    def __init__(self, connect: Connect) -> None:
        self._connect = connect
        self._conn: psycopg.AsyncConnection | None = None
        self._writer: StorageWriter | None = None

    async def handle(self, records: Sequence[Record]) -> None:
        batch = decode_batch(records)
        if self._writer is None or self._conn is None or self._conn.closed:
            self._conn = await self._connect()
            self._writer = StorageWriter(self._conn)
        try:
            await self._writer.write(batch.states, batch.events, batch.predictions, batch.rejected)
        except psycopg.OperationalError:
            log.warning("database connection lost; reconnecting on the next try")
            await self._conn.close()
            self._conn = self._writer = None
            raise

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()


class LiveSink:
    def __init__(self, live: LiveStore) -> None:
        self._live = live

    async def handle(self, records: Sequence[Record]) -> None:
        batch = decode_batch(records, keep_states_encoded=True)  # the states go to the store as they came
        if batch.predictions:
            await self._live.put_predictions(batch.predictions)
        # After the predictions of the same batch: an arrival removes the trip from that stop's board.
        if batch.events:
            await self._live.put_stop_events(batch.events)
        # Moves last: a client that reads a vehicle's arrivals when it moves (/ws/vehicles/{id}) then sees the
        # predictions made from that same ping.
        if batch.encoded_states:
            await self._live.put_states(batch.encoded_states)
