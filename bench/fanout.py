"""Websocket fan-out: many riders' boards on one api process, fed through real Redis.

--clients websocket clients (default 10,000) watch --stops stops (default 500, an equal share each) on one
api process (uvicorn, RedisLiveStore). A publisher writes prediction sets to Redis so that every stop's board
changes once every --period seconds (default 2); every client checks every message (its stop, each arrival's
predicted time against the value the publisher encoded for that stop) and its freshness: latency = receipt -
made_at, the moment the prediction was written to Redis (same machine, same clock).

The clients are a Go program (bench/fanoutclients, built here with the Go toolchain on first use): a Python
client spends more CPU per message than the server it measures, so with Python clients on this machine the
latency figures measured the clients. --client-runtime python runs the same checks in Python (in
--client-procs processes) where there is no Go.

Baseline, same run: a bare `websockets` server that only broadcasts (websockets.broadcast) the same board
JSON to the same clients, told what to send by the publisher over a control socket, on the same event loop.

The measured window (--seconds, after --warmup) starts once every client has connected. Throughput is
messages delivered per CPU-second of the server process (its utime + stime from /proc), so "per core" does
not depend on what else the shared machine runs. Each server's full garbage collections that overlapped the
window are counted, with the longest: with thousands of connections alive they are what the latency's tail
meets.

    .venv/bin/python bench/fanout.py [--clients 10000] [--stops 500] [--seconds 30] [--client-runtime go|python]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
CONTENT_OFFSET_S = 600.0  # predicted_arrival = made_at + CONTENT_OFFSET_S + the stop's index: checkable
GO_CLIENTS = HERE.parent / "fanoutclients"  # the Go clients' module; bench/fanoutclients/check.go mirrors check()
GO_BINARY = ROOT / "var" / "bench" / "fanoutclients"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for_port(port: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit(f"server on port {port} did not start")


def bench_network(stops: int) -> Any:
    """The bundled feed, plus made-up stops when it has fewer than `stops` (Cairns has 416)."""
    import dataclasses

    from eta.network import Stop, load_network
    from smartbus.settings import Settings

    settings = Settings()
    network = load_network(settings.gtfs, settings.cache_dir)
    extra = {
        f"bench-{i}": Stop(f"bench-{i}", f"Bench stop {i}", -16.92, 145.77, None)
        for i in range(max(0, stops - len(network.stops)))
    }
    return dataclasses.replace(network, stops={**network.stops, **extra})


def stop_ids(count: int) -> list[str]:
    return sorted(bench_network(count).stops)[:count]


# --- servers -------------------------------------------------------------------------------------------


def record_full_collections(log: Path) -> None:
    """Append "end_epoch duration_s" to `log` after each full garbage collection of this process: with thousands
    of connections alive it stops the process for long enough to show in the latency's tail."""
    started = [0.0]

    def callback(phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            with log.open("a") as f:
                f.write(f"{time.time()!r} {time.perf_counter() - started[0]!r}\n")

    gc.callbacks.append(callback)


def full_collections(log: Path, start_at: float, end_at: float) -> list[float]:
    """Durations (s) of the full collections logged that overlapped [start_at, end_at]."""
    if not log.exists():
        return []
    pauses = [tuple(map(float, line.split())) for line in log.read_text().splitlines()]
    return [duration for ended, duration in pauses if ended >= start_at and ended - duration <= end_at]


def serve_api(port: int, namespace: str, stops: int, ws: str) -> None:
    import uvicorn

    from api.app import create_app
    from api.command import WEBSOCKET_OPTIONS
    from smartbus.live.redis_store import RedisLiveStore
    from smartbus.settings import Settings

    settings = Settings()
    network = bench_network(stops)
    app = create_app(RedisLiveStore(settings.redis_url, namespace=namespace), network, rate_per_s=1e9, rate_burst=1e9)
    options = {**WEBSOCKET_OPTIONS, "ws": ws} if ws else WEBSOCKET_OPTIONS  # as `smartbus api` serves
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", backlog=4096, **options)


def serve_bare(port: int) -> None:
    from websockets.asyncio.server import ServerConnection, broadcast, serve

    clients: dict[str, set[ServerConnection]] = {}

    async def handler(connection: ServerConnection) -> None:
        path = connection.request.path if connection.request else ""
        if path == "/control":
            async for raw in connection:
                order = json.loads(raw)
                broadcast(clients.get(order["stop_id"], ()), order["text"])
            return
        stop_id = path.rsplit("/", 1)[-1]
        clients.setdefault(stop_id, set()).add(connection)
        try:
            await connection.send(json.dumps({"type": "snapshot", "stop_id": stop_id, "arrivals": []}))
            await connection.wait_closed()
        finally:
            clients[stop_id].discard(connection)

    async def main() -> None:
        async with serve(handler, "127.0.0.1", port, compression=None, backlog=4096, max_queue=None):
            await asyncio.Future()

    # The event loop uvicorn runs the api on (its loop="auto"): the ratio compares our code, not the loops.
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(main())


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


# --- clients -------------------------------------------------------------------------------------------


def run_clients(base: str, stops: list[str], offset: int, count: int, out: Path) -> None:
    """`count` clients on stops[offset:] + stops[:offset], round robin; stops' order gives their content code.

    Like the Go clients: "connected N failed M" on stdout once all have dialled, then the measured window
    ("start_at end_at") from stdin; every client reads until end_at.
    """
    from websockets.asyncio.client import connect

    latencies: list[float] = []
    stats: dict[str, Any] = {"connected": 0, "messages": 0, "bad": 0, "failed": 0, "sample": None}
    index_of = {s: i for i, s in enumerate(stops)}
    watched = stops[offset % len(stops) :] + stops[: offset % len(stops)]
    window = [math.inf, math.inf]  # start_at, end_at: nothing counts, and nobody stops, until it is known
    dialled = [0]

    def check(stop_id: str, raw: str | bytes) -> None:
        now = time.time()
        body = json.loads(raw)
        if body.get("stop_id") != stop_id:
            stats["bad"] += 1
            return
        ours = [a for a in body["arrivals"] if str(a.get("vehicle_id", "")).startswith("fan-")]
        if body["type"] == "snapshot" or not ours:
            return
        expected = CONTENT_OFFSET_S + index_of[stop_id]
        if any(abs(a["predicted_arrival"] - a["updated_at"] - expected) > 1e-3 for a in ours):
            stats["bad"] += 1
        if window[0] <= now <= window[1]:
            stats["messages"] += 1
            latencies.append(now - max(a["updated_at"] for a in ours))
            if stats["sample"] is None:
                stats["sample"] = body

    async def client(stop_id: str, gate: asyncio.Semaphore, all_dialled: asyncio.Event) -> None:
        try:
            try:
                async with gate:
                    ws = await connect(f"{base}/ws/stops/{stop_id}", compression=None, open_timeout=60, max_queue=None)
            finally:
                dialled[0] += 1
                if dialled[0] == count:
                    all_dialled.set()
            stats["connected"] += 1
            async with ws:
                while time.time() < window[1]:
                    try:  # recv() may be cancelled safely; the timeout only rechecks the window
                        raw = await asyncio.wait_for(ws.recv(), timeout=min(1.0, max(0.01, window[1] - time.time())))
                    except TimeoutError:
                        continue
                    check(stop_id, raw)
        except Exception:
            stats["failed"] += 1

    async def main() -> None:
        gate, all_dialled = asyncio.Semaphore(100), asyncio.Event()
        clients = asyncio.gather(*(client(watched[i % len(watched)], gate, all_dialled) for i in range(count)))
        await all_dialled.wait()
        print(f"connected {stats['connected']} failed {stats['failed']}", flush=True)
        window[:] = [float(x) for x in (await asyncio.to_thread(sys.stdin.readline)).split()]
        await clients

    asyncio.run(main())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out.write_text(
        json.dumps({**stats, "latencies": latencies, "cpu_s": usage.ru_utime + usage.ru_stime, "runtime": "python"})
    )


def build_go_clients() -> Path | None:
    """The Go clients' binary, (re)built from bench/fanoutclients; None without a Go toolchain."""
    go = shutil.which("go")
    if go is None:
        return None
    GO_BINARY.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([go, "build", "-o", str(GO_BINARY), "."], cwd=GO_CLIENTS, check=True)
    return GO_BINARY


# --- publisher -----------------------------------------------------------------------------------------


async def publish(
    stops: list[str],
    namespace: str | None,
    bare_port: int | None,
    template: dict[str, Any] | None,
    stop: asyncio.Event,
    period_s: float,
    per_vehicle: int = 5,
) -> int:
    """Every stop's board changes once a period: vehicle v predicts stops [v*per_vehicle, (v+1)*per_vehicle)."""
    from smartbus.live.redis_store import RedisLiveStore
    from smartbus.messages import PredictionSet, StopPrediction
    from smartbus.settings import Settings

    vehicles = [stops[i : i + per_vehicle] for i in range(0, len(stops), per_vehicle)]
    index_of = {s: i for i, s in enumerate(stops)}
    store = RedisLiveStore(Settings().redis_url, namespace=namespace) if namespace else None
    control = None
    if bare_port is not None:
        from websockets.asyncio.client import connect

        control = await connect(f"ws://127.0.0.1:{bare_port}/control", compression=None, max_size=None)
    sent = 0
    tick = period_s / len(vehicles)
    next_at = time.monotonic()
    try:
        while not stop.is_set():
            for v, its_stops in enumerate(vehicles):
                made_at = time.time()
                predictions = tuple(
                    StopPrediction(
                        trip_id=f"fan-trip-{v}",
                        service_date="20140607",
                        stop_id=s,
                        stop_sequence=k + 1,
                        predicted_arrival=made_at + CONTENT_OFFSET_S + index_of[s],
                        scheduled_arrival=None,
                        method="blend",
                        uncertainty_s=30.0,
                    )
                    for k, s in enumerate(its_stops)
                )
                if store is not None:
                    await store.put_predictions([PredictionSet(f"fan-{v}", made_at, predictions)])
                if control is not None and template is not None:
                    for p in predictions:  # the board JSON the api would send, rendered once per stop change
                        arrival = {
                            **template["arrivals"][0],
                            "stop_id": p.stop_id,
                            "vehicle_id": f"fan-{v}",
                            "trip_id": p.trip_id,
                            "predicted_arrival": p.predicted_arrival,
                            "updated_at": made_at,
                        }
                        body = {**template, "stop_id": p.stop_id, "arrivals": [arrival], "server_time": made_at}
                        await control.send(json.dumps({"stop_id": p.stop_id, "text": json.dumps(body)}))
                sent += len(predictions)
                next_at += tick
                late_s = time.monotonic() - next_at
                if late_s > 0:
                    # Behind (a busy machine): go on from now rather than catch up in a burst, which would change
                    # boards more often than every period and measure the api's rate limit instead of its speed.
                    next_at += late_s
                await asyncio.sleep(max(0.0, -late_s))
    finally:
        if store is not None:
            keys = [k async for k in store._redis.scan_iter(match=f"{namespace}:*")]
            if keys:
                await store._redis.delete(*keys)
            await store.close()
        if control is not None:
            await control.close()
    return sent


# --- one phase -----------------------------------------------------------------------------------------


def phase(name: str, args: argparse.Namespace, stops: list[str], template: dict[str, Any] | None) -> dict[str, Any]:
    port = free_port()
    namespace = f"fanout-{uuid.uuid4().hex[:8]}" if name == "api" else None
    role = (
        ["--role", "api", "--namespace", namespace, "--stops", str(len(stops)), "--ws", args.ws]
        if namespace
        else ["--role", "bare"]
    )
    role += ["--default-gc"] if args.default_gc else []
    gc_log = Path(f"/tmp/fanout-{name}-gc-{os.getpid()}.log")
    gc_log.unlink(missing_ok=True)
    server = subprocess.Popen(
        [sys.executable, str(HERE), *role, "--port", str(port), "--gc-log", str(gc_log)], cwd=ROOT
    )
    try:
        wait_for_port(port)
        stops_file = Path(f"/tmp/fanout-stops-{os.getpid()}.json")
        stops_file.write_text(json.dumps(stops))
        # The Go and the Python clients take the same options (Go's flag package reads --name too).
        common = ["--base", f"ws://127.0.0.1:{port}", "--stops-file", str(stops_file)]
        if args.go_binary is not None:
            outs = [Path(f"/tmp/fanout-{name}-go-{os.getpid()}.json")]
            commands = [[str(args.go_binary), *common, "--count", str(args.clients), "--out", str(outs[0])]]
        else:
            per_proc = args.clients // args.client_procs
            outs = [Path(f"/tmp/fanout-{name}-{i}-{os.getpid()}.json") for i in range(args.client_procs)]
            commands = [
                [sys.executable, str(HERE), "--role", "clients", *common]
                + ["--count", str(per_proc), "--offset", str(i), "--out", str(out)]
                for i, out in enumerate(outs)
            ]
        dial_from = time.monotonic()
        workers = [
            subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            for command in commands
        ]

        async def drive() -> tuple[float, float, float, list[float]]:
            published_from = time.time()
            stop_publishing = asyncio.Event()
            task = asyncio.create_task(
                publish(stops, namespace, None if namespace else port, template, stop_publishing, args.period)
            )
            connected = 0
            for w in workers:  # "connected N failed M" once every client of the process has dialled
                assert w.stdout is not None
                words = (await asyncio.to_thread(w.stdout.readline)).split()
                if words[:1] != ["connected"]:
                    raise SystemExit(f"{name}: a client process ended before its clients had connected")
                connected += int(words[1])
            connect_s = time.monotonic() - dial_from
            print(f"{name}: {connected} clients connected in {connect_s:.0f} s; measuring", flush=True)
            # The window starts once everyone is connected: no handshake in it, however long they took.
            start_at = time.time() + args.warmup
            end_at = start_at + args.seconds
            for w in workers:
                assert w.stdin is not None
                w.stdin.write(f"{start_at!r} {end_at!r}\n")
                w.stdin.flush()
            await asyncio.sleep(max(0.0, start_at - time.time()))
            cpu_start = cpu_seconds(server.pid)
            await asyncio.sleep(max(0.0, end_at - time.time()))
            cpu = cpu_seconds(server.pid) - cpu_start
            await asyncio.sleep(2.0)
            stop_publishing.set()
            sent = await task
            pauses = full_collections(gc_log, start_at, end_at)
            return sent / max(1e-9, time.time() - published_from), cpu, connect_s, pauses

        sent, server_cpu, connect_s, gc_pauses = asyncio.run(drive())
        for w in workers:
            w.wait(timeout=300)
        results = [json.loads(o.read_text()) for o in outs]
    finally:
        server.terminate()
        server.wait(timeout=30)
    latencies = sorted(x for r in results for x in r["latencies"])
    messages = sum(r["messages"] for r in results)

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else float("nan")

    return {
        "name": name,
        "connected": sum(r["connected"] for r in results),
        "failed": sum(r["failed"] for r in results),
        "bad": sum(r["bad"] for r in results),
        "messages": messages,
        "msgs_per_s": messages / args.seconds,
        "server_cpu_s": server_cpu,
        "msgs_per_cpu_s": messages / server_cpu if server_cpu else float("nan"),
        "p50_ms": pct(0.5),
        "p95_ms": pct(0.95),
        "p99_ms": pct(0.99),
        "max_ms": latencies[-1] * 1000 if latencies else 0,
        "median_ms": statistics.median(latencies) * 1000 if latencies else float("nan"),
        "sample": next((r["sample"] for r in results if r["sample"]), None),
        "publisher_rate": sent,
        "client_cpu_s": sum(r["cpu_s"] for r in results),
        "connect_s": connect_s,
        "gc_pauses": gc_pauses,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--stops", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=30.0, help="measured window")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds between all connected and the window")
    parser.add_argument("--period", type=float, default=2.0, help="seconds between changes of each stop's board")
    parser.add_argument(
        "--client-runtime", choices=["go", "python"], default="go", help="go (default) needs the Go toolchain"
    )
    parser.add_argument("--client-procs", type=int, default=2, help="processes of Python clients")
    parser.add_argument("--ws", default="", help="uvicorn's websocket implementation for the api (its --ws)")
    parser.add_argument("--no-baseline", action="store_true", help="measure the api only (no ratio)")
    parser.add_argument(
        "--default-gc", action="store_true", help="servers keep CPython's collector thresholds (not the api's)"
    )
    parser.add_argument("--role", choices=["main", "api", "bare", "clients"], default="main", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--namespace", help=argparse.SUPPRESS)
    parser.add_argument("--base", help=argparse.SUPPRESS)
    parser.add_argument("--stops-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--offset", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--gc-log", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.gc_log:
        record_full_collections(args.gc_log)
    if args.role in ("api", "bare") and not args.default_gc:
        from api.command import tune_garbage_collector

        tune_garbage_collector()  # as `smartbus api` does; the baseline too, so the ratio compares our code
    if args.role == "api":
        serve_api(args.port, args.namespace, args.stops, args.ws)
        return 0
    if args.role == "bare":
        serve_bare(args.port)
        return 0
    if args.role == "clients":
        stops = json.loads(args.stops_file.read_text())
        # Worker i starts at stop i, so each stop's watchers are spread over the workers.
        run_clients(args.base, stops, args.offset, args.count, args.out)
        return 0

    stops = stop_ids(args.stops)
    args.go_binary = build_go_clients() if args.client_runtime == "go" else None
    if args.client_runtime == "go" and args.go_binary is None:
        print(
            "no Go toolchain on PATH: running the Python clients instead (they measure themselves more than the server)"
        )
    clients = "one Go process" if args.go_binary else f"{args.client_procs} Python processes"
    loop = "uvloop" if event_loop_factory() else "asyncio"
    from api.command import GC_THRESHOLDS

    collector = "CPython's default" if args.default_gc else f"{GC_THRESHOLDS} as `smartbus api`"
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cpus, python {platform.python_version()}; both servers on "
        f"{loop}, collector thresholds {collector}; load average {load_average()}"
    )
    print(
        f"input: {args.clients} clients on {len(stops)} stops ({args.clients // len(stops)} per stop), every board "
        f"changing every {args.period:g} s, clients in {clients}, {args.seconds:.0f} s measured"
    )
    api = phase("api", args, stops, None)
    bare = None if args.no_baseline else phase("bare", args, stops, api["sample"])
    for r in (api, bare) if bare else (api,):
        print(
            f"{r['name']:>4}: connected {r['connected']} (failed {r['failed']}), {r['messages']} messages checked, "
            f"{r['bad']} wrong; {r['msgs_per_s']:.0f} msg/s; server CPU {r['server_cpu_s']:.1f} s -> "
            f"{r['msgs_per_cpu_s']:.0f} msg per CPU-second; latency Redis->client p50 {r['p50_ms']:.0f} ms, "
            f"p95 {r['p95_ms']:.0f} ms, p99 {r['p99_ms']:.0f} ms, max {r['max_ms']:.0f} ms"
        )
        print(
            f"      publisher {r['publisher_rate']:.0f} stop changes/s (asked {len(stops) / args.period:.0f}); "
            f"all connected in {r['connect_s']:.0f} s; clients' CPU {r['client_cpu_s']:.1f} s; server's full "
            f"garbage collections in the window: {len(r['gc_pauses'])}, longest "
            f"{max(r['gc_pauses'], default=0) * 1000:.0f} ms"
        )
    if bare and bare["msgs_per_cpu_s"]:
        ratio = api["msgs_per_cpu_s"] / bare["msgs_per_cpu_s"]
        print(f"api / bare websockets broadcast, messages per CPU-second: {ratio:.2f}")
    print(f"load average after: {load_average()}")
    return 0


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())
