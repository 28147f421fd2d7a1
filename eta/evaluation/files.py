"""Reading what eval scores: observed arrivals (the simulator's truth_stops.csv or a replay's
stop_events.jsonl) and a predictions.jsonl, checking the predictions for garbage on the way."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from eta.evaluation.records import ArrivalKey, Observed, PredictionHistory


def read_observed(path: Path) -> list[Observed]:
    """Observed arrivals, one per (service_date, trip_id, stop_sequence): the first seen wins."""
    rows: list[tuple[str, str, str, float, float | None]] = []
    if path.suffix == ".jsonl":
        with path.open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    r = json.loads(line)
                    left = r.get("departure_time")
                    rows.append((r["service_date"], r["trip_id"], str(r["stop_sequence"]), float(r["arrival_time"]),
                                 None if left is None else float(left)))
    else:
        with path.open(encoding="utf-8", newline="") as f:
            rows.extend(
                (r["service_date"], r["trip_id"], r["stop_sequence"], float(r["arrival_time"]),
                 float(r["departure_time"]) if r.get("departure_time") else None)
                for r in csv.DictReader(f)
            )
    seen: dict[ArrivalKey, Observed] = {}
    for date, trip, seq, arrival, departure in rows:
        key = (date, trip, int(seq))
        if key not in seen:
            seen[key] = Observed(key, arrival, departure)
    return list(seen.values())


@dataclass
class PredictionFile:
    histories: dict[ArrivalKey, PredictionHistory] = field(default_factory=dict)
    lines: int = 0
    before_made_at: int = 0  # predicted arrival earlier than the moment it was made
    not_monotone: int = 0  # later stop of the same trip, same update, predicted earlier
    methods: dict[str, int] = field(default_factory=dict)


def read_predictions(path: Path) -> PredictionFile:
    found = PredictionFile()
    rows: list[tuple[float, ArrivalKey, float]] = []
    previous: tuple[object, float, str, int, float] | None = None  # vehicle, made_at, trip, seq, predicted
    with path.open(encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line)
            made, predicted = float(r["made_at"]), float(r["predicted_arrival"])
            trip, seq = str(r["trip_id"]), int(r["stop_sequence"])
            found.lines += 1
            found.methods[r["method"]] = found.methods.get(r["method"], 0) + 1
            if predicted < made:
                found.before_made_at += 1
            if (
                previous is not None and previous[:3] == (r["vehicle_id"], made, trip)
                and seq > previous[3] and predicted < previous[4]
            ):
                found.not_monotone += 1
            previous = (r["vehicle_id"], made, trip, seq, predicted)
            rows.append((made, (str(r["service_date"]), trip, seq), predicted))
    rows.sort(key=lambda row: row[0])  # stable: lines made at the same moment keep their file order
    for made, key, predicted in rows:
        history = found.histories.get(key)
        if history is None:
            history = found.histories[key] = PredictionHistory()
        history.add(made, predicted)
    found.methods = dict(sorted(found.methods.items()))
    return found
