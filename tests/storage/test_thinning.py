"""The prediction thinner alone: pure logic, no database."""

from __future__ import annotations

from smartbus.storage.thinning import FORGET_AFTER_S, PredictionThinner
from tests.storage.factories import T0, prediction_set


def _keep(thinner: PredictionThinner, *sets: object) -> list[tuple[float, int]]:
    kept, pending = thinner.select(sets)  # type: ignore[arg-type]
    thinner.commit(pending)
    return [(ps.made_at, stop.stop_sequence) for ps, stop in kept]


def test_nothing_is_remembered_until_commit() -> None:
    thinner = PredictionThinner()
    update = prediction_set(T0, {1: T0 + 600})

    thinner.select([update])  # the write failed: no commit

    assert _keep(thinner, update) == [(T0, 1)]


def test_an_older_message_than_the_last_kept_is_dropped() -> None:
    thinner = PredictionThinner()
    _keep(thinner, prediction_set(T0 + 100, {1: T0 + 600}))

    assert _keep(thinner, prediction_set(T0, {1: T0 + 900})) == []


def test_each_stop_of_a_trip_is_thinned_on_its_own() -> None:
    thinner = PredictionThinner()
    _keep(thinner, prediction_set(T0, {1: T0 + 300, 2: T0 + 600}))

    assert _keep(thinner, prediction_set(T0 + 10, {1: T0 + 300, 2: T0 + 700})) == [(T0 + 10, 2)]


def test_memory_forgets_stops_whose_arrival_is_an_hour_past() -> None:
    thinner = PredictionThinner()
    for trip in range(50):
        _keep(thinner, prediction_set(T0, {1: T0 + 60, 2: T0 + 120}, trip=f"trip-{trip}"))
    assert len(thinner) == 100

    _keep(thinner, prediction_set(T0 + 120 + FORGET_AFTER_S + 61, {1: T0 + 99_999}, trip="later"))

    assert len(thinner) == 1
