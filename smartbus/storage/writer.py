"""The storage writer: batches of messages into PostgreSQL, idempotently, in one transaction per batch.

Each batch is streamed with binary COPY into session-local staging tables (raw message types: epoch
seconds, 'YYYYMMDD' text), then moved into the real tables by one `INSERT ... SELECT ... ON CONFLICT`
per table, which converts the types and drops what is already stored. A replayed message therefore
changes nothing, and the whole batch is durable or absent together (the caller commits its offsets after).

Positions, most of the rows, first try a faster way: one binary COPY straight into `positions`, the types
converted here exactly as the staged INSERT converts them, first thing in the batch's transaction. A batch seen
before (a replay) or holding a (vehicle_id, ts) twice breaks the primary key (of the partitioned table, or of the
TimescaleDB hypertable, alike); that, or any other refusal, rolls the transaction back and the batch is written
again with its positions staged. The staged way is the authority: what it stores and the errors it raises are
what the writer stores and raises. Stop events, predictions and rejects are always staged.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

import psycopg
from psycopg import pq

from smartbus.errors import ServiceUnavailable
from smartbus.messages import PredictionSet, RejectedPing, StopEvent, VehicleState
from smartbus.storage.migrate import Flavour, MigrationError, current_flavour
from smartbus.storage.thinning import PredictionThinner

_POSTGRES_EPOCH_DAY = date(2000, 1, 1)
_MICROSECONDS_A_DAY = 86_400_000_000
_INT4_MIN, _INT4_MAX = -(2**31), 2**31 - 1

# Staging tables hold rows exactly as the messages carry them; ON COMMIT DELETE ROWS empties them
# after every batch. Column order is the COPY order used below.
_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS stage_positions (
    vehicle_id text, ts float8, latitude float8, longitude float8, trip_id text, route_id text,
    service_date text, shape_dist float8, offset_m float8, delay_s float8, status text, speed float8,
    bearing float8, feed_version text
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_stop_events (
    trip_id text, stop_sequence int4, service_date text, stop_id text, vehicle_id text, route_id text,
    arrival_time float8, departure_time float8, scheduled_arrival float8, interpolated bool, feed_version text
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_predictions (
    trip_id text, stop_sequence int4, service_date text, made_at float8, stop_id text, vehicle_id text,
    route_id text, predicted_arrival float8, scheduled_arrival float8, method text, uncertainty_s float8,
    feed_version text
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stage_rejected_pings (
    received_at float8, reason text, detail text, payload text, payload_md5 uuid
) ON COMMIT DELETE ROWS;
"""

_POSITION_TYPES = ["text", "float8", "float8", "float8", "text", "text", "text", "float8", "float8", "float8",
                   "text", "float8", "float8", "text"]
_STOP_EVENT_TYPES = ["text", "int4", "text", "text", "text", "text", "float8", "float8", "float8", "bool", "text"]
_PREDICTION_TYPES = ["text", "int4", "text", "float8", "text", "text", "text", "float8", "float8", "text",
                     "float8", "text"]
_REJECTED_TYPES = ["float8", "text", "text", "text", "uuid"]

# The fast path for positions (see StorageWriter._write_batch): COPY straight into the table, in the staging order.
_DIRECT_POSITION_COLUMNS: Final = (
    "(vehicle_id, ts, latitude, longitude, trip_id, route_id, service_date, shape_dist, offset_m, delay_s, status,"
    " speed, bearing, feed_version)"
)
# ts goes as "int8": binary COPY sends no types, only each value's bytes, and a timestamptz's binary form is the
# int64 of microseconds since 2000-01-01 UTC (timestamptz_recv reads 8 bytes; integer timestamps are the only
# kind since PostgreSQL 10); psycopg's int8 dumper writes exactly that for the int _direct_position_rows
# computes. (A datetime from datetime.fromtimestamp, for psycopg's timestamptz dumper, is not the same: it was a
# microsecond off to_timestamp for 79,167 of the 1.8 million floats below.) service_date goes as a datetime.date.
_DIRECT_POSITION_TYPES: Final = ["text", "int8", "float8", "float8", "text", "text", "date", "float8", "float8",
                                 "float8", "text", "float8", "float8", "text"]
_UNIX_TO_POSTGRES_EPOCH: Final = 946684800.0  # seconds from 1970-01-01 to 2000-01-01
# The epoch seconds converted here: 1970-01-01 to 2100-01-01, well inside what to_timestamp takes, where its
# arithmetic below is all it does. Any other value (NaN, an infinity, a time out of its range) takes the staged
# way, so to_timestamp decides what becomes of it.
_DIRECT_TS_LOW: Final = 0.0
_DIRECT_TS_HIGH: Final = 4102444800.0

_MOVE_POSITIONS = """
INSERT INTO positions (vehicle_id, ts, latitude, longitude, trip_id, route_id, service_date, shape_dist,
                       offset_m, delay_s, status, speed, bearing, feed_version)
SELECT vehicle_id, to_timestamp(ts), latitude, longitude, trip_id, route_id, to_date(service_date, 'YYYYMMDD'),
       shape_dist, offset_m, delay_s, status, speed, bearing, feed_version
  FROM stage_positions
ON CONFLICT (vehicle_id, ts) DO NOTHING
"""

# The first arrival stays; a departure is filled in once, when a later message knows it. A replay of
# an earlier message (departure still null) or of the same message changes nothing. Two statements,
# insert then fill, because partitioned tables and hypertables cannot report (via xmax) which rows an
# upsert inserted and which it updated; in this order a row inserted concurrently is still filled in.
_INSERT_STOP_EVENTS = """
INSERT INTO stop_events (trip_id, stop_sequence, service_date, stop_id, vehicle_id, route_id,
                         arrival_time, departure_time, scheduled_arrival, interpolated, feed_version)
SELECT trip_id, stop_sequence, to_date(service_date, 'YYYYMMDD'), stop_id, vehicle_id, route_id,
       to_timestamp(arrival_time), to_timestamp(departure_time), to_timestamp(scheduled_arrival),
       interpolated, feed_version
  FROM stage_stop_events
ON CONFLICT (trip_id, stop_sequence, service_date) DO NOTHING
"""
# A departure whose event is stored with none (its arrival came first, in this batch or before) fills it in. An
# upsert on the table's key, it probes the key's index once for each departure: the UPDATE ... FROM the stage table
# it replaces was planned (the planner knows nothing of a temp table's rows) as a hash join over every stop_events
# partition, read whole every batch, so the database's CPU grew with the day's events (in a ten-minute run at
# 10,000 buses, from a quarter of a core to half). Every key is stored by then (_INSERT_STOP_EVENTS), so nothing
# is inserted here; one row per key, as an upsert may touch a row only once.
_FILL_DEPARTURES = """
INSERT INTO stop_events AS e (trip_id, stop_sequence, service_date, stop_id, vehicle_id, route_id,
                              arrival_time, departure_time, scheduled_arrival, interpolated, feed_version)
SELECT DISTINCT ON (trip_id, stop_sequence, service_date)
       trip_id, stop_sequence, service_date, stop_id, vehicle_id, route_id, arrival_time, departure_time,
       scheduled_arrival, interpolated, feed_version
  FROM (SELECT trip_id, stop_sequence, to_date(service_date, 'YYYYMMDD') AS service_date, stop_id, vehicle_id,
               route_id, to_timestamp(arrival_time) AS arrival_time, to_timestamp(departure_time) AS departure_time,
               to_timestamp(scheduled_arrival) AS scheduled_arrival, interpolated, feed_version
          FROM stage_stop_events
         WHERE departure_time IS NOT NULL) AS s
ON CONFLICT (trip_id, stop_sequence, service_date) DO UPDATE SET departure_time = EXCLUDED.departure_time
 WHERE e.departure_time IS NULL
"""

_MOVE_PREDICTIONS = """
INSERT INTO predictions (trip_id, stop_sequence, service_date, made_at, stop_id, vehicle_id, route_id,
                         predicted_arrival, scheduled_arrival, method, uncertainty_s, feed_version)
SELECT trip_id, stop_sequence, to_date(service_date, 'YYYYMMDD'), to_timestamp(made_at), stop_id, vehicle_id,
       route_id, to_timestamp(predicted_arrival), to_timestamp(scheduled_arrival), method, uncertainty_s,
       feed_version
  FROM stage_predictions
ON CONFLICT (trip_id, stop_sequence, service_date, made_at) DO NOTHING
"""

_MOVE_REJECTED = """
INSERT INTO rejected_pings (received_at, reason, detail, payload, payload_md5)
SELECT to_timestamp(received_at), reason, detail, payload, payload_md5 FROM stage_rejected_pings
ON CONFLICT (received_at, payload_md5) DO NOTHING
"""


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What one batch did. `*_duplicate`: already stored (a replay). `predictions_thinned`: not worth storing."""

    positions_inserted: int = 0
    positions_duplicate: int = 0
    stop_events_inserted: int = 0
    stop_events_departure_filled: int = 0
    stop_events_duplicate: int = 0
    predictions_inserted: int = 0
    predictions_duplicate: int = 0
    predictions_thinned: int = 0
    rejected_inserted: int = 0
    rejected_duplicate: int = 0


class StorageWriter:
    """Writes batches to the database through one connection, which it owns (it commits on it).

    Run `migrate` on the database first: the writer reads the flavour it recorded. Made with
    `StorageWriter.connect(url)`, it also reconnects after the server went away (a restart); a failed
    batch raises `ServiceUnavailable` (retriable) and the caller retries the same batch.
    """

    def __init__(self, conn: psycopg.AsyncConnection, *, database_url: str | None = None) -> None:
        self._conn = conn
        # positions stored by the direct COPY, the fast path (the others went the staged way): for metrics and tests
        self.positions_copied_directly = 0
        self._database_url = database_url
        self._flavour: Flavour | None = None
        self._staging_ready = False
        self._partitions_made: set[tuple[str, date]] = set()
        self._thinner = PredictionThinner()

    @classmethod
    async def connect(cls, database_url: str) -> StorageWriter:
        return cls(await psycopg.AsyncConnection.connect(database_url), database_url=database_url)

    async def close(self) -> None:
        await self._conn.close()

    async def write(
        self,
        states: Sequence[VehicleState],
        events: Sequence[StopEvent],
        predictions: Sequence[PredictionSet],
        rejected: Sequence[RejectedPing] = (),
    ) -> WriteResult:
        try:
            if self._conn.broken or self._conn.closed:
                await self._reconnect()
            return await self._write(states, events, predictions, rejected)
        except psycopg.OperationalError as exc:
            raise ServiceUnavailable(f"PostgreSQL write failed: {exc}") from exc

    async def _reconnect(self) -> None:
        if self._database_url is None:
            raise ServiceUnavailable("the storage writer's connection is closed and it has no URL to reconnect")
        self._conn = await psycopg.AsyncConnection.connect(self._database_url)
        self._staging_ready = False  # temp tables belonged to the old session
        self._partitions_made.clear()

    async def _write(
        self,
        states: Sequence[VehicleState],
        events: Sequence[StopEvent],
        predictions: Sequence[PredictionSet],
        rejected: Sequence[RejectedPing],
    ) -> WriteResult:
        if self._conn.info.transaction_status == pq.TransactionStatus.INTRANS:
            await self._conn.commit()  # an implicit transaction left open would turn ours into a savepoint
        if self._flavour is None:
            self._flavour = await current_flavour(self._conn)
            if self._flavour is None:
                raise MigrationError("the database has no smartbus schema yet: run `smartbus migrate`")
        kept, pending = self._thinner.select(predictions)
        prediction_rows = [
            (s.trip_id, s.stop_sequence, s.service_date, ps.made_at, s.stop_id, ps.vehicle_id, s.route_id,
             s.predicted_arrival, s.scheduled_arrival, s.method, s.uncertainty_s, ps.feed_version)
            for ps, s in kept
        ]
        event_rows = _merge_stop_events(events)
        if self._flavour is Flavour.PLAIN:
            await self._ensure_partitions(states, event_rows, kept, rejected)
        try:
            result = await self._write_batch(states, event_rows, prediction_rows, rejected)
        except psycopg.errors.CheckViolation:
            # "no partition of relation found for row": a partition we made was dropped since (retention).
            if self._flavour is not Flavour.PLAIN:
                raise
            self._partitions_made.clear()
            await self._ensure_partitions(states, event_rows, kept, rejected)
            result = await self._write_batch(states, event_rows, prediction_rows, rejected)
        self._thinner.commit(pending)
        total_predictions = sum(len(ps.stops) for ps in predictions)
        return WriteResult(
            positions_inserted=result.positions_inserted,
            positions_duplicate=result.positions_duplicate,
            stop_events_inserted=result.stop_events_inserted,
            stop_events_departure_filled=result.stop_events_departure_filled,
            stop_events_duplicate=len(events) - result.stop_events_inserted - result.stop_events_departure_filled,
            predictions_inserted=result.predictions_inserted,
            predictions_duplicate=result.predictions_duplicate,
            predictions_thinned=total_predictions - len(kept),
            rejected_inserted=result.rejected_inserted,
            rejected_duplicate=result.rejected_duplicate,
        )

    async def _write_batch(
        self,
        states: Sequence[VehicleState],
        event_rows: Sequence[tuple[object, ...]],
        prediction_rows: Sequence[tuple[object, ...]],
        rejected: Sequence[RejectedPing],
    ) -> WriteResult:
        """The batch in one transaction: its positions by the direct COPY when they can go so and the database
        takes them all, else (in a transaction begun anew) the staged way, which decides what is stored and raises
        what the batch's values make it raise.

        Why: 150 batches of 600 new positions (10,000 vehicles), PostgreSQL's CPU per position 9.4 us staged, 4.3
        us direct, the writer's own 2.5 us and 2.4 (one statement a batch instead of two; another session of runs:
        10.0 -> 4.8 and 2.5 -> 2.1). The same batches replayed, all duplicates, pay for the refused COPY first:
        PostgreSQL 6.5 -> 8.5 us, the writer 2.1 -> 4.4 us a position; a replay is the few batches after a
        restart. Medians of 3 alternating runs, each on a fresh database, of a scratch script timing
        /proc/<backend pid>/schedstat and the process's CPU around StorageWriter.write.

        Why not a savepoint around the COPY, the staged INSERT after it in the same transaction: positions go
        first, so a refused COPY has nothing else to undo, and a SAVEPOINT with its RELEASE cost every batch two
        round trips, 0.4-0.5 us of the writer's CPU a position (and 0.05-0.1 us of PostgreSQL's), measured
        batch by batch interleaved with this way on one database."""
        direct_rows = _direct_position_rows(states) if states else None
        if direct_rows is not None:
            try:
                result = await self._write_batch_once(states, direct_rows, event_rows, prediction_rows, rejected)
            except _DirectCopyRefused:
                pass  # rolled back, with only the refused COPY done in it: positions go first
            else:
                self.positions_copied_directly += len(direct_rows)
                return result
        return await self._write_batch_once(states, None, event_rows, prediction_rows, rejected)

    async def _write_batch_once(
        self,
        states: Sequence[VehicleState],
        direct_rows: Sequence[tuple[object, ...]] | None,
        event_rows: Sequence[tuple[object, ...]],
        prediction_rows: Sequence[tuple[object, ...]],
        rejected: Sequence[RejectedPing],
    ) -> WriteResult:
        conn = self._conn
        making_staging = not self._staging_ready
        async with conn.transaction(), conn.cursor() as cur:
            if making_staging:
                # in the batch's transaction: a batch that fails takes the tables with it, so the next makes them
                await cur.execute(_STAGING)
            positions = stop_inserted = stop_filled = predicted = rejected_new = 0
            # Positions first: when the direct COPY is refused, the transaction it ends had done nothing else.
            if direct_rows is not None:
                try:
                    await _copy(cur, "positions", _DIRECT_POSITION_TYPES, direct_rows, _DIRECT_POSITION_COLUMNS)
                except psycopg.OperationalError:
                    raise  # the server went away, or the batch was cancelled: the rows are not why; it is retried
                except (psycopg.DatabaseError, TypeError, ValueError, OverflowError) as exc:
                    # A replay, or a (vehicle_id, ts) twice in the batch (UniqueViolation), or a value the database
                    # or a dumper refuses (DataError, NotNullViolation...): leaving the block rolls the transaction
                    # back, and the caller writes the batch again the staged way, which stores what can be stored
                    # and raises what it raises. So the caller sees the error it always saw (StorageSink bisects a
                    # batch on DataError/IntegrityError), never this COPY's.
                    raise _DirectCopyRefused from exc
                positions = len(direct_rows)  # all new: the table took every row
            elif states:
                await _copy(cur, "stage_positions", _POSITION_TYPES, (
                    (s.vehicle_id, s.timestamp, s.latitude, s.longitude, s.trip_id, s.route_id, s.service_date,
                     s.shape_dist, s.offset_m, s.delay_s, s.status, s.speed, s.bearing, s.feed_version)
                    for s in states
                ))
                await cur.execute(_MOVE_POSITIONS)
                positions = cur.rowcount
            if event_rows:
                await _copy(cur, "stage_stop_events", _STOP_EVENT_TYPES, event_rows)
                await cur.execute(_INSERT_STOP_EVENTS)
                stop_inserted = cur.rowcount
                await cur.execute(_FILL_DEPARTURES)
                stop_filled = cur.rowcount
            if prediction_rows:
                await _copy(cur, "stage_predictions", _PREDICTION_TYPES, prediction_rows)
                await cur.execute(_MOVE_PREDICTIONS)
                predicted = cur.rowcount
            if rejected:
                await _copy(cur, "stage_rejected_pings", _REJECTED_TYPES, (
                    (r.received_at, r.reason, r.detail, r.payload, _payload_md5(r.payload)) for r in rejected
                ))
                await cur.execute(_MOVE_REJECTED)
                rejected_new = cur.rowcount
        if self._conn.autocommit is False and self._conn.info.transaction_status != pq.TransactionStatus.IDLE:
            await self._conn.commit()
        self._staging_ready = True
        return WriteResult(
            positions_inserted=positions,
            positions_duplicate=len(states) - positions,
            stop_events_inserted=stop_inserted,
            stop_events_departure_filled=stop_filled,
            predictions_inserted=predicted,
            predictions_duplicate=len(prediction_rows) - predicted,
            rejected_inserted=rejected_new,
            rejected_duplicate=len(rejected) - rejected_new,
        )

    async def _ensure_partitions(
        self,
        states: Sequence[VehicleState],
        event_rows: Sequence[tuple[object, ...]],
        kept: Sequence[tuple[PredictionSet, object]],
        rejected: Sequence[RejectedPing],
    ) -> None:
        """Plain flavour: make the daily partitions this batch writes into (each in its own short transaction)."""
        needed: set[tuple[str, date]] = set()
        try:
            needed.update(("positions", day) for day in _utc_days(s.timestamp for s in states))
            needed.update(("stop_events", _service_day(str(row[2]))) for row in event_rows)
            needed.update(("predictions", day) for day in _utc_days(ps.made_at for ps, _ in kept))
            needed.update(("rejected_pings", day) for day in _utc_days(r.received_at for r in rejected))
        except (TypeError, ValueError, OverflowError) as exc:
            # a time beyond the calendar (1e300), a service date that is no date: the database would refuse the row
            # (to_timestamp, to_date), so it is told as the database tells it, and the caller keeps the message as a
            # reject. Raised as it came, it had the storage stage retry the batch for ever.
            raise psycopg.DataError(f"a row of this batch has no day a partition can hold: {exc}") from exc
        for table, day in sorted(needed - self._partitions_made):
            async with self._conn.transaction():
                await self._conn.execute("SELECT smartbus_ensure_partition(%s::regclass, %s)", (table, day))
            if self._conn.autocommit is False:
                await self._conn.commit()
            self._partitions_made.add((table, day))


class _DirectCopyRefused(Exception):
    """The database refused the direct COPY of a batch's positions; its transaction is rolled back."""


class _NotDirect(Exception):
    """A position holds a value the direct COPY does not convert (see _direct_position_rows)."""


def _direct_position_rows(states: Sequence[VehicleState]) -> list[tuple[object, ...]] | None:
    """The rows of the direct COPY into positions: ts and service_date as the staged INSERT's to_timestamp(float8) and
    to_date(text, 'YYYYMMDD') make them, to the microsecond and the day, so that a replay finds the same key.

    PostgreSQL's float8_timestamptz (src/backend/utils/adt/timestamp.c) does `seconds -= 946684800;
    result = (int64) rint(seconds * 1e6)` on doubles; the same operations on Python floats give the same doubles,
    and round() rounds half to even as rint does. Checked against to_timestamp on 1.8 million floats (308,031 of
    them exact half-microsecond ties) and to_date on every day of years 1 to 9999: no difference. None when a
    value is not one it converts so: the staged way, to_timestamp and to_date, decide what becomes of it."""
    try:
        return _converted_position_rows(states)
    except (_NotDirect, TypeError, ValueError, OverflowError):
        return None


def _converted_position_rows(states: Sequence[VehicleState]) -> list[tuple[object, ...]]:
    days: dict[str, date] = {}
    rows: list[tuple[object, ...]] = []
    for s in states:
        ts = s.timestamp
        if type(ts) is not float:
            if type(ts) is not int:
                raise _NotDirect(f"timestamp {ts!r}")
            ts = float(ts)  # as the staged COPY's float8 sends an int (OverflowError beyond a double)
        if not _DIRECT_TS_LOW <= ts < _DIRECT_TS_HIGH:  # NaN too
            raise _NotDirect(f"timestamp {ts!r}")
        service_date = s.service_date
        day = None
        if service_date is not None:
            day = days.get(service_date)
            if day is None:
                day = days[service_date] = _yyyymmdd(service_date)
        rows.append((
            s.vehicle_id, _pg_microseconds(ts), s.latitude, s.longitude, s.trip_id, s.route_id,
            day, s.shape_dist, s.offset_m, s.delay_s, s.status, s.speed, s.bearing, s.feed_version,
        ))
    return rows


def _yyyymmdd(text: str) -> date:
    """Eight ASCII digits making a date Python has; anything else is _NotDirect (to_date may read it otherwise)."""
    if not (type(text) is str and len(text) == 8 and text.isascii() and text.isdigit()):
        raise _NotDirect(f"service_date {text!r}")
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError as exc:  # month 13, February 30th, year 0: to_date's to refuse or read
        raise _NotDirect(f"service_date {text!r}") from exc


async def _copy(
    cur: psycopg.AsyncCursor[tuple[object, ...]],
    table: str,
    types: list[str],
    rows: Iterable[tuple[object, ...]],
    columns: str = "",
) -> None:
    int4_columns = [i for i, kind in enumerate(types) if kind == "int4"]
    async with cur.copy(f"COPY {table} {columns} FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(types)
        for row in rows:
            for i in int4_columns:
                # psycopg's binary int4 keeps only the low 32 bits of a larger int: 2**40 would be stored as 0
                value = row[i]
                if value is not None and not (type(value) is int and _INT4_MIN <= value <= _INT4_MAX):
                    raise psycopg.DataError(f"{table}: {value!r} is not an int4")
            try:
                await copy.write_row(row)
            except (TypeError, ValueError, OverflowError) as exc:
                # a value its column's binary format cannot hold (a string for a float8, an int beyond int4): the
                # database's own refusal, found before it is sent, and told as the server tells it
                raise psycopg.DataError(f"{table}: {exc}") from exc


def _merge_stop_events(events: Sequence[StopEvent]) -> list[tuple[object, ...]]:
    """One staged row per (trip, stop_sequence, service_date): ON CONFLICT cannot touch a row twice in
    one statement. The first arrival wins; a departure known by any of the messages is kept."""
    merged: dict[tuple[str, int, str], StopEvent] = {}
    for event in events:
        key = (event.trip_id, event.stop_sequence, event.service_date)
        first = merged.get(key)
        if first is None:
            merged[key] = event
        elif first.departure_time is None and event.departure_time is not None:
            merged[key] = StopEvent(
                first.vehicle_id, first.trip_id, first.service_date, first.stop_id, first.stop_sequence,
                first.arrival_time, event.departure_time, first.interpolated, first.route_id,
                first.scheduled_arrival, first.feed_version,
            )
    return [
        (e.trip_id, e.stop_sequence, e.service_date, e.stop_id, e.vehicle_id, e.route_id, e.arrival_time,
         e.departure_time, e.scheduled_arrival, e.interpolated, e.feed_version)
        for e in merged.values()
    ]


def _utc_days(timestamps: Iterable[float]) -> set[date]:
    """The UTC days to_timestamp puts these epoch seconds on: rounded to its microsecond first, as it rounds
    (_pg_microseconds), so a time less than half a microsecond before midnight is on the next day, as stored."""
    return {_POSTGRES_EPOCH_DAY + timedelta(days=day)
            for day in {_pg_microseconds(ts) // _MICROSECONDS_A_DAY for ts in timestamps}}


def _pg_microseconds(ts: float) -> int:
    """Epoch seconds as to_timestamp(float8) stores them: microseconds since 2000-01-01 UTC (see
    _direct_position_rows)."""
    return round((ts - _UNIX_TO_POSTGRES_EPOCH) * 1e6)


def _service_day(yyyymmdd: str) -> date:
    return date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))


def _payload_md5(payload: str) -> uuid.UUID:
    return uuid.UUID(bytes=hashlib.md5(payload.encode("utf-8", "surrogatepass")).digest())
