"""`smartbus eta`: an ETA worker in the Kafka consumer group."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gtfs", type=Path, help="GTFS feed (zip or folder); default: settings (bundled feed)")
    parser.add_argument("--group", help="Kafka consumer group (default: settings.consumer_group)")
    parser.add_argument("--metrics-port", type=int, default=0, help="serve Prometheus metrics on this port")


def run(args: argparse.Namespace) -> int:
    from smartbus.settings import load_settings

    settings = load_settings()
    asyncio.run(_main(args.gtfs or settings.gtfs, args.group or settings.consumer_group, args.metrics_port))
    return 0


async def _main(gtfs: Path, group: str, metrics_port: int) -> None:
    from eta.engine import Engine
    from eta.network import load_network
    from eta.schedule_predictor import SchedulePredictor
    from eta.worker import EtaStage
    from smartbus import messages
    from smartbus.bus.kafka import KafkaConsumer, KafkaProducer, ensure_topics
    from smartbus.settings import load_settings
    from smartbus.stream.loop import run_stage
    from smartbus.stream.process import serve_metrics, start_with_retry, stop_on_signals

    settings = load_settings()
    network = load_network(gtfs, settings.cache_dir)
    producer = KafkaProducer(settings.kafka_bootstrap, topic_prefix=settings.kafka_topic_prefix)
    stage = EtaStage(Engine(network), SchedulePredictor(network).predict, producer)
    consumer = KafkaConsumer(
        settings.kafka_bootstrap, [messages.TOPIC_PINGS], group, topic_prefix=settings.kafka_topic_prefix
    )
    stop = asyncio.Event()
    stop_on_signals(stop)
    serve_metrics(metrics_port)
    async def make_topics() -> None:
        await ensure_topics(
            settings.kafka_bootstrap, messages.ALL_TOPICS, settings.kafka_partitions,
            topic_prefix=settings.kafka_topic_prefix,
        )

    if not await start_with_retry("Kafka topics", make_topics, stop):
        return
    if not await start_with_retry("Kafka producer", producer.start, stop):
        return
    if not await start_with_retry("Kafka consumer", consumer.start, stop):
        await producer.stop()
        return
    log.info("eta worker running: group %s, feed %s", group, network.feed_hash[:12])
    try:
        await run_stage("eta", consumer, stage.handle, stop)
    finally:
        await consumer.stop()
        await producer.stop()
