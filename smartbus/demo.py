"""`smartbus demo`: the whole service with simulated buses, in one process, with no system services.

Same components as production: the simulator publishes serialized pings onto the in-process bus (in place
of Kafka), the ETA stage, the storage writer into a real PostgreSQL started from PyPI wheels (in place of
the server; same schema, same SQL), the live-state writer into the in-process twin of the Redis store, and
the api with its pages and websockets. What the predictor learns is kept in that database, as the ETA
worker keeps it in PostgreSQL, so a demo started again on the same --data-dir predicts from it.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import time
from pathlib import Path
from zoneinfo import ZoneInfo

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=8000, help="HTTP port of the api and pages (default 8000)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--gtfs", type=Path, help="GTFS feed (zip or folder); default: the bundled Cairns feed")
    parser.add_argument("--vehicles", type=int, default=None, help="buses in service at the busiest moment "
                        "(default: as many as the feed's schedule runs)")
    parser.add_argument("--speed", type=float, default=1.0, help="simulated seconds per real second, 1 to 100")
    parser.add_argument("--seed", type=int, default=0, help="simulator seed")
    parser.add_argument("--data-dir", type=Path, default=Path("var/demo"),
                        help="where the embedded PostgreSQL keeps its data (default var/demo)")


def run(args: argparse.Namespace) -> int:
    if not 1.0 <= args.speed <= 100.0:
        raise SystemExit("--speed must be between 1 and 100")
    try:
        asyncio.run(_main(args))
    except KeyboardInterrupt:
        pass
    return 0


async def _main(args: argparse.Namespace) -> None:
    import psycopg
    import uvicorn

    from api.app import create_app
    from api.command import WEBSOCKET_OPTIONS
    from api.database import Database
    from api.keys import create_key
    from eta.network import load_network
    from simulator.live import run_live
    from smartbus.bus.memory import MemoryBus
    from smartbus.demo_clock import DemoClock, first_moment_with_service
    from smartbus.gc_tuning import relax_gc
    from smartbus.live.memory_store import MemoryLiveStore
    from smartbus.live.notices import MemoryNoticeStore
    from smartbus.messages import TOPIC_PINGS
    from smartbus.settings import load_settings
    from smartbus.storage.embedded import embedded_postgres
    from smartbus.storage.migrate import migrate
    from smartbus.stream.learned_state import learned_state_keeper
    from smartbus.stream.pipeline import GROUP_ETA, Pipeline
    from smartbus.stream.process import stop_on_signals
    from smartbus.stream.sinks import StorageSink

    settings = load_settings()
    started = time.monotonic()
    network = load_network(args.gtfs or settings.gtfs, settings.cache_dir)
    relax_gc()  # smartbus.gc_tuning: the network is loaded, then pings, states and boards at a high rate
    wall_now = time.time()
    sim_start = first_moment_with_service(network, wall_now)
    local_start = dt.datetime.fromtimestamp(sim_start, ZoneInfo(network.agency_timezone))
    if sim_start > wall_now:
        print(f"No buses run at this hour in the timetable: the demo's clock starts at {local_start:%H:%M} "
              f"({network.agency_timezone}), {(sim_start - wall_now) / 3600:.1f} h ahead.")
    feed_day, mapped = network.service_day_for(local_start.date())
    if mapped:
        print(f"The feed has no service on {local_start.date()}: running the timetable of {feed_day} "
              "(same weekday) on it.")
    clock = DemoClock(sim_start, args.speed)
    stop = asyncio.Event()
    stop_on_signals(stop)
    with embedded_postgres(args.data_dir.resolve() / "postgres") as database_url:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            flavour = await migrate(conn)
            demo_key = await create_key(conn, "demo", ["analyst", "operator"])
        print(f"Embedded PostgreSQL ready ({flavour}).")

        async def connect() -> psycopg.AsyncConnection:
            return await psycopg.AsyncConnection.connect(database_url)

        bus = MemoryBus()
        live = MemoryLiveStore()
        storage = StorageSink(connect)
        notices = MemoryNoticeStore()  # what operators write through the api, the ETA stage follows
        # what the predictor learned in earlier runs on this data directory, and saved for the next
        learned = learned_state_keeper(settings, network, GROUP_ETA, database_url)
        pipeline = Pipeline(network, bus.producer, bus.consumer, storage, live, notices, clock, learned)
        producer = bus.producer()

        async def send(key: str, value: bytes) -> None:
            await producer.send(TOPIC_PINGS, value, key)

        database = Database(database_url)
        app = create_app(
            live,
            network,
            tile_url=settings.map_tile_url,
            tile_attribution=settings.map_tile_attribution,
            clock=clock,
            notices=notices,
            database=database,
        )
        server = uvicorn.Server(
            uvicorn.Config(app, host=args.host, port=args.port, log_level="warning", **WEBSOCKET_OPTIONS)
        )
        tasks = [
            asyncio.create_task(pipeline.run(stop)),
            asyncio.create_task(
                run_live(network, send, vehicles=args.vehicles, seed=args.seed, speed=args.speed,
                         start_at=clock.sim_start)
            ),
            asyncio.create_task(server.serve()),
        ]
        url = f"http://{args.host}:{args.port}/"
        print(f"smartbus demo running ({time.monotonic() - started:.1f} s to start): open {url}  (Ctrl-C stops)")
        print(f"  rider board: {url}stops/<stop_id>   analysts: {url}analytics   "
              f"demo key (analyst, operator): {demo_key}")
        await stop.wait()
        server.should_exit = True
        for task in tasks[1:2]:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await storage.close()
