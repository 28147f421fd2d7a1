"""The timetable riders see for trips no bus stands for yet, and never for a trip a bus does stand for."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

from eta.network import Network
from eta.prediction.predictor import SILENT_PASSED_SHARE, LearningPredictor
from eta.prediction.recorder import PredictionRecorder
from eta.tracker import TrackerOutput
from smartbus.messages import VehicleState, VehicleStatus

DAY = dt.date(2024, 5, 14)
DATE = "20240514"


def _trips(network: Network) -> list[str]:
    ids = network.trips_on(network.service_day_for(DAY)[0])
    return sorted((t for t in ids if len(network.trips[t].stop_ids) >= 10), key=lambda t: network.trips[t].start_time)


def _at(network: Network, vehicle: str, trip_id: str, index: int, ts: float, status: VehicleStatus) -> TrackerOutput:
    trip = network.trips[trip_id]
    return TrackerOutput(VehicleState(
        vehicle_id=vehicle, timestamp=ts, latitude=0.0, longitude=0.0, status=status, trip_id=trip_id,
        service_date=DATE, shape_dist=float(trip.stop_dist[index]),
        next_stop_sequence=int(trip.stop_sequences[index]), next_stop_id=trip.stop_ids[index],
    ))


def _schedule_lines(out: Path, trip_id: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    return [p for p in lines if p["trip_id"] == trip_id and p["method"] == "schedule"]


def test_a_bus_on_a_long_layover_stands_for_its_trip_before_its_stops_come_within_the_horizon(
    cairns: Network, tmp_path: Path
) -> None:
    """A bus waits 70 minutes at the stand for its trip. Once the trip's departure comes within the hour riders
    are shown, the timetable must not show it as a trip no bus stands for: the bus is there, and its own
    predictions follow as soon as its stops come within the hour."""
    trip_id = _trips(cairns)[len(_trips(cairns)) // 2]
    departs = cairns.service_day_origin(DAY) + float(cairns.trips[trip_id].departure[0])
    recorder = PredictionRecorder(cairns, tmp_path)
    ts = departs - 70 * 60.0
    while ts < departs - 30.0:
        recorder.on_output(_at(cairns, "bus-1", trip_id, 0, ts, "layover"))
        ts += 30.0
    recorder.close()

    assert _schedule_lines(tmp_path, trip_id) == []
    shown = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    assert any(p["trip_id"] == trip_id and p["vehicle_id"] == "bus-1" for p in shown)  # its own, by the end


def test_a_silent_bus_keeps_standing_for_its_trip(cairns: Network, tmp_path: Path) -> None:
    """A bus just off on its trip goes silent for five minutes (a GPS gap) while another bus keeps the clock
    going: its last predictions are repeated, and the timetable does not take the trip over meanwhile."""
    trips = _trips(cairns)
    trip_id, other = trips[len(trips) // 2], trips[len(trips) // 2 + 1]
    origin = cairns.service_day_origin(DAY)
    departs = origin + float(cairns.trips[trip_id].departure[0])
    recorder = PredictionRecorder(cairns, tmp_path)
    recorder.on_output(_at(cairns, "bus-1", trip_id, 1, departs + 60.0, "in_transit"))
    ts = departs + 60.0
    while ts < departs + 6 * 60.0:
        ts += 30.0
        recorder.on_output(_at(cairns, "bus-2", other, 0, ts, "layover"))
    recorder.close()

    assert _schedule_lines(tmp_path, trip_id) == []
    made = {p["made_at"] for p in map(json.loads, (tmp_path / "predictions.jsonl").read_text().splitlines())
            if p["trip_id"] == trip_id}
    assert len(made) >= 2  # shown again while silent, not dropped


def test_a_bus_silent_while_it_waits_at_the_stand_keeps_standing_for_its_trip(cairns: Network, tmp_path: Path) -> None:
    """A bus waiting at the stand for its trip goes silent for eight minutes (a GPS gap) just before the trip's
    departure comes within the hour riders are shown: it is still there for that trip, so the timetable must not
    show the trip as one no bus stands for meanwhile."""
    trips = _trips(cairns)
    trip_id, other = trips[len(trips) // 2], trips[len(trips) // 2 + 1]
    departs = cairns.service_day_origin(DAY) + float(cairns.trips[trip_id].departure[0])
    recorder = PredictionRecorder(cairns, tmp_path)
    ts = departs - 75 * 60.0
    while ts < departs - 64 * 60.0:
        recorder.on_output(_at(cairns, "bus-1", trip_id, 0, ts, "layover"))
        ts += 30.0
    silent_until = ts + 8 * 60.0
    while ts < silent_until:  # another bus keeps the clock going
        recorder.on_output(_at(cairns, "bus-2", other, 0, ts, "layover"))
        ts += 30.0
    recorder.close()

    assert _schedule_lines(tmp_path, trip_id) == []


def test_a_silent_bus_s_stops_it_may_have_reached_meanwhile_are_not_shown_again(
    cairns: Network, tmp_path: Path
) -> None:
    """The longer a bus has been silent, the likelier it has reached the stops predicted just ahead (it may run
    faster than predicted): those are not repeated to riders as still to come, only the stops further on."""
    trips = _trips(cairns)
    trip_id, other = trips[len(trips) // 2], trips[len(trips) // 2 + 1]
    departs = cairns.service_day_origin(DAY) + float(cairns.trips[trip_id].departure[0])
    recorder = PredictionRecorder(cairns, tmp_path)
    heard = departs + 60.0
    recorder.on_output(_at(cairns, "bus-1", trip_id, 1, heard, "in_transit"))
    ts = heard
    while ts < heard + 9 * 60.0:
        ts += 30.0
        recorder.on_output(_at(cairns, "bus-2", other, 0, ts, "layover"))
    recorder.close()

    lines = [p for p in map(json.loads, (tmp_path / "predictions.jsonl").read_text().splitlines())
             if p["trip_id"] == trip_id and p["vehicle_id"] == "bus-1"]
    repeated = [p for p in lines if p["made_at"] > heard]
    assert repeated  # the stops further on are still shown
    for p in repeated:
        silence = p["made_at"] - heard
        assert p["predicted_arrival"] >= p["made_at"] + SILENT_PASSED_SHARE * silence - 0.1
    first_shown = {p["stop_sequence"] for p in lines if p["made_at"] == heard}
    last_repeat = max(p["made_at"] for p in repeated)
    assert min(first_shown) < min(p["stop_sequence"] for p in repeated if p["made_at"] == last_repeat)


def test_a_bus_whose_fix_changed_nothing_riders_see_still_stands_for_its_trip(cairns: Network) -> None:
    """A fix that moves no prediction enough to send again is still the bus on its trip: the timetable must
    count the trip as run (until the bus falls silent, when its repeated predictions take over)."""
    trips = _trips(cairns)
    trip_id = trips[len(trips) // 2]
    departs = cairns.service_day_origin(DAY) + float(cairns.trips[trip_id].departure[0])
    predictor = LearningPredictor(cairns)
    first = _at(cairns, "bus-1", trip_id, 3, departs + 300.0, "in_transit").state
    assert first is not None
    assert predictor.publish_shown(first) is not None
    again = dataclasses.replace(first, timestamp=first.timestamp + 5.0)

    assert predictor.publish_shown(again) is None
    assert predictor.stands_for(again) == (DATE, trip_id)


def test_a_bus_silent_on_its_way_to_its_next_trip_stands_for_that_trip_too(cairns: Network) -> None:
    """A bus near the end of its trip goes silent: by now it may have ended the trip and be waiting at the stand
    of the block's next trip, whose first stop it was predicted to reach (as it ended this one). It stands for
    that trip too, or the timetable would show the trip's first stop as one no bus stands for, while the bus is
    there."""
    predictor = LearningPredictor(cairns)
    trip_id, following = next(
        (t, b) for t in _trips(cairns) if (b := predictor.blocks.next_trip(DATE, t)) is not None
    )
    trip = cairns.trips[trip_id]
    last = len(trip.stop_ids) - 1
    ts = cairns.service_day_origin(DAY) + float(trip.arrival[last - 1])
    state = _at(cairns, "bus-1", trip_id, last, ts, "in_transit").state
    assert state is not None
    shown = predictor.publish_shown(state)
    assert shown is not None and any(e.plan.trip_id == following for e in shown.entries)

    assert (DATE, following) in predictor.silent_trips(ts + 8 * 60.0)


def test_a_fix_its_device_held_back_for_minutes_does_not_show_stops_the_bus_has_passed_since(cairns: Network) -> None:
    """A device sends a fix eight minutes late (buffered through a coverage gap), yet newer than the last one heard
    from the bus. Predicted from, it would put the next few stops "now" on the boards, though the bus has most
    likely passed them in those minutes: like a bus silent that long, those stops are taken as passed."""
    trip_id = _trips(cairns)[len(_trips(cairns)) // 2]
    trip = cairns.trips[trip_id]
    taken = cairns.service_day_origin(DAY) + float(trip.departure[1]) + 20.0
    state = _at(cairns, "bus-1", trip_id, 2, taken, "in_transit").state
    assert state is not None
    now = taken + 8 * 60.0

    shown = LearningPredictor(cairns).publish_shown(state, now)
    as_if_fresh = LearningPredictor(cairns).publish_shown(state)

    assert shown is not None and as_if_fresh is not None
    assert min(as_if_fresh.arrivals) < now  # from the fix alone, stops due before the clock
    assert shown.entries and min(shown.arrivals) >= now + SILENT_PASSED_SHARE * (now - taken)
