from __future__ import annotations

from collections.abc import AsyncIterator

import psycopg
import pytest

from smartbus.errors import ServiceUnavailable
from smartbus.storage.migrate import migrate
from smartbus.storage.queries import trip_stop_events, vehicle_positions
from smartbus.storage.writer import StorageWriter
from tests.storage.conftest import columns_analyzed
from tests.storage.factories import T0, event, prediction_set, rejected, state


@pytest.fixture
async def writer(conn: psycopg.AsyncConnection) -> AsyncIterator[StorageWriter]:
    await migrate(conn, force_plain=True)
    yield StorageWriter(conn)


async def _count(conn: psycopg.AsyncConnection, table: str) -> int:
    cur = await conn.execute(f"SELECT count(*) FROM {table}")
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def test_writing_the_same_batch_twice_stores_it_once(
    writer: StorageWriter, conn: psycopg.AsyncConnection
) -> None:
    states = [state("bus-1", T0 + i * 5) for i in range(10)] + [state("bus-2", T0)]
    events = [event(1, T0, T0 + 20), event(2, T0 + 120)]
    predictions = [prediction_set(T0, {3: T0 + 300, 4: T0 + 400})]
    rejects = [rejected()]

    first = await writer.write(states, events, predictions, rejects)
    again = await writer.write(states, events, predictions, rejects)
    replay = await StorageWriter(conn).write(states, events, predictions, rejects)  # a restarted writer

    assert (first.positions_inserted, first.stop_events_inserted, first.predictions_inserted) == (11, 2, 2)
    assert first.rejected_inserted == 1
    assert (again.positions_inserted, again.stop_events_inserted, again.rejected_inserted) == (0, 0, 0)
    assert again.positions_duplicate == 11
    assert again.stop_events_duplicate == 2
    assert replay.predictions_duplicate == 2 and replay.predictions_inserted == 0
    assert await _count(conn, "positions") == 11
    assert await _count(conn, "stop_events") == 2
    assert await _count(conn, "predictions") == 2
    assert await _count(conn, "rejected_pings") == 1


async def test_stored_positions_read_back_as_written(writer: StorageWriter, conn: psycopg.AsyncConnection) -> None:
    written = [state("bus-1", T0 + 0.25), state("bus-1", T0 + 10.5, trip_id=None, service_date=None)]
    await writer.write(written, [], [])

    read = await vehicle_positions(conn, "bus-1", T0, T0 + 60)

    # next_stop_* are live-only fields, not stored.
    assert [(s.timestamp, s.trip_id, s.service_date, s.delay_s, s.status) for s in read] == [
        (T0 + 0.25, "trip-1", "20140602", 42.0, "in_transit"),
        (T0 + 10.5, None, None, 42.0, "in_transit"),
    ]


async def test_a_later_message_fills_in_the_departure_and_keeps_the_first_arrival(
    writer: StorageWriter, conn: psycopg.AsyncConnection
) -> None:
    await writer.write([], [event(5, arrival=T0, departure=None)], [])

    later = await writer.write([], [event(5, arrival=T0 + 7, departure=T0 + 40)], [])
    replay_of_first = await writer.write([], [event(5, arrival=T0, departure=None)], [])

    assert later.stop_events_departure_filled == 1
    assert replay_of_first.stop_events_duplicate == 1
    stored = await trip_stop_events(conn, "trip-1", "20140602")
    assert [(e.arrival_time, e.departure_time) for e in stored] == [(T0, T0 + 40)]


async def test_arrival_and_departure_in_one_batch_make_one_row(
    writer: StorageWriter, conn: psycopg.AsyncConnection
) -> None:
    result = await writer.write([], [event(1, T0, None), event(1, T0, T0 + 15)], [])

    assert result.stop_events_inserted == 1
    stored = await trip_stop_events(conn, "trip-1", "20140602")
    assert [(e.stop_sequence, e.departure_time) for e in stored] == [(1, T0 + 15)]


async def test_predictions_are_thinned_to_one_a_minute_unless_they_move(
    writer: StorageWriter, conn: psycopg.AsyncConnection
) -> None:
    arrival = T0 + 900
    updates = [
        prediction_set(T0, {7: arrival}),  # first: kept
        prediction_set(T0 + 10, {7: arrival + 5}),  # 10 s later, moved 5 s: dropped
        prediction_set(T0 + 20, {7: arrival + 40}),  # moved 40 s from the last kept: kept
        prediction_set(T0 + 50, {7: arrival + 45}),  # 30 s after the last kept, moved 5 s: dropped
        prediction_set(T0 + 80, {7: arrival + 45}),  # a minute after the last kept: kept
    ]

    first_half = await writer.write([], [], updates[:2])
    second_half = await writer.write([], [], updates[2:])

    assert (first_half.predictions_inserted, first_half.predictions_thinned) == (1, 1)
    assert (second_half.predictions_inserted, second_half.predictions_thinned) == (2, 1)
    cur = await conn.execute("SELECT extract(epoch FROM made_at)::float8 FROM predictions ORDER BY made_at")
    assert [row[0] for row in await cur.fetchall()] == [T0, T0 + 20, T0 + 80]


async def test_plain_partitions_are_made_for_the_days_a_batch_touches(
    writer: StorageWriter, conn: psycopg.AsyncConnection
) -> None:
    day = 86400.0
    await writer.write([state("bus-1", T0), state("bus-1", T0 + day), state("bus-1", T0 + day + 60)], [], [])
    # A second writer (another process) writing into the same days finds the partitions already there.
    await StorageWriter(conn).write([state("bus-2", T0 + day)], [], [])

    cur = await conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'positions'::regclass ORDER BY 1"
    )
    assert [row[0] for row in await cur.fetchall()] == ["positions_p20140602", "positions_p20140603"]
    assert await _count(conn, "positions") == 4


async def test_only_the_columns_queries_use_are_analyzed_in_the_partitions_the_writer_makes(
    writer: StorageWriter, conn: psycopg.AsyncConnection
) -> None:
    # Made after the migration set the targets on the parents: PostgreSQL alone would analyze every column.
    day = 86400.0
    states = [state("bus-1", T0), state("bus-1", T0 + day)]
    predictions = [prediction_set(T0, {3: T0 + 300}), prediction_set(T0 + day, {3: T0 + day + 300})]
    await writer.write(states, [], predictions)

    analyzed_positions = await columns_analyzed(conn, "positions")
    analyzed_predictions = await columns_analyzed(conn, "predictions")

    assert analyzed_positions == dict.fromkeys(["positions_p20140602", "positions_p20140603"], ["ts", "vehicle_id"])
    assert analyzed_predictions == dict.fromkeys(
        ["predictions_p20140602", "predictions_p20140603"],
        ["made_at", "service_date", "stop_id", "stop_sequence", "trip_id"],
    )


async def test_an_upgraded_database_analyzes_only_those_columns_in_the_partitions_it_had_too(
    writer: StorageWriter, conn: psycopg.AsyncConnection
) -> None:
    # A database from before migration 010: every target at the default, a partition already there.
    await conn.execute("DELETE FROM schema_migrations WHERE version = 10")
    for table in ("positions", "predictions"):
        cur = await conn.execute(
            "SELECT string_agg(format('ALTER COLUMN %%I SET STATISTICS -1', attname), ', ') FROM pg_attribute"
            " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
            (table,),
        )
        row = await cur.fetchone()
        assert row is not None
        await conn.execute(f"ALTER TABLE {table} {row[0]}")
    await writer.write([state("bus-1", T0)], [], [prediction_set(T0, {3: T0 + 300})])
    assert len((await columns_analyzed(conn, "positions"))["positions_p20140602"]) == 14

    await migrate(conn, force_plain=True)

    # What the next ANALYZE samples (the statistics it took before stay until it writes new ones)
    sampled = {}
    for partition in ("positions_p20140602", "predictions_p20140602"):
        cur = await conn.execute(
            "SELECT array_agg(attname::text ORDER BY attname) FROM pg_attribute"
            " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped AND attstattarget <> 0",
            (partition,),
        )
        row = await cur.fetchone()
        assert row is not None
        sampled[partition] = row[0]
    assert sampled == {
        "positions_p20140602": ["ts", "vehicle_id"],
        "predictions_p20140602": ["made_at", "service_date", "stop_id", "stop_sequence", "trip_id"],
    }


async def test_a_partition_dropped_by_retention_is_made_again(
    writer: StorageWriter, conn: psycopg.AsyncConnection
) -> None:
    await writer.write([state("bus-1", T0)], [], [])
    await conn.execute("SELECT smartbus_drop_old_partitions(1)")  # 2014 is long past: dropped

    result = await writer.write([state("bus-1", T0 + 5)], [], [])

    assert result.positions_inserted == 1
    assert await _count(conn, "positions") == 1


async def test_writer_on_a_connection_not_in_autocommit_commits_each_batch(database_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=False) as own:
        await migrate(own, force_plain=True)
        await StorageWriter(own).write([state()], [event()], [prediction_set(T0, {2: T0 + 60})])

    async with await psycopg.AsyncConnection.connect(database_url) as other:
        for table in ("positions", "stop_events", "predictions"):
            assert await _count(other, table) == 1


async def test_a_writer_made_from_a_url_reconnects_after_its_connection_is_killed(
    database_url: str, conn: psycopg.AsyncConnection
) -> None:
    await migrate(conn, force_plain=True)
    writer = await StorageWriter.connect(database_url)
    await writer.write([state("bus-1", T0)], [], [])
    # What a server restart does to the writer's session.
    await conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )

    with pytest.raises(ServiceUnavailable):
        await writer.write([state("bus-1", T0 + 5)], [], [])
    retried = await writer.write([state("bus-1", T0 + 5)], [], [])  # what the stage loop does next

    assert retried.positions_inserted == 1
    assert await _count(conn, "positions") == 2
    await writer.close()


async def test_a_writer_whose_first_batch_the_database_refused_writes_the_next(
    writer: StorageWriter, conn: psycopg.AsyncConnection
) -> None:
    """The first batch on a connection makes the staging tables in its transaction: refused, it takes them along."""
    with pytest.raises(psycopg.DataError):
        await writer.write([state("bus-1", T0, trip_id="trip\0one")], [], [])  # PostgreSQL's text holds no NUL

    written = await writer.write([state("bus-1", T0 + 5)], [], [])

    assert written.positions_inserted == 1
    assert await _count(conn, "positions") == 1


@pytest.mark.parametrize("sequence", [2**31, 2**40, -(2**31) - 1])
async def test_a_stop_sequence_beyond_its_column_is_refused_not_cut_to_fit(
    writer: StorageWriter, conn: psycopg.AsyncConnection, sequence: int
) -> None:
    # psycopg's binary int4 would send only the low 32 bits: 2**40 arrived as stop 0
    with pytest.raises(psycopg.DataError, match="int4"):
        await writer.write([], [event(sequence, T0)], [prediction_set(T0, {sequence: T0 + 60})])

    assert await _count(conn, "stop_events") == 0
    assert await _count(conn, "predictions") == 0
