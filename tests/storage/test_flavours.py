"""The TimescaleDB and plain flavours give the same answers to the same queries.

Runs only where the server has TimescaleDB loadable (the production image); skipped elsewhere.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from smartbus.storage import analytics
from smartbus.storage.migrate import Flavour, StoragePolicy, migrate
from smartbus.storage.queries import (
    punctuality_by_route_hour,
    refresh_punctuality,
    trip_stop_events,
    vehicle_positions,
)
from smartbus.storage.writer import StorageWriter, WriteResult
from tests.storage.conftest import columns_analyzed, drop_test_database
from tests.storage.factories import SERVICE_DATE, T0, event, prediction_set, rejected, state


@pytest.fixture
async def timescale_conn(server_url: str) -> AsyncIterator[psycopg.AsyncConnection]:
    name = f"smartbus_test_ts_{uuid.uuid4().hex[:12]}"
    async with await psycopg.AsyncConnection.connect(server_url, autocommit=True) as admin:
        cur = await admin.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
        if await cur.fetchone() is None:
            pytest.skip("TimescaleDB is not installed on this server")
        await admin.execute(f'CREATE DATABASE "{name}"')
    params = conninfo_to_dict(server_url)
    params["dbname"] = name
    try:
        async with await psycopg.AsyncConnection.connect(make_conninfo("", **params), autocommit=True) as conn:
            if await migrate(conn) is not Flavour.TIMESCALE:
                pytest.skip("TimescaleDB is installed but does not load (shared_preload_libraries)")
            yield conn
    finally:
        await asyncio.to_thread(drop_test_database, server_url, name)


@pytest.fixture
async def plain_conn(conn: psycopg.AsyncConnection) -> psycopg.AsyncConnection:
    assert await migrate(conn, force_plain=True) is Flavour.PLAIN
    return conn


async def _fill(conn: psycopg.AsyncConnection) -> list[WriteResult]:
    writer = StorageWriter(conn)
    states = [state("bus-1", T0 + i * 7.5) for i in range(20)]
    events = [event(i, T0 + i * 100, T0 + i * 100 + 20, scheduled=T0 + i * 90) for i in range(1, 8)]
    events += [event(i, T0 + 500 + i * 97.5, scheduled=T0 + 600 + i * 90, trip="trip-2") for i in range(1, 8)]
    predictions = [prediction_set(T0 + i * 15, {8: T0 + 900 + i * 10}) for i in range(10)]
    results = [
        await writer.write(states, events, predictions, [rejected()]),
        await writer.write(states, events[:3], predictions, [rejected()]),  # a replay
        await writer.write([], [event(9, T0 + 950)], []),
        await writer.write([], [event(9, T0 + 950, T0 + 990)], []),  # departure fill-in
    ]
    await refresh_punctuality(conn)
    return results


async def _answers(conn: psycopg.AsyncConnection) -> tuple[object, ...]:
    counts = []
    for table in ("positions", "stop_events", "predictions", "rejected_pings"):
        cur = await conn.execute(f"SELECT count(*) FROM {table}")
        counts.append(await cur.fetchone())
    month = (date(2014, 6, 1), date(2014, 6, 30))
    # Each rollup: by route, hour and day from the route-hour one; by stop, and a stop's hours.
    groupings: list[tuple[analytics.GroupBy, str | None]] = [
        ("route", None), ("hour", None), ("day", None), ("stop", None), ("hour", "stop-2"),
    ]
    on_time = [
        await analytics.on_time(conn, *month, by, "Australia/Brisbane", stop_id=stop) for by, stop in groupings
    ]
    # The delay buckets (a window of 120/600 s by route, hour and day; a distribution) and the headway sums.
    other_window = [
        await analytics.on_time(conn, *month, by, "Australia/Brisbane", early_s=120, late_s=600, use_rollup=True)
        for by in ("route", "hour", "day")
    ]
    return (
        await vehicle_positions(conn, "bus-1", T0, T0 + 3600),
        await trip_stop_events(conn, "trip-1", SERVICE_DATE),
        await punctuality_by_route_hour(conn, *month),
        counts,
        on_time,
        other_window,
        await analytics.delay_distribution(conn, *month, "Australia/Brisbane", use_rollup=True),
        await analytics.headway_regularity(conn, *month, "Australia/Brisbane", max_scheduled_headway_s=3600),
    )


async def _compress_everything(conn: psycopg.AsyncConnection) -> int:
    cur = await conn.execute(
        "SELECT count(compress_chunk(chunk)) FROM ("
        " SELECT show_chunks(hypertable) AS chunk FROM unnest(ARRAY['positions', 'stop_events', 'predictions'])"
        " AS hypertable) c"
    )
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def test_both_flavours_answer_the_same(
    timescale_conn: psycopg.AsyncConnection, plain_conn: psycopg.AsyncConnection
) -> None:
    results = [await _fill(c) for c in (timescale_conn, plain_conn)]
    answers = [await _answers(c) for c in (timescale_conn, plain_conn)]

    assert results[0] == results[1]
    assert results[0][1].positions_duplicate == 20  # the replay stored nothing twice
    assert answers[0] == answers[1]
    assert answers[0][2], "the punctuality rollup is empty"
    other_window, distribution, headways = answers[0][5:]
    assert isinstance(other_window, list) and all(other_window), "a delay rollup is empty"
    assert isinstance(distribution, analytics.DelayDistribution) and distribution.count == 15
    assert headways, "the headway rollup is empty"


async def test_a_replay_into_compressed_chunks_is_stored_once_and_late_departures_still_land(
    timescale_conn: psycopg.AsyncConnection, plain_conn: psycopg.AsyncConnection
) -> None:
    """Old service days are compressed by the policy; a late replay of them must not duplicate rows."""
    for c in (timescale_conn, plain_conn):
        await _fill(c)
    assert await _compress_everything(timescale_conn) == 3

    replays = []
    for c in (timescale_conn, plain_conn):
        writer = StorageWriter(c)
        replays.append([
            await writer.write(
                [state("bus-1", T0 + i * 7.5) for i in range(25)],  # 20 stored, 5 new
                [event(8, T0 + 800), event(9, T0 + 950, T0 + 990)],  # stop 8 new
                [prediction_set(T0, {8: T0 + 900})],  # stored already
            ),
            await writer.write([], [event(8, T0 + 800, T0 + 830)], []),  # its departure, into the compressed chunk
        ])
        await refresh_punctuality(c)

    assert replays[0] == replays[1]
    assert replays[0][0].positions_inserted == 5 and replays[0][0].positions_duplicate == 20
    assert replays[0][1].stop_events_departure_filled == 1
    assert await _answers(timescale_conn) == await _answers(plain_conn)


async def test_policies_follow_the_settings_and_a_restart_keeps_their_schedule(
    timescale_conn: psycopg.AsyncConnection,
) -> None:
    query = (
        "SELECT hypertable_name, proc_name, job_id, next_start, next_start > now(), config - 'hypertable_id'"
        " - 'mat_hypertable_id' FROM timescaledb_information.jobs WHERE hypertable_name IS NOT NULL"
        " ORDER BY hypertable_name, proc_name"
    )
    jobs = await (await timescale_conn.execute(query)).fetchall()
    assert [(j[0], j[1], j[5]) for j in jobs] == [
        ("positions", "policy_compression", {"compress_after": "7 days"}),
        ("positions", "policy_retention", {"drop_after": "90 days"}),
        ("predictions", "policy_compression", {"compress_after": "7 days"}),
        ("predictions", "policy_retention", {"drop_after": "90 days"}),
        ("punctuality_delays_hourly", "policy_refresh_continuous_aggregate",
         {"end_offset": "1 day", "start_offset": "7 days"}),
        ("punctuality_delays_route_daily", "policy_refresh_continuous_aggregate",
         {"end_offset": "1 day", "start_offset": "7 days"}),
        ("punctuality_headways_stop_daily", "policy_refresh_continuous_aggregate",
         {"end_offset": "1 day", "start_offset": "7 days"}),
        ("punctuality_hourly", "policy_refresh_continuous_aggregate",
         {"end_offset": "1 day", "start_offset": "7 days"}),
        ("punctuality_route_hourly", "policy_refresh_continuous_aggregate",
         {"end_offset": "1 day", "start_offset": "7 days"}),
        ("punctuality_stop_daily", "policy_refresh_continuous_aggregate",
         {"end_offset": "1 day", "start_offset": "7 days"}),
        ("rejected_pings", "policy_retention", {"drop_after": "90 days"}),
        ("stop_events", "policy_compression", {"compress_after": "7 days"}),
        ("stop_events", "policy_retention", {"drop_after": "90 days"}),
    ]
    # A new database has nothing to drop or compress: no job fires while the first rows arrive.
    assert all(j[4] for j in jobs)

    await migrate(timescale_conn)  # a restart with the same settings
    assert await (await timescale_conn.execute(query)).fetchall() == jobs

    await migrate(timescale_conn, policy=StoragePolicy(retention_days=30, compress_after_days=2))
    changed = await (await timescale_conn.execute(query)).fetchall()
    assert [j[5] for j in changed if j[1] == "policy_retention"] == [{"drop_after": "30 days"}] * 4
    assert [j[5] for j in changed if j[1] == "policy_compression"] == [{"compress_after": "2 days"}] * 3


async def test_both_flavours_analyze_only_the_columns_queries_use(
    timescale_conn: psycopg.AsyncConnection, plain_conn: psycopg.AsyncConnection
) -> None:
    analyzed = []
    for c in (timescale_conn, plain_conn):
        await _fill(c)
        analyzed.append([
            {tuple(columns) for columns in (await columns_analyzed(c, table)).values()}
            for table in ("positions", "predictions")
        ])

    assert analyzed[0] == analyzed[1] == [
        {("ts", "vehicle_id")}, {("made_at", "service_date", "stop_id", "stop_sequence", "trip_id")}
    ]


async def test_dropping_old_days_empties_the_same_tables_in_both_flavours(
    timescale_conn: psycopg.AsyncConnection, plain_conn: psycopg.AsyncConnection
) -> None:
    dropped = []
    for c in (timescale_conn, plain_conn):
        await _fill(c)
        cur = await c.execute("SELECT smartbus_drop_old_partitions(90)")
        row = await cur.fetchone()
        dropped.append(row[0] if row else None)

    assert dropped[0] is not None and dropped[0] > 0 and dropped[1] is not None and dropped[1] > 0
    for c in (timescale_conn, plain_conn):
        counts = (await _answers(c))[3]
        assert counts == [(0,)] * 4


RETENTION_DAYS = 90


async def _fill_days_around_the_retention_cut(conn: psycopg.AsyncConnection) -> list[date]:
    """A row in each table at noon UTC of each day from 12 days before the retention cut to 8 after it."""
    today = datetime.now(UTC).date()
    days = [today - timedelta(days=RETENTION_DAYS + back) for back in range(12, -9, -1)]
    noons = [datetime.combine(day, time(12), UTC).timestamp() for day in days]
    await StorageWriter(conn).write(
        [state("bus-1", at) for at in noons],
        [dataclasses.replace(event(1, at, scheduled=at - 30), service_date=f"{day:%Y%m%d}")
         for day, at in zip(days, noons, strict=True)],
        [prediction_set(at, {8: at + 600}) for at in noons],
        [rejected(f"ping of {day}", at) for day, at in zip(days, noons, strict=True)],
    )
    return days


async def _days_kept(conn: psycopg.AsyncConnection) -> dict[str, list[date]]:
    days = {}
    for table, day in (
        ("positions", "(ts AT TIME ZONE 'UTC')::date"),
        ("stop_events", "service_date"),
        ("predictions", "(made_at AT TIME ZONE 'UTC')::date"),
        ("rejected_pings", "(received_at AT TIME ZONE 'UTC')::date"),
    ):
        cur = await conn.execute(f"SELECT DISTINCT {day} FROM {table} ORDER BY 1")
        days[table] = [row[0] for row in await cur.fetchall()]
    return days


async def test_dropping_old_days_keeps_the_same_days_in_both_flavours_whatever_the_session_time_zone(
    timescale_conn: psycopg.AsyncConnection, plain_conn: psycopg.AsyncConnection
) -> None:
    """The retention cut is a UTC day in both flavours: no week of stop events or rejected pings kept whole
    because its chunk straddles the cut, and no day more or less for a session in another time zone."""
    # A zone whose date is not UTC's right now (UTC+14 from 10:00 UTC, UTC-12 before noon UTC).
    zone = "Etc/GMT-14" if datetime.now(UTC).hour >= 10 else "Etc/GMT+12"
    kept = []
    for c in (timescale_conn, plain_conn):
        days = await _fill_days_around_the_retention_cut(c)
        await refresh_punctuality(c)
        await c.execute(f"SET TIME ZONE '{zone}'")
        await c.execute("SELECT smartbus_drop_old_partitions(%s)", (RETENTION_DAYS,))
        await c.execute("SET TIME ZONE 'UTC'")
        await refresh_punctuality(c)
        on_time_by_day = await analytics.on_time(c, days[0], days[-1], "day", "UTC")
        kept.append((await _days_kept(c), [(r.key, r.arrivals) for r in on_time_by_day]))

    cut = datetime.now(UTC).date() - timedelta(days=RETENTION_DAYS)
    assert kept[0] == kept[1]
    assert {table: (d[0], len(d)) for table, d in kept[0][0].items()} == dict.fromkeys(kept[0][0], (cut, 9))
    assert kept[0][1] == [(f"{day:%Y-%m-%d}", 1) for day in days if day >= cut]


async def test_the_retention_jobs_keep_the_same_days_as_the_plain_drop(
    timescale_conn: psycopg.AsyncConnection, plain_conn: psycopg.AsyncConnection
) -> None:
    for c in (timescale_conn, plain_conn):
        await _fill_days_around_the_retention_cut(c)
    cur = await timescale_conn.execute(
        "SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = 'policy_retention' ORDER BY job_id"
    )
    jobs = [row[0] for row in await cur.fetchall()]
    assert len(jobs) == 4
    for job in jobs:
        await timescale_conn.execute("CALL run_job(%s)", (job,))
    await plain_conn.execute("SELECT smartbus_drop_old_partitions(%s)", (RETENTION_DAYS,))

    kept = [await _days_kept(c) for c in (timescale_conn, plain_conn)]
    assert kept[0] == kept[1]
    assert all(len(days) == 9 for days in kept[0].values())


async def test_timescale_shows_new_arrivals_before_any_refresh_and_late_ones_after_the_next(
    timescale_conn: psycopg.AsyncConnection,
) -> None:
    async def arrivals() -> list[int]:
        rows = await punctuality_by_route_hour(timescale_conn, date(2014, 6, 1), date(2014, 6, 30))
        return [r.arrivals for r in rows]

    writer = StorageWriter(timescale_conn)
    await writer.write([], [event(i, T0 + i * 100) for i in range(1, 4)], [])
    assert await arrivals() == [3]  # real-time aggregation: nothing materialized yet

    await refresh_punctuality(timescale_conn)
    await writer.write([], [event(i, T0 + i * 100) for i in range(4, 6)], [])  # late, into a materialized day
    await refresh_punctuality(timescale_conn)
    assert await arrivals() == [5]


async def test_installed_but_not_preloaded_chooses_plain_and_keeps_the_session(conn: psycopg.AsyncConnection) -> None:
    """The `--no-timescale` server: loading the extension there would end the session (FATAL)."""
    available = await (await conn.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
    )).fetchone()
    preloaded = await (await conn.execute(
        "SELECT 1 FROM pg_settings WHERE name = 'timescaledb.max_background_workers' AND vartype = 'integer'"
    )).fetchone()
    if available is None or preloaded is not None:
        pytest.skip("needs TimescaleDB installed but not in shared_preload_libraries")

    assert await migrate(conn) is Flavour.PLAIN
    await StorageWriter(conn).write([state()], [event()], [])
    assert (await _answers(conn))[3] == [(1,), (1,), (0,), (0,)]
