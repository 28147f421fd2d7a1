"""How fast the simulator generates pings for a big fleet, as fast as possible (no sink).

    .venv/bin/python bench/simulator.py [--vehicles 10000] [--seconds 60] [--csv]

Streams the bundled Cairns feed's day with N vehicles at the busiest moment (replicated blocks) from 07:00
(buses already out), for at least --seconds of wall time or the rest of the day, and prints pings/s, stop
records, and peak memory.
With --csv it also writes the three files to a temporary directory, to show the cost of the CSV sink.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from eta.network import load_network  # noqa: E402
from simulator.config import SimConfig  # noqa: E402
from simulator.gc_settings import relax_gc  # noqa: E402
from simulator.generator import plan_day, simulate  # noqa: E402
from simulator.records import Delivery  # noqa: E402
from simulator.sinks import CsvSink  # noqa: E402
from smartbus.settings import BUNDLED_FEED  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vehicles", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=60.0, help="stop after this much wall time")
    parser.add_argument("--ping-interval", type=float, default=30.0)
    parser.add_argument("--from-hour", type=float, default=7.0,
                        help="start at this local hour, buses already out (0 = the whole day from its start)")
    parser.add_argument("--csv", action="store_true", help="also write the CSV files")
    parser.add_argument("--default-gc", action="store_true", help="keep CPython's default collector settings")
    args = parser.parse_args()

    network = load_network(BUNDLED_FEED, REPO / "var" / "cache")
    started = time.perf_counter()
    config = SimConfig(vehicles=args.vehicles, ping_interval_s=args.ping_interval)
    plan = plan_day(network, dt.date(2026, 11, 25), config)
    planned = time.perf_counter() - started
    if not args.default_gc:
        relax_gc()
    machine = platform.processor() or platform.machine()
    load = os.getloadavg()[0]
    print(f"machine: {machine}, {os.cpu_count()} cpus, load {load:.1f}, Python {platform.python_version()}")
    print(f"input: Cairns feed day {plan.feed_day} as {plan.real_day}, {len(plan.duties)} vehicles "
          f"({args.vehicles} at the peak), {sum(len(d.trip_ids) for d in plan.duties)} trips, "
          f"ping every {args.ping_interval:g} s; planning took {planned:.2f} s")
    with tempfile.TemporaryDirectory() as tmp:
        sink = CsvSink(Path(tmp)) if args.csv else None
        pings = stops = 0
        sim_reached = plan.origin + args.from_hour * 3600
        started = time.perf_counter()
        cpu_started = time.process_time()
        deadline = started + args.seconds
        next_report = started + 30.0
        start_at = plan.origin + args.from_hour * 3600 if args.from_hour > 0 else None
        for event in simulate(plan, start_at=start_at):
            if sink is not None:
                sink.write(event)
            if isinstance(event, Delivery):
                pings += 1
                if pings % 10_000 == 0:
                    sim_reached = event.deliver_at
                    now = time.perf_counter()
                    if now > deadline:
                        break
                    if now > next_report:  # long runs: a line every 30 s
                        next_report = now + 30.0
                        hours = (sim_reached - plan.origin) / 3600
                        cpu_rate = pings / (time.process_time() - cpu_started)
                        print(f"  ... {pings:,} pings, clock {hours:.1f} h, {cpu_rate:,.0f} per CPU-second", flush=True)
            else:
                stops += 1
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        if sink is not None:
            sink.close()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    simulated_h = (sim_reached - plan.origin) / 3600
    print(f"generated {pings:,} pings and {stops:,} stop records in {elapsed:.1f} s"
          f"{' (with CSV files)' if args.csv else ''}{' (default gc)' if args.default_gc else ''}, "
          f"simulated clock went from {args.from_hour:.1f} h to {simulated_h:.1f} h")
    print(f"pings/s: {pings / elapsed:,.0f} wall, {pings / cpu:,.0f} per CPU-second (shared machine: trust the latter)")
    print(f"peak RSS: {rss_mb:,.0f} MB")


if __name__ == "__main__":
    main()
