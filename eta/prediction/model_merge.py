"""Several learned travel models made one: the states saved by the workers of one consumer group (each saw
only its own partitions' buses), or a stored state merged into a model that has already learned a little
(a worker that started cold while the database was away).

Every learned quantity is a `Running`: an exact mean over its first 1/rate values, an exponential one after.
Two are combined by weighting each mean by its count capped at 1/rate, its effective memory: a worker that
saw a segment 500 times does not drown one that saw it 20 times, since each remembers about its last 20.
The count of the result is the sum, but no more than that cap unless one part already counted more: counts
only gate thresholds (a half hour's history is trusted from 3 runs, a source's error from 5) and the start
of the exponential phase, all below the cap, so a count never grows by merging alone. Of two `recent`
runs of a segment the later wins.

A part may already hold what another holds (a worker that merged the group's states at start and saved
again later): that history then weighs twice, within the capped weights. Means stay between the parts'.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from eta.prediction.estimate import Running
from eta.prediction.travel_model import ERROR_LEARN_RATE, LEARN_RATE, TravelModel


def merge_running(parts: Iterable[Running], rate: float) -> Running:
    """One `Running` from several of the same quantity, each learned at `rate` (a new object, always)."""
    seen = [p for p in parts if p.n > 0]
    if not seen:
        return Running()
    if len(seen) == 1:  # exactly the one that knows something: a merge into an empty model changes nothing
        only = seen[0]
        return Running(only.mean, only.mean_sq, only.n)
    cap = 1.0 / rate
    weights = [min(float(p.n), cap) for p in seen]
    total = sum(weights)
    mean = sum(w * p.mean for w, p in zip(weights, seen, strict=True)) / total
    mean_sq = sum(w * p.mean_sq for w, p in zip(weights, seen, strict=True)) / total
    count = max(max(p.n for p in seen), min(sum(p.n for p in seen), math.ceil(cap)))
    return Running(mean, mean_sq, count)


def _merge_table(tables: Sequence[dict[str, Running]], rate: float) -> dict[str, Running]:
    parts: dict[str, list[Running]] = {}
    for table in tables:
        for key, value in table.items():
            parts.setdefault(key, []).append(value)
    return {key: merge_running(found, rate) for key, found in parts.items()}


def merge_models(models: Sequence[TravelModel]) -> TravelModel:
    """A new model holding what all of `models` learned (none of them is changed)."""
    recent: dict[str, tuple[float, float]] = {}
    for model in models:
        for seg, (seen_at, log_run) in model.recent.items():
            known = recent.get(seg)
            if known is None or (seen_at, log_run) > known:
                recent[seg] = (seen_at, log_run)
    return TravelModel(
        history=_merge_table([m.history for m in models], LEARN_RATE),
        segment=_merge_table([m.segment for m in models], LEARN_RATE),
        recent=recent,
        errors=_merge_table([m.errors for m in models], ERROR_LEARN_RATE),
        prior_bias=_merge_table([m.prior_bias for m in models], LEARN_RATE),
        dwell=_merge_table([m.dwell for m in models], LEARN_RATE),
        turnaround=merge_running([m.turnaround for m in models], LEARN_RATE),
        start_lag=merge_running([m.start_lag for m in models], LEARN_RATE),
        pace_xy=merge_running([m.pace_xy for m in models], ERROR_LEARN_RATE),
        pace_xx=merge_running([m.pace_xx for m in models], ERROR_LEARN_RATE),
    )
