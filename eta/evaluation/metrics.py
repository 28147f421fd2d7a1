"""The industry's yardsticks over rider-view samples: MBTA bins, the 2024 ETA Accuracy Benchmark,
availability and wobble."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from eta.evaluation.sampling import Sample


@dataclass(frozen=True, slots=True)
class Bucket:
    name: str
    low_s: float  # horizon, seconds, inclusive
    high_s: float  # exclusive
    early_s: float  # the most negative error counted accurate (bus earlier than shown)
    late_s: float  # the most positive

    def holds(self, horizon_s: float) -> bool:
        return self.low_s <= horizon_s < self.high_s


MBTA = (
    Bucket("0-3 min", 0, 180, -60, 60),
    Bucket("3-6 min", 180, 360, -90, 120),
    Bucket("6-12 min", 360, 720, -150, 210),
    Bucket("12-30 min", 720, 1800, -240, 360),
)
ETA_BENCHMARK_2024 = (
    Bucket("0-3 min", 0, 180, -30, 90),
    Bucket("3-6 min", 180, 360, -60, 150),
    Bucket("6-10 min", 360, 600, -60, 210),
    Bucket("10-15 min", 600, 900, -90, 270),
)


def _bucket_stats(bucket: Bucket, samples: list[Sample]) -> dict[str, Any]:
    inside = [s for s in samples if bucket.holds(s.horizon_s)]
    errors = [s.error_s for s in inside if s.error_s is not None]
    accurate = sum(1 for e in errors if bucket.early_s <= e <= bucket.late_s)
    return {
        "bucket": bucket.name,
        "window_s": [bucket.early_s, bucket.late_s],
        "samples": len(inside),
        "available": len(errors),
        "availability": round(len(errors) / len(inside), 4) if inside else None,
        "accuracy": round(accurate / len(errors), 4) if errors else None,
        "mean_abs_error_s": round(statistics.fmean(abs(e) for e in errors), 1) if errors else None,
        "median_abs_error_s": round(statistics.median(abs(e) for e in errors), 1) if errors else None,
        "bias_s": round(statistics.fmean(errors), 1) if errors else None,
        "_accurate": accurate,
    }


def score(samples: list[Sample]) -> dict[str, Any]:
    """Every figure of one predictor: MBTA bins and pooled accuracy, ETA benchmark buckets and score,
    availability, wobble and the accuracy by minute of horizon (for the chart)."""
    mbta = [_bucket_stats(b, samples) for b in MBTA]
    eta = [_bucket_stats(b, samples) for b in ETA_BENCHMARK_2024]
    pooled_available = sum(b["available"] for b in mbta)
    pooled_accurate = sum(b.pop("_accurate") for b in mbta)
    for b in eta:
        b.pop("_accurate")
    eta_scores = [b["accuracy"] for b in eta]
    available = [s for s in samples if s.error_s is not None]
    return {
        "samples": len(samples),
        "availability": round(len(available) / len(samples), 4) if samples else None,
        "mbta": {
            "overall": round(pooled_accurate / pooled_available, 4) if pooled_available else None,
            "buckets": mbta,
        },
        "eta_benchmark_2024": {
            "score": round(statistics.fmean(eta_scores), 4) if None not in eta_scores and eta_scores else None,
            "buckets": eta,
        },
        "wobble_s": wobble(samples),
        "by_minute": by_minute(samples),
    }


def wobble(samples: list[Sample]) -> float | None:
    """Mean absolute change between consecutive predictions a rider sees for the same arrival (one minute
    apart): how much the board jumps."""
    shown: dict[tuple[str, str, int], dict[int, float]] = {}
    for s in samples:
        if s.predicted is not None:
            shown.setdefault(s.key, {})[s.minute] = s.predicted
    changes = [
        abs(minutes[m] - minutes[m + 1]) for minutes in shown.values() for m in minutes if m + 1 in minutes
    ]
    return round(statistics.fmean(changes), 1) if changes else None


def by_minute(samples: list[Sample]) -> list[dict[str, Any]]:
    """For each minute before arrival: availability and the share inside that horizon's MBTA and ETA
    benchmark windows."""
    rows: list[dict[str, Any]] = []
    for minute in range(1, 31):
        at = [s for s in samples if s.minute == minute]
        errors = [(s.horizon_s, s.error_s) for s in at if s.error_s is not None]
        row: dict[str, Any] = {"minute": minute, "samples": len(at),
                               "availability": round(len(errors) / len(at), 4) if at else None}
        for name, buckets in (("mbta", MBTA), ("eta_benchmark_2024", ETA_BENCHMARK_2024)):
            hits = [b.early_s <= e <= b.late_s for h, e in errors for b in buckets if b.holds(h)]
            row[name] = round(sum(hits) / len(hits), 4) if hits else None
        rows.append(row)
    return rows
