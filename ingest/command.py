"""`smartbus ingest`: the HTTP ingest edge publishing to Kafka, and the device token registry.

    smartbus ingest [--require-tokens] [--port 8001] [--metrics-port 9101]   serve POST /v1/pings
    smartbus ingest --issue-token VEHICLE [--feed NAME] [--note TEXT]      print a new token (shown once)
    smartbus ingest --revoke-token TOKEN_ID
    smartbus ingest --list-tokens
    smartbus ingest --gtfs-rt URL [--feed NAME] [--poll-seconds 15]        poll a VehiclePositions feed
"""

from __future__ import annotations

import argparse
import asyncio


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--metrics-port", type=int, default=0, help="serve /metrics, /healthz, /readyz here")
    parser.add_argument("--json-logs", action="store_true", help="one JSON object per log line")
    parser.add_argument("--require-tokens", action="store_true", help="every batch needs a device token")
    parser.add_argument("--feed", default="default", help="feed name: namespaces vehicle ids")
    parser.add_argument("--issue-token", metavar="VEHICLE", help="issue a token for this vehicle and exit")
    parser.add_argument("--note", default="", help="note stored with an issued token")
    parser.add_argument("--revoke-token", metavar="TOKEN_ID", help="revoke this token and exit")
    parser.add_argument("--list-tokens", action="store_true", help="list the registry and exit")
    parser.add_argument("--gtfs-rt", metavar="URL", help="poll this GTFS-realtime VehiclePositions feed")
    parser.add_argument("--poll-seconds", type=float, default=15.0, help="GTFS-realtime polling interval")


def run(args: argparse.Namespace) -> int:
    from smartbus.stream.process import configure_logging

    if args.json_logs:
        configure_logging(json_logs=True)
    if args.issue_token or args.revoke_token or args.list_tokens:
        return asyncio.run(_registry(args))
    if args.gtfs_rt:
        asyncio.run(_poll(args.gtfs_rt, args.feed, args.poll_seconds, args.metrics_port))
        return 0
    asyncio.run(_serve(args.host, args.port, args.require_tokens, args.metrics_port))
    return 0


async def _registry(args: argparse.Namespace) -> int:
    import psycopg

    from ingest.tokens import issue_token, list_tokens, revoke_token
    from smartbus.settings import load_settings
    from smartbus.storage.migrate import migrate

    settings = load_settings()
    async with await psycopg.AsyncConnection.connect(settings.database_url) as conn:
        await migrate(conn)
        if args.issue_token:
            issued = await issue_token(conn, args.issue_token, args.feed, args.note)
            print(f"token for {issued.identity.namespaced_vehicle_id} (id {issued.identity.token_id}):")
            print(issued.token)
            return 0
        if args.revoke_token:
            if await revoke_token(conn, args.revoke_token):
                print(f"revoked {args.revoke_token}")
                return 0
            print(f"no live token {args.revoke_token}")
            return 1
        for token_id, feed, vehicle_id, note, revoked in await list_tokens(conn):
            print(f"{token_id}  {feed}:{vehicle_id}  {'revoked' if revoked else 'live'}  {note}")
        return 0


async def _serve(host: str, port: int, require_tokens: bool, metrics_port: int) -> None:
    import psycopg
    import uvicorn

    from ingest.edge import IngestEdge
    from ingest.http_app import create_ingest_app
    from ingest.tokens import TokenVerifier
    from smartbus.bus.kafka import KafkaProducer
    from smartbus.settings import load_settings
    from smartbus.stream.process import serve_metrics

    settings = load_settings()
    serve_metrics(metrics_port)
    producer = KafkaProducer(settings.kafka_bootstrap, topic_prefix=settings.kafka_topic_prefix)
    await producer.start()

    async def connect() -> psycopg.AsyncConnection:
        return await psycopg.AsyncConnection.connect(settings.database_url)

    verifier = TokenVerifier(connect) if require_tokens else None
    try:
        app = create_ingest_app(IngestEdge(producer), verifier)
        await uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="info")).serve()
    finally:
        await producer.stop()


async def _poll(url: str, feed: str, interval_s: float, metrics_port: int) -> None:
    from ingest.edge import IngestEdge
    from ingest.gtfs_rt import GtfsRtPoller
    from smartbus.bus.kafka import KafkaProducer
    from smartbus.settings import load_settings
    from smartbus.stream.process import serve_metrics, stop_on_signals

    settings = load_settings()
    serve_metrics(metrics_port)
    # no linger: each poll hands over its feed's pings whole and waits for them (eta.command says what it cost)
    producer = KafkaProducer(settings.kafka_bootstrap, topic_prefix=settings.kafka_topic_prefix, linger_ms=0)
    await producer.start()
    stop = asyncio.Event()
    stop_on_signals(stop)
    try:
        await GtfsRtPoller(url, feed, IngestEdge(producer, source="gtfs-rt")).run(stop, interval_s)
    finally:
        await producer.stop()
