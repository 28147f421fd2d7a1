"""Tracker rules a user would notice: arrivals on time, rejects, monotone progress, replay and restart."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from eta.engine import Engine
from eta.matching import ShapeMatcher
from eta.network import Network
from eta.prediction import LearningPredictor
from eta.replay import replay
from smartbus.messages import Ping, StopEvent
from tests.eta.pings import trip_pings

DAY = dt.date(2014, 6, 3)  # a Tuesday inside the Cairns calendar


def _long_trip(network: Network) -> str:
    ids = network.trips_on(DAY)
    return max(ids[:200], key=lambda t: len(network.trips[t].stop_ids))


def _run(engine: Engine, pings: list[Ping]) -> list[StopEvent]:
    final: dict[tuple[str, int], StopEvent] = {}
    for ping in pings:
        for event in engine.process(ping).events:
            final[(event.trip_id, event.stop_sequence)] = event
    return list(final.values())


def test_on_schedule_bus_with_trip_id_gets_arrivals_at_the_scheduled_times(cairns: Network) -> None:
    trip_id = _long_trip(cairns)
    trip = cairns.trips[trip_id]
    pings, _ = trip_pings(cairns, trip_id, DAY, interval_s=20.0, with_trip_id=True)
    events = _run(Engine(cairns), pings)
    origin = cairns.service_day_origin(DAY)
    by_seq = {e.stop_sequence: e for e in events}
    assert len(by_seq) >= len(trip.stop_ids) - 1
    for k, seq in enumerate(trip.stop_sequences.tolist()):
        if seq in by_seq:
            # 20 s, not 5: a fix inside the arrive radius but short of the stop still fixes the arrival early
            assert abs(by_seq[seq].arrival_time - (origin + float(trip.arrival[k]))) <= 20.0


def test_trip_is_inferred_without_trip_id_and_progress_never_goes_back(cairns: Network) -> None:
    trip_id = _long_trip(cairns)
    pings, dists = trip_pings(cairns, trip_id, DAY, interval_s=30.0, noise_m=10.0, seed=3)
    engine = Engine(cairns)
    progress = []
    for ping in pings:
        state = engine.process(ping).state
        assert state is not None
        if state.trip_id == trip_id and state.shape_dist is not None:
            progress.append(state.shape_dist)
    assert len(progress) >= 0.9 * len(pings)
    assert all(b >= a for a, b in zip(progress, progress[1:], strict=False))


def test_duplicates_out_of_order_and_impossible_speed_are_rejected(cairns: Network) -> None:
    trip_id = _long_trip(cairns)
    pings, _ = trip_pings(cairns, trip_id, DAY, interval_s=30.0, with_trip_id=True)
    engine = Engine(cairns)
    engine.process(pings[0])
    engine.process(pings[1])
    assert engine.process(pings[1]).rejected_reason == "duplicate"
    assert engine.process(pings[0]).rejected_reason == "out_of_order"
    far = Ping(pings[2].vehicle_id, pings[1].timestamp + 10, pings[1].latitude + 0.05, pings[1].longitude)
    assert engine.process(far).rejected_reason == "impossible_speed"
    assert engine.process(pings[2]).rejected_reason is None


def test_silent_vehicle_is_reported_stale(cairns: Network) -> None:
    pings, _ = trip_pings(cairns, _long_trip(cairns), DAY, with_trip_id=True)
    engine = Engine(cairns)
    engine.process(pings[0])
    assert engine.stale(pings[0].timestamp + 30) == []
    stale = engine.stale(pings[0].timestamp + 3600)
    assert [s.status for s in stale] == ["stale"]


def test_snapshot_and_restore_give_the_same_outputs(cairns: Network) -> None:
    pings, _ = trip_pings(cairns, _long_trip(cairns), DAY, interval_s=30.0, noise_m=8.0, seed=5)
    half = len(pings) // 2
    straight = Engine(cairns)
    for ping in pings[:half]:
        straight.process(ping)
    restored = Engine.restore(cairns, straight.snapshot())
    for ping in pings[half:]:
        assert restored.process(ping) == straight.process(ping)


def test_replay_twice_gives_byte_identical_files(cairns: Network, tmp_path: Path) -> None:
    pings, _ = trip_pings(cairns, _long_trip(cairns), DAY, interval_s=30.0, noise_m=10.0, seed=7)
    csv_path = tmp_path / "pings.csv"
    lines = ["vehicle_id,timestamp,latitude,longitude"]
    lines += [f"{p.vehicle_id},{p.timestamp},{p.latitude:.7f},{p.longitude:.7f}" for p in pings]
    csv_path.write_text("\n".join(lines) + "\n")
    replay(cairns, csv_path, tmp_path / "a")
    replay(cairns, csv_path, tmp_path / "b")
    for name in ("stop_events.jsonl", "summary.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a" / "stop_events.jsonl").read_text().count("\n") > 5


# A fix 15 m off its point (21 m diagonally) projects farther along than that only round a bend.
SAME_LEG_M = 60.0


@settings(max_examples=60, deadline=None)
@given(fraction=st.floats(0.0, 1.0), dx=st.floats(-15.0, 15.0), dy=st.floats(-15.0, 15.0))
def test_windowed_matching_agrees_with_shapely_on_a_shape_without_loops(
    cairns: Network, fraction: float, dx: float, dy: float
) -> None:
    shape = cairns.shapes[cairns.trips[_long_trip(cairns)].shape_id]
    straightish = shape.dist[-1] / math.dist(shape.xy[0], shape.xy[-1])
    assert straightish < 10  # a shape that does not come back on itself
    true = fraction * shape.length
    x = float(np.interp(true, shape.dist, shape.xy[:, 0])) + dx
    y = float(np.interp(true, shape.dist, shape.xy[:, 1])) + dy
    line = shapely.LineString(shape.xy)
    lo, hi = true - 300.0, true + 300.0
    along, offset = ShapeMatcher(shape).locate(x, y, lo, hi, true)
    fix = shapely.Point(x, y)
    # The fix stays on its own leg: the nearest point of the whole line may lie on another stretch that comes
    # back within a few metres (the reference path's wrong-leg jump), never the windowed match.
    assert abs(along - true) <= SAME_LEG_M
    if abs(line.project(fix) - true) <= SAME_LEG_M:  # where the nearest stretch is the fix's own, both agree
        assert offset <= line.distance(fix) + 1.0


@settings(max_examples=300, deadline=None)
@given(
    trip_index=st.integers(0, 199),
    fraction=st.floats(0.0, 1.0),
    window=st.tuples(st.floats(-3000.0, 3000.0), st.floats(0.0, 6000.0)),
    dx=st.floats(-150.0, 150.0),
    dy=st.floats(-150.0, 150.0),
)
def test_the_spatial_index_leaves_out_no_leg_of_a_shape_that_passes_near_a_fix(
    cairns: Network, trip_index: int, fraction: float, window: tuple[float, float], dx: float, dy: float
) -> None:
    # A bus's first fix on its trip is matched only on the segments the index says pass near it: it must find
    # every leg the walk of the whole window finds, loops and returns included.
    ctx = _indexed_engine(cairns).ctx
    shape_id = cairns.trips[cairns.trips_on(DAY)[trip_index]].shape_id
    shape = cairns.shapes[shape_id]
    along = fraction * shape.length
    x = float(np.interp(along, shape.dist, shape.xy[:, 0])) + dx
    y = float(np.interp(along, shape.dist, shape.xy[:, 1])) + dy
    lo, hi = along + window[0], along + window[0] + window[1]
    matcher = ctx.matchers.get(shape_id)
    within = ctx.config.off_route_m
    near = ctx.shapes_near(x, y).get(shape_id)
    walked = matcher.candidates(x, y, lo, hi, within)
    assert (matcher.candidates(x, y, lo, hi, within, near) if near is not None else []) == walked


_ENGINES: dict[int, Engine] = {}


def _indexed_engine(network: Network) -> Engine:
    """One engine per network for the property test, its spatial index built once."""
    engine = _ENGINES.get(id(network))
    if engine is None:
        engine = _ENGINES[id(network)] = Engine(network)
    return engine


def test_a_warmed_engine_and_predictor_answer_as_cold_ones_and_build_nothing_on_the_first_pings(
    cairns: Network,
) -> None:
    trip_id = _long_trip(cairns)
    pings, _ = trip_pings(cairns, trip_id, DAY, interval_s=30.0, noise_m=10.0, seed=5)
    warmed, cold = Engine(cairns), Engine(cairns)
    warmed_predictor, cold_predictor = LearningPredictor(cairns), LearningPredictor(cairns)
    warmed.warm()
    warmed_predictor.warm()
    built = len(warmed.ctx.matchers)
    assert built == len(cairns.shapes)
    grid = warmed.ctx._shape_grid
    assert grid is not None
    for ping in pings:
        a, b = warmed.process(ping), cold.process(ping)
        assert a == b
        if a.state is not None:
            assert warmed_predictor.publish(a.state) == cold_predictor.publish(a.state)
    assert len(warmed.ctx.matchers) == built  # every matcher the bus needed was there already
    assert warmed.ctx._shape_grid is grid  # and the grid of shapes its first fix looked in
