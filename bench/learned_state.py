"""The learned prediction state of a simulated Cairns day: its size, and what saving and loading it cost.

    .venv/bin/python bench/learned_state.py [--pings DIR/pings.csv] [--seed 7] [--date 2024-05-14] [--repeat 7]
                                            [--database-url URL]

Without --pings it simulates a Cairns day first (`smartbus simulate`, defaults). The tracker runs over the
pings and the learning predictor learns from the stop events, as the ETA worker does. Then, --repeat times
(medians reported), on a scratch database (the services' server when it answers, else an embedded one):
- save: the ETA worker's own `LearnedStateKeeper.save` (encode a slice at a time on the event loop, gzip in
  a thread, write), with a 1 ms ticker on the loop measuring the worst delay the loop suffered meanwhile;
- the baseline: the same state encoded in one go on the loop (`state_bytes()`), which holds it throughout;
- load: `LearnedStates.load`; restore: bytes to a predictor (decode, adopt, merge into an empty model).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psycopg
from prometheus_client import REGISTRY
from psycopg.conninfo import conninfo_to_dict, make_conninfo

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from eta.engine import Engine  # noqa: E402
from eta.network import Network, load_network  # noqa: E402
from eta.prediction import LearningPredictor  # noqa: E402
from eta.replay import read_pings  # noqa: E402
from smartbus.settings import Settings  # noqa: E402
from smartbus.storage.embedded import embedded_postgres  # noqa: E402
from smartbus.storage.learned_state import LearnedStates  # noqa: E402
from smartbus.storage.migrate import migrate  # noqa: E402
from smartbus.stream.learned_state import LearnedStateKeeper  # noqa: E402

FEED = REPO / "simulator" / "data" / "cairns_gtfs.zip"


def _load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _median_ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1e3:8.1f} ms"


def _timed(repeat: int, work: Callable[[], object]) -> list[float]:
    found = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        found.append(time.perf_counter() - started)
    return found


def _learn(network: Network, pings_path: Path) -> tuple[LearningPredictor, int, float]:
    engine, predictor = Engine(network), LearningPredictor(network)
    started = time.perf_counter()
    events = 0
    for ping in read_pings(pings_path, Counter()):
        output = engine.process(ping)
        if output.events:
            predictor.observe(output.events)
            events += len(output.events)
    return predictor, events, time.perf_counter() - started


@contextmanager
def _scratch_database(url: str | None) -> Iterator[str]:
    with ExitStack() as stack:
        server = url or _answering(Settings().database_url)
        if server is None:
            data_dir = Path(tempfile.mkdtemp(prefix="smartbus-pg-bench-"))
            stack.callback(shutil.rmtree, data_dir, True)
            server = stack.enter_context(embedded_postgres(data_dir, delete=True))
        name = f"smartbus_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            params = conninfo_to_dict(server)
            params["dbname"] = name
            yield make_conninfo("", **params)
        finally:
            with psycopg.connect(server, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _answering(url: str) -> str | None:
    try:
        with psycopg.connect(url, connect_timeout=2):
            return url
    except psycopg.OperationalError:
        return None


async def _keeper_saves(url: str, predictor: LearningPredictor, repeat: int) -> dict[str, list[float]]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await migrate(conn, force_plain=True)

    async def connect() -> psycopg.AsyncConnection:
        return await psycopg.AsyncConnection.connect(url, autocommit=True)

    store = LearnedStates(connect, "bench", "worker-1")
    keeper = LearnedStateKeeper(predictor.network, store)
    keeper.predictor = predictor
    assert await keeper.load()  # nothing stored yet: the keeper may save from now on
    found: dict[str, list[float]] = {"save": [], "loop_delay": [], "hold": [], "load": []}
    delays: list[float] = []
    ticking = True

    async def ticker() -> None:
        while ticking:
            started = time.perf_counter()
            await asyncio.sleep(0.001)
            delays.append(time.perf_counter() - started - 0.001)

    task = asyncio.create_task(ticker())
    for _ in range(repeat):
        await asyncio.sleep(0.05)
        delays.clear()
        started = time.perf_counter()
        assert await keeper.save()
        found["save"].append(time.perf_counter() - started)
        found["loop_delay"].append(max(delays))
        found["hold"].append(REGISTRY.get_sample_value("smartbus_learned_state_hold_seconds") or 0.0)
        started = time.perf_counter()
        rows = await store.load(predictor.network.feed_hash)
        found["load"].append(time.perf_counter() - started)
        assert len(rows) == 1
    ticking = False
    await task
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pings", type=Path)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--date", default="2024-05-14")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--database-url", help="a server where we may create a scratch database")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pings_path = args.pings
        if pings_path is None:
            subprocess.run(
                [str(Path(sys.executable).with_name("smartbus")), "simulate", "--gtfs", str(FEED), "--seed",
                 str(args.seed), "--date", args.date, "--out", tmp, "--no-progress"],
                check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            pings_path = Path(tmp) / "pings.csv"
        network = load_network(FEED, REPO / "var" / "cache")
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
              f"Python {platform.python_version()}; load average before: {_load_average()}")
        predictor, events, learn_s = _learn(network, pings_path)
        model = predictor.model
        print(f"input: {pings_path} (Cairns, seed {args.seed}); {events:,} stop events learned in {learn_s:.1f} s")
        print(f"learned: {len(model.segment)} segments, {len(model.history):,} segment half hours, "
              f"{len(model.dwell)} stops' dwell")
        predictor.segment_lengths()  # computed once per feed version, not per save
        blob = predictor.state_bytes()
        print(f"state: {len(blob):,} bytes (gzip of {len(gzip.decompress(blob)):,} bytes of JSON)")
        one_go = _timed(args.repeat, predictor.state_bytes)
        restore = _timed(args.repeat, lambda: LearningPredictor.from_bytes(network, blob))
        assert LearningPredictor.from_bytes(network, blob).state_bytes() == blob
        with _scratch_database(args.database_url) as url:
            found = asyncio.run(_keeper_saves(url, predictor, args.repeat))
        print(f"save as the worker does (encode, gzip, write): {_median_ms(found['save'])}")
        print(f"  worst delay of the event loop meanwhile:     {_median_ms(found['loop_delay'])}"
              f"  (longest slice encoded: {_median_ms(found['hold']).strip()})")
        print(f"baseline, encoded in one go on the loop:       {_median_ms(one_go)}  (the loop held throughout)")
        print(f"load from PostgreSQL:                          {_median_ms(found['load'])}")
        print(f"restore (decode, adopt, merge):                {_median_ms(restore)}")
        print(f"the worst loop delay is {statistics.median(found['loop_delay']) / statistics.median(one_go):.2f} "
              f"of the one-go encoding's; medians of {args.repeat}")
        print(f"load average after: {_load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
