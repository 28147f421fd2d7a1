"""Replay speed with predictions, and the predictor's own cost, in one run.

    .venv/bin/python bench/prediction.py [--pings DIR/pings.csv] [--seed 3] [--date 2024-05-14] [--repeat 3]

Without --pings it simulates a Cairns day first (`smartbus simulate`, defaults). Then, on the same pings
in memory, each --repeat times (the median is reported):
- tracker only: Engine.process over every ping (the baseline);
- tracker + predictions: the same plus what `smartbus replay` does for predictions (learning from stop
  events, publishing, the schedule board, writing predictions.jsonl);
- predictor only: the prediction part alone over the tracker's recorded outputs.
Prints pings/s for each, the ratio of the two replays, and the lines written.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from eta import native  # noqa: E402
from eta.engine import Engine, EngineOutput  # noqa: E402
from eta.network import Network, load_network  # noqa: E402
from eta.prediction.recorder import PredictionRecorder  # noqa: E402
from eta.replay import read_pings  # noqa: E402
from smartbus.messages import Ping  # noqa: E402

FEED = REPO / "simulator" / "data" / "cairns_gtfs.zip"


def _tracker(network: Network, pings: list[Ping]) -> tuple[float, list[EngineOutput]]:
    engine = Engine(network)
    started = time.perf_counter()
    outputs = [engine.process(p) for p in pings]
    return time.perf_counter() - started, outputs


def _with_predictions(network: Network, pings: list[Ping], out: Path) -> tuple[float, int]:
    engine = Engine(network)
    started = time.perf_counter()
    recorder = PredictionRecorder(network, out)
    for ping in pings:
        recorder.on_output(engine.process(ping))
    recorder.close()
    return time.perf_counter() - started, recorder.written


def _predictor_only(network: Network, outputs: list[EngineOutput], out: Path) -> float:
    started = time.perf_counter()
    recorder = PredictionRecorder(network, out)
    for output in outputs:
        recorder.on_output(output)
    recorder.close()
    return time.perf_counter() - started


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pings", type=Path)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--date", default="2024-05-14")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pings_path = args.pings
        if pings_path is None:
            subprocess.run(
                [str(Path(sys.executable).with_name("smartbus")), "simulate", "--gtfs", str(FEED), "--seed",
                 str(args.seed), "--date", args.date, "--out", tmp, "--no-progress"],
                check=True,
            )
            pings_path = Path(tmp) / "pings.csv"
        network = load_network(FEED, REPO / "var" / "cache")
        pings = list(read_pings(pings_path, Counter()))
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
              f"Python {platform.python_version()}; input: {pings_path} ({len(pings)} pings)")
        print(f"load average before: {_load()} (a shared machine: compare runs made under similar load)")
        print(f"ETA core: {native.STATUS}")
        tracker_s, full_s, predictor_s = [], [], []
        written = 0
        for _ in range(args.repeat):
            elapsed, outputs = _tracker(network, pings)
            tracker_s.append(elapsed)
            elapsed, written = _with_predictions(network, pings, Path(tmp) / "full")
            full_s.append(elapsed)
            predictor_s.append(_predictor_only(network, outputs, Path(tmp) / "alone"))
        n = len(pings)
        t, f, p = (statistics.median(x) for x in (tracker_s, full_s, predictor_s))
        print(f"tracker only:            {n / t:9,.0f} pings/s  (median of {args.repeat})")
        print(f"tracker + predictions:   {n / f:9,.0f} pings/s  ({written:,} prediction lines written)")
        print(f"predictor alone:         {n / p:9,.0f} pings/s")
        print(f"replay with predictions runs at {t / f:.2f} of the tracker-only speed; "
              f"{written / n:.1f} prediction lines per ping")
        print(f"load average after: {_load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
