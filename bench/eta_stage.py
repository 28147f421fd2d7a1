"""The ETA stage alone, in process: pings in as bus records, what it sends out, and its CPU cost.

    .venv/bin/python bench/eta_stage.py [--pings DIR/pings.csv] [--seed 7] [--date 2024-05-16] [--limit 20000]
                                        [--sinks]

Without --pings it simulates a Cairns day first (`smartbus simulate`, defaults). The pings are encoded as
the `pings` topic carries them and handed to `EtaStage.handle` in batches of 2,000 (as the Kafka loop does),
with a producer that only counts what it is given. Prints pings per CPU-second of this process (the
worker's ceiling on one core, before Kafka's own cost), and messages and bytes per output topic.

With --sinks (needs the real PostgreSQL and Redis of `smartbus services up`), the stage's outputs then go
through the two writer stages as `smartbus writer` runs them, StorageSink into a fresh database and LiveSink
into a fresh Redis namespace, each timed the same way (pings per CPU-second of this process; the services'
own CPU is not counted).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from eta import native  # noqa: E402
from eta.engine import Engine  # noqa: E402
from eta.network import load_network  # noqa: E402
from eta.prediction import LearningPredictor  # noqa: E402
from eta.replay import read_pings  # noqa: E402
from eta.worker import EtaStage  # noqa: E402
from smartbus import messages  # noqa: E402
from smartbus.bus.base import Record  # noqa: E402

FEED = REPO / "simulator" / "data" / "cairns_gtfs.zip"
BATCH = 2000


class CountingProducer:
    def __init__(self) -> None:
        self.messages: Counter[str] = Counter()
        self.bytes: Counter[str] = Counter()
        self.kept: list[Record] = []

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, topic: str, value: bytes, key: str | None = None) -> None:
        self.messages[topic] += 1
        self.bytes[topic] += len(value)
        self.kept.append(Record(topic, 0, len(self.kept), (key or "").encode(), value))

    async def flush(self) -> None: ...


async def run(records: list[Record]) -> tuple[float, CountingProducer]:
    network = load_network(FEED, REPO / "var" / "cache")
    producer = CountingProducer()
    stage = EtaStage(Engine(network), LearningPredictor(network), producer)
    stage.engine.ctx.shapes_near(0.0, 0.0)  # the spatial index is built once per network: not per ping
    started = time.process_time()
    for start in range(0, len(records), BATCH):
        await stage.handle(records[start : start + BATCH])
    return time.process_time() - started, producer


async def run_sinks(outputs: list[Record], pings: int) -> None:
    import uuid

    import psycopg
    import redis.asyncio as aioredis

    from bench.scratch_database import scratch_database
    from smartbus.live.redis_store import RedisLiveStore
    from smartbus.settings import Settings
    from smartbus.stream.sinks import LiveSink, StorageSink

    settings = Settings()
    name = f"bench_stage_{uuid.uuid4().hex[:8]}"
    async with scratch_database(settings.database_url, name) as url:

        async def connect() -> psycopg.AsyncConnection:
            return await psycopg.AsyncConnection.connect(url)

        storage = StorageSink(connect)
        live = RedisLiveStore(settings.redis_url, namespace=name)
        redis = aioredis.Redis.from_url(settings.redis_url)

        async def redis_cpu() -> float:
            info = await redis.info("cpu")
            return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

        for label, handle in (("storage writer", storage.handle), ("live writer", LiveSink(live).handle)):
            cpu, wall, server = time.process_time(), time.perf_counter(), await redis_cpu()
            for start in range(0, len(outputs), BATCH):
                await handle(outputs[start : start + BATCH])
            cpu, wall, server = time.process_time() - cpu, time.perf_counter() - wall, await redis_cpu() - server
            print(f"{label}: {pings / cpu:,.0f} pings per CPU-second ({cpu:.1f} s of CPU, {wall:.1f} s wall; "
                  f"Redis server meanwhile {server:.1f} s of CPU, all clients)")
        await redis.aclose()
        await storage.close()
        await live.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pings", type=Path)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--date", default="2024-05-16")
    parser.add_argument("--limit", type=int, default=20_000, help="pings to send (the day's first)")
    parser.add_argument("--sinks", action="store_true", help="also time the storage and live writer stages")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pings_path = args.pings
        if pings_path is None:
            subprocess.run(
                [str(Path(sys.executable).with_name("smartbus")), "simulate", "--gtfs", str(FEED), "--seed",
                 str(args.seed), "--date", args.date, "--out", tmp, "--no-progress"],
                check=True, capture_output=True,
            )
            pings_path = Path(tmp) / "pings.csv"
        pings = list(read_pings(pings_path, Counter()))[: args.limit]
    records = [
        Record(messages.TOPIC_PINGS, 0, k, p.vehicle_id.encode(), messages.encode(p)) for k, p in enumerate(pings)
    ]
    load = os.getloadavg()
    cpu_s, producer = asyncio.run(run(records))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"load average {load[0]:.2f} before, {os.getloadavg()[0]:.2f} after")
    print(f"ETA core: {native.STATUS}")
    print(f"input: {len(records):,} pings of {pings_path if args.pings else f'a Cairns day (seed {args.seed})'}")
    print(f"ETA stage: {len(records) / cpu_s:,.0f} pings per CPU-second ({cpu_s:.1f} s of CPU)")
    for topic in sorted(producer.messages):
        count, size = producer.messages[topic], producer.bytes[topic]
        print(f"  {topic:<16} {count:>8,} messages  {size / 1e6:8.1f} MB  {size / len(records):7.0f} bytes per ping")
    if args.sinks:
        asyncio.run(run_sinks(producer.kept, len(records)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
