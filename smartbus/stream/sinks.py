"""The two sink stages: durable history in PostgreSQL, live state in Redis (or its in-process twin)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence

import psycopg

from smartbus import metrics
from smartbus.bus.base import Record
from smartbus.live import LiveStore
from smartbus.messages import RejectedPing
from smartbus.storage.writer import StorageWriter
from smartbus.stream.decode import decode_batch, skipped_undecodable, where

log = logging.getLogger(__name__)

Connect = Callable[[], Awaitable[psycopg.AsyncConnection]]


# What the database (or the COPY that feeds it) refuses because of what a message holds, not because it is
# away: class 22 (a NUL in a text, a number or time out of range, a value of the wrong type for its column) and
# class 23 (a null where a value is required). Retrying such a batch would fail for ever.
REFUSED_BY_THE_DATABASE = (psycopg.DataError, psycopg.IntegrityError)
# A kept reject holds the message as it came, to replay once the cause is fixed: a prediction set of a long trip
# runs to some kilobytes, beyond the 4 KiB the edge keeps of a ping.
MAX_KEPT_PAYLOAD = 256 * 1024


class StorageSink:
    """Writes batches through a StorageWriter, reconnecting when the database went away and came back.

    Every message ends up stored: as history, or, when it cannot be, as a reject (rejected_pings, with the
    original message, where it was on the bus and why). A message that does not decode is kept so at once. A
    batch the database refuses is written again in halves, down to the message it refuses, which is kept so; the
    rest of the batch is stored as history. Both are counted (smartbus_pings_rejected_total, reasons
    "undecodable_output" and "unstorable_output")."""

    def __init__(self, connect: Connect) -> None:
        self._connect = connect
        self._conn: psycopg.AsyncConnection | None = None
        self._writer: StorageWriter | None = None

    async def handle(self, records: Sequence[Record]) -> None:
        try:
            await self._write(records)
        except REFUSED_BY_THE_DATABASE as exc:
            await self._write_apart(records, exc)

    async def _write_apart(self, records: Sequence[Record], refused: Exception) -> None:
        if len(records) == 1:
            (record,) = records
            await self._keep_rejects([_reject(record, "unstorable_output", f"the database refused it: {refused}")])
            metrics.PINGS_REJECTED.labels("unstorable_output").inc()
            log.warning("kept %s as a reject: the database refused it (%s)", where(record), refused)
            return
        half = len(records) // 2
        for part in (records[:half], records[half:]):
            try:
                await self._write(part)
            except REFUSED_BY_THE_DATABASE as exc:
                await self._write_apart(part, exc)

    async def _write(self, records: Sequence[Record]) -> None:
        batch = decode_batch(records)
        rejected = batch.rejected + [_reject(record, "undecodable_output", why) for record, why in batch.undecodable]
        await (await self._ready_writer()).write(batch.states, batch.events, batch.predictions, rejected)
        skipped_undecodable(batch)

    async def _keep_rejects(self, rejects: list[RejectedPing]) -> None:
        try:
            await (await self._ready_writer()).write([], [], [], rejects)
        except REFUSED_BY_THE_DATABASE as exc:  # not even as text: the caller counts and logs it all the same
            log.error("could not keep %d rejects either: %s", len(rejects), exc)

    async def _ready_writer(self) -> StorageWriter:
        # A connection the server dropped reads as closed: the next try connects again. (The writer reports the loss
        # as ServiceUnavailable, which the stage loop retries.)
        if self._writer is None or self._conn is None or self._conn.closed:
            self._conn = await self._connect()
            self._writer = StorageWriter(self._conn)
        return self._writer

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()


def _reject(record: Record, reason: str, why: str) -> RejectedPing:
    # PostgreSQL's text holds no NUL; the JSON of a message spells one as an escape, so only bytes that are not
    # JSON at all can carry one
    payload = record.value[:MAX_KEPT_PAYLOAD].decode("utf-8", errors="replace").replace("\0", "\ufffd")
    # received when it was put on the bus: the same reject each time its batch is read again (the table's key is
    # the time and the payload), so a replay stores it once
    received_at = record.timestamp if record.timestamp is not None else time.time()
    return RejectedPing(payload=payload, reason=reason, detail=f"{where(record)}: {why}", received_at=received_at)


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
        skipped_undecodable(batch)
