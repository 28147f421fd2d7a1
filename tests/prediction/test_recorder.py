"""The replay's predictions.jsonl: the quick writer of a vehicle's set gives the very lines of the plain one."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eta.network import Network
from eta.prediction.recorder import PredictionRecorder
from tests.prediction.test_predictor import _long_trip, _state


def _lines(recorder: PredictionRecorder, directory: Path) -> list[str]:
    recorder.close()
    return (directory / "predictions.jsonl").read_text(encoding="utf-8").splitlines()


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(st.floats(min_value=0.0, max_value=400.0, allow_nan=False), min_size=1, max_size=40),
    ahead_of_state=st.floats(min_value=0.0, max_value=90.0, allow_nan=False),
)
def test_a_sets_lines_are_the_same_from_the_quick_writer_as_from_the_message(
    cairns: Network, tmp_path_factory: pytest.TempPathFactory, steps: list[float], ahead_of_state: float
) -> None:
    """Arrivals at any fraction of a second, some before the clock (a state older than the latest fix): each line
    shows the arrival rounded up to the tenth and never before the one above it, digit for digit the same as
    writing the message would."""
    directory = tmp_path_factory.mktemp("recorder")
    quick, plain = PredictionRecorder(cairns, directory / "quick"), PredictionRecorder(cairns, directory / "plain")
    state = _state(cairns, _long_trip(cairns), 1, 0.5, 0.0, "in_transit")
    shown = quick.predictor.publish_shown(state)
    assert shown is not None and shown.entries
    arrivals, at = [], state.timestamp - 30.0
    for step in steps[: len(shown.entries)]:
        at += step
        arrivals.append(at)
    shown = dataclasses.replace(shown, entries=shown.entries[: len(arrivals)], arrivals=arrivals)
    for recorder in (quick, plain):
        recorder.clock = state.timestamp + ahead_of_state
    quick._write_shown(shown)
    plain._write(shown.to_set())

    written = _lines(quick, directory / "quick")
    assert written == _lines(plain, directory / "plain")
    assert len(written) == len(arrivals)
