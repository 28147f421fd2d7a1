"""The learned state as bytes: a restart predicts exactly as before, a new feed version keeps what still fits,
and several workers' states add up."""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import json
import shutil
from pathlib import Path

import pytest

from eta.network import Network, load_network
from eta.prediction import LearningPredictor
from eta.prediction.learned_state import SLICE_ENTRIES, LearnedState, LearnedStateError, pack
from smartbus.messages import PredictionSet, StopEvent, VehicleState

FEEDS = Path(__file__).resolve().parents[1] / "data" / "feeds"
CAIRNS_DAY = dt.date(2024, 5, 14)
SHUTTLE_DAY = dt.date(2025, 6, 3)


def _trips(network: Network, day: dt.date) -> list[str]:
    return network.trips_on(network.service_day_for(day)[0])


def _events(network: Network, day: dt.date, trip_id: str, vehicle: str, run_factor: float) -> list[StopEvent]:
    """A bus running `trip_id` on time from its first stop, every run `run_factor` times the schedule's."""
    trip = network.trips[trip_id]
    date = day.strftime("%Y%m%d")
    t = network.service_day_origin(day) + float(trip.departure[0]) - 60.0
    out = []
    for i, stop_id in enumerate(trip.stop_ids):
        if i:
            t += max(float(trip.arrival[i] - trip.departure[i - 1]), 30.0) * run_factor
        out.append(StopEvent(vehicle, trip_id, date, stop_id, int(trip.stop_sequences[i]), t, t + 20.0, False))
        t += 20.0
    return out


def _heading_to(network: Network, day: dt.date, trip_id: str, index: int) -> VehicleState:
    """A bus a third of the way from stop `index - 1` to stop `index`, on time (a bus of its own for each
    place: a predictor keeps each bus's walk for a while)."""
    trip = network.trips[trip_id]
    before, after = float(trip.stop_dist[index - 1]), float(trip.stop_dist[index])
    return VehicleState(
        vehicle_id=f"probe-{trip_id}-{index}",
        timestamp=network.service_day_origin(day) + float(trip.departure[index - 1]) + 10.0,
        latitude=0.0, longitude=0.0, status="in_transit", trip_id=trip_id, service_date=day.strftime("%Y%m%d"),
        shape_dist=before + (after - before) / 3.0, next_stop_sequence=int(trip.stop_sequences[index]),
        next_stop_id=trip.stop_ids[index],
    )


def _arrivals(found: PredictionSet | None) -> list[tuple[str, int, float, str]]:
    assert found is not None
    return [(s.trip_id, s.stop_sequence, s.predicted_arrival, s.method) for s in found.stops]


def _learned(network: Network, day: dt.date, trips: list[str], factor: float = 1.4) -> LearningPredictor:
    predictor = LearningPredictor(network)
    for number, trip_id in enumerate(trips):
        predictor.observe(_events(network, day, trip_id, f"bus-{number}", factor))
    return predictor


def test_a_predictor_built_from_its_bytes_predicts_exactly_as_it_did(cairns: Network) -> None:
    trips = _trips(cairns, CAIRNS_DAY)[:40]
    before = _learned(cairns, CAIRNS_DAY, trips)
    blob = before.state_bytes()
    after = LearningPredictor.from_bytes(cairns, blob)
    assert after.state_bytes() == blob
    probe = _heading_to(cairns, CAIRNS_DAY, trips[0], 3)
    assert _arrivals(after.predict(probe)) == _arrivals(before.predict(probe))
    assert _arrivals(after.predict(probe))[0][3] != "schedule_delay"  # what it learned, not the timetable
    cold = LearningPredictor(cairns).predict(probe)
    assert _arrivals(cold)[0][3] == "schedule_delay"


def test_a_state_written_a_slice_at_a_time_while_the_model_learns_on_is_whole_and_readable(cairns: Network) -> None:
    trips = _trips(cairns, CAIRNS_DAY)
    predictor = _learned(cairns, CAIRNS_DAY, trips[:80])
    assert len(predictor.model.history) > 2 * SLICE_ENTRIES  # several slices
    settled = LearnedState.from_bytes(predictor.state_bytes())
    assert settled == predictor.learned_state()  # the sliced text holds exactly the model
    pieces = predictor.state_pieces()
    written = [next(pieces) for _ in range(3)]  # a worker lets batches run between pieces: the model learns
    predictor.observe(_events(cairns, CAIRNS_DAY, trips[80], "bus-late", 1.2))
    written += list(pieces)
    state = LearnedState.from_bytes(pack(written))
    assert state.travel_model().segment.keys() >= settled.travel_model().segment.keys()
    assert LearningPredictor.from_bytes(cairns, pack(written)).model.history.keys() >= settled.model["history"].keys()


def test_the_state_says_which_feed_version_it_was_learned_on_and_refuses_what_it_cannot_read(
    cairns: Network, tmp_path: Path
) -> None:
    predictor = _learned(cairns, CAIRNS_DAY, _trips(cairns, CAIRNS_DAY)[:5])
    body = json.loads(gzip.decompress(predictor.state_bytes()))
    assert body["version"] == 2 and body["feed_version"] == cairns.feed_hash
    assert set(body["segment_m"]) >= set(body["model"]["segment"])  # each learned segment's length on this feed
    with pytest.raises(LearnedStateError):
        LearnedState.from_bytes(gzip.compress(json.dumps({**body, "version": 3}).encode()))  # a newer smartbus's
    with pytest.raises(LearnedStateError):
        LearnedState.from_bytes(predictor.state_bytes()[:200])  # cut short
    with pytest.raises(LearnedStateError):
        LearningPredictor.from_bytes(cairns, json.dumps({"version": 2, "feed_version": "x", "segment_m": {},
                                                         "model": {"history": 1}}).encode())
    # a replay's state file from before the feed version was recorded (plain JSON, rounded) still loads
    old = tmp_path / "old.state"
    old.write_text(json.dumps({"version": 1, "model": body["model"]}))
    assert LearningPredictor.load(cairns, old).model.segment.keys() == predictor.model.segment.keys()


def _shuttle_with_moved_stop(tmp_path: Path) -> tuple[Network, Network]:
    """The out-and-back shuttle, and a new version of it where stop P2 sits 115 m further west."""
    first = load_network(FEEDS / "out_and_back")
    moved = tmp_path / "moved"
    shutil.copytree(FEEDS / "out_and_back", moved)
    stops = moved / "stops.txt"
    stops.write_text(stops.read_text().replace("P2,Stop P2,21.1800361,106.0796339", "P2,Stop P2,21.1800361,106.0785"))
    second = load_network(moved)
    assert second.feed_hash != first.feed_hash
    return first, second


def test_on_a_new_feed_version_what_still_fits_carries_over_and_a_moved_stop_is_learned_afresh(
    tmp_path: Path,
) -> None:
    old, new = _shuttle_with_moved_stop(tmp_path)
    trips = _trips(old, SHUTTLE_DAY)
    learned = _learned(old, SHUTTLE_DAY, trips[:3])
    trip_id = trips[3]
    index = {stop: i for i, stop in reversed(list(enumerate(old.trips[trip_id].stop_ids)))}
    assert [_arrivals(learned.predict(_heading_to(old, SHUTTLE_DAY, trip_id, index[s])))[0][3]
            for s in ("P1", "P2")] == ["blend", "blend"]

    carried = LearningPredictor.from_bytes(new, learned.state_bytes())
    # P0 -> P1 is the same street on the new version: its run times still count
    unchanged = _arrivals(carried.predict(_heading_to(new, SHUTTLE_DAY, trip_id, index["P1"])))
    assert unchanged[0][3] == "blend"
    # P1 -> P2 is 115 m shorter: what was learned of it does not apply, the timetable does
    moved = _arrivals(carried.predict(_heading_to(new, SHUTTLE_DAY, trip_id, index["P2"])))
    assert moved[0][3] == "schedule_delay"
    assert not carried.model.prior_bias  # how late the old timetable ran says nothing of the new one
    assert "P1>P2" not in carried.model.segment and "P0>P1" in carried.model.segment
    assert carried.model.dwell.keys() == learned.model.dwell.keys()  # every stop is still there

    same_timetable = dataclasses.replace(old, feed_hash="f" * 64)  # a new version that changed nothing
    relabelled = LearningPredictor.from_bytes(same_timetable, learned.state_bytes())
    assert relabelled.model.segment == learned.model.segment and relabelled.model.history == learned.model.history


def test_the_states_of_two_workers_add_up(cairns: Network) -> None:
    trips = _trips(cairns, CAIRNS_DAY)
    first = _learned(cairns, CAIRNS_DAY, trips[:20])
    second = _learned(cairns, CAIRNS_DAY, trips[400:420], factor=1.1)
    assert not set(first.model.segment) >= set(second.model.segment)  # each knows streets the other does not
    merged = LearningPredictor(cairns)
    merged.absorb([first.adopt(first.learned_state()).model, second.adopt(second.learned_state()).model])
    assert set(merged.model.segment) == set(first.model.segment) | set(second.model.segment)
    for trip_id in (trips[0], trips[400]):  # a bus of either worker's routes: predicted from what was learned
        assert _arrivals(merged.predict(_heading_to(cairns, CAIRNS_DAY, trip_id, 2)))[0][3] != "schedule_delay"
    shared = sorted(set(first.model.segment) & set(second.model.segment))
    for seg in shared:  # a street both learned: between the two
        low, high = sorted((first.model.segment[seg].mean, second.model.segment[seg].mean))
        assert low <= merged.model.segment[seg].mean <= high
