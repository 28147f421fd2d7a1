"""`smartbus ingest`: the HTTP ingest edge, publishing to Kafka."""

from __future__ import annotations

import argparse
import asyncio


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)


def run(args: argparse.Namespace) -> int:
    asyncio.run(_main(args.host, args.port))
    return 0


async def _main(host: str, port: int) -> None:
    import uvicorn

    from ingest.edge import IngestEdge
    from ingest.http_app import create_ingest_app
    from smartbus.bus.kafka import KafkaProducer
    from smartbus.settings import load_settings

    settings = load_settings()
    producer = KafkaProducer(settings.kafka_bootstrap, topic_prefix=settings.kafka_topic_prefix)
    await producer.start()
    try:
        app = create_ingest_app(IngestEdge(producer))
        await uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="info")).serve()
    finally:
        await producer.stop()
