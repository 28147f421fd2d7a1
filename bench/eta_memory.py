"""The ETA stage's memory over a long run of a big fleet, in process: does it level off?

    .venv/bin/python bench/eta_memory.py [--vehicles 2000] [--minutes 20]

Drives --vehicles buses at 1 Hz, each on its own trip (bench/pipeline.py's fleet), through `EtaStage.handle` in
batches of 2,000 as the ETA worker runs it: its garbage collector set as the worker sets it, predictions walked at
the worker's rate for this share of a 10,000-bus fleet, outputs counted and dropped. Pings are made second by
second, so the process holds only the fleet's tracks (16 bytes a bus a second) besides the stage. Prints, at each
minute of fleet time: resident memory, its growth since the first minute, per 1,000 buses, and the CPU per ping.

The pipeline bench measures the whole worker on Kafka at 1 and 10 minutes; this one runs the stage alone for as
long as it takes the per-bus state to fill (the tracker keeps 15 minutes of a bus's fixes to place late ones).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.pipeline import _rss_mb, fleet_tracks  # noqa: E402
from eta import native  # noqa: E402
from eta.engine import Engine  # noqa: E402
from eta.network import load_network  # noqa: E402
from eta.prediction import LearningPredictor  # noqa: E402
from eta.worker import WALKS_PER_S, EtaStage, WalkAllowance  # noqa: E402
from smartbus import messages  # noqa: E402
from smartbus.bus.base import Record  # noqa: E402
from smartbus.gc_tuning import relax_gc  # noqa: E402
from smartbus.settings import BUNDLED_FEED  # noqa: E402

BATCH = 2000
FULL_FLEET = 10_000  # the worker's walk rate is set for this many buses


class DroppingProducer:
    def __init__(self) -> None:
        self.sent = 0

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, topic: str, value: bytes, key: str | None = None) -> None:
        self.sent += 1

    async def flush(self) -> None: ...


async def run(vehicles: int, minutes: int) -> None:
    seconds = minutes * 60
    tracks = fleet_tracks(vehicles, seconds, "mem")
    network = load_network(BUNDLED_FEED, REPO / "var" / "cache")
    fleet_clock = [0.0]  # walks are handed out by fleet time, not by how fast this process runs
    stage = EtaStage(
        Engine(network), LearningPredictor(network), DroppingProducer(),
        walks=WalkAllowance(WALKS_PER_S * vehicles / FULL_FLEET, clock=lambda: fleet_clock[0]),
    )
    stage.engine.ctx.shapes_near(0.0, 0.0)  # the spatial index, built once per network
    relax_gc()  # as the ETA worker does once its network is loaded (smartbus.gc_tuning)
    order = sorted(range(vehicles), key=lambda k: tracks[k].phase)  # each second, in the order buses report
    offset = 0
    first_rss: float | None = None
    cpu_started = time.process_time()
    for second in range(seconds):
        records = [
            Record(messages.TOPIC_PINGS, 0, offset + n, tracks[k].vehicle_id.encode(), tracks[k].ping(second))
            for n, k in enumerate(order)
        ]
        offset += len(records)
        for start in range(0, len(records), BATCH):
            fleet_clock[0] += min(BATCH, len(records) - start) / vehicles
            await stage.handle(records[start : start + BATCH])
        if (second + 1) % 60 == 0:
            rss = _rss_mb(os.getpid())
            first_rss = rss if first_rss is None else first_rss
            cpu_us = (time.process_time() - cpu_started) / (60 * vehicles) * 1e6
            cpu_started = time.process_time()
            print(f"{(second + 1) // 60:3d} min: resident {rss:7.1f} MB, {rss - first_rss:+6.1f} MB since the first "
                  f"minute ({(rss - first_rss) * 1000 / vehicles:+5.1f} MB per 1,000 buses); "
                  f"{cpu_us:5.1f} us of CPU a ping; {len(stage.engine.trackers):,} trackers", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vehicles", type=int, default=2000)
    parser.add_argument("--minutes", type=int, default=20)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"ETA core: {native.STATUS}")
    print(f"fleet: {args.vehicles:,} buses at 1 Hz on their own Cairns trips, {args.minutes} minutes of fleet time")
    asyncio.run(run(args.vehicles, args.minutes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
