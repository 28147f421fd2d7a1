"""The quick head walk: the first stop ahead of a bus between two stops, worked out directly on every fix from its
last walk's estimate of that segment, is the very arrival a walk of one stop gives while the model has learned nothing
since (the full walk then shifts by the difference); what the model learns later reaches the board at the bus's next
walk, not at its next fix."""

from __future__ import annotations

import dataclasses
import math

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
    walked = predictor._current(state)
    assert walked is not None
    path, _ = walked
    assert predictor._head(state, plan, index, at_stop, path) == predictor._head(state, plan, index, at_stop)
    # a short horizon leaves the stop beyond it, both ways
    near = LearningPredictor(cairns, predictor.model, horizon_s=5.0)
    near._seen = predictor._seen
    assert near._head(state, plan, index, at_stop, path) == near._head(state, plan, index, at_stop)


def test_what_the_network_learns_moves_a_board_at_the_buss_next_walk_not_at_its_next_fix(cairns: Network) -> None:
    """A whole fleet first heard together, then the network's first runs learned (a cold start): each run moves
    the model for every bus at once. Were each board re-estimated from the model at every fix, most of the fleet
    would publish again in the same second, again and again; their own movement, and their walks, spread out."""
    trip_id = _long_trip(cairns)
    predictor = LearningPredictor(cairns)
    fleet = [_state(cairns, trip_id, 2, 0.2, 0.0, "in_transit", vehicle=f"bus-{k}") for k in range(40)]
    boards = [predictor.publish(state) for state in fleet]
    assert None not in boards
    plan = predictor.plan(trip_id)
    assert plan is not None
    origin = predictor.origin(DATE)
    for k in range(10):  # the network runs twice as slow as its timetable: all of it, this segment too
        started = origin + float(plan.departure[1]) - 600.0 + k
        predictor.model.observe_run(plan.segments[1], int((started - origin) // 1800), plan.prior_log[1], started,
                                    2.0 * math.exp(plan.prior_log[1]))
    later = [dataclasses.replace(state, timestamp=state.timestamp + 1.0) for state in fleet]
    assert [predictor.publish(state) for state in later] == [None] * len(fleet)
    # its own movement still moves a board: a bus heard again where it was, 30 s on
    stuck = dataclasses.replace(fleet[0], timestamp=fleet[0].timestamp + 30.0)
    shown = predictor.publish(stuck)
    assert shown is not None and boards[0] is not None
    assert shown.stops[0].predicted_arrival > boards[0].stops[0].predicted_arrival + 25.0
    # and at its next walk, what was learned: the stop ahead later than the fleet's first boards put it
    redo = predictor._paths[fleet[1].vehicle_id].redo_at
    walked = predictor.publish(dataclasses.replace(fleet[1], timestamp=redo))
    first = LearningPredictor(cairns).predict(dataclasses.replace(fleet[1], timestamp=redo))
    assert walked is not None and first is not None
    assert walked.stops[0].predicted_arrival > first.stops[0].predicted_arrival + 10.0


def test_a_bus_without_a_position_along_its_trip_is_walked_the_long_way(cairns: Network) -> None:
    trip_id = _long_trip(cairns)
    predictor = LearningPredictor(cairns)
    plan = predictor.plan(trip_id)
    assert plan is not None
    state = dataclasses.replace(_state(cairns, trip_id, 3, 0.5, 0.0, "in_transit"), shape_dist=None)
    walked = predictor._current(state)
    assert walked is not None
    assert predictor._head(state, plan, 3, False, walked[0]) == predictor._head(state, plan, 3, False)
