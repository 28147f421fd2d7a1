from __future__ import annotations

import datetime as dt

import pytest

from eta.network import Network
from eta.schedule_predictor import SchedulePredictor
from smartbus.messages import VehicleState

SERVICE_DATE = dt.date(2026, 11, 24)


def _state_on(network: Network, trip_id: str, stop_index: int, *, delay_s: float | None) -> VehicleState:
    """A vehicle just past stop `stop_index` of the trip, `delay_s` late."""
    trip = network.trips[trip_id]
    origin = network.service_day_origin(SERVICE_DATE)
    at = origin + float(trip.departure[stop_index]) + (delay_s or 0.0) + 5.0
    return VehicleState(
        vehicle_id="bus-1",
        timestamp=at,
        latitude=0.0,
        longitude=0.0,
        status="in_transit",
        trip_id=trip_id,
        route_id=trip.route_id,
        service_date=SERVICE_DATE.strftime("%Y%m%d"),
        shape_dist=float(trip.stop_dist[stop_index]) + 1.0,
        delay_s=delay_s,
    )


@pytest.fixture(scope="module")
def long_trip(cairns: Network) -> str:
    return max(cairns.trips.values(), key=lambda t: len(t.stop_ids)).trip_id


@pytest.mark.parametrize("delay_s", [None, -120.0, 0.0, 240.0])
def test_predictions_cover_only_stops_ahead_never_the_past_and_never_go_backwards(
    cairns: Network, long_trip: str, delay_s: float | None
) -> None:
    state = _state_on(cairns, long_trip, 3, delay_s=delay_s)
    predictions = SchedulePredictor(cairns).predict(state)
    assert predictions is not None and predictions.stops
    trip = cairns.trips[long_trip]
    assert [p.stop_sequence for p in predictions.stops] == [
        int(s) for s in trip.stop_sequences[4 : 4 + len(predictions.stops)]
    ]
    times = [p.predicted_arrival for p in predictions.stops]
    assert times == sorted(times)
    assert times[0] >= state.timestamp
    assert all(t - state.timestamp <= 3600 for t in times)
    assert predictions.stops[0].method == ("schedule" if delay_s is None else "schedule_delay")


def test_the_current_delay_is_carried_forward(cairns: Network, long_trip: str) -> None:
    late = SchedulePredictor(cairns).predict(_state_on(cairns, long_trip, 3, delay_s=300.0))
    assert late is not None
    last = late.stops[-1]
    assert last.scheduled_arrival is not None
    assert last.predicted_arrival - last.scheduled_arrival == pytest.approx(300.0, abs=0.1)


def test_a_vehicle_without_a_trip_gets_no_predictions(cairns: Network) -> None:
    lost = VehicleState("bus-9", 1.7e9, -16.9, 145.7, status="unassigned")
    assert SchedulePredictor(cairns).predict(lost) is None
