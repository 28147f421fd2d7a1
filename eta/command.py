"""`smartbus eta`: an ETA worker in the Kafka consumer group.

Vehicle trackers are snapshotted to Redis after every batch, so a restarted worker, or one that takes
partitions over from another, carries on each vehicle where it was (see smartbus.stream.tracker_snapshots).
What the predictor learned is kept in PostgreSQL, loaded at start and saved every few minutes (see
smartbus.stream.learned_state).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from eta.engine import Engine
    from eta.prediction import LearningPredictor

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gtfs", type=Path, help="GTFS feed (zip or folder); default: settings (bundled feed)")
    parser.add_argument("--group", help="Kafka consumer group (default: settings.consumer_group)")
    parser.add_argument(
        "--metrics-port", type=int, default=0, help="serve /metrics, /healthz and /readyz on this port"
    )
    parser.add_argument("--json-logs", action="store_true", help="one JSON object per log line")
    parser.add_argument(
        "--no-snapshots", action="store_true", help="keep tracker state in memory only (lost on restart)"
    )
    parser.add_argument(
        "--redis-namespace", default="smartbus",
        help="key prefix in Redis of the tracker snapshots and of the operators' notices (the api's: smartbus)",
    )
    parser.add_argument(
        "--reload-seconds", type=float, default=30.0,
        help="check the GTFS feed for a new version this often and switch to it without stopping (0 = never)",
    )
    parser.add_argument(
        "--walks-per-second", type=float, default=None,
        help="whole walks of a bus's stops ahead the predictor may make a second, so that a fleet first heard all "
        "at once (a start, a restart) is walked over seconds (default: 500; 0 = unlimited)",
    )


def run(args: argparse.Namespace) -> int:
    from smartbus.settings import load_settings
    from smartbus.stream.process import configure_logging

    if args.json_logs:
        configure_logging(json_logs=True)
    settings = load_settings()
    asyncio.run(
        _main(
            args.gtfs or settings.gtfs,
            args.group or settings.consumer_group,
            args.metrics_port,
            None if args.no_snapshots else args.redis_namespace,
            args.reload_seconds,
            args.redis_namespace,
            args.walks_per_second,
        )
    )
    return 0


async def _main(
    gtfs: Path,
    group: str,
    metrics_port: int,
    snapshot_namespace: str | None,
    reload_seconds: float,
    notices_namespace: str,
    walks_per_second: float | None = None,
) -> None:
    from eta import native
    from eta.engine import Engine
    from eta.network import Network, load_network
    from eta.worker import CHECKPOINT_EVERY_S, WALKS_PER_S, EtaStage, WalkAllowance
    from smartbus import messages
    from smartbus.bus.kafka import KafkaConsumer, KafkaProducer
    from smartbus.gc_tuning import relax_gc
    from smartbus.live.notices import RedisNoticeStore
    from smartbus.settings import load_settings
    from smartbus.stream.feed_watch import watch_feed
    from smartbus.stream.learned_state import learned_state_keeper
    from smartbus.stream.loop import run_stage
    from smartbus.stream.overrides import OverrideFeed
    from smartbus.stream.process import ensure_topics_with_retry, serve_metrics, start_with_retry, stop_on_signals
    from smartbus.stream.tracker_snapshots import RedisTrackerSnapshots

    log.info("ETA core: %s", native.STATUS)  # interpreted is correct, but slower: say which this worker runs
    settings = load_settings()
    network = load_network(gtfs, settings.cache_dir)
    learned = learned_state_keeper(settings, network, group)
    engine = Engine(network)
    _warm(engine, learned.predictor)
    relax_gc()  # the network is loaded and warmed: out of the collector's sight (smartbus.gc_tuning)
    # No linger: the stage hands over each batch's outputs whole and then waits for them (flush), so lingering
    # only delayed every batch, by 5 ms of its ~10 ms flush at 10,000 pings/s (bench/pipeline.py, batch phase
    # metrics: flush 9.5 ms a batch at 5 ms, 4.1 at 0)
    producer = KafkaProducer(settings.kafka_bootstrap, topic_prefix=settings.kafka_topic_prefix, linger_ms=0)

    def snapshots_for(version: str) -> RedisTrackerSnapshots | None:
        if snapshot_namespace is None:
            return None
        return RedisTrackerSnapshots(settings.redis_url, version, namespace=snapshot_namespace)

    snapshots = snapshots_for(network.feed_hash)
    # operators' trip assignments, written by the api into the same Redis namespace
    notices = RedisNoticeStore(settings.redis_url, namespace=notices_namespace)
    walks = WalkAllowance(WALKS_PER_S if walks_per_second is None else walks_per_second or math.inf)
    stage = EtaStage(engine, learned.predictor, producer, snapshots, OverrideFeed(notices), walks)

    def switch(new: Network) -> None:
        new_engine, new_predictor = Engine(new), learned.switch(new)
        _warm(new_engine, new_predictor)
        stage.use_network(new_engine, new_predictor, snapshots_for(new.feed_hash))
    consumer = KafkaConsumer(
        settings.kafka_bootstrap,
        [messages.TOPIC_PINGS],
        group,
        topic_prefix=settings.kafka_topic_prefix,
        on_assigned=stage.forget_vehicles,
    )
    stop = asyncio.Event()
    stop_on_signals(stop)
    serve_metrics(metrics_port)

    if not await ensure_topics_with_retry(settings, stop):
        return
    if not await start_with_retry("Kafka producer", producer.start, stop):
        return
    if not await start_with_retry("Kafka consumer", consumer.start, stop):
        await producer.stop()
        return
    await learned.start()  # what the group learned, loaded in a few seconds at most (else cold, and it says so)
    log.info("eta worker running: group %s, feed %s", group, network.feed_hash[:12])
    watcher = None
    if reload_seconds > 0:
        watcher = asyncio.create_task(
            watch_feed(
                gtfs, network.feed_hash, lambda path: load_network(path, settings.cache_dir), switch, stop,
                interval_s=reload_seconds,
            )
        )
    try:
        await run_stage(
            "eta", consumer, stage.handle, stop, checkpoint=stage.checkpoint, commit_every_s=CHECKPOINT_EVERY_S
        )
    finally:
        if watcher is not None:
            watcher.cancel()
        await consumer.stop()
        await producer.stop()
        await learned.close()  # a last save, with everything the stage learned
        await stage.finish_saving()
        if snapshots is not None:
            await snapshots.close()
        await notices.close()


def _warm(engine: Engine, predictor: LearningPredictor) -> None:
    """Build the matchers and trip plans before the first ping: at a start every bus is new at once, and
    building them on the way made the first seconds' pings wait (bench/pipeline.py's first window)."""
    started = time.perf_counter()
    engine.warm()
    predictor.warm()
    log.info("matchers and trip plans built in %.1f s", time.perf_counter() - started)
