"""The live writer's Redis cost: prediction sets written to the boards (or, with --states, vehicle states), Redis
CPU against ours.

    .venv/bin/python bench/live_store.py [--vehicles 2000] [--seconds 30] [--repeat 3] [--states]

Needs the real Redis of `smartbus services up`. Drives a `--vehicles` fleet of the bench/pipeline.py kind (each
bus on its own trip, one fix a second) through the ETA stage in process for `--seconds`, keeps the prediction sets
it publishes (every bus's first full set, then those that moved), and writes them `--repeat` times into a fresh
Redis namespace with `RedisLiveStore.put_predictions`, in batches as the live writer gets them. Prints, per
prediction set, medians over the repeats:
  - Redis's CPU in the scripts (its commandstats: the scripts and every command they ran);
  - Redis's whole CPU (INFO cpu: also its network, its append-only file and its forks);
  - this process's CPU (decoding nothing: the sets are already messages).
Redis is one thread for the whole deployment, so its time per set bounds how many sets a second any number of
writers can put.

With --states, the same for the fleet's vehicle states instead (as the bus carries them, undecoded, as the live
writer hands them on), put with `RedisLiveStore.put_states` in batches of STATES_BATCH, once with the commands
packed by hiredis (as the writers pack them) and once by redis-py's own packer, taking turns.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import redis.asyncio as aioredis  # noqa: E402

from bench.eta_stage import CountingProducer  # noqa: E402
from bench.pipeline import _generate  # noqa: E402
from eta.engine import Engine  # noqa: E402
from eta.network import load_network  # noqa: E402
from eta.prediction import LearningPredictor  # noqa: E402
from eta.worker import EtaStage  # noqa: E402
from smartbus import messages  # noqa: E402
from smartbus.bus.base import Record  # noqa: E402
from smartbus.live.redis_store import RedisLiveStore  # noqa: E402
from smartbus.messages import EncodedState, PredictionSet  # noqa: E402
from smartbus.settings import BUNDLED_FEED, load_settings  # noqa: E402

BATCH = 500  # sets per put_predictions call, as the live writer's batches carry them at 2,000 pings/s
STATES_BATCH = 300  # states per put_states call, as the live writer's batches carry them at 10,000 pings/s


async def _outputs(vehicles: int, seconds: float) -> list[Record]:
    network = load_network(BUNDLED_FEED, REPO / "var" / "cache")
    rows = sorted(_generate(vehicles, seconds, "live-bench"), key=lambda row: row[0])
    producer = CountingProducer()
    stage = EtaStage(Engine(network), LearningPredictor(network), producer)
    records = [Record(messages.TOPIC_PINGS, 0, i, key.encode(), value) for i, (_, key, value) in enumerate(rows)]
    for start in range(0, len(records), 2000):
        await stage.handle(records[start : start + 2000])
    return producer.kept


async def _redis_script_usec(client: aioredis.Redis) -> float:
    stats = await client.info("commandstats")
    return float(sum(v["usec"] for k, v in stats.items() if k in ("cmdstat_evalsha", "cmdstat_eval")))


async def _redis_cpu_s(client: aioredis.Redis) -> float:
    """Redis's whole CPU: its threads' (the scripts, the network, its append-only file) and its forks' (RDB and
    append-only file rewrites), which the scripts' own time leaves out."""
    cpu = await client.info("cpu")
    return float(sum(cpu[k] for k in ("used_cpu_sys", "used_cpu_user", "used_cpu_sys_children",
                                      "used_cpu_user_children")))


async def _drop(client: aioredis.Redis, store: RedisLiveStore, namespace: str) -> None:
    """Close the store and remove what it wrote."""
    await store.close()
    keys = [key async for key in client.scan_iter(f"{namespace}:*", count=1000)]
    for start in range(0, len(keys), 1000):
        await client.delete(*keys[start : start + 1000])


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vehicles", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--states", action="store_true", help="vehicle states, not prediction sets")
    args = parser.parse_args()

    outputs = await _outputs(args.vehicles, args.seconds)
    if args.states:
        return await _states(args, outputs)
    sets = [messages.decode_as(r.value, PredictionSet) for r in outputs if r.topic == messages.TOPIC_PREDICTIONS]
    stops = sum(len(s.stops) for s in sets)
    print(f"{len(sets)} prediction sets from {args.vehicles} buses over {args.seconds:g} s, "
          f"{stops / max(len(sets), 1):.1f} stops each")
    settings = load_settings()
    client = aioredis.Redis.from_url(settings.redis_url)
    redis_ms: list[float] = []
    redis_all_ms: list[float] = []
    ours_ms: list[float] = []
    for _ in range(args.repeat):
        namespace = f"bench-live-{uuid.uuid4().hex[:8]}"
        store = RedisLiveStore(settings.redis_url, namespace=namespace)
        try:
            before_redis = await _redis_script_usec(client)
            before_redis_all = await _redis_cpu_s(client)
            before_ours = time.process_time()
            for start in range(0, len(sets), BATCH):
                await store.put_predictions(sets[start : start + BATCH])
            ours_ms.append(1000 * (time.process_time() - before_ours) / len(sets))
            redis_ms.append((await _redis_script_usec(client) - before_redis) / 1000 / len(sets))
            redis_all_ms.append(1000 * (await _redis_cpu_s(client) - before_redis_all) / len(sets))
        finally:
            await _drop(client, store, namespace)
    await client.aclose()
    print(f"Redis CPU per prediction set: {statistics.median(redis_ms):.3f} ms "
          f"(runs: {', '.join(f'{v:.3f}' for v in redis_ms)}); that is at most "
          f"{1000 / statistics.median(redis_ms):,.0f} sets/s on its one thread")
    print(f"Redis's whole CPU per set (with its network, append-only file and forks): "
          f"{statistics.median(redis_all_ms):.3f} ms (runs: {', '.join(f'{v:.3f}' for v in redis_all_ms)})")
    print(f"this process's CPU per set (put_predictions): {statistics.median(ours_ms):.3f} ms "
          f"(runs: {', '.join(f'{v:.3f}' for v in ours_ms)})")
    return 0


async def _states(args: argparse.Namespace, outputs: list[Record]) -> int:
    states = [
        state for r in outputs if r.topic == messages.TOPIC_VEHICLE_STATES
        for state in [messages.decode_keeping_states(r.value)] if isinstance(state, EncodedState)
    ]
    print(f"{len(states)} vehicle states from {args.vehicles} buses over {args.seconds:g} s, "
          f"{statistics.mean(len(s.raw) for s in states):.0f} bytes each")
    settings = load_settings()
    client = aioredis.Redis.from_url(settings.redis_url)
    figures: dict[str, dict[str, list[float]]] = {}
    for _ in range(args.repeat):
        for packer in ("hiredis", "redis-py"):
            namespace = f"bench-live-{uuid.uuid4().hex[:8]}"
            store = RedisLiveStore(settings.redis_url, namespace=namespace)
            if packer == "redis-py":  # the store's pool, given back redis-py's own connection class
                store._redis.connection_pool.connection_class = aioredis.Connection
            runs = figures.setdefault(packer, {"redis": [], "ours": []})
            try:
                before_redis = await _redis_cpu_s(client)
                before_ours = time.process_time()
                for start in range(0, len(states), STATES_BATCH):
                    await store.put_states(states[start : start + STATES_BATCH])
                runs["ours"].append(1e6 * (time.process_time() - before_ours) / len(states))
                runs["redis"].append(1e6 * (await _redis_cpu_s(client) - before_redis) / len(states))
            finally:
                await _drop(client, store, namespace)
    await client.aclose()
    for packer, runs in figures.items():
        print(f"commands packed by {packer}: per state, this process's CPU (put_states) "
              f"{statistics.median(runs['ours']):.2f} us (runs: {', '.join(f'{v:.2f}' for v in runs['ours'])}), "
              f"Redis's whole CPU {statistics.median(runs['redis']):.2f} us "
              f"(runs: {', '.join(f'{v:.2f}' for v in runs['redis'])})")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
