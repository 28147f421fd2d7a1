"""The two sink stages: durable history in PostgreSQL, live state in Redis (or its in-process twin)."""

from __future__ import annotations

from collections.abc import Sequence

from smartbus.bus.base import Record
from smartbus.live import LiveStore
from smartbus.storage.writer import StorageWriter
from smartbus.stream.decode import decode_batch


class StorageSink:
    def __init__(self, writer: StorageWriter) -> None:
        self._writer = writer

    async def handle(self, records: Sequence[Record]) -> None:
        batch = decode_batch(records)
        await self._writer.write(batch.states, batch.events, batch.predictions, batch.rejected)


class LiveSink:
    def __init__(self, live: LiveStore) -> None:
        self._live = live

    async def handle(self, records: Sequence[Record]) -> None:
        batch = decode_batch(records)
        if batch.states:
            await self._live.put_states(batch.states)
        if batch.predictions:
            await self._live.put_predictions(batch.predictions)
        # After the predictions of the same batch: an arrival removes the trip from that stop's board.
        if batch.events:
            await self._live.put_stop_events(batch.events)
