"""What a rider sees: for an observed arrival A and every minute m from 1 to 30 before it, the latest
prediction made at or before A - 60 m + 30 s and no older than 180 s (else: unavailable).
Error = actual minus predicted (positive: the bus came later than shown); horizon = A minus that moment."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from eta.evaluation.records import ArrivalKey, Observed

MINUTES = range(1, 31)
LOOK_OFFSET_S = 30.0
MAX_AGE_S = 180.0

# (arrival key, the moment the rider looks) -> the prediction shown then, or None
Lookup = Callable[[ArrivalKey, float], float | None]


@dataclass(frozen=True, slots=True)
class Sample:
    key: ArrivalKey
    minute: int
    horizon_s: float
    error_s: float | None  # None: no prediction shown (unavailable)
    predicted: float | None


def rider_samples(observed: Iterable[Observed], lookup: Lookup) -> list[Sample]:
    samples: list[Sample] = []
    for obs in observed:
        for minute in MINUTES:
            look = obs.arrival - 60.0 * minute + LOOK_OFFSET_S
            predicted = lookup(obs.key, look)
            error = None if predicted is None else obs.arrival - predicted
            samples.append(Sample(obs.key, minute, obs.arrival - look, error, predicted))
    return samples
