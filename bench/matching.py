"""Matching speed and wrong-leg share: the tracker's windowed path against shapely's whole-shape projection.

    .venv/bin/python bench/matching.py [--trips 200] [--noise 10] [--interval 30]

Drives --trips trips of the bundled Cairns feed exactly on schedule with GPS noise, one ping at a time, and
prints in one run:
- engine: Engine.process per ping (matching + state update + the VehicleState record), pings/s;
- windowed: the matcher's walk from the expected progress alone, pings/s;
- shapely: LineString.project onto the whole shape (the reference path), pings/s;
- record: building the engine's VehicleState from the engine's own states alone, pings/s (a floor under the
  engine's cost per ping that no matching or tracking work can remove);
and for each path the share of pings put on the wrong leg (more than 200 m along the shape from the truth).
Rates are in CPU time of this process, with the load average printed alongside.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import sys
import time
from pathlib import Path

import numpy as np
import shapely

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from eta import native  # noqa: E402
from eta.engine import Engine  # noqa: E402
from eta.matching import ShapeMatcher  # noqa: E402
from eta.network import Network, load_network  # noqa: E402
from eta.timeline import TripTimeline  # noqa: E402
from smartbus.messages import Ping, VehicleState  # noqa: E402

WRONG_LEG_M = 200.0
# CPU time of this process, not wall time: on a shared machine the wall clock mostly measures the others
_clock = time.process_time


def drive(network: Network, trip_id: str, day: dt.date, vehicle: str, interval: float, noise: float, seed: int):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    trip = network.trips[trip_id]
    shape = network.shapes[trip.shape_id]
    timeline = TripTimeline(trip)
    origin = network.service_day_origin(day)
    times = np.arange(trip.departure[0], trip.arrival[-1] + 0.001, interval)
    dists = np.array([timeline.dist_at(float(t)) for t in times])
    x = np.interp(dists, shape.dist, shape.xy[:, 0]) + rng.normal(0, noise / np.sqrt(2), len(times))
    y = np.interp(dists, shape.dist, shape.xy[:, 1]) + rng.normal(0, noise / np.sqrt(2), len(times))
    lat, lon = network.projection.to_latlon(x, y)
    pings = [
        Ping(vehicle, float(origin + t), float(a), float(o), trip_id=trip_id, start_date=day.strftime("%Y%m%d"))
        for t, a, o in zip(times, lat, lon, strict=True)
    ]
    return pings, dists, x, y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trips", type=int, default=200)
    parser.add_argument("--noise", type=float, default=10.0, help="RMS GPS error, metres")
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between pings")
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    network = load_network(REPO / "simulator" / "data" / "cairns_gtfs.zip", REPO / "var" / "cache")
    day = dt.date(2014, 6, 3)
    trip_ids = network.trips_on(day)[:: max(1, len(network.trips_on(day)) // args.trips)][: args.trips]
    runs = [drive(network, t, day, f"bus-{k}", args.interval, args.noise, k) for k, t in enumerate(trip_ids)]
    pings = [p for run in runs for p in run[0]]
    truth = np.concatenate([run[1] for run in runs])
    count = len(pings)

    warm = Engine(network)  # builds every matcher and timeline these trips need, outside the timing
    for ping in pings:
        warm.process(ping)
    engine = Engine(network)
    engine.ctx.matchers, engine.ctx.timelines = warm.ctx.matchers, warm.ctx.timelines
    engine.ctx.shapes_near(0.0, 0.0)  # builds the spatial index of shapes (once per network), outside the timing
    got = np.empty(count)
    states: list[VehicleState] = []
    start = _clock()
    for k, ping in enumerate(pings):
        state = engine.process(ping).state
        if state is None:
            got[k] = np.nan
            continue
        got[k] = np.nan if state.shape_dist is None else state.shape_dist
        states.append(state)
    engine_s = _clock() - start

    fields = [dataclasses.astuple(state) for state in states]
    start = _clock()
    for values in fields:
        VehicleState(*values)
    record_s = _clock() - start

    # the matching alone, as the tracker calls it: a window from the last progress, a guess from speed
    matchers = {t: ShapeMatcher(network.shapes[network.trips[t].shape_id]) for t in trip_ids}
    calls = []
    for run, trip_id in zip(runs, trip_ids, strict=True):
        _, dists, xs, ys = run
        progress = np.concatenate(([dists[0]], dists[:-1]))
        for x, y, p in zip(xs.tolist(), ys.tolist(), progress.tolist(), strict=True):
            calls.append((matchers[trip_id], x, y, p - 40.0, p + 40.0 * args.interval + 150.0, p + 7.0 * args.interval))
    windowed = np.empty(count)
    start = _clock()
    for k, (matcher, x, y, lo, hi, guess) in enumerate(calls):
        windowed[k] = matcher.locate(x, y, lo, hi, guess)[0]
    windowed_s = _clock() - start

    lines = {t: shapely.LineString(network.shapes[network.trips[t].shape_id].xy) for t in trip_ids}
    points = [
        (lines[t], shapely.Point(x, y))
        for run, t in zip(runs, trip_ids, strict=True)
        for x, y in zip(run[2].tolist(), run[3].tolist(), strict=True)
    ]
    whole = np.empty(count)
    start = _clock()
    for k, (line, point) in enumerate(points):
        whole[k] = line.project(point)
    shapely_s = _clock() - start

    load_end = os.getloadavg()[0]

    def wrong(values: np.ndarray) -> str:
        bad = np.isnan(values) | (np.abs(values - truth) > WRONG_LEG_M)
        return f"{100.0 * bad.mean():.3f}% wrong leg"

    print(f"{count} pings on {len(trip_ids)} Cairns trips, {args.noise:g} m noise, every {args.interval:g} s")
    print(f"rates in CPU time of this process; load average {load_start:.2f} at the start, {load_end:.2f} at the end")
    print(f"ETA core: {native.STATUS}")
    print(f"engine   (match + state update + record) {count / engine_s:>10,.0f} pings/s  {wrong(got)}")
    print(f"windowed (matching alone)                {count / windowed_s:>10,.0f} pings/s  {wrong(windowed)}")
    print(f"shapely  (whole-shape projection)        {count / shapely_s:>10,.0f} pings/s  {wrong(whole)}")
    print(f"record   (VehicleState alone)            {len(fields) / record_s:>10,.0f} pings/s")


if __name__ == "__main__":
    main()
