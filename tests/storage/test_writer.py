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


async def _stop_event_scans(conn: psycopg.AsyncConnection) -> int:
    """Whole scans of the stop_events partitions so far (this session's counts flushed first)."""
    await conn.execute("SELECT pg_stat_force_next_flush()")
    await conn.execute("SELECT 1")  # (flushed as this statement's transaction ends)
    await conn.execute("SELECT pg_stat_clear_snapshot()")
    cur = await conn.execute(
        "SELECT coalesce(sum(seq_scan), 0) FROM pg_stat_user_tables WHERE relname LIKE 'stop_events%'"
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def test_a_departure_is_filled_in_by_its_key_without_reading_the_day_s_other_events(
    writer: StorageWriter, conn: psycopg.AsyncConnection
) -> None:
    # a busy day so far: 3,000 arrivals of 100 trips stored, as a city's writer holds them by the afternoon
    day = [event(seq, T0 + seq, None, trip=f"trip-{t}") for t in range(100) for seq in range(1, 31)]
    await writer.write([], day, [])
    scans = await _stop_event_scans(conn)

    # (the departure's message places the arrival two seconds later than the arrival's own did)
    filled = await writer.write([], [event(7, T0 + 9, T0 + 50, trip="trip-42"), event(31, T0 + 31, T0 + 60)], [])

    assert (filled.stop_events_inserted, filled.stop_events_departure_filled) == (1, 1)
    stored = {
        e.stop_sequence: (e.arrival_time, e.departure_time) for e in await trip_stop_events(conn, "trip-42", "20140602")
    }
    assert stored[7] == (T0 + 7, T0 + 50)  # the first arrival kept, the departure filled in
    assert stored[8] == (T0 + 8, None)
    # each batch's departures cost a probe of the key's index each, not a pass over the day (at 10,000 buses it was
    # every stop_events partition read in full, every batch: the database's CPU grew all day)
    assert await _stop_event_scans(conn) == scans


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


async def test_a_new_batch_of_positions_is_copied_straight_into_the_table(
    writer: StorageWriter, conn: psycopg.AsyncConnection
) -> None:
    states = [state(f"bus-{i}", T0 + i) for i in range(50)]

    result = await writer.write(states, [event()], [prediction_set(T0, {2: T0 + 60})])

    assert (result.positions_inserted, result.positions_duplicate) == (50, 0)
    assert writer.positions_copied_directly == 50  # not through the staging table
    assert await _count(conn, "positions") == 50
    assert (result.stop_events_inserted, result.predictions_inserted) == (1, 1)


async def test_a_batch_half_new_half_replayed_stores_the_new_half_and_counts_the_rest_as_duplicates(
    writer: StorageWriter, conn: psycopg.AsyncConnection
) -> None:
    states = [state("bus-1", T0 + i * 5) for i in range(10)]
    await writer.write(states[:5], [], [])

    replayed = await writer.write(states, [event()], [])  # the first five again: the direct COPY is refused
    again = await StorageWriter(conn).write(states, [], [])  # a restarted writer, all of it again

    assert (replayed.positions_inserted, replayed.positions_duplicate) == (5, 5)
    assert replayed.stop_events_inserted == 1  # the rest of the batch is written all the same
    assert (again.positions_inserted, again.positions_duplicate) == (0, 10)
    assert writer.positions_copied_directly == 5  # only the first batch went straight in
    assert await _count(conn, "positions") == 10
    assert await _count(conn, "stop_events") == 1


async def test_a_position_twice_in_one_batch_is_stored_once(
    writer: StorageWriter, conn: psycopg.AsyncConnection
) -> None:
    result = await writer.write([state("bus-1", T0), state("bus-1", T0 + 5), state("bus-1", T0)], [], [])

    assert (result.positions_inserted, result.positions_duplicate) == (2, 1)
    assert await _count(conn, "positions") == 2


# Epoch seconds whose microseconds are awkward to get right: ties (exactly half a microsecond after the
# 2000-01-01 epoch is taken away: to_timestamp rounds them to even), fractions below a microsecond, a fraction that
# rounds into the next second, an int (JSON's 1401696007), the last half second the direct COPY converts.
AWKWARD_TIMES = [T0 + 0.0078125, T0 + 0.0234375, T0 + 0.1234565, T0 + 1e-7, T0 + 0.9999996, T0 + 1 / 3,
                 1401696007, 1690000000.123456789, 4102444799.5]


async def test_positions_copied_straight_hold_the_times_and_days_the_staged_insert_would_store(
    writer: StorageWriter, conn: psycopg.AsyncConnection
) -> None:
    days = ["20140602", "20000229", "19991231", None]
    states = [state(f"bus-{i}", ts, service_date=days[i % len(days)]) for i, ts in enumerate(AWKWARD_TIMES)]

    await writer.write(states, [], [])
    replayed = await StorageWriter(conn).write(states, [], [])

    assert writer.positions_copied_directly == len(states)
    for s in states:
        cur = await conn.execute(
            "SELECT ts = to_timestamp(%s::float8), service_date IS NOT DISTINCT FROM to_date(%s, 'YYYYMMDD')"
            "  FROM positions WHERE vehicle_id = %s",
            (float(s.timestamp), s.service_date, s.vehicle_id),
        )
        assert await cur.fetchall() == [(True, True)], s
    assert (replayed.positions_inserted, replayed.positions_duplicate) == (0, len(states))  # the same keys


@pytest.mark.parametrize("service_date", ["2014062", "2014-06-02", "201406021", "00000101"])
async def test_a_service_date_to_date_reads_its_own_way_is_stored_as_it_reads_it(
    writer: StorageWriter, conn: psycopg.AsyncConnection, service_date: str
) -> None:
    # to_date(text, 'YYYYMMDD') reads '2014-06-02' as 2014-01-06 and '00000101' as 1 BC: the staged insert decides
    result = await writer.write([state("bus-1", T0), state("bus-2", T0, service_date=service_date)], [], [])

    assert result.positions_inserted == 2
    assert writer.positions_copied_directly == 0
    cur = await conn.execute(
        "SELECT service_date = to_date(%s, 'YYYYMMDD') FROM positions WHERE vehicle_id = 'bus-2'", (service_date,)
    )
    assert await cur.fetchall() == [(True,)]


async def test_a_time_a_hair_before_midnight_is_stored_on_the_day_to_timestamp_rounds_it_to(
    writer: StorageWriter, conn: psycopg.AsyncConnection
) -> None:
    midnight = 1_401_753_600.0  # 2014-06-03 00:00 UTC
    hair = midnight - 2e-7  # to_timestamp rounds it to the microsecond: midnight, the next day's partition
    result = await writer.write([state("bus-1", hair)], [], [])

    assert result.positions_inserted == 1  # stored, not refused for want of the day's partition
    cur = await conn.execute("SELECT ts = to_timestamp(%s::float8) FROM positions_p20140603", (midnight,))
    assert await cur.fetchall() == [(True,)]


async def test_a_time_before_1970_is_stored_as_to_timestamp_stores_it(
    writer: StorageWriter, conn: psycopg.AsyncConnection
) -> None:
    result = await writer.write([state("bus-1", -0.5)], [], [])
    replayed = await writer.write([state("bus-1", -0.5)], [], [])

    assert (result.positions_inserted, replayed.positions_duplicate) == (1, 1)
    assert writer.positions_copied_directly == 0
    cur = await conn.execute("SELECT ts = to_timestamp(-0.5) FROM positions")
    assert await cur.fetchall() == [(True,)]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param({"trip_id": "trip\0one"}, "COPY stage_positions", id="a NUL in a text, refused by either COPY"),
        pytest.param({"latitude": "north"}, "stage_positions", id="a string for a float, refused by its dumper"),
        pytest.param({"service_date": "20141345"}, 'out of range: "20141345"', id="a month 13: to_date refuses it"),
        pytest.param({"status": None}, 'null value in column "status"', id="a null where a value is required"),
    ],
)
async def test_a_position_the_database_refuses_raises_the_staged_insert_s_error_and_stores_nothing(
    writer: StorageWriter, conn: psycopg.AsyncConnection, overrides: dict[str, object], message: str
) -> None:
    with pytest.raises((psycopg.DataError, psycopg.IntegrityError), match=message) as refused:
        await writer.write([state("bus-1", T0), state("bus-2", T0, **overrides)], [event()], [])

    # StorageSink bisects the batch on the staged path's error, as before: not on one from the direct COPY
    assert "COPY positions" not in f"{refused.value} {refused.value.diag.context}"
    assert await _count(conn, "positions") == 0
    assert await _count(conn, "stop_events") == 0
    assert (await writer.write([state("bus-1", T0)], [], [])).positions_inserted == 1  # the writer goes on


@pytest.mark.parametrize("autocommit", [True, False])
async def test_a_new_session_whose_first_batch_is_a_replay_stores_it_once(database_url: str, autocommit: bool) -> None:
    """The refused direct COPY takes the staging tables the session's first batch makes along: they are made again."""
    states = [state("bus-1", T0 + i) for i in range(5)]
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as first:
        await migrate(first, force_plain=True)
        await StorageWriter(first).write(states, [], [])

    async with await psycopg.AsyncConnection.connect(database_url, autocommit=autocommit) as restarted:
        writer = StorageWriter(restarted)
        replayed = await writer.write(states + [state("bus-1", T0 + 5)], [event()], [])
        following = await writer.write([state("bus-1", T0 + 6)], [], [])

    assert (replayed.positions_inserted, replayed.positions_duplicate, replayed.stop_events_inserted) == (1, 5, 1)
    assert following.positions_inserted == 1 and writer.positions_copied_directly == 1
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as other:
        assert await _count(other, "positions") == 7
        assert await _count(other, "stop_events") == 1
