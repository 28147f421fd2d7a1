"""The rider-view sampling rule on hand-made cases: which prediction a rider sees at each minute."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eta.evaluation.baselines import history_lookup
from eta.evaluation.files import read_observed, read_predictions
from eta.evaluation.metrics import score, wobble
from eta.evaluation.records import Observed, PredictionHistory
from eta.evaluation.run import _after_arrival
from eta.evaluation.sampling import rider_samples

A = 100_000.0  # the observed arrival
KEY = ("20240514", "trip-1", 3)


def _samples(made: list[tuple[float, float]]) -> dict[int, float | None]:
    history = PredictionHistory()
    for made_at, predicted in made:
        history.add(made_at, predicted)
    samples = rider_samples([Observed(KEY, A)], history_lookup({KEY: history}))
    return {s.minute: s.error_s for s in samples}


def test_each_minute_sees_the_latest_prediction_made_by_then() -> None:
    # the rider looks at A - 60 m + 30 s: minute 1 at A - 30, minute 2 at A - 90
    errors = _samples([(A - 100, A - 20), (A - 60, A + 10), (A - 29, A + 99)])
    assert errors[1] == pytest.approx(-10.0)  # made at A - 60; the one at A - 29 came too late
    assert errors[2] == pytest.approx(20.0)  # made at A - 100: the bus came 20 s later than shown


def test_a_prediction_made_exactly_when_the_rider_looks_counts() -> None:
    assert _samples([(A - 30, A - 5)])[1] == pytest.approx(5.0)


def test_a_prediction_older_than_180_s_is_not_shown() -> None:
    errors = _samples([(A - 30 - 181, A)])
    assert errors[1] is None
    assert errors[2] == pytest.approx(0.0)  # looked at A - 90: 121 s old, still shown


def test_no_prediction_means_unavailable_and_horizons_are_minutes_minus_30s() -> None:
    samples = rider_samples([Observed(KEY, A)], history_lookup({}))
    assert len(samples) == 30
    assert all(s.error_s is None for s in samples)
    assert [s.horizon_s for s in samples[:3]] == [30.0, 90.0, 150.0]
    assert score(samples)["availability"] == 0.0


def test_buckets_use_their_own_windows_and_the_benchmark_score_is_their_mean() -> None:
    # one arrival predicted 80 s early at every minute: inside the ETA benchmark's 0-3 min window
    # [-30, +90] but outside MBTA's [-60, +60]; inside both further out
    history = PredictionHistory()
    for minute in range(30, 0, -1):
        history.add(A - 60 * minute + 30, A - 80)
    result = score(rider_samples([Observed(KEY, A)], history_lookup({KEY: history})))
    mbta = {b["bucket"]: b for b in result["mbta"]["buckets"]}
    eta = {b["bucket"]: b for b in result["eta_benchmark_2024"]["buckets"]}
    assert mbta["0-3 min"]["accuracy"] == 0.0
    assert mbta["3-6 min"]["accuracy"] == 1.0
    assert eta["0-3 min"]["accuracy"] == 1.0
    assert result["eta_benchmark_2024"]["score"] == 1.0
    assert result["mbta"]["overall"] == pytest.approx(27 / 30, abs=1e-4)
    assert mbta["0-3 min"]["bias_s"] == 80.0
    assert result["availability"] == 1.0
    assert result["wobble_s"] == 0.0


def test_wobble_is_the_mean_jump_between_consecutive_minutes() -> None:
    history = PredictionHistory()
    history.add(A - 150, A - 60)  # seen at minutes 3 and 2 (looks at A - 150, A - 90)
    history.add(A - 30, A)  # seen at minute 1
    samples = rider_samples([Observed(KEY, A)], history_lookup({KEY: history}))
    assert wobble(samples) == pytest.approx(30.0)  # changes: 0 (3->2) and 60 (2->1)


def test_reading_files_counts_garbage_and_keeps_the_first_observation(tmp_path: Path) -> None:
    rows = [
        {"made_at": 10.0, "predicted_arrival": 5.0, "vehicle_id": "v", "trip_id": "t", "service_date": "20240514",
         "stop_id": "a", "stop_sequence": 1, "method": "blend"},
        {"made_at": 10.0, "predicted_arrival": 50.0, "vehicle_id": "v", "trip_id": "t", "service_date": "20240514",
         "stop_id": "b", "stop_sequence": 2, "method": "blend"},
        {"made_at": 10.0, "predicted_arrival": 40.0, "vehicle_id": "v", "trip_id": "t", "service_date": "20240514",
         "stop_id": "c", "stop_sequence": 3, "method": "blend"},
    ]
    path = tmp_path / "predictions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    found = read_predictions(path)
    assert (found.lines, found.before_made_at, found.not_monotone) == (3, 1, 1)
    assert found.histories[("20240514", "t", 2)].latest(10.0, 180.0) == 50.0
    truth = tmp_path / "truth_stops.csv"
    truth.write_text(
        "vehicle_id,trip_id,service_date,stop_id,stop_sequence,arrival_time,departure_time,served\n"
        "v,t,20240514,a,1,100.5,110,1\nv,t,20240514,a,1,200,210,1\n"
    )
    assert read_observed(truth) == [Observed(("20240514", "t", 1), 100.5, 110.0)]


def test_a_prediction_made_while_the_bus_stands_at_the_stop_is_garbage_only_by_the_strict_count() -> None:
    # at its first stop from 100 to 300 (waiting for its time); predictions made at 150, 250 and 400
    history = PredictionHistory()
    for made_at in (150.0, 250.0, 400.0):
        history.add(made_at, 300.0)
    standing = Observed(KEY, 100.0, 300.0)
    assert _after_arrival([standing], {KEY: history}) == 2  # made over a minute after it came: 250 and 400
    assert _after_arrival([standing], {KEY: history}, departure=True) == 1  # after it left: 400 only
    unknown = Observed(KEY, 100.0)  # departure not observed: the arrival stands for it
    assert _after_arrival([unknown], {KEY: history}, departure=True) == 2
