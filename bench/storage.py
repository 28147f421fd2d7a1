"""Storage writer throughput: binary COPY + INSERT ... SELECT (StorageWriter) vs row-at-a-time INSERT.

Both paths write VehicleState batches of --batch rows, one transaction per batch, into a fresh
plain-flavour database, in the same run, for --seconds each; a third phase replays batches already
stored (all duplicates). Prints rows/s overall and the median per-batch rate.

    .venv/bin/python bench/storage.py [--database-url URL] [--seconds 30] [--batch 1000]

Without --database-url it uses SMARTBUS_DATABASE_URL's server when it answers, else an embedded one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from smartbus.messages import VehicleState
from smartbus.settings import Settings
from smartbus.storage.embedded import embedded_postgres
from smartbus.storage.migrate import migrate
from smartbus.storage.writer import StorageWriter

T0 = 1401696000.0  # 2014-06-02 08:00 UTC
VEHICLES = 500

_ROW_INSERT = """
INSERT INTO positions (vehicle_id, ts, latitude, longitude, trip_id, route_id, service_date, shape_dist,
                       offset_m, delay_s, status, speed, bearing, feed_version)
VALUES (%s, to_timestamp(%s), %s, %s, %s, %s, to_date(%s, 'YYYYMMDD'), %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (vehicle_id, ts) DO NOTHING
"""


def states(start_tick: int) -> Iterator[VehicleState]:
    """An endless fleet: every vehicle reports every 5 s of the replay clock (one UTC day at most)."""
    tick = start_tick
    while True:
        for v in range(VEHICLES):
            yield VehicleState(
                vehicle_id=f"bus-{v:04d}", timestamp=T0 + (tick % 7000) * 5.0 + v * 0.001,
                latitude=-16.9 + v * 1e-4, longitude=145.7 + tick * 1e-5, status="in_transit",
                trip_id=f"trip-{v}", route_id=f"route-{v % 22}", service_date="20140602",
                shape_dist=tick * 40.0, offset_m=3.0, delay_s=60.0, speed=8.0, bearing=90.0, feed_version="v1",
            )
        tick += 1


def batches(source: Iterator[VehicleState], size: int) -> Iterator[list[VehicleState]]:
    while True:
        yield [next(source) for _ in range(size)]


async def run_copy(conn: psycopg.AsyncConnection, seconds: float, size: int, start_tick: int) -> list[float]:
    writer = StorageWriter(conn)
    rates, deadline = [], time.perf_counter() + seconds
    for batch in batches(states(start_tick), size):
        started = time.perf_counter()
        result = await writer.write(batch, [], [])
        rates.append(len(batch) / (time.perf_counter() - started))
        assert result.positions_inserted + result.positions_duplicate == len(batch)
        if time.perf_counter() > deadline:
            return rates
    return rates


async def run_rows(conn: psycopg.AsyncConnection, seconds: float, size: int, start_tick: int) -> list[float]:
    rates, deadline = [], time.perf_counter() + seconds
    for batch in batches(states(start_tick), size):
        started = time.perf_counter()
        async with conn.transaction(), conn.cursor() as cur:
            for s in batch:
                await cur.execute(_ROW_INSERT, (
                    s.vehicle_id, s.timestamp, s.latitude, s.longitude, s.trip_id, s.route_id, s.service_date,
                    s.shape_dist, s.offset_m, s.delay_s, s.status, s.speed, s.bearing, s.feed_version,
                ))
        rates.append(len(batch) / (time.perf_counter() - started))
        if time.perf_counter() > deadline:
            return rates
    return rates


def report(name: str, rates: list[float], size: int) -> float:
    total_rows = len(rates) * size
    total_time = sum(size / r for r in rates)
    overall = total_rows / total_time
    print(f"{name:<32} {overall:>10,.0f} rows/s overall   median batch {statistics.median(rates):>10,.0f} rows/s"
          f"   ({total_rows:,} rows in {total_time:.1f} s)")
    return overall


async def bench(url: str, seconds: float, size: int) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await migrate(conn, force_plain=True)
        server = (await (await conn.execute("SHOW server_version")).fetchone() or ("?",))[0]
        print(f"machine: {platform.machine()} {os.cpu_count()} cores, PostgreSQL {server}, plain flavour")
        print(f"input: VehicleState batches of {size} rows, {VEHICLES} vehicles, {seconds:.0f} s per phase\n")
        # Warm-up: make the day's partition, staging tables, caches.
        await run_copy(conn, 0.5, size, start_tick=4000)
        copy_rate = report("StorageWriter (binary COPY)", await run_copy(conn, seconds, size, 0), size)
        rows_rate = report("row-at-a-time INSERT", await run_rows(conn, seconds, size, 5000), size)
        report("StorageWriter replay (all dups)", await run_copy(conn, seconds / 3, size, 0), size)
        print(f"\nCOPY / row-at-a-time: {copy_rate / rows_rate:.1f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="a server where we may create a scratch database")
    parser.add_argument("--seconds", type=float, default=30.0, help="duration of each phase")
    parser.add_argument("--batch", type=int, default=1000, help="rows per transaction")
    args = parser.parse_args()
    with ExitStack() as stack:
        server = args.database_url or _answering(Settings().database_url)
        if server is None:
            data_dir = Path(tempfile.mkdtemp(prefix="smartbus-pg-bench-"))
            stack.callback(shutil.rmtree, data_dir, True)
            server = stack.enter_context(embedded_postgres(data_dir, delete=True))
            print("server: embedded-postgres")
        name = f"smartbus_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            params = conninfo_to_dict(server)
            params["dbname"] = name
            asyncio.run(bench(make_conninfo("", **params), args.seconds, args.batch))
        finally:
            with psycopg.connect(server, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


def _answering(url: str) -> str | None:
    try:
        with psycopg.connect(url, connect_timeout=2):
            return url
    except psycopg.OperationalError:
        return None


if __name__ == "__main__":
    raise SystemExit(main())
