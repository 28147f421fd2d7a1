"""`smartbus writer`: the storage writer (PostgreSQL) and the live-state writer (Redis), one process or two.

Each has its own consumer group, so each commits only what it made durable in its own store, and a
slow database never holds back the live boards. Under load run them as two processes (`--only storage`,
`--only live`, as docker-compose does): a burst of predictions then has a core for each. The storage writer
alone lowers its CPU priority by STORAGE_NICE: on a machine it shares, the live path (ETA workers, the live
writer, Redis) comes first when the CPU runs short, and the history catches up from Kafka when it does not
(bench/pipeline.py runs them so, or in one process with --one-writer).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Final

log = logging.getLogger(__name__)

STORAGE_NICE: Final = 10
# Each writer commits its offsets at most once a second, not after every batch (30 and more a second at 10,000
# pings/s). A commit is a round trip the stage waits for before its next batch (on the live writer, every state
# behind it waits too), and a record per partition appended to Kafka's __consumer_offsets, which the broker then
# compacts. Committing every batch, a minute at 10,000 pings/s appended some 50,000 records there (2,900 now), and
# compacting a million of them took the broker a whole core for two seconds, when every ping in flight waited. A
# writer that restarts writes up to a second's batches again, which changes nothing (both stores are idempotent).
COMMIT_EVERY_S: Final = 1.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--only", choices=("storage", "live"), help="run one of the two writers")
    parser.add_argument(
        "--metrics-port", type=int, default=0, help="serve /metrics, /healthz and /readyz on this port"
    )
    parser.add_argument("--plain", action="store_true", help="use the plain PostgreSQL path even with TimescaleDB")
    parser.add_argument("--json-logs", action="store_true", help="one JSON object per log line")
    parser.add_argument("--redis-namespace", default="smartbus", help="key prefix of the live state in Redis")


def run(args: argparse.Namespace) -> int:
    from smartbus.stream.process import configure_logging

    if args.json_logs:
        configure_logging(json_logs=True)
    if args.only == "storage":
        try:
            os.nice(STORAGE_NICE)
        except OSError as exc:  # a platform or sandbox that refuses: run at the priority we were given
            log.warning("could not lower the storage writer's CPU priority: %s", exc)
    asyncio.run(_main(args.only, args.metrics_port, args.plain, args.redis_namespace))
    return 0


async def _main(only: str | None, metrics_port: int, force_plain: bool, redis_namespace: str) -> None:
    import psycopg

    from smartbus import messages
    from smartbus.bus.kafka import KafkaConsumer
    from smartbus.errors import ServiceUnavailable
    from smartbus.gc_tuning import relax_gc
    from smartbus.live.redis_store import RedisLiveStore
    from smartbus.settings import load_settings
    from smartbus.storage.migrate import migrate
    from smartbus.stream.loop import run_stage
    from smartbus.stream.pipeline import GROUP_LIVE, GROUP_STORAGE, OUTPUT_TOPICS
    from smartbus.stream.process import ensure_topics_with_retry, serve_metrics, start_with_retry, stop_on_signals
    from smartbus.stream.sinks import LiveSink, StorageSink

    settings = load_settings()
    relax_gc()  # smartbus.gc_tuning: records in, rows out, at a high rate
    stop = asyncio.Event()
    stop_on_signals(stop)
    serve_metrics(metrics_port)
    tasks = []
    # what is stopped or closed on the way out, whichever way that is: a consumer not stopped leaves its group only
    # when its session times out (10 s), and a writer started in its place waits that long for the partitions
    closing: list[Callable[[], Awaitable[None]]] = []
    try:
        if not await ensure_topics_with_retry(settings, stop):
            return
        if only in (None, "storage"):
            async def migrate_database() -> None:
                try:
                    async with await psycopg.AsyncConnection.connect(settings.database_url) as conn:
                        await migrate(conn, force_plain=force_plain)
                except psycopg.OperationalError as exc:
                    raise ServiceUnavailable(f"PostgreSQL: {exc}") from exc

            if not await start_with_retry("PostgreSQL", migrate_database, stop):
                return

            async def connect() -> psycopg.AsyncConnection:
                return await psycopg.AsyncConnection.connect(settings.database_url)

            storage_consumer = KafkaConsumer(
                settings.kafka_bootstrap, [*OUTPUT_TOPICS, messages.TOPIC_PINGS_REJECTED],
                GROUP_STORAGE,
                topic_prefix=settings.kafka_topic_prefix,
            )
            if not await start_with_retry("Kafka consumer", storage_consumer.start, stop):
                return
            closing.append(storage_consumer.stop)
            sink = StorageSink(connect)
            closing.append(sink.close)
            tasks.append(asyncio.create_task(run_stage(
                "storage", storage_consumer, sink.handle, stop, commit_every_s=COMMIT_EVERY_S
            )))
        if only in (None, "live"):
            live = RedisLiveStore(settings.redis_url, namespace=redis_namespace)
            closing.append(live.close)
            live_consumer = KafkaConsumer(
                settings.kafka_bootstrap, OUTPUT_TOPICS, GROUP_LIVE, topic_prefix=settings.kafka_topic_prefix
            )
            if not await start_with_retry("Kafka consumer", live_consumer.start, stop):
                return
            closing.append(live_consumer.stop)
            tasks.append(asyncio.create_task(run_stage(
                "live", live_consumer, LiveSink(live).handle, stop, commit_every_s=COMMIT_EVERY_S
            )))
        log.info("writer running: %s", only or "storage and live")
        await asyncio.gather(*tasks)
    finally:
        for close in closing:
            try:
                await close()
            except Exception as exc:  # a service already gone: the rest are closed all the same
                log.warning("closing on the way out failed: %s", exc)
