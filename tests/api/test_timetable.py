"""A stop's board shows by the timetable the trips no vehicle tells riders about, and only those."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from api.app import create_app
from api.timetable import StopTimetable
from eta.network import Network
from smartbus.live.memory_store import MemoryLiveStore
from smartbus.live.notices import MemoryNoticeStore, TripCancellation, notice_key
from smartbus.messages import PredictionSet, StopEvent, StopPrediction, VehicleState
from tests.api.conftest import NOW

STOP = "750047"  # seven trips due within the hour of NOW (a Sunday morning)


def _by_brute_force(network: Network, stop_id: str, now: float, horizon_s: float) -> list[tuple[str, str, float]]:
    """(service_date, trip_id, scheduled arrival) of every call at the stop in [now, now + horizon], from the trips
    themselves."""
    zone = dt.timezone(dt.timedelta(hours=10))  # Australia/Brisbane: no daylight saving
    today = dt.datetime.fromtimestamp(now, zone).date()
    found = []
    for real_day in (today - dt.timedelta(days=1), today):
        origin = network.service_day_origin(real_day)
        for trip_id in network.trips_on(network.service_day_for(real_day)[0]):
            trip = network.trips[trip_id]
            for sid, arrival in zip(trip.stop_ids, trip.arrival.tolist(), strict=True):
                if sid == stop_id and now <= origin + arrival <= now + horizon_s:
                    found.append((real_day.strftime("%Y%m%d"), trip_id, origin + arrival))
    return sorted(found, key=lambda f: (f[2], f[1]))


@pytest.mark.parametrize("hours_after", [0.0, 14.5, 23.9])  # 10:00, 00:30 and 09:54 the next day in Cairns
def test_the_timetable_lists_the_trips_due_at_the_stop_within_the_hour(network: Network, hours_after: float) -> None:
    timetable = StopTimetable(network)
    now = NOW + 3600.0 * hours_after
    rows = timetable.arrivals(STOP, now)

    assert [(a.service_date, a.trip_id, a.predicted_arrival) for a in rows] == _by_brute_force(
        network, STOP, now, timetable.horizon_s
    )
    assert all(a.method == "schedule" and a.scheduled_arrival == a.predicted_arrival for a in rows)
    assert all(a.vehicle_id == "" and a.stop_id == STOP for a in rows)
    if hours_after == 0.0:
        assert len(rows) == 7


@pytest.fixture
def live() -> MemoryLiveStore:
    return MemoryLiveStore()


@pytest.fixture
def client(live: MemoryLiveStore, network: Network) -> Iterator[TestClient]:
    with TestClient(create_app(live, network, clock=lambda: NOW)) as test_client:
        yield test_client


def _board(client: TestClient) -> list[dict[str, object]]:
    arrivals: list[dict[str, object]] = client.get(f"/api/stops/{STOP}/arrivals").json()["arrivals"]
    return arrivals


def test_a_board_shows_the_timetable_for_trips_no_vehicle_tells_riders_about(
    client: TestClient, live: MemoryLiveStore, network: Network
) -> None:
    scheduled = StopTimetable(network).arrivals(STOP, NOW)
    assert len(scheduled) >= 3
    board = _board(client)
    assert [(a["trip_id"], a["predicted_arrival"], a["live"]) for a in board] == [
        (s.trip_id, s.predicted_arrival, False) for s in scheduled
    ]
    assert all(a["method"] == "schedule" and a["headsign"] for a in board)

    predicted, running, arrived = scheduled[0], scheduled[1], scheduled[2]
    portal = client.portal
    assert portal is not None
    # a bus predicts the first trip here; another runs the second, its stop here not yet within its predictions;
    # the third has already reached the stop, ahead of its time
    portal.call(live.put_predictions, [PredictionSet("V1", NOW - 5, (StopPrediction(
        trip_id=predicted.trip_id, service_date=predicted.service_date, stop_id=STOP,
        stop_sequence=predicted.stop_sequence, predicted_arrival=predicted.predicted_arrival + 120.0,
        scheduled_arrival=predicted.scheduled_arrival, method="blend", uncertainty_s=40.0,
        route_id=predicted.route_id,
    ),))])
    portal.call(live.put_states, [VehicleState(
        "V2", NOW - 5, -16.92, 145.77, "in_transit", trip_id=running.trip_id, service_date=running.service_date,
    )])
    portal.call(live.put_stop_events, [StopEvent(
        "V3", arrived.trip_id, arrived.service_date, STOP, arrived.stop_sequence, NOW - 30.0, None, False,
    )])
    # the fleet is read again once the board's reading of it is old enough
    with TestClient(create_app(live, network, clock=lambda: NOW)) as fresh:
        board = _board(fresh)

    rows = {a["trip_id"]: a for a in board}
    assert (rows[predicted.trip_id]["live"], rows[predicted.trip_id]["vehicle_id"]) == (True, "V1")
    assert running.trip_id not in rows and arrived.trip_id not in rows
    assert set(rows) == {predicted.trip_id} | {s.trip_id for s in scheduled[3:]}
    times = [float(a["predicted_arrival"]) for a in board]  # type: ignore[arg-type]
    assert times == sorted(times)
    assert all(a["vehicle_id"] is None for a in board if not a["live"])


def test_a_cancelled_trip_due_here_is_shown_once_cancelled(live: MemoryLiveStore, network: Network) -> None:
    first = StopTimetable(network).arrivals(STOP, NOW)[0]
    notices = MemoryNoticeStore()
    cancellation = TripCancellation(first.trip_id, first.service_date, reason="driver shortage")
    with TestClient(create_app(live, network, clock=lambda: NOW, notices=notices)) as client:
        client.portal.call(  # type: ignore[union-attr]
            notices.put, "cancellation", notice_key("cancellation", cancellation), dataclasses.asdict(cancellation),
            NOW + 1,
        )
        board = _board(client)

    rows = [a for a in board if a["trip_id"] == first.trip_id]
    assert [(a["cancelled"], a["live"], a["vehicle_id"]) for a in rows] == [(True, False, None)]
