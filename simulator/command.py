"""`smartbus simulate`: a day of bus service on a GTFS feed, as pings plus the ground truth behind them."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

from smartbus.settings import BUNDLED_FEED

_RATE_HELP = {
    "dropout_rate": "fraction of fixes never sent",
    "gap_rate": "outages of 2-10 min per vehicle-hour",
    "duplicate_rate": "fraction of fixes sent twice",
    "late_rate": "fraction of fixes delivered 1-10 min late",
    "out_of_order_rate": "fraction of fixes delivered after the next fix",
    "zero_fix_rate": "fraction of fixes reading 0,0",
    "swapped_fix_rate": "fraction of fixes with latitude and longitude swapped",
    "jump_fix_rate": "fraction of fixes kilometres off",
    "missing_trip_rate": "fraction of trips whose pings carry no trip_id",
    "wrong_trip_rate": "fraction of trips whose pings carry another trip of the route",
    "skip_stop_rate": "fraction of intermediate non-timepoint stops passed without stopping",
    "early_departure_rate": "fraction of early arrivals at timepoints that leave without waiting",
    "short_turn_rate": "fraction of trips cut short before their last stop",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from simulator.config import DeviceFaults, DrivingFaults, SimConfig

    base = SimConfig()
    add = parser.add_argument
    add("--gtfs", type=Path, default=BUNDLED_FEED, help="GTFS zip or folder (default: the bundled Cairns feed)")
    add("--date", help="real date of the run, YYYY-MM-DD (default: today in the agency's time zone)")
    add("--vehicles", type=int,
        help="vehicles in service at the busiest moment, 1-10000 (default: every block of the day once)")
    add("--seed", type=int, default=base.seed, help="random seed (default: %(default)s)")
    add("--ping-interval", type=float, default=base.ping_interval_s,
        help="seconds between fixes, 1-60 (default: %(default)s)")
    add("--gps-noise", type=float, default=base.gps_noise_m,
        help="horizontal RMS GPS error, metres (default: %(default)s)")
    faults = parser.add_argument_group("fault rates")
    for group in (DeviceFaults(), DrivingFaults()):
        for f in fields(group):
            faults.add_argument(
                "--" + f.name.replace("_", "-"), type=float, default=getattr(group, f.name),
                help=f"{_RATE_HELP[f.name]} (default: %(default)s)",
            )
    add("--out", type=Path, help="write pings.csv, truth_stops.csv, truth_positions.csv into this directory")
    add("--to", choices=("csv", "kafka", "http"), default="csv",
        help="where pings go; with kafka or http, --out also writes the files (default: %(default)s)")
    add("--ingest-url", help="with --to http: the ingest edge, e.g. http://127.0.0.1:8001 (POST /v1/pings)")
    add("--ingest-token", help="with --to http: sent as 'Authorization: Bearer TOKEN'")
    add("--ingest-tokens", type=Path, metavar="CSV",
        help="with --to http: per-device tokens (columns vehicle_id,token); each request then carries one "
             "vehicle's pings with its own token, --ingest-token for vehicles not listed")
    add("--speed", type=float,
        help="pace --to kafka or http at this multiple of real time, 1-100 (default: as fast as possible)")
    add("--from-now", action="store_true",
        help="with --to kafka or http: start at the current moment, buses already out")
    add("--no-progress", action="store_true", help="no progress line on stderr")


def run(args: argparse.Namespace) -> int:
    from simulator.run import SimulateRequest, execute

    return execute(SimulateRequest.from_args(args))
