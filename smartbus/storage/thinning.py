"""Which predictions are worth storing: pure logic, no I/O.

The predictor re-predicts every stop ahead after every ping (every few seconds), which would store
thousands of nearly identical rows per trip. We keep a prediction when it is the first for its
(trip, service day, stop), when a minute has passed since the last one kept, or when the predicted
arrival moved by more than 30 s since then: enough to score what a rider saw minute by minute and to
see every real change, at a fraction of the rows.

Time here is the messages' own clock (made_at), never the wall clock, so a replay decides the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from smartbus.messages import PredictionSet, StopPrediction

KEEP_EVERY_S = 60.0
KEEP_WHEN_MOVED_S = 30.0
# Forget a stop's last kept prediction once its predicted arrival is this far behind the newest made_at.
FORGET_AFTER_S = 3600.0

StopKey = tuple[str, str, int]  # (trip_id, service_date, stop_sequence)


@dataclass(frozen=True, slots=True)
class Kept:
    made_at: float
    predicted_arrival: float


class PredictionThinner:
    """Remembers, per stop of a trip, the last prediction kept; bounded by forgetting past arrivals."""

    def __init__(self) -> None:
        self._last: dict[StopKey, Kept] = {}
        self._clock = float("-inf")  # newest made_at seen
        self._last_sweep = float("-inf")

    def __len__(self) -> int:
        return len(self._last)

    def select(
        self, sets: Sequence[PredictionSet]
    ) -> tuple[list[tuple[PredictionSet, StopPrediction]], dict[StopKey, Kept]]:
        """The predictions to store, and the memory update to `commit` once they are stored.

        Nothing changes here until `commit`: if the write fails, the same batch decides the same again.
        """
        pending: dict[StopKey, Kept] = {}
        keep: list[tuple[PredictionSet, StopPrediction]] = []
        for prediction_set in sorted(sets, key=lambda s: s.made_at):
            made_at = prediction_set.made_at
            for stop in prediction_set.stops:
                key = (stop.trip_id, stop.service_date, stop.stop_sequence)
                last = pending.get(key) or self._last.get(key)
                if last is not None and not _worth_keeping(last, made_at, stop.predicted_arrival):
                    continue
                pending[key] = Kept(made_at, stop.predicted_arrival)
                keep.append((prediction_set, stop))
        return keep, pending

    def commit(self, pending: dict[StopKey, Kept]) -> None:
        self._last.update(pending)
        if pending:
            self._clock = max(self._clock, max(k.made_at for k in pending.values()))
        if self._clock - self._last_sweep >= KEEP_EVERY_S:
            self._forget_past(self._clock - FORGET_AFTER_S)
            self._last_sweep = self._clock

    def _forget_past(self, horizon: float) -> None:
        stale: Iterable[StopKey] = [k for k, v in self._last.items() if v.predicted_arrival < horizon]
        for key in stale:
            del self._last[key]


def _worth_keeping(last: Kept, made_at: float, predicted_arrival: float) -> bool:
    if made_at < last.made_at:  # older than what we kept (a replay or a late message): already decided
        return False
    if made_at - last.made_at >= KEEP_EVERY_S:
        return True
    return abs(predicted_arrival - last.predicted_arrival) > KEEP_WHEN_MOVED_S
