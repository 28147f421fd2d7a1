"""Accuracy of the tracker through `smartbus replay`: simulate, strip the trip fields, replay, score.

    .venv/bin/python bench/replay_accuracy.py [--vehicles N] [--seed 1] [--date 2024-05-14] [--feeds all]

For each feed (the bundled Cairns feed and the edge-case feeds in tests/data/feeds), runs
`smartbus simulate` with its defaults (10 m RMS noise, 30 s pings, faults on), removes trip_id, route_id,
direction_id, start_date and start_time from every ping, runs the replay command's own function
(`eta.replay.replay`, as `smartbus replay --states` does), and prints:
- positions: share of clean fixes matched to the right trip within 20 m of the true distance along the shape;
- wrong leg: fixes put on another pass of the same place (on the right trip, near the true position on the
  map, but more than 200 m away along the shape);
- arrivals: share of true arrivals detected on the right trip, and of those, within 10 s and 30 s.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from eta.network import Network, load_network  # noqa: E402
from eta.replay import replay  # noqa: E402
from simulator.sinks import strip_trip_fields  # noqa: E402

SMARTBUS = str(Path(sys.executable).with_name("smartbus"))
FEEDS = {
    "cairns": REPO / "simulator" / "data" / "cairns_gtfs.zip",
    "loop": REPO / "tests" / "data" / "feeds" / "loop",
    "out_and_back": REPO / "tests" / "data" / "feeds" / "out_and_back",
    "no_shapes": REPO / "tests" / "data" / "feeds" / "no_shapes",
    "holiday_frequencies": REPO / "tests" / "data" / "feeds" / "holiday_frequencies",
}
BAD_FIX = {"zero", "swapped", "jump"}  # faults that move the reported position: not the matcher's to place
WRONG_LEG_ALONG_M = 200.0
WRONG_LEG_NEAR_M = 60.0


@dataclass
class Score:
    fixes: int = 0
    within_20m: int = 0
    wrong_leg: int = 0
    arrivals: int = 0
    detected: int = 0
    within_10s: int = 0
    within_30s: int = 0
    position_misses: Counter[str] = field(default_factory=Counter)  # why a fix was not within 20 m
    arrival_misses: Counter[str] = field(default_factory=Counter)  # why an arrival was missed or off by > 10 s

    def add(self, other: Score) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def causes(self) -> list[str]:
        def share(counter: Counter[str], total: int) -> str:
            return ", ".join(f"{k} {100.0 * v / max(total, 1):.2f}%" for k, v in counter.most_common(8))

        return [
            f"    positions missed by cause: {share(self.position_misses, self.fixes)}",
            f"    arrivals missed or > 10 s by cause: {share(self.arrival_misses, self.arrivals)}",
        ]

    def line(self, name: str) -> str:
        def pct(a: int, b: int) -> str:
            return f"{100.0 * a / b:6.2f}%" if b else "    n/a"

        return (
            f"{name:<20} fixes {self.fixes:>7}  within 20 m {pct(self.within_20m, self.fixes)}  "
            f"wrong leg {self.wrong_leg:>4}  arrivals {self.arrivals:>6}  "
            f"detected {pct(self.detected, self.arrivals)}  "
            f"within 10 s {pct(self.within_10s, self.detected)}  within 30 s {pct(self.within_30s, self.detected)}"
        )


def _point_at(network: Network, shape_id: str, dist: float) -> tuple[float, float]:
    shape = network.shapes[shape_id]
    return float(np.interp(dist, shape.dist, shape.xy[:, 0])), float(np.interp(dist, shape.dist, shape.xy[:, 1]))


def score(network: Network, sim: Path, out: Path) -> Score:
    result = Score()
    states: dict[tuple[str, float], dict[str, object]] = {}
    with (out / "vehicle_states.jsonl").open() as f:
        for line in f:
            state = json.loads(line)
            states[(state["vehicle_id"], round(float(state["timestamp"]), 3))] = state
    with (sim / "truth_positions.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            if BAD_FIX & set(filter(None, row["faults"].split(";"))):
                continue
            result.fixes += 1
            state = states.get((row["vehicle_id"], round(float(row["timestamp"]), 3)))
            faults = set(filter(None, row["faults"].split(";"))) - {"missing_trip", "wrong_trip"}
            if state is None:
                result.position_misses["rejected " + ("+".join(sorted(faults)) or "clean fix")] += 1
                continue
            if state["trip_id"] is None:
                result.position_misses[f"no trip ({state['status']})"] += 1
                continue
            if state["trip_id"] != row["trip_id"]:
                result.position_misses[f"wrong trip ({state['status']})"] += 1
                continue
            true_dist = float(row["shape_dist"])
            got = float(state["shape_dist"])  # type: ignore[arg-type]
            if abs(got - true_dist) <= 20.0:
                result.within_20m += 1
            else:
                ahead = "ahead" if got > true_dist else "behind"
                result.position_misses[f"right trip, {ahead} ({state['status']})"] += 1
            if abs(got - true_dist) > WRONG_LEG_ALONG_M:
                shape_id = network.trips[row["trip_id"]].shape_id
                gx, gy = _point_at(network, shape_id, got)
                tx, ty = _point_at(network, shape_id, true_dist)
                if np.hypot(gx - tx, gy - ty) < WRONG_LEG_NEAR_M:
                    result.wrong_leg += 1
    # keyed by vehicle too: the simulator may replicate a trip on two vehicles (time-shifted copies)
    found: dict[tuple[str, str, str, int], dict[str, object]] = {}
    with (out / "stop_events.jsonl").open() as f:
        for line in f:
            event = json.loads(line)
            key = (event["vehicle_id"], event["trip_id"], event["service_date"], int(event["stop_sequence"]))
            found[key] = event
    with (sim / "truth_stops.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    first_last: dict[tuple[str, str, str], tuple[int, int]] = {}
    for row in rows:
        trip_key = (row["vehicle_id"], row["trip_id"], row["service_date"])
        seq = int(row["stop_sequence"])
        lo, hi = first_last.get(trip_key, (seq, seq))
        first_last[trip_key] = (min(lo, seq), max(hi, seq))
    for row in rows:
        result.arrivals += 1
        seq = int(row["stop_sequence"])
        event = found.get((row["vehicle_id"], row["trip_id"], row["service_date"], seq))
        lo, hi = first_last[(row["vehicle_id"], row["trip_id"], row["service_date"])]
        where = "served" if row["served"] == "1" else "passed"
        where = "first stop" if seq == lo else "last stop" if seq == hi else where
        if event is None:
            result.arrival_misses[f"missed ({where})"] += 1
            continue
        result.detected += 1
        signed = float(event["arrival_time"]) - float(row["arrival_time"])  # type: ignore[arg-type]
        error = abs(signed)
        result.within_10s += error <= 10.0
        result.within_30s += error <= 30.0
        if error > 10.0:
            gap = ", gap" if event["interpolated"] else ""
            result.arrival_misses[f"{'late' if signed > 0 else 'early'} ({where}{gap})"] += 1
    return result


def run_feed(name: str, feed: Path, args: argparse.Namespace, work: Path) -> Score:
    sim, out = work / name / "sim", work / name / "replay"
    subprocess.run(
        [
            SMARTBUS,
            "simulate",
            "--gtfs",
            str(feed),
            "--seed",
            str(args.seed),
            "--date",
            args.date,
            "--out",
            str(sim),
            "--no-progress",
            *(["--vehicles", str(args.vehicles)] if name == "cairns" and args.vehicles else []),
        ],
        check=True,
        capture_output=True,
    )
    stripped = work / name / "pings_stripped.csv"
    strip_trip_fields(sim / "pings.csv", stripped)
    # the replay command's own function, in process: the same stop events and states as `smartbus replay`,
    # without the predictions it also writes (another issue's, and slower than the tracker)
    network = load_network(feed, work / "cache")
    started = time.perf_counter()
    summary = replay(network, stripped, out, write_states=True)
    took = time.perf_counter() - started
    print(f"[{name}] replayed {summary['pings']} pings in {took:.2f} s ({summary['pings'] / took:,.0f} pings/s)")
    return score(network, sim, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--vehicles", type=int, default=None,
        help="Cairns vehicles at the peak (default: the simulator's, every block once; more replicates trips "
        "at times the timetable does not have, which no inference can place)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--date", default="2024-05-14")
    parser.add_argument("--feeds", default="all", help="comma-separated names, or all: " + ",".join(FEEDS))
    parser.add_argument("--keep", type=Path, help="keep the work files in this folder")
    args = parser.parse_args()
    names = list(FEEDS) if args.feeds == "all" else args.feeds.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        total = Score()
        lines = []
        for name in names:
            result = run_feed(name, FEEDS[name], args, work)
            total.add(result)
            lines.append(result.line(name))
            lines.extend(result.causes())
        for line in lines:
            print(line)
        if len(names) > 1:
            print(total.line("all"))
        print(*total.causes(), sep="\n")
        print("targets: within 20 m >= 99%, wrong leg 0, detected >= 95%, within 10 s >= 95%, within 30 s >= 99%")


if __name__ == "__main__":
    main()
