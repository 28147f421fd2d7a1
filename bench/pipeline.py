"""The whole pipeline on the real services: simulated pings through Kafka into PostgreSQL and Redis.

    .venv/bin/python bench/pipeline.py [--rate 2000] [--seconds 60] [--workers 1] [--drain 60] [--one-writer]
                                       [--walks-per-second N] [--timeline CSV]

Starts the storage and live writers as two processes, as docker-compose deploys them (`smartbus writer --only
storage`, `--only live`; with --one-writer, `smartbus writer` running both in one process), and --workers
`smartbus eta` processes under a fresh topic prefix, Redis namespace and database (no earlier run's rows,
keys or learned state slow or warm this one; all three are dropped at the end), sends a 1 Hz fleet (--rate
vehicles on their own trips, so --rate pings/s) for --seconds at the pace the simulator delivers them, then
prints:
  - pings sent per second, positions committed in PostgreSQL and states made visible in Redis, both as
    rows per second over the run and as a share of the pings sent;
  - latency from a ping produced to its vehicle state visible in Redis (the live writer's pub/sub
    notification, published once the state is written; the live writer writes a batch's predictions
    before its states, so the predictions made from that ping are visible by then): p50, p95, p99, max,
    over the run, over its second half, and p50 / p99 per 10 s of sending;
  - how long a bus waited for its first board (500 of them): from its first ping produced to its first
    prediction set seen in Redis (an ETA worker walks so many buses a second, --walks-per-second: at the start
    of a big fleet most wait);
  - resident memory of every process after 1 minute, after 10 minutes (when the run is that long) and at
    the end;
  - in the same run, before the pipeline starts, the raw Kafka ceiling: the same encoded pings produced
    and consumed back through one topic with nothing else done to them;
  - CPU used during the run by each of our processes, this bench's sender and each service, per ping sent
    (where the machine's two cores go), and how much of the machine's CPU time the host took for others (steal,
    on a shared virtual machine; a host that slows the CPU time we do get shows in the raw Kafka ceiling instead);
  - this bench's own full garbage collections: its listener shares the process with the sender, so a pause of its
    own would read as latency (what it holds is frozen out of the collector's sight before the clock starts).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import psycopg  # noqa: E402
import redis.asyncio as aioredis  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient  # noqa: E402

from bench.scratch_database import scratch_database  # noqa: E402
from eta import native  # noqa: E402
from eta.network import load_network  # noqa: E402
from smartbus import messages, metrics  # noqa: E402
from smartbus.bus.kafka import KafkaConsumer, KafkaProducer, ensure_topics  # noqa: E402
from smartbus.gc_tuning import relax_gc  # noqa: E402
from smartbus.messages import Ping  # noqa: E402
from smartbus.settings import BUNDLED_FEED, Settings  # noqa: E402

SMARTBUS = str(Path(sys.executable).parent / "smartbus")
BOARDS_WATCHED = 500  # buses whose first board the bench waits for
WINDOW_S = 10.0  # latency is also printed per this many seconds of sending
TIMELINE_STEP_S = 0.5
PARTITIONS = 6


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _cpu_by_group(ours: dict[int, str]) -> dict[str, float]:
    """CPU seconds (user + system) used so far by every process on the machine, grouped: our processes by
    name, this bench, and the services by program (Kafka's java, every postgres backend, redis-server)."""
    tick = os.sysconf("SC_CLK_TCK")
    groups: dict[str, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        pid = int(entry.name)
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        seconds = (int(fields[11]) + int(fields[12])) / tick
        if pid in ours:
            group = ours[pid]
        elif pid == os.getpid():
            group = "bench (pings sender)"
        elif comm == "java":
            group = "kafka"
        elif comm.startswith("postgres"):
            group = "postgresql"
        elif comm.startswith("redis-server"):
            group = "redis"
        else:
            group = "other"
        groups[group] = groups.get(group, 0.0) + seconds
    return groups


def _machine_times() -> dict[str, int]:
    """The machine's CPU time so far by kind, in clock ticks (/proc/stat): user, system, idle, steal..."""
    names = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
    with open("/proc/stat") as stat:
        fields = stat.readline().split()[1 : 1 + len(names)]
    return dict(zip(names, map(int, fields), strict=True))


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclasses.dataclass(frozen=True)
class FleetTrack:
    """One simulated vehicle of a 1 Hz fleet: its trip, and where it is at each second of the run."""

    vehicle_id: str
    trip_id: str
    route_id: str
    start_date: str
    timestamps: np.ndarray  # UTC epoch seconds, one a second
    lat: np.ndarray
    lon: np.ndarray
    phase: float  # when in each second it reports, 0 to 1

    def ping(self, i: int) -> bytes:
        """Its ping of second i, encoded as the pings topic carries it."""
        return messages.encode(Ping(
            vehicle_id=self.vehicle_id,
            timestamp=round(float(self.timestamps[i]), 3),
            latitude=round(float(self.lat[i]), 7),
            longitude=round(float(self.lon[i]), 7),
            trip_id=self.trip_id,
            route_id=self.route_id,
            start_date=self.start_date,
        ))


def fleet_tracks(rate: int, seconds: float, tag: str) -> list[FleetTrack]:
    """A `rate`-vehicle 1 Hz fleet over `seconds`.

    Each vehicle drives its own trip exactly on schedule from a random point of it, one fix a second, its
    timestamps on its trip's own timetable; vehicle k takes trip k mod T of the service day k // T weeks
    from now, so that 10,000 vehicles need no more than the feed's 1,339 trips and never share one. (The
    simulator is the realistic source, but generates a 1 Hz fleet this size far slower than real time.)
    """
    network = load_network(BUNDLED_FEED, REPO / "var" / "cache")
    rng = random.Random(7)
    today = dt.datetime.now(dt.UTC).date()
    feed_day, _ = network.service_day_for(today)
    trips = [network.trips[t] for t in network.trips_on(feed_day)]
    trips = [t for t in trips if float(t.arrival[-1] - t.departure[0]) > seconds + 60]
    steps = np.arange(int(seconds), dtype=float)
    tracks: list[FleetTrack] = []
    for k in range(rate):
        trip = trips[k % len(trips)]
        day = today + dt.timedelta(weeks=k // len(trips))
        origin = network.service_day_origin(day)
        begin = float(trip.departure[0]) + rng.uniform(0, float(trip.arrival[-1] - trip.departure[0]) - seconds)
        times = np.empty(2 * len(trip.stop_ids))
        times[0::2], times[1::2] = trip.arrival, trip.departure
        distance = np.interp(begin + steps, times, np.repeat(trip.stop_dist, 2))
        shape = network.shapes[trip.shape_id]
        lat, lon = network.projection.to_latlon(
            np.interp(distance, shape.dist, shape.xy[:, 0]), np.interp(distance, shape.dist, shape.xy[:, 1])
        )
        phase = rng.random()  # vehicles report at different moments of each second
        tracks.append(FleetTrack(
            f"{tag}-{k:05d}", trip.trip_id, trip.route_id, day.strftime("%Y%m%d"), origin + begin + steps, lat, lon,
            phase,
        ))
    return tracks


def _generate(rate: int, seconds: float, tag: str) -> list[tuple[float, str, bytes]]:
    """(send offset in s, vehicle_id, encoded ping) for `seconds` of a `rate`-vehicle 1 Hz fleet (fleet_tracks),
    in the order they are sent."""
    rows = [
        (i + track.phase, track.vehicle_id, track.ping(i))
        for track in fleet_tracks(rate, seconds, tag) for i in range(len(track.timestamps))
    ]
    rows.sort(key=lambda row: row[0])
    return rows


async def _raw_kafka(settings: Settings, prefix: str, pings: list[tuple[float, str, bytes]]) -> tuple[float, float]:
    """The same messages through one Kafka topic and back, as fast as they go: (produce/s, end-to-end/s)."""
    topic = "raw-ceiling"
    await ensure_topics(settings.kafka_bootstrap, [topic], PARTITIONS, topic_prefix=prefix)
    consumer = KafkaConsumer(settings.kafka_bootstrap, [topic], "raw", topic_prefix=prefix)
    producer = KafkaProducer(settings.kafka_bootstrap, topic_prefix=prefix)
    await consumer.start()
    await producer.start()
    started = time.perf_counter()

    async def consume() -> float:
        seen = 0
        while seen < len(pings):
            seen += len(await consumer.getmany(0.5, 10_000))
        return time.perf_counter()

    reading = asyncio.create_task(consume())
    for _, key, value in pings:
        await producer.send(topic, value, key)
    await producer.flush()
    produced = time.perf_counter()
    consumed = await reading
    await producer.stop()
    await consumer.stop()
    return len(pings) / (produced - started), len(pings) / (consumed - started)


@dataclasses.dataclass
class _Proc:
    name: str
    popen: subprocess.Popen[bytes]
    rss: dict[str, float] = dataclasses.field(default_factory=dict)


def _start(name: str, args: list[str], env: dict[str, str], logs: Path) -> _Proc:
    with (logs / f"{name}.log").open("wb") as log:
        popen = subprocess.Popen([SMARTBUS, *args], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    return _Proc(name, popen)


async def _count_positions(url: str, tag: str) -> int:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute("select count(*) from positions where vehicle_id like %s", (tag + "-%",))
        row = await cur.fetchone()
        return int(row[0]) if row else 0


async def _clean_up(settings: Settings, tag: str, prefix: str) -> None:
    """Drop the Redis keys and topics the run made: left behind, they would make the next run slower (Redis forks to
    persist every key it holds) and fill the disk. Each is tried even if the other fails."""
    try:
        await _unlink_namespace(settings.redis_url, tag)
    finally:
        await _delete_topics(settings.kafka_bootstrap, prefix)


async def _unlink_namespace(url: str, tag: str) -> None:
    redis = aioredis.Redis.from_url(url)
    try:
        keys = [key async for key in redis.scan_iter(match=f"{tag}:*", count=10_000)]
        for start in range(0, len(keys), 10_000):
            await redis.unlink(*keys[start : start + 10_000])
    finally:
        await redis.aclose()


async def _delete_topics(bootstrap: str, prefix: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        ours = [topic for topic in await admin.list_topics() if topic.startswith(prefix)]
        if ours:
            await admin.delete_topics(ours)
    finally:
        await admin.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=2000, help="vehicles pinging once a second (= pings/s)")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to send")
    parser.add_argument("--workers", type=int, default=1, help="ETA worker processes")
    parser.add_argument("--walks-per-second", type=float, default=None,
                        help="each ETA worker's allowance of whole walks a second (default: the worker's, "
                        "500; 0 = unlimited)")
    parser.add_argument("--drain", type=float, default=60.0, help="at most this long to wait for the tail")
    parser.add_argument("--timeline", metavar="CSV",
                        help="write latency and each process's CPU every half second of the run to this file")
    parser.add_argument("--one-writer", action="store_true",
                        help="run the storage and live writers in one process (`smartbus writer`) rather than as "
                             "two (`--only storage`, `--only live`), as docker-compose deploys them")
    args = parser.parse_args()

    settings = Settings()
    tag = f"bench-{uuid.uuid4().hex[:6]}"
    prefix = tag + "."
    logs = Path(os.environ.get("TMPDIR", "/tmp")) / tag
    logs.mkdir(parents=True)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}, "
          f"Python {platform.python_version()}; services: Kafka {settings.kafka_bootstrap}, "
          f"PostgreSQL, Redis on this machine; logs in {logs}")
    print(f"ETA core (as the ETA workers load it): {native.STATUS}")

    t0 = time.perf_counter()
    pings = _generate(args.rate, args.seconds, tag)
    print(f"input: Cairns feed, {args.rate} vehicles on their own trips at 1 Hz, {len(pings)} pings over "
          f"{args.seconds:g} s (generated in {time.perf_counter() - t0:.1f} s, before sending)")

    produce_rate, raw_rate = await _raw_kafka(settings, prefix, pings)
    print(f"raw Kafka, same {len(pings)} messages: produce {produce_rate:,.0f}/s, "
          f"produce+consume {raw_rate:,.0f}/s")

    try:
        async with scratch_database(settings.database_url, tag.replace("-", "_")) as database_url:
            await _run(args, settings, tag, prefix, logs, pings, database_url)
    finally:
        await _clean_up(settings, tag, prefix)


async def _run(
    args: argparse.Namespace, settings: Settings, tag: str, prefix: str, logs: Path,
    pings: list[tuple[float, str, bytes]], database_url: str,
) -> None:
    await ensure_topics(settings.kafka_bootstrap, messages.ALL_TOPICS, PARTITIONS, topic_prefix=prefix)
    env = dict(os.environ, SMARTBUS_KAFKA_TOPIC_PREFIX=prefix, SMARTBUS_KAFKA_PARTITIONS=str(PARTITIONS),
               SMARTBUS_CACHE_DIR=str(REPO / "var" / "cache"), SMARTBUS_DATABASE_URL=database_url)
    writers = [("", [])] if args.one_writer else [("storage", ["--only", "storage"]), ("live", ["--only", "live"])]
    procs = [
        _start(f"writer-{name}" if name else "writer",
               ["writer", *only, "--redis-namespace", tag, "--metrics-port", str(_free_port())], env, logs)
        for name, only in writers
    ]
    walks = [] if args.walks_per_second is None else ["--walks-per-second", str(args.walks_per_second)]
    procs += [
        _start(f"eta-{i}", ["eta", "--redis-namespace", tag, "--metrics-port", str(_free_port()), *walks], env, logs)
        for i in range(args.workers)
    ]

    produced_at: dict[tuple[str, float], float] = {}
    latencies: list[float] = []
    sent_at: list[float] = []  # when each latency sample's ping was produced (wall clock)
    visible = 0
    redis = aioredis.Redis.from_url(settings.redis_url)
    pubsub = redis.pubsub()
    await pubsub.subscribe(f"{tag}:fleet")

    async def listen() -> None:
        nonlocal visible
        async for message in pubsub.listen():
            if message["type"] != "message":
                continue
            now = time.time()
            for state in json.loads(message["data"]):
                visible += 1
                sent = produced_at.pop((state["vehicle_id"], state["timestamp"]), None)
                if sent is not None:
                    latencies.append(now - sent)
                    sent_at.append(sent)

    listener = asyncio.create_task(listen())
    first_sent: dict[str, float] = {}  # vehicle -> when its first ping was produced
    first_board: dict[str, float] = {}  # vehicle -> when its first prediction set was first seen in Redis
    # a sample of the fleet: looking for all 10,000 every half second took a fifth of a core from the pipeline
    fleet = sorted({vehicle for _, vehicle, _ in pings})
    watched = set(random.Random(11).sample(fleet, min(len(fleet), BOARDS_WATCHED)))

    async def watch_boards() -> None:
        # every half second until each has one: whose prediction sets the live writer has written (the index of
        # what a bus's latest set wrote, {ns}:vidx:{vehicle})
        while len(first_board) < len(watched):
            await asyncio.sleep(TIMELINE_STEP_S)
            waiting = [v for v in watched if v in first_sent and v not in first_board]
            if not waiting:
                continue
            async with redis.pipeline(transaction=False) as pipe:
                for vehicle in waiting:
                    pipe.exists(f"{tag}:vidx:{vehicle}")
                found = await pipe.execute()
            now = time.time()
            first_board.update((v, now) for v, there in zip(waiting, found, strict=True) if there)

    board_watcher = asyncio.create_task(watch_boards())
    await asyncio.sleep(8.0)  # the processes load the network and join their groups
    # read before the clock starts: at 1.2 million pings this took 9 s, which the sender then made up in a burst
    timestamps = [json.loads(value)["timestamp"] for _, _, value in pings]
    # The bench is the meter, and its listener shares the process with the sender: a pause of its own holds every
    # state in flight, which then reads late. Its full collections walked the millions of pings (and latencies) it
    # holds: in a 600 s run two of them stopped it for half a second each, the sender fell behind and those pings
    # read 0.6 to 0.9 s. What it holds now is frozen out of the collector's sight, as our processes freeze theirs.
    relax_gc()

    producer = KafkaProducer(settings.kafka_bootstrap, topic_prefix=prefix)
    await producer.start()
    started_wall = time.perf_counter()
    wall_started = time.time()
    marks = {60.0: "1 min", 600.0: "10 min"}

    async def sample_memory() -> None:
        for at, label in marks.items():
            delay = started_wall + at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            for proc in procs:
                proc.rss[label] = _rss_mb(proc.popen.pid)

    sampler = asyncio.create_task(sample_memory())
    ours = {proc.popen.pid: proc.name for proc in procs}
    cpu_before = _cpu_by_group(ours)
    machine_before = _machine_times()
    cpu_samples: list[tuple[float, dict[str, float]]] = [(time.time(), cpu_before)]

    async def sample_cpu() -> None:  # for --timeline: which process was busy when the latency rose
        while True:
            await asyncio.sleep(TIMELINE_STEP_S)
            cpu_samples.append((time.time(), _cpu_by_group(ours)))

    cpu_sampler = asyncio.create_task(sample_cpu()) if args.timeline else None
    sent = 0
    for offset, key, value in pings:
        lag = started_wall + offset - time.perf_counter()
        if lag > 0.02:
            await producer.flush()
            await asyncio.sleep(lag)
        produced_at[(key, timestamps[sent])] = at = time.time()
        first_sent.setdefault(key, at)
        await producer.send(messages.TOPIC_PINGS, value, key)
        sent += 1
    await producer.flush()
    send_seconds = time.perf_counter() - started_wall
    await producer.stop()

    stored = await _count_positions(database_url, tag)
    deadline = time.perf_counter() + args.drain
    quiet_since = time.perf_counter()
    while time.perf_counter() < deadline and time.perf_counter() - quiet_since < 10.0:
        await asyncio.sleep(1.0)
        now_stored = await _count_positions(database_url, tag)
        if now_stored != stored:
            stored, quiet_since = now_stored, time.perf_counter()
    finished = quiet_since - started_wall  # when the last row landed
    cpu_after = _cpu_by_group(ours)
    machine_after = _machine_times()
    if cpu_sampler is not None:
        cpu_sampler.cancel()
    for proc in procs:
        proc.rss["end"] = _rss_mb(proc.popen.pid)
    sampler.cancel()
    listener.cancel()
    board_watcher.cancel()
    await pubsub.aclose()  # type: ignore[no-untyped-call]
    await redis.aclose()
    for proc in procs:
        proc.popen.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.popen.wait(30)
        except subprocess.TimeoutExpired:
            proc.popen.kill()

    print(f"sent: {sent} pings in {send_seconds:.1f} s = {sent / send_seconds:,.0f} pings/s "
          f"(target {args.rate:,}/s)")
    print(f"PostgreSQL: {stored} positions committed = {stored / finished:,.0f} rows/s over {finished:.1f} s "
          f"(send + tail), {stored / max(sent, 1):.1%} of pings sent")
    print(f"Redis: {visible} states made visible = {visible / finished:,.0f}/s, {visible / max(sent, 1):.1%} of "
          f"pings sent (the tracker drops a ping it cannot use, e.g. before a bus's first move)")
    def spread(values: list[float]) -> str:
        return (f"p50 {_percentile(values, 0.5) * 1000:,.0f} ms, p95 {_percentile(values, 0.95) * 1000:,.0f} ms, "
                f"p99 {_percentile(values, 0.99) * 1000:,.0f} ms, "
                f"max {max(values, default=float('nan')) * 1000:,.0f} ms")

    print(f"latency ping produced -> state visible in Redis, {len(latencies)} samples: {spread(latencies)}")
    # the first minutes include every bus's first pings (trip inference, matchers built): the second half of
    # the sending shows the pipeline as it keeps running
    half = wall_started + 0.5 * send_seconds
    steady = [lat for lat, at in zip(latencies, sent_at, strict=True) if at >= half]
    print(f"  pings sent in the second half of the run ({len(steady)} samples): {spread(steady)}")
    # where in the run the tail is: a start-up backlog, a steady queue, or pauses at intervals
    windows = _by_step(latencies, sent_at, wall_started, WINDOW_S)
    print(f"  by {WINDOW_S:.0f} s of sending, p50 / p99 ms: " + ", ".join(
        f"{k * WINDOW_S:.0f}s {_percentile(v, 0.5) * 1000:,.0f}/{_percentile(v, 0.99) * 1000:,.0f}"
        for k, v in sorted(windows.items())))
    # the first window by second: how long the start-up backlog (every bus heard for the first time) lasts
    seconds = {k: v for k, v in _by_step(latencies, sent_at, wall_started, 1.0).items() if k < WINDOW_S}
    print("  its first window by second, p50 / max ms: " + ", ".join(
        f"{k}s {_percentile(v, 0.5) * 1000:,.0f}/{max(v) * 1000:,.0f}" for k, v in sorted(seconds.items())))
    after_start = [lat for lat, at in zip(latencies, sent_at, strict=True) if at - wall_started >= WINDOW_S]
    print(f"  pings sent after the first window ({len(after_start)} samples): {spread(after_start)}")
    boards = [first_board[v] - first_sent[v] for v in first_board]
    print(f"first board of a bus, from its first ping produced to its first prediction set seen in Redis (looked "
          f"for every {TIMELINE_STEP_S:g} s), {len(boards)} of {len(watched)} buses watched: {spread(boards)}")
    used = {g: cpu_after.get(g, 0.0) - cpu_before.get(g, 0.0) for g in cpu_after}
    print(f"CPU over the run ({finished:.0f} s, {os.cpu_count()} cpus: {finished * (os.cpu_count() or 1):.0f} "
          "CPU-s available), in ms per ping sent: " + ", ".join(
        f"{g} {1000 * v / max(sent, 1):.3f}" for g, v in sorted(used.items(), key=lambda kv: -kv[1]) if v > 0.05
    ))
    # On a virtual machine the host may run others on our cores: the time it takes is "steal". It does not show all
    # the host does to a run: runs of the same code here differed twofold in CPU per ping with 3 to 4% steal (the
    # raw Kafka ceiling above falls with them, and is the better gauge of the machine's speed that day).
    machine = {kind: machine_after[kind] - machine_before[kind] for kind in machine_after}
    total = max(1, sum(machine.values()))
    print(f"the machine's CPU time over the run: busy {(total - machine['idle'] - machine['steal']) / total:.0%}, "
          f"idle {machine['idle'] / total:.0%}, taken by the host for others (steal) {machine['steal'] / total:.0%}")
    print("resident memory (MB): " + "; ".join(
        f"{p.name} " + ", ".join(f"{label} {mb:.0f}" for label, mb in p.rss.items()) for p in procs
    ))
    full_collections, paused_s, longest_s = _full_collections()
    print(f"this bench's own full garbage collections (each holds its listener, so reads as latency): "
          f"{full_collections}, {paused_s * 1000:,.0f} ms in all, none longer than {longest_s * 1000:,.0f} ms")
    if args.timeline:
        _write_timeline(Path(args.timeline), wall_started, cpu_samples, latencies, sent_at)
        print(f"timeline (every {TIMELINE_STEP_S:g} s: latency of the pings sent then, CPU of each process) in "
              f"{args.timeline}")


def _full_collections() -> tuple[int, float, float]:
    """This process's full collections since relax_gc: how many, their pauses' sum and (to a bucket) the longest."""
    count = total = longest = 0.0
    for metric in metrics.GC_PAUSE_SECONDS.collect():
        for sample in metric.samples:
            if sample.labels.get("generation") != "2":
                continue
            if sample.name.endswith("_count"):
                count = sample.value
            elif sample.name.endswith("_sum"):
                total = sample.value
    for metric in metrics.GC_PAUSE_SECONDS.collect():  # the smallest bucket holding every pause
        buckets = sorted(
            (float(s.labels["le"]), s.value) for s in metric.samples
            if s.name.endswith("_bucket") and s.labels.get("generation") == "2"
        )
        longest = next((le for le, n in buckets if n >= count), 0.0) if count else 0.0
    return int(count), total, longest


def _by_step(
    latencies: list[float], sent_at: list[float], wall_started: float, step_s: float
) -> dict[int, list[float]]:
    """The latencies of the pings sent in each `step_s` of the sending, by step number."""
    steps: dict[int, list[float]] = {}
    for lat, at in zip(latencies, sent_at, strict=True):
        steps.setdefault(int((at - wall_started) // step_s), []).append(lat)
    return steps


def _write_timeline(
    path: Path, wall_started: float, cpu_samples: list[tuple[float, dict[str, float]]], latencies: list[float],
    sent_at: list[float],
) -> None:
    steps = _by_step(latencies, sent_at, wall_started, TIMELINE_STEP_S)
    groups = sorted({g for _, sample in cpu_samples for g in sample})
    with path.open("w") as out:
        out.write("t_s,pings,p50_ms,max_ms," + ",".join(f"cpu_{g}" for g in groups) + "\n")
        for (t0, before), (t1, after) in zip(cpu_samples, cpu_samples[1:], strict=False):
            lats = steps.get(int((t0 - wall_started) // TIMELINE_STEP_S), [])
            busy = [(after.get(g, 0.0) - before.get(g, 0.0)) / (t1 - t0) for g in groups]
            out.write(f"{t0 - wall_started:.1f},{len(lats)},{_percentile(lats, 0.5) * 1000:.0f},"
                      f"{max(lats, default=float('nan')) * 1000:.0f}," + ",".join(f"{b:.2f}" for b in busy) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
