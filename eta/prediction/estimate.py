"""A running mean and mean square, exponentially weighted once there is enough data: the building block of
every learned quantity (run times, dwells, errors). Plain floats, so the state serialises as JSON (exactly:
a float's JSON text reads back as the same float, so a saved state estimates as the live one did)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Running:
    mean: float = 0.0
    mean_sq: float = 0.0  # of the values themselves, for the spread
    n: int = 0

    def add(self, value: float, min_weight: float) -> None:
        """Add one value: an exact average for the first 1/min_weight values, then an exponential one,
        so old days fade but one odd value never dominates."""
        self.n += 1
        weight = max(1.0 / self.n, min_weight)
        self.mean += weight * (value - self.mean)
        self.mean_sq += weight * (value * value - self.mean_sq)

    @property
    def variance(self) -> float:
        return max(self.mean_sq - self.mean * self.mean, 0.0)

    def to_list(self) -> list[float]:
        return [self.mean, self.mean_sq, self.n]

    @classmethod
    def from_list(cls, values: list[float]) -> Running:
        return cls(float(values[0]), float(values[1]), int(values[2]))
