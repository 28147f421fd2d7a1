"""The travel model answers every walk from a cache: what it learns must still reach the very next
prediction, exactly as a model that has cached nothing would give it."""

from __future__ import annotations

import dataclasses
import math

import pytest

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


def test_the_network_wide_lateness_is_learned_gradually_so_no_single_run_moves_every_board() -> None:
    """Runs on the network take 30% longer than scheduled. A segment nobody has run yet is estimated from the
    schedule shifted by that lateness: the shift grows with the runs seen (no one run moves all the network's
    estimates at once, which at a cold start made every bus publish again in the same second) and reaches the
    lateness itself."""
    model = TravelModel()
    prior = math.log(100.0)
    unseen = "u1>u2"
    estimates = [math.exp(model.run_estimate(unseen, 16, prior, 28_000.0).log_run)]
    for k in range(200):
        model.observe_run(f"s{k % 50}>s{k % 50 + 1}", 16, prior, 28_000.0 + 30.0 * k, 130.0)
        estimates.append(math.exp(model.run_estimate(unseen, 16, prior, 28_000.0 + 30.0 * k).log_run))
    assert estimates[0] == pytest.approx(100.0)  # nothing seen: the schedule
    steps = [later - earlier for earlier, later in zip(estimates, estimates[1:], strict=False)]
    assert all(0.0 <= step < 3.0 for step in steps), max(steps)  # up by less than 3 s of 100 each run
    assert 115.0 < estimates[20] < 125.0  # well on its way after 20 runs
    assert estimates[-1] > 127.0  # and nearly all of it after 200
