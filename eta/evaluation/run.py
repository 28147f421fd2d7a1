"""One eval: score a predictions file and both baselines against observed arrivals."""

from __future__ import annotations

import json
from bisect import bisect_right
from pathlib import Path
from typing import Any

from eta.evaluation import baselines, chart, metrics, report
from eta.evaluation.files import read_observed, read_predictions
from eta.evaluation.records import ArrivalKey, Observed, PredictionHistory
from eta.evaluation.sampling import rider_samples
from eta.network import Network

AFTER_ARRIVAL_TOLERANCE_S = 60.0  # the tracker needs a ping or two to see that the bus has arrived


def _after_arrival(
    observed: list[Observed], histories: dict[ArrivalKey, PredictionHistory], departure: bool = False
) -> int:
    """Predictions made well after their arrival was observed (the strict count), or with `departure` well after
    the bus left the stop (the issue's rule: no prediction for a stop already passed; a bus standing at a stop,
    at its trip's first stop above all, has not passed it yet)."""
    count = 0
    for obs in observed:
        history = histories.get(obs.key)
        if history is not None:
            moment = obs.arrival
            if departure and obs.departure is not None:
                moment = max(moment, obs.departure)
            count += len(history.made_at) - bisect_right(history.made_at, moment + AFTER_ARRIVAL_TOLERANCE_S)
    return count


def evaluate(network: Network, pings: Path, predictions: Path, observed_path: Path, out: Path) -> dict[str, Any]:
    observed = read_observed(observed_path)
    found = read_predictions(predictions)
    scores = {
        report.MODEL: metrics.score(rider_samples(observed, baselines.history_lookup(found.histories))),
        "schedule": metrics.score(rider_samples(observed, baselines.schedule_lookup(network))),
        "schedule_delay": metrics.score(
            rider_samples(observed, baselines.history_lookup(baselines.schedule_delay_histories(network, pings)))
        ),
    }
    body: dict[str, Any] = {
        "observed_arrivals": len(observed),
        "predictions": {"lines": found.lines, "methods": found.methods},
        "garbage": {
            "before_made_at": found.before_made_at,
            "not_monotone": found.not_monotone,
            "after_observed_arrival": _after_arrival(observed, found.histories),
            "after_observed_departure": _after_arrival(observed, found.histories, departure=True),
        },
        "scores": scores,
        "margins_over_best_baseline": report.margins(scores),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.json").write_text(json.dumps(body, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    chart.draw(scores, out / "accuracy.png")
    return body
