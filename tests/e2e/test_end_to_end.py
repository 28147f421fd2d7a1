"""Pings in at one end; rows in PostgreSQL, state in the live store and websocket messages out the other.

Runs the same pipeline assembly on the real Kafka, PostgreSQL and Redis, and on the embedded default.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import uvicorn
import websockets

from api.app import create_app
from eta.network import Network
from smartbus import messages
from smartbus.storage.migrate import migrate
from smartbus.stream.pipeline import Pipeline
from smartbus.stream.sinks import StorageSink
from tests.e2e.conftest import Stack
from tests.e2e.drive import Drive, drive_half_a_trip

BAD_PINGS = [
    (b'{"v": 1, "type": "ping", "vehicle_id": "x", "timest', "malformed_json"),
    (b'{"v": 1, "type": "ping", "vehicle_id": "bad-lat", "timestamp": 1.8e9, "latitude": 200, "longitude": 145.7}',
     "latitude_out_of_range"),
    (b'{"v": 1, "type": "ping", "timestamp": 1.8e9, "latitude": -16.9, "longitude": 145.7}', "missing_vehicle_id"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def _serving(stack: Stack, network: Network) -> AsyncIterator[str]:
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(stack.live, network), port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn offers no event for this)
        await asyncio.sleep(0.05)
    try:
        yield f"ws://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def _count(conn: psycopg.AsyncConnection, sql: str, *args: object) -> int:
    async with conn.cursor() as cur:
        await cur.execute(sql, args)
        row = await cur.fetchone()
        return int(row[0]) if row else 0


async def _wait_for(what: str, check: Any, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.25)


async def _first_message(url: str) -> dict[str, Any]:
    async with websockets.connect(url, compression=None) as ws:
        # Sent on connect, without the client saying anything.
        message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
        return message


async def test_pings_come_out_as_rows_live_state_and_websocket_messages(
    stack: Stack, cairns_network: Network
) -> None:
    network = cairns_network
    vehicle_id = f"e2e-{stack.name}-{uuid.uuid4().hex[:6]}"
    drive: Drive = drive_half_a_trip(network, vehicle_id, time.time())
    trip = drive.trip
    async with await psycopg.AsyncConnection.connect(stack.database_url, autocommit=True) as conn:
        await migrate(conn)

        async def connect() -> psycopg.AsyncConnection:
            return await psycopg.AsyncConnection.connect(stack.database_url)

        storage = StorageSink(connect)
        pipeline = Pipeline(network, stack.make_producer, stack.make_consumer, storage, stack.live)
        stop = asyncio.Event()
        running = asyncio.create_task(pipeline.run(stop))

        producer = stack.make_producer()
        await producer.start()
        for raw, _ in BAD_PINGS:
            await producer.send(messages.TOPIC_PINGS, raw, vehicle_id)
        for ping in drive.pings:
            await producer.send(messages.TOPIC_PINGS, messages.encode(ping), vehicle_id)
        await producer.flush()
        await producer.stop()

        positions = "select count(*) from positions where vehicle_id = %s"
        try:
            await _wait_for("every position stored", lambda: _count_is(conn, positions, len(drive.pings), vehicle_id))
            await _wait_for("the live state", lambda: _live_has(stack, vehicle_id, drive.pings[-1].timestamp))
            async with _serving(stack, network) as base:
                next_stop = trip.stop_ids[drive.passed + 1]
                board = await _first_message(f"{base}/ws/stops/{next_stop}")
                fleet = await _first_message(f"{base}/ws/fleet")
        finally:
            stop.set()
            await asyncio.wait_for(running, 30)
            await storage.close()

        # PostgreSQL: every good ping is a position on the right trip, where the bus was.
        async with conn.cursor() as cur:
            await cur.execute(
                "select extract(epoch from ts), latitude, longitude, trip_id from positions"
                " where vehicle_id = %s order by ts",
                (vehicle_id,),
            )
            rows = await cur.fetchall()
        assert [round(float(r[0]), 3) for r in rows] == [p.timestamp for p in drive.pings]
        for row, ping in zip(rows, drive.pings, strict=True):
            assert abs(row[1] - ping.latitude) < 1e-6 and abs(row[2] - ping.longitude) < 1e-6
        assert {r[3] for r in rows[1:]} == {trip.trip_id}

        # Stop arrivals on schedule (the bus drove exactly on it), one row per stop passed.
        async with conn.cursor() as cur:
            await cur.execute(
                "select stop_sequence, stop_id, extract(epoch from arrival_time) from stop_events"
                " where vehicle_id = %s order by stop_sequence",
                (vehicle_id,),
            )
            events = await cur.fetchall()
        expected = {int(trip.stop_sequences[i]): i for i in range(1, drive.passed)}
        got = {int(r[0]): (r[1], float(r[2])) for r in events}
        assert set(expected) <= set(got)
        for sequence, index in expected.items():
            stop_id, arrival = got[sequence]
            assert stop_id == trip.stop_ids[index]
            assert abs(arrival - drive.scheduled(index)) <= 30

        # Predictions stored for stops still ahead: never before the moment they were made, and none made
        # for a stop after the bus had reached it.
        async with conn.cursor() as cur:
            await cur.execute(
                "select count(*), bool_and(predicted_arrival >= made_at), max(stop_sequence) from predictions"
                " where vehicle_id = %s and trip_id = %s",
                (vehicle_id, trip.trip_id),
            )
            prediction_count, never_past, last_sequence = await cur.fetchone() or (0, None, None)
            await cur.execute(
                "select count(*) from predictions p join stop_events e"
                " using (trip_id, stop_sequence, service_date)"
                " where p.vehicle_id = %s and p.made_at > e.arrival_time + interval '1 second'",
                (vehicle_id,),
            )
            after_arrival = await cur.fetchone()
        assert prediction_count > 0 and never_past
        assert last_sequence > int(trip.stop_sequences[drive.passed])
        assert after_arrival == (0,)

        # Bad pings: rejected with their reasons, stored with their payloads; the good ones still flowed.
        async with conn.cursor() as cur:
            await cur.execute(
                "select reason, payload from rejected_pings where payload = any(%s)",
                ([raw.decode() for raw, _ in BAD_PINGS],),
            )
            rejected = {payload: reason for reason, payload in await cur.fetchall()}
        assert rejected == {raw.decode(): reason for raw, reason in BAD_PINGS}

    # Live state: the vehicle's latest state, on its trip.
    state = await stack.live.vehicle(vehicle_id)
    assert state is not None
    assert (state.trip_id, state.timestamp) == (trip.trip_id, drive.pings[-1].timestamp)

    # Websockets: the stop's board lists this bus, predicted near its schedule; the fleet shows it.
    assert board["type"] == "snapshot"
    ours = [a for a in board["arrivals"] if a["vehicle_id"] == vehicle_id]
    assert len(ours) == 1 and ours[0]["trip_id"] == trip.trip_id
    assert abs(ours[0]["predicted_arrival"] - drive.scheduled(drive.passed + 1)) <= 120
    assert fleet["type"] == "snapshot"
    vehicles = {v["vehicle_id"]: v for v in fleet["vehicles"]}
    assert vehicles[vehicle_id]["trip_id"] == trip.trip_id


async def _count_is(conn: psycopg.AsyncConnection, sql: str, expected: int, *args: object) -> bool:
    return await _count(conn, sql, *args) >= expected


async def _live_has(stack: Stack, vehicle_id: str, timestamp: float) -> bool:
    state = await stack.live.vehicle(vehicle_id)
    return state is not None and state.timestamp == timestamp
