"""The two baselines every eval scores in the same run, from the feed and the pings alone:
- schedule: the timetable (never shown in the past: a late bus is shown as due now);
- schedule + current delay: the tracker's delay carried forward over the timetable after every ping
  (eta/schedule_predictor.py), as simple real-time boards do."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from eta.engine import Engine
from eta.evaluation.records import ArrivalKey, PredictionHistory
from eta.evaluation.sampling import MAX_AGE_S, Lookup
from eta.network import Network
from eta.prediction.blocks import parse_service_date
from eta.replay import read_pings
from eta.schedule_predictor import SchedulePredictor


def schedule_lookup(network: Network) -> Lookup:
    origins: dict[str, float] = {}
    index_of: dict[str, dict[int, int]] = {}

    def lookup(key: ArrivalKey, at: float) -> float | None:
        date, trip_id, seq = key
        trip = network.trips.get(trip_id)
        if trip is None:
            return None
        positions = index_of.get(trip_id)
        if positions is None:
            positions = index_of[trip_id] = {int(s): i for i, s in enumerate(trip.stop_sequences)}
        i = positions.get(seq)
        if i is None:
            return None
        origin = origins.get(date)
        if origin is None:
            origin = origins[date] = network.service_day_origin(parse_service_date(date))
        return max(origin + float(trip.arrival[i]), at)

    return lookup


def schedule_delay_histories(network: Network, pings: Path) -> dict[ArrivalKey, PredictionHistory]:
    """Replay the pings through the tracker and record the schedule-plus-delay prediction of every ping."""
    engine = Engine(network)
    predictor = SchedulePredictor(network)
    histories: dict[ArrivalKey, PredictionHistory] = {}
    clock = float("-inf")
    for ping in read_pings(pings, Counter()):
        state = engine.process(ping).state
        if state is None:
            continue
        clock = max(clock, state.timestamp)
        found = predictor.predict(state)
        if found is None:
            continue
        for stop in found.stops:
            key = (stop.service_date, stop.trip_id, stop.stop_sequence)
            history = histories.get(key)
            if history is None:
                history = histories[key] = PredictionHistory()
            history.add(clock, max(stop.predicted_arrival, clock))
    return histories


def history_lookup(histories: dict[ArrivalKey, PredictionHistory]) -> Lookup:
    def lookup(key: ArrivalKey, at: float) -> float | None:
        history = histories.get(key)
        return history.latest(at, MAX_AGE_S) if history is not None else None

    return lookup
