"""Analysts' punctuality endpoints over 30 simulated days of the bundled Cairns feed: warm latency through the api.

    .venv/bin/python bench/punctuality.py [--days 30] [--first-day 2014-06-02] [--seed 1] [--repetitions 200]
                                          [--database-url URL] [--keep-database]

1. Simulates each of --days consecutive days with its own seed (--seed, --seed + 1, ...) with the simulator's
   Python API (the same as `smartbus simulate --date D --seed S`); every truth stop record (what the CSV sink
   writes to truth_stops.csv) becomes a stop_events row, with the trip's route and scheduled arrival as the
   tracker gives them, written through StorageWriter (binary COPY) in batches.
2. Has autovacuum's work done (ANALYZE of each partition or chunk, never of a partitioned parent), then
   refreshes the punctuality rollup with the function the api's refresher calls, and checks the delay
   rollups' answers over the range against the same counted from the arrivals.
3. Serves the real FastAPI app in-process (httpx's ASGI transport, the app's lifespan running) with an
   analyst key, and calls what the analysts' page calls over the whole range, plus the other groupings:
   one call each first (not counted), then --repetitions rounds of every query in turn.
   Prints p50/p95/p99/max per query and the rows each returns; `*` marks a target, p95 under 200 ms warm over
   the 30 days (issue 7's: on-time by route and by hour; the delay rollups' (migration 009): the delay
   distribution, a window other than the default by route and by hour, headways), and the exit status is 1
   when one of them misses it. Unmarked: what the rollups do not serve and the arrivals answer (a stop,
   a window off the 10 s buckets), for scale.

A fresh database on SMARTBUS_DATABASE_URL's server (or --database-url) is made and dropped at the end. With
--keep-database the database is `smartbus_bench_punctuality`, kept, and reused by the next run with the same
--days/--first-day/--seed (pending migrations are applied to it, the rows are not written again).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from api.app import create_app  # noqa: E402
from api.database import Database  # noqa: E402
from api.keys import create_key  # noqa: E402
from eta.network import Network, load_network  # noqa: E402
from simulator.config import SimConfig  # noqa: E402
from simulator.generator import plan_day, simulate  # noqa: E402
from simulator.records import StopTruth  # noqa: E402
from smartbus.live.memory_store import MemoryLiveStore  # noqa: E402
from smartbus.messages import StopEvent  # noqa: E402
from smartbus.settings import BUNDLED_FEED, Settings  # noqa: E402
from smartbus.storage import analytics  # noqa: E402
from smartbus.storage.migrate import Flavour, migrate  # noqa: E402
from smartbus.storage.queries import refresh_punctuality  # noqa: E402
from smartbus.storage.writer import StorageWriter  # noqa: E402

TARGET_P95_MS = 200.0
BATCH = 2_000  # stop events per StorageWriter batch (one transaction each)
KEPT_DATABASE = "smartbus_bench_punctuality"


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            return next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "")
    except OSError:
        return ""


def day_events(network: Network, day: dt.date, seed: int) -> Iterator[StopEvent]:
    """The day's truth stop records as the tracker would store them (route, scheduled arrival, feed version)."""
    plan = plan_day(network, day, SimConfig(seed=seed))
    index_of: dict[str, dict[int, int]] = {}
    for record in simulate(plan):
        if not isinstance(record, StopTruth):
            continue
        trip = network.trips[record.trip_id]
        indexes = index_of.get(record.trip_id)
        if indexes is None:
            indexes = index_of[record.trip_id] = {int(s): i for i, s in enumerate(trip.stop_sequences.tolist())}
        yield StopEvent(
            vehicle_id=record.vehicle_id, trip_id=record.trip_id, service_date=record.service_date,
            stop_id=record.stop_id, stop_sequence=record.stop_sequence, arrival_time=round(record.arrival_time, 3),
            departure_time=round(record.departure_time, 3), interpolated=False, route_id=trip.route_id,
            scheduled_arrival=plan.origin + float(trip.arrival[indexes[record.stop_sequence]]),
            feed_version=network.feed_hash,
        )


async def fill(conn: psycopg.AsyncConnection, network: Network, days: list[dt.date], seed: int) -> None:
    writer = StorageWriter(conn)
    simulate_s = write_s = 0.0
    total = 0
    for i, day in enumerate(days):
        started = time.perf_counter()
        events = list(day_events(network, day, seed + i))
        simulate_s += time.perf_counter() - started
        started = time.perf_counter()
        for at in range(0, len(events), BATCH):
            result = await writer.write([], events[at:at + BATCH], [])
            assert result.stop_events_inserted == len(events[at:at + BATCH]), result
        write_s += time.perf_counter() - started
        total += len(events)
        print(f"  {day} (seed {seed + i}, {day:%a}): {len(events):,} stop events", flush=True)
    print(f"simulated {len(days)} days in {simulate_s:.0f} s; wrote {total:,} stop events through StorageWriter "
          f"in {write_s:.1f} s ({total / write_s:,.0f} rows/s, batches of {BATCH:,})")


async def analyze_as_autovacuum(conn: psycopg.AsyncConnection) -> None:
    """ANALYZE what autovacuum analyzes after 30 days: leaf tables and the rollup, never a partitioned parent."""
    cur = await conn.execute(
        "SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')"
        " AND n.nspname NOT LIKE 'pg_temp%'"
    )
    for (name,) in await cur.fetchall():
        await conn.execute(f"ANALYZE {name}")


@dataclass(frozen=True)
class Query:
    name: str
    path: str
    params: dict[str, str]
    target: bool = False  # p95 under TARGET_P95_MS (issue 7, and the delay rollups of migration 009)


def queries(first: dt.date, last: dt.date, route_id: str, stop_id: str, mid_day: dt.date) -> list[Query]:
    span = {"from": first.isoformat(), "to": last.isoformat()}
    on_time = "/api/analytics/on-time"
    window = {"early_s": "120", "late_s": "600"}
    return [
        # What the analysts' page asks for at once (api/static/analytics.js).
        Query("on-time by route", on_time, {**span, "by": "route", "early_s": "60", "late_s": "300"}, True),
        Query("on-time by hour", on_time, {**span, "by": "hour", "early_s": "60", "late_s": "300"}, True),
        Query("delay distribution", "/api/analytics/delays", span, True),
        Query(f"route {route_id} day (Marey)", f"/api/analytics/routes/{route_id}/day", {"date": mid_day.isoformat()}),
        # The same page with an on-time window of the analyst's own.
        Query("on-time by route, window 120/600 s", on_time, {**span, "by": "route", **window}, True),
        Query("on-time by hour, window 120/600 s", on_time, {**span, "by": "hour", **window}, True),
        # The other groupings and filters an analyst picks there or through the API.
        Query("on-time by stop", on_time, {**span, "by": "stop"}),
        Query("on-time by day", on_time, {**span, "by": "day"}),
        Query(f"on-time by hour, route {route_id}", on_time, {**span, "by": "hour", "route_id": route_id}),
        Query("on-time by route, csv export", on_time, {**span, "by": "route", "format": "csv"}),
        Query("on-time by day, window 120/600 s", on_time, {**span, "by": "day", **window}, True),
        Query(f"delay distribution, route {route_id}", "/api/analytics/delays", {**span, "route_id": route_id}, True),
        Query(f"delay distribution, stop {stop_id}", "/api/analytics/delays", {**span, "stop_id": stop_id}),
        # Cairns buses come every 30-60 min: the default 900 s cut-off would leave no stop-day to count.
        Query("headways (scheduled <= 3600 s)", "/api/analytics/headways", {**span, "max_scheduled_headway_s": "3600"},
              True),
        # Counted from the arrivals: a window off the 10 s delay buckets; a window by stop.
        Query("on-time by route, window 125/600 s", on_time, {**span, "by": "route", "early_s": "125",
                                                              "late_s": "600"}),
        Query("on-time by stop, window 120/600 s", on_time, {**span, "by": "stop", **window}),
    ]


def rows_of(response: httpx.Response) -> str:
    if response.headers["content-type"].startswith("text/csv"):
        return f"{len(response.text.splitlines()) - 1} csv"
    body: dict[str, Any] = response.json()
    if "rows" in body:
        extra = f", {body['count']:,} delays" if "count" in body else ""
        return f"{len(body['rows'])}{extra}"
    return f"{len(body.get('trips', []))} trips"


def percentile(sorted_ms: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, min(len(sorted_ms), round(q * len(sorted_ms) + 0.5)))
    return sorted_ms[rank - 1]


async def time_api(url: str, network: Network, asked: list[Query], repetitions: int) -> bool:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        key = await create_key(conn, "bench analyst", ("analyst",))
    database = Database(url)
    # No rate limit: one client calling in a tight loop is not what the limiter is for. No refresher task:
    # the rollup was refreshed just before, as the api's refresher would have done.
    app = create_app(MemoryLiveStore(), network, database=database, rollup_refresh_s=None,
                     rate_per_s=1e9, rate_burst=1e9)
    headers = {"Authorization": f"Bearer {key}"}
    timings: dict[str, list[float]] = {q.name: [] for q in asked}
    first_ms: dict[str, float] = {}
    counts: dict[str, str] = {}
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://bench", headers=headers, timeout=120
    ) as client:
        for q in asked:  # first calls: plans, caches, pool connections; not counted
            started = time.perf_counter()
            response = await client.get(q.path, params=q.params)
            first_ms[q.name] = (time.perf_counter() - started) * 1000
            response.raise_for_status()
            counts[q.name] = rows_of(response)
        for _ in range(repetitions):
            for q in asked:
                started = time.perf_counter()
                response = await client.get(q.path, params=q.params)
                elapsed = (time.perf_counter() - started) * 1000
                response.raise_for_status()
                timings[q.name].append(elapsed)
    print(f"\n{' query (warm, ms)':<38} {'rows':>18} {'first':>8} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}")
    met, over = True, []
    for q in asked:
        ms = sorted(timings[q.name])
        p95 = percentile(ms, 0.95)
        if p95 >= TARGET_P95_MS:
            over.append(q.name)
            met &= not q.target
        print(f"{'*' if q.target else ' '}{q.name:<37} {counts[q.name]:>18} {first_ms[q.name]:>8.1f} "
              f"{statistics.median(ms):>8.1f} {p95:>8.1f} {percentile(ms, 0.99):>8.1f} {ms[-1]:>8.1f}")
    print(f"\n* targets, p95 under {TARGET_P95_MS:.0f} ms warm: {'met' if met else 'NOT met'}"
          f"{'; p95 over it: ' + ', '.join(over) if over else ''}")
    return met


async def describe(conn: psycopg.AsyncConnection, first: dt.date, last: dt.date) -> None:
    async def one(query: str, *params: object) -> Any:
        row = await (await conn.execute(query, params)).fetchone()
        assert row is not None
        return row[0]

    events = await one("SELECT count(*) FROM stop_events WHERE service_date BETWEEN %s AND %s", first, last)
    print(f"data: {events:,} stop events from {first} to {last}")
    cur = await conn.execute(  # materialized views (plain) or continuous aggregates (TimescaleDB: views)
        "SELECT relname FROM pg_class WHERE relname LIKE 'punctuality%%' AND relkind IN ('m', 'v') ORDER BY 1"
    )
    for (rollup,) in await cur.fetchall():
        rows = await one(f"SELECT count(*) FROM {rollup} WHERE service_date BETWEEN %s AND %s", first, last)
        print(f"  rollup {rollup}: {rows:,} rows")


async def compare_with_the_arrivals(conn: psycopg.AsyncConnection, first: dt.date, last: dt.date, zone: str) -> None:
    """The delay rollups' answers over the whole range against the same counted from the arrivals."""
    def counts(rows: list[analytics.OnTime]) -> list[tuple[object, ...]]:
        return [(r.key, r.arrivals, r.scheduled, r.early, r.on_time, r.late) for r in rows]

    windows_equal = all([
        counts(await analytics.on_time(conn, first, last, by, zone, early_s=120, late_s=600, use_rollup=True))
        == counts(await analytics.on_time(conn, first, last, by, zone, early_s=120, late_s=600, use_rollup=False))
        for by in ("route", "hour", "day")
    ])
    estimated, exact = [
        await analytics.delay_distribution(conn, first, last, zone, use_rollup=rollup) for rollup in (True, False)
    ]
    off = max(abs((estimated.percentiles[p] or 0.0) - (exact.percentiles[p] or 0.0)) for p in exact.percentiles)
    fast, slow = [
        await analytics.headway_regularity(conn, first, last, zone, max_scheduled_headway_s=3600, use_rollup=rollup)
        for rollup in (True, False)
    ]
    same_routes = [(h.route_id, h.headways) for h in fast] == [(h.route_id, h.headways) for h in slow]
    wait_off = max(abs((a.actual_wait_s or 0.0) - (b.actual_wait_s or 0.0)) for a, b in zip(fast, slow, strict=False))

    def said(equal: bool) -> str:
        return "equal" if equal else "DIFFER"

    print(f"rollups vs the arrivals' own counts: 120/600 s on-time by route, hour and day {said(windows_equal)}; "
          f"delay bins {said(estimated.bins == exact.bins)}, percentiles at most {off:.2f} s off (bound "
          f"{estimated.percentiles_within_s:.0f} s); headways per route {said(same_routes)}, waits at most "
          f"{wait_off:.1e} s off")


async def bench(url: str, args: argparse.Namespace, network: Network) -> bool:
    days = [args.first_day + dt.timedelta(days=i) for i in range(args.days)]
    first, last = days[0], days[-1]
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        flavour = await migrate(conn)
        server = await (await conn.execute("SHOW server_version")).fetchone()
        print(f"PostgreSQL {server[0] if server else '?'}, {'TimescaleDB' if flavour is Flavour.TIMESCALE else 'plain'}"
              f" flavour ({'continuous aggregate' if flavour is Flavour.TIMESCALE else 'materialized view'})")
        mark = f"{args.days} days from {first} seed {args.seed}"
        stored = await (await conn.execute(
            "SELECT value FROM smartbus_meta WHERE key = 'bench_punctuality'"
        )).fetchone()
        if stored is not None and stored[0] == mark:
            print(f"input: reusing {KEPT_DATABASE} ({mark})")
        else:
            if stored is not None:
                raise SystemExit(f"{KEPT_DATABASE} holds other data ({stored[0]}); drop it first")
            print(f"input: the bundled Cairns feed ({network.feed_hash[:12]}), {mark}, simulator defaults "
                  "(every block once, default faults)")
            await fill(conn, network, days, args.seed)
            await conn.execute("INSERT INTO smartbus_meta (key, value) VALUES ('bench_punctuality', %s)", (mark,))
        started = time.perf_counter()
        await analyze_as_autovacuum(conn)
        print(f"ANALYZE of leaf tables (autovacuum's share): {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        await refresh_punctuality(conn)
        print(f"rollup refresh (smartbus.storage.queries.refresh_punctuality): {time.perf_counter() - started:.1f} s")
        await analyze_as_autovacuum(conn)  # again: autovacuum would, after a refresh rewrote the rollups
        await describe(conn, first, last)
        await compare_with_the_arrivals(conn, first, last, network.agency_timezone)
        route_id = await (await conn.execute(
            "SELECT route_id FROM stop_events WHERE service_date = %s GROUP BY 1 ORDER BY count(*) DESC LIMIT 1",
            (days[len(days) // 2],),
        )).fetchone()
        stop_id = await (await conn.execute(  # the busiest stop: the most arrivals one stop's filter reads
            "SELECT stop_id FROM stop_events WHERE service_date = %s GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1",
            (days[len(days) // 2],),
        )).fetchone()
    assert route_id is not None and stop_id is not None
    asked = queries(first, last, route_id[0], stop_id[0], days[len(days) // 2])
    print(f"timing: {len(asked)} queries, 1 first call each, then {args.repetitions} rounds of all in turn; "
          f"load before: {load()}")
    met = await time_api(url, network, asked, args.repetitions)
    print(f"load after: {load()}")
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=30, help="consecutive service days to simulate")
    parser.add_argument("--first-day", type=dt.date.fromisoformat, default=dt.date(2014, 6, 2),
                        help="the first of them (default: a Monday inside the feed's calendar)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the first day; each next day +1")
    parser.add_argument("--repetitions", type=int, default=100, help="timed rounds of every query")
    parser.add_argument("--database-url", help="a server where we may create a database (default: the settings')")
    parser.add_argument("--keep-database", action="store_true",
                        help=f"keep (and reuse) the data in a database named {KEPT_DATABASE}")
    args = parser.parse_args()
    settings = Settings()
    server = args.database_url or settings.database_url
    print(f"machine: {cpu_model() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {load()}")
    network = load_network(BUNDLED_FEED, REPO / "var" / "cache")
    name = KEPT_DATABASE if args.keep_database else f"smartbus_bench_punct_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists is None:
            admin.execute(f'CREATE DATABASE "{name}"')
    params = conninfo_to_dict(server)
    params["dbname"] = name
    try:
        met = asyncio.run(bench(make_conninfo("", **params), args, network))
    finally:
        if not args.keep_database:
            with psycopg.connect(server, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
