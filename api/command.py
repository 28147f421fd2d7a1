"""`smartbus api`: serve the REST api, websockets and pages with uvicorn, against Redis and a GTFS feed."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=None, help="address to listen on (default: settings api_host)")
    parser.add_argument("--port", type=int, default=None, help="port to listen on (default: settings api_port)")
    parser.add_argument("--gtfs", type=Path, default=None, help="GTFS zip (default: settings gtfs, the bundled feed)")


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app
    from eta.network import load_network
    from smartbus.live.redis_store import RedisLiveStore
    from smartbus.settings import load_settings

    settings = load_settings()
    network = load_network(args.gtfs or settings.gtfs, settings.cache_dir)
    live = RedisLiveStore(settings.redis_url)
    app = create_app(live, network, tile_url=settings.map_tile_url, tile_attribution=settings.map_tile_attribution)
    uvicorn.run(
        app,
        host=args.host or settings.api_host,
        port=args.port or settings.api_port,
        ws_per_message_deflate=False,  # compression costs a third of broadcast throughput for small JSON
        log_level="info",
    )
    return 0
