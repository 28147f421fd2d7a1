"""GTFS-realtime feeds as a consumer reads them: protobuf parsed with gtfs-realtime-bindings, and JSON."""

from __future__ import annotations

import dataclasses
import datetime

import pytest
from google.transit import gtfs_realtime_pb2 as rt
from starlette.testclient import TestClient

from api.app import create_app
from eta.network import Agency, Network
from smartbus.live.memory_store import MemoryLiveStore
from smartbus.live.notices import Alert, MemoryNoticeStore, SkippedStops, TripCancellation, notice_key
from smartbus.messages import PredictionSet, StopPrediction, VehicleState
from tests.api.conftest import NOW

TRIP = "CNS2014-CNS_MUL-Saturday-00-4165937"
OTHER_TRIP = "CNS2014-CNS_MUL-Saturday-00-4166188"  # starts within half an hour of NOW


def feed(client: TestClient, name: str) -> rt.FeedMessage:
    response = client.get(f"/gtfs-rt/{name}.pb")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-protobuf"
    message = rt.FeedMessage()
    message.ParseFromString(response.content)
    assert message.header.gtfs_realtime_version == "2.0"
    assert message.header.incrementality == rt.FeedHeader.FULL_DATASET
    assert message.header.timestamp == int(NOW)
    return message


def running(trip_id: str, vehicle_id: str = "V1", **fields: object) -> VehicleState:
    values: dict[str, object] = {
        "timestamp": NOW - 5,
        "latitude": -16.92,
        "longitude": 145.77,
        "status": "in_transit",
        "route_id": "110-423",
        "service_date": "20140601",
        "delay_s": 95.0,
        "speed": 8.0,
        "bearing": 370.0,
    }
    values.update(fields)
    return VehicleState(vehicle_id=vehicle_id, trip_id=trip_id, **values)  # type: ignore[arg-type]


def predict_rest_of_trip(network: Network, trip_id: str, vehicle_id: str = "V1", first: int = 2) -> PredictionSet:
    trip = network.trips[trip_id]
    stops = tuple(
        StopPrediction(
            trip_id=trip_id,
            service_date="20140601",
            stop_id=stop_id,
            stop_sequence=int(sequence),
            predicted_arrival=NOW + 60 * i,
            scheduled_arrival=NOW + 60 * i - 90,
            method="blend",
            uncertainty_s=30.0,
            route_id=trip.route_id,
        )
        for i, (stop_id, sequence) in enumerate(zip(trip.stop_ids, trip.stop_sequences.tolist(), strict=True))
        if i >= first
    )
    return PredictionSet(vehicle_id=vehicle_id, made_at=NOW - 5, stops=stops)


def test_vehicle_positions_name_the_trip_and_the_next_stop(
    client: TestClient, live: MemoryLiveStore, network: Network
) -> None:
    trip = network.trips[TRIP]
    state = running(TRIP, next_stop_id=trip.stop_ids[3], next_stop_sequence=int(trip.stop_sequences[3]))
    client.portal.call(live.put_states, [state, dataclasses.replace(state, vehicle_id="V9", trip_id=None)])  # type: ignore[union-attr]
    entities = {e.id: e for e in feed(client, "vehicle-positions").entity}
    assert set(entities) == {"V1", "V9"}
    vehicle = entities["V1"].vehicle
    assert (vehicle.trip.trip_id, vehicle.trip.route_id, vehicle.trip.start_date) == (TRIP, "110-423", "20140601")
    assert (vehicle.stop_id, vehicle.current_stop_sequence) == (trip.stop_ids[3], int(trip.stop_sequences[3]))
    assert vehicle.current_status == rt.VehiclePosition.IN_TRANSIT_TO
    assert vehicle.position.bearing == pytest.approx(10.0)  # normalised into [0, 360)
    assert vehicle.timestamp == int(NOW - 5)
    assert not entities["V9"].vehicle.HasField("trip")  # an unassigned bus is still on the map


def test_trip_updates_carry_predictions_in_stop_order_with_skipped_stops(
    client: TestClient, live: MemoryLiveStore, notices: MemoryNoticeStore, network: Network
) -> None:
    trip = network.trips[TRIP]
    skipped = SkippedStops(TRIP, "20140601", (trip.stop_ids[4],), reason="road works")
    client.portal.call(notices.put, "skip", notice_key("skip", skipped), dataclasses.asdict(skipped), NOW + 3600)  # type: ignore[union-attr]
    client.portal.call(live.put_states, [running(TRIP)])  # type: ignore[union-attr]
    client.portal.call(live.put_predictions, [predict_rest_of_trip(network, TRIP)])  # type: ignore[union-attr]
    [entity] = feed(client, "trip-updates").entity
    update = entity.trip_update
    assert (update.trip.trip_id, update.vehicle.id, update.delay) == (TRIP, "V1", 95)
    sequences = [u.stop_sequence for u in update.stop_time_update]
    assert sequences == sorted(sequences) and sequences[0] == int(trip.stop_sequences[2])
    by_stop = {u.stop_id: u for u in update.stop_time_update}
    assert by_stop[trip.stop_ids[4]].schedule_relationship == rt.TripUpdate.StopTimeUpdate.SKIPPED
    assert not by_stop[trip.stop_ids[4]].HasField("arrival")
    times = [u.arrival.time for u in update.stop_time_update if u.HasField("arrival")]
    assert times == sorted(times) and times[0] == int(NOW + 120)
    board = client.get(f"/api/stops/{trip.stop_ids[4]}/arrivals").json()["arrivals"]
    assert [(a["trip_id"], a["skipped"]) for a in board] == [(TRIP, True)]


def test_cancelled_trip_is_canceled_in_the_feed_and_on_the_board(
    client: TestClient, live: MemoryLiveStore, notices: MemoryNoticeStore, network: Network
) -> None:
    other = network.trips[OTHER_TRIP]
    cancellation = TripCancellation(OTHER_TRIP, "20140601", reason="driver shortage")
    client.portal.call(  # type: ignore[union-attr]
        notices.put, "cancellation", notice_key("cancellation", cancellation), dataclasses.asdict(cancellation), NOW + 1
    )
    entities = feed(client, "trip-updates").entity
    [entity] = [e for e in entities if e.trip_update.trip.trip_id == OTHER_TRIP]
    assert entity.trip_update.trip.schedule_relationship == rt.TripDescriptor.CANCELED
    assert len(entity.trip_update.stop_time_update) == 0
    # The board of a stop it was due at soon says the bus is not coming.
    [row] = client.get(f"/api/stops/{other.stop_ids[1]}/arrivals").json()["arrivals"]
    assert (row["trip_id"], row["cancelled"], row["live"], row["vehicle_id"]) == (OTHER_TRIP, True, False, None)
    origin = network.service_day_origin(datetime.date(2014, 6, 1))
    assert row["scheduled_arrival"] == pytest.approx(origin + float(other.arrival[1]))


def test_alerts_for_stale_and_off_route_buses_and_operator_alerts(
    client: TestClient, live: MemoryLiveStore, notices: MemoryNoticeStore
) -> None:
    client.portal.call(  # type: ignore[union-attr]
        live.put_states,
        [
            running(TRIP, "V1", status="stale"),
            running(OTHER_TRIP, "V2", status="off_route"),
            running(TRIP, "V3", timestamp=NOW - 30),  # fine
        ],
    )
    texts = {"en": "Stop moved", "vi": "Điểm dừng đã dời"}
    alert = Alert("works-1", texts, route_ids=("110-423",), effect="STOP_MOVED")
    client.portal.call(notices.put, "alert", "works-1", dataclasses.asdict(alert), NOW + 600)  # type: ignore[union-attr]
    entities = {e.id: e.alert for e in feed(client, "alerts").entity}
    assert set(entities) == {"operator:works-1", "vehicle:V1", "vehicle:V2"}
    assert entities["vehicle:V1"].cause == rt.Alert.TECHNICAL_PROBLEM
    assert entities["vehicle:V2"].effect == rt.Alert.DETOUR
    assert entities["vehicle:V2"].informed_entity[0].trip.trip_id == OTHER_TRIP
    texts = {t.language: t.text for t in entities["operator:works-1"].header_text.translation}
    assert texts == {"en": "Stop moved", "vi": "Điểm dừng đã dời"}
    assert entities["operator:works-1"].effect == rt.Alert.STOP_MOVED


def test_an_alert_for_all_service_names_something_a_consumer_can_match(
    client: TestClient, notices: MemoryNoticeStore, network: Network
) -> None:
    alert = Alert("storm", {"en": "Storm: expect delays"})  # no route, stop or trip: everyone
    client.portal.call(notices.put, "alert", "storm", dataclasses.asdict(alert), NOW + 600)  # type: ignore[union-attr]
    [entity] = feed(client, "alerts").entity
    # Cairns' one agency has no agency_id, so the alert names every kind of vehicle the feed runs (buses).
    informed = [(e.HasField("agency_id"), e.route_type) for e in entity.alert.informed_entity]
    assert informed == [(False, 3)]
    assert {r.route_type for r in network.routes.values()} == {3}


def test_an_alert_for_all_service_names_the_agencies_by_id_when_they_have_ids(
    live: MemoryLiveStore, notices: MemoryNoticeStore, network: Network
) -> None:
    agencies = {"TL": Agency("TL", "TransLink"), "QC": Agency("QC", "Qconnect")}
    app = create_app(live, dataclasses.replace(network, agencies=agencies), clock=lambda: NOW, notices=notices)
    with TestClient(app) as client:
        alert = Alert("storm", {"en": "Storm: expect delays"})
        client.portal.call(notices.put, "alert", "storm", dataclasses.asdict(alert), NOW + 600)  # type: ignore[union-attr]
        [entity] = feed(client, "alerts").entity
        assert [e.agency_id for e in entity.alert.informed_entity] == ["QC", "TL"]


def test_json_form_and_unknown_format(client: TestClient, live: MemoryLiveStore) -> None:
    client.portal.call(live.put_states, [running(TRIP)])  # type: ignore[union-attr]
    body = client.get("/gtfs-rt/vehicle-positions.json").json()
    assert body["header"]["incrementality"] == "FULL_DATASET"
    assert body["entity"][0]["vehicle"]["trip"]["trip_id"] == TRIP
    response = client.get("/gtfs-rt/vehicle-positions.xml")
    assert response.status_code == 404 and response.json()["error"]["status"] == 404


def test_stops_predicted_for_the_same_second_still_have_increasing_times(
    client: TestClient, live: MemoryLiveStore, network: Network
) -> None:
    same = predict_rest_of_trip(network, TRIP)
    flat = dataclasses.replace(
        same, stops=tuple(p._replace(predicted_arrival=NOW + 300) for p in same.stops)
    )
    client.portal.call(live.put_states, [running(TRIP)])  # type: ignore[union-attr]
    client.portal.call(live.put_predictions, [flat])  # type: ignore[union-attr]
    [entity] = feed(client, "trip-updates").entity
    times = [u.arrival.time for u in entity.trip_update.stop_time_update]
    assert all(b > a for a, b in zip(times, times[1:], strict=False)) and times[0] == int(NOW + 300)
    assert entity.trip_update.trip.schedule_relationship == rt.TripDescriptor.SCHEDULED
