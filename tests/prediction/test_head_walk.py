"""The quick head walk: the first stop ahead of a bus between two stops, worked out directly on every fix, is
the very arrival a walk of one stop gives (the full walk then shifts by the difference)."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from eta.network import Network
from eta.prediction.predictor import LearningPredictor, _Seen
from tests.prediction.test_predictor import DATE, _long_trip, _state


def _learned(cairns: Network, trip_id: str, runs: list[float]) -> LearningPredictor:
    """A predictor that has seen runs of the trip's first segments (history, recent runs, error weights)."""
    predictor = LearningPredictor(cairns)
    plan = predictor.plan(trip_id)
    assert plan is not None
    origin = predictor.origin(DATE)
    for k, run in enumerate(runs):
        j = k % len(plan.segments)
        started = origin + float(plan.departure[j]) + 30.0 * k
        predictor.model.observe_run(plan.segments[j], int((started - origin) // 1800), plan.prior_log[j], started, run)
    return predictor


@settings(max_examples=150, deadline=None)
@given(
    index=st.integers(min_value=1, max_value=20),
    share=st.floats(min_value=0.0, max_value=1.0),
    late_s=st.floats(min_value=-600.0, max_value=3000.0),
    pace=st.none() | st.floats(min_value=-0.8, max_value=0.8),
    runs=st.lists(st.floats(min_value=5.0, max_value=900.0), max_size=40),
    status=st.sampled_from(["in_transit", "at_stop"]),
)
def test_the_quick_head_is_the_one_stop_walk(
    cairns: Network, index: int, share: float, late_s: float, pace: float | None, runs: list[float], status: str
) -> None:
    trip_id = _long_trip(cairns)
    predictor = _learned(cairns, trip_id, runs)
    state = _state(cairns, trip_id, index, share, late_s, status)  # type: ignore[arg-type]
    if pace is not None:
        predictor._seen[state.vehicle_id] = _Seen(trip_id, DATE, index - 1, state.timestamp - 60.0, None, False,
                                                  pace, True)
    plan = predictor.plan(trip_id)
    assert plan is not None
    at_stop = status == "at_stop"
    quick = predictor._head(state, plan, index, at_stop)
    assert quick == predictor._head(state, plan, index, at_stop, quick=False)
    # a short horizon leaves the stop beyond it, both ways
    near = LearningPredictor(cairns, predictor.model, horizon_s=5.0)
    near._seen = predictor._seen
    assert near._head(state, plan, index, at_stop) == near._head(state, plan, index, at_stop, quick=False)


def test_a_bus_without_a_position_along_its_trip_is_walked_the_long_way(cairns: Network) -> None:
    trip_id = _long_trip(cairns)
    predictor = LearningPredictor(cairns)
    plan = predictor.plan(trip_id)
    assert plan is not None
    state = dataclasses.replace(_state(cairns, trip_id, 3, 0.5, 0.0, "in_transit"), shape_dist=None)
    assert predictor._head(state, plan, 3, False) == predictor._head(state, plan, 3, False, quick=False)
