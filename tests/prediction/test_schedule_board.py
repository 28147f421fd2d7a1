"""The timetable riders see for trips no bus stands for yet, and never for a trip a bus does stand for."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from eta.network import Network
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
