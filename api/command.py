"""`smartbus api`: serve the REST api, websockets and pages with uvicorn, against Redis and a GTFS feed.

`smartbus api --create-key NAME --roles analyst,operator` instead stores a new API key and prints it once.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Final

from smartbus.gc_tuning import GC_THRESHOLDS as _GC_THRESHOLDS
from smartbus.gc_tuning import relax_gc

# How uvicorn serves the api's websockets, wherever it runs: `smartbus api`, the demo, bench/fanout.py, tests.
WEBSOCKET_OPTIONS: Final[dict[str, Any]] = {
    # The implementation api.frames writes stop boards to directly (bench/fanout.py: the plain ASGI path cost
    # about the same on all three; only this one has the direct path).
    "ws": "websockets-sansio",
    "ws_per_message_deflate": False,  # compression costs a third of broadcast throughput for small JSON
    "ws_max_size": 64 * 1024,  # riders send us nothing we need; a big frame is hostile
    "ws_ping_interval": 20.0,  # heartbeats: a rider whose connection died silently is noticed and let go
    "ws_ping_timeout": 20.0,
}


# The collector's thresholds for the api process: smartbus.gc_tuning says why. Nothing is frozen at start:
# the api's big heap is its connections, which come and go.
GC_THRESHOLDS: Final = _GC_THRESHOLDS


def tune_garbage_collector() -> None:
    relax_gc(freeze=False)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=None, help="address to listen on (default: settings api_host)")
    parser.add_argument("--port", type=int, default=None, help="port to listen on (default: settings api_port)")
    parser.add_argument("--gtfs", type=Path, default=None, help="GTFS zip (default: settings gtfs, the bundled feed)")
    parser.add_argument(
        "--no-database", action="store_true",
        help="serve riders from Redis alone; analyst and operator endpoints answer 503",
    )
    parser.add_argument("--create-key", metavar="NAME", help="store a new API key for NAME, print it, and exit")
    parser.add_argument("--roles", default="analyst", help="roles of --create-key: operator,analyst,admin")
    parser.add_argument("--revoke-key", metavar="KEY_ID", help="revoke the key with this id (after 'sb_') and exit")


def run(args: argparse.Namespace) -> int:
    from smartbus.settings import load_settings

    settings = load_settings()
    if args.create_key or args.revoke_key:
        return _manage_keys(args, settings.database_url)

    import uvicorn

    from api.app import create_app
    from api.database import Database
    from eta.network import load_network
    from smartbus.live.notices import RedisNoticeStore
    from smartbus.live.redis_store import RedisLiveStore

    network = load_network(args.gtfs or settings.gtfs, settings.cache_dir)
    tune_garbage_collector()
    live = RedisLiveStore(settings.redis_url)
    app = create_app(
        live,
        network,
        tile_url=settings.map_tile_url,
        tile_attribution=settings.map_tile_attribution,
        notices=RedisNoticeStore(settings.redis_url),
        database=None if args.no_database else Database(settings.database_url),
    )
    uvicorn.run(
        app,
        host=args.host or settings.api_host,
        port=args.port or settings.api_port,
        **WEBSOCKET_OPTIONS,
        backlog=4096,  # thousands of riders reconnect at once after a network blip
        log_level="info",
    )
    return 0


def _manage_keys(args: argparse.Namespace, database_url: str) -> int:
    import asyncio

    import psycopg

    from api.keys import ROLES, create_key, revoke_key
    from smartbus.storage.migrate import migrate

    async def main() -> int:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            await migrate(conn)
            if args.revoke_key:
                done = await revoke_key(conn, args.revoke_key)
                print("revoked" if done else "no such live key")
                return 0 if done else 1
            roles = [r.strip() for r in args.roles.split(",") if r.strip()]
            if not set(roles) <= set(ROLES):
                print(f"roles must be some of {', '.join(ROLES)}")
                return 2
            print(await create_key(conn, args.create_key, roles))
            return 0

    return asyncio.run(main())
