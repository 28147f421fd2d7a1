"""The TimescaleDB and plain flavours give the same answers to the same queries.

Runs only where the server has TimescaleDB loadable (the production image); skipped elsewhere.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from smartbus.storage.migrate import Flavour, migrate
from smartbus.storage.queries import (
    punctuality_by_route_hour,
    refresh_punctuality,
    trip_stop_events,
    vehicle_positions,
)
from smartbus.storage.writer import StorageWriter
from tests.storage.factories import T0, event, prediction_set, state


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
        async with await psycopg.AsyncConnection.connect(server_url, autocommit=True) as admin:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _fill(conn: psycopg.AsyncConnection) -> None:
    writer = StorageWriter(conn)
    states = [state("bus-1", T0 + i * 7.5) for i in range(20)]
    events = [event(i, T0 + i * 100, T0 + i * 100 + 20, scheduled=T0 + i * 90) for i in range(1, 8)]
    predictions = [prediction_set(T0 + i * 15, {8: T0 + 900 + i * 10}) for i in range(10)]
    await writer.write(states, events, predictions)
    await writer.write(states, events[:3], predictions)  # a replay
    await writer.write([], [event(9, T0 + 950)], [])
    await writer.write([], [event(9, T0 + 950, T0 + 990)], [])  # departure fill-in
    await refresh_punctuality(conn)


async def test_both_flavours_answer_the_same(
    timescale_conn: psycopg.AsyncConnection, conn: psycopg.AsyncConnection
) -> None:
    await migrate(conn, force_plain=True)
    answers = []
    for c in (timescale_conn, conn):
        await _fill(c)
        cur = await c.execute("SELECT count(*) FROM predictions")
        answers.append((
            await vehicle_positions(c, "bus-1", T0, T0 + 3600),
            await trip_stop_events(c, "trip-1", "20140602"),
            await punctuality_by_route_hour(c, date(2014, 6, 1), date(2014, 6, 30)),
            await cur.fetchone(),
        ))

    assert answers[0] == answers[1]
