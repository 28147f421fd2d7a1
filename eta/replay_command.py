"""`smartbus replay`: run the tracker over a pings file in file order and write what it found.

Writes DIR/stop_events.jsonl (one final record per stop visit), DIR/predictions.jsonl (what riders
would have been shown, see eta/prediction/recorder.py) and DIR/summary.json (counts only, so the
same inputs give byte-identical files); timings go to standard output.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gtfs", type=Path, required=True, help="GTFS feed (zip or folder)")
    parser.add_argument("--pings", type=Path, required=True, help="pings CSV (gzip accepted), in delivery order")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--states", action="store_true", help="also write DIR/vehicle_states.jsonl (one state per accepted ping)"
    )
    parser.add_argument("--state-in", type=Path, help="warm the predictor with this learned state (default: cold)")
    parser.add_argument("--state-out", type=Path, help="save the predictor's learned state here at the end")
    parser.add_argument("--cache-dir", type=Path, default=Path("var/cache"), help="compiled network cache")


def run(args: argparse.Namespace) -> int:
    import time

    from eta.network import load_network
    from eta.prediction.recorder import PredictionRecorder
    from eta.replay import replay
    from smartbus.errors import SmartbusError

    started = time.perf_counter()
    try:
        network = load_network(args.gtfs, args.cache_dir)
    except SmartbusError as exc:
        print(f"error: {exc}")
        return 2
    loaded = time.perf_counter()
    recorder = PredictionRecorder(network, args.out, args.state_in, args.state_out)
    summary = replay(network, args.pings, args.out, write_states=args.states, on_output=recorder.on_output)
    recorder.close()
    done = time.perf_counter()
    pings = summary["pings"]
    print(f"network loaded in {loaded - started:.2f} s")
    print(f"replayed {pings} pings in {done - loaded:.2f} s ({pings / max(done - loaded, 1e-9):,.0f} pings/s)")
    print(f"stop events: {summary['stop_events']}; predictions written: {recorder.written}; wrote {args.out}")
    return 0
