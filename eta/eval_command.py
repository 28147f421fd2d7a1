"""`smartbus eval`: score a replay's predictions as riders see them, against both schedule baselines.

Prints a table; writes DIR/eval.json and DIR/accuracy.png.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gtfs", type=Path, required=True, help="GTFS feed (zip or folder)")
    parser.add_argument("--pings", type=Path, required=True, help="the pings CSV the predictions came from")
    parser.add_argument("--predictions", type=Path, required=True, help="predictions.jsonl from smartbus replay")
    parser.add_argument(
        "--observed", type=Path, required=True, help="observed arrivals: truth_stops.csv or stop_events.jsonl"
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--cache-dir", type=Path, default=Path("var/cache"), help="compiled network cache")


def run(args: argparse.Namespace) -> int:
    from eta.evaluation import report
    from eta.evaluation.run import evaluate
    from eta.network import load_network
    from smartbus.errors import SmartbusError

    try:
        network = load_network(args.gtfs, args.cache_dir)
    except SmartbusError as exc:
        print(f"error: {exc}")
        return 2
    body = evaluate(network, args.pings, args.predictions, args.observed, args.out)
    print(f"{body['observed_arrivals']} observed arrivals, {body['predictions']['lines']} predictions")
    print(report.table(body["scores"]))
    print(f"garbage: {body['garbage']}")
    print(f"margins over the better baseline: {body['margins_over_best_baseline']}")
    print(f"wrote {args.out / 'eval.json'} and {args.out / 'accuracy.png'}")
    return 0
