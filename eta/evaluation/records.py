"""The values scoring works on: an observed arrival, and the predictions made for one arrival."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field

ArrivalKey = tuple[str, str, int]  # service_date, trip_id, stop_sequence


@dataclass(frozen=True, slots=True)
class Observed:
    key: ArrivalKey
    arrival: float  # UTC epoch seconds
    departure: float | None = None  # UTC epoch seconds; None when not known (then taken as the arrival)


@dataclass(slots=True)
class PredictionHistory:
    """Every prediction made for one arrival, in the order they were made."""

    made_at: list[float] = field(default_factory=list)
    predicted: list[float] = field(default_factory=list)

    def add(self, made_at: float, predicted: float) -> None:
        if self.made_at and made_at < self.made_at[-1]:
            raise ValueError("predictions must be added in the order they were made")
        self.made_at.append(made_at)
        self.predicted.append(predicted)

    def latest(self, at: float, max_age_s: float) -> float | None:
        """The latest prediction made at or before `at` and no older than `max_age_s`, if any."""
        i = bisect_right(self.made_at, at) - 1
        if i < 0 or at - self.made_at[i] > max_age_s:
            return None
        return self.predicted[i]
