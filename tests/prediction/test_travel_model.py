"""The travel model answers every walk from a cache: what it learns must still reach the very next
prediction, exactly as a model that has cached nothing would give it."""

from __future__ import annotations

import dataclasses
import math

from eta.prediction.travel_model import TravelModel


def _uncached(model: TravelModel) -> TravelModel:
    """The same learned tables in a new model, which has cached nothing yet."""
    learned = {f.name: getattr(model, f.name) for f in dataclasses.fields(model) if not f.name.startswith("_")}
    return TravelModel(**learned)


def test_a_learned_run_reaches_the_next_estimate_as_a_fresh_model_gives_it() -> None:
    model = TravelModel()
    segments = [f"s{i}>s{i + 1}" for i in range(4)]
    prior = math.log(60.0)
    asked = [model.run_estimate(seg, 16, prior, 28_000.0) for seg in segments]  # fills the cache
    assert all(e.source == "prior" for e in asked)
    for k in range(40):  # slow runs on one segment, then on all: errors, bias and history all move
        seg = segments[0] if k < 10 else segments[k % 4]
        model.observe_run(seg, 16, prior, 28_000.0 + 60.0 * k, 90.0 + k)
        for other in segments:
            for at in (28_000.0 + 60.0 * k + 1.0, 28_000.0 + 60.0 * k + 1000.0):
                assert model.run_estimate(other, 16, prior, at) == _uncached(model).run_estimate(other, 16, prior, at)
    slowed = model.run_estimate(segments[0], 16, prior, 30_500.0)
    assert slowed.source == "blend"
    assert math.exp(slowed.log_run) > 80.0  # the schedule's 60 s gave way to what buses took
