"""Operator endpoints on a real PostgreSQL: notices riders then see, overrides, playback; rate limits."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from google.transit import gtfs_realtime_pb2 as rt
from starlette.testclient import TestClient

from api.app import create_app
from api.database import Database
from eta.network import Network
from smartbus.live.memory_store import MemoryLiveStore
from smartbus.live.notices import MemoryNoticeStore
from smartbus.messages import VehicleState
from smartbus.storage.migrate import migrate_sync
from tests.api.conftest import NOW
from tests.api.db_app import Keys, make_keys, store

pytestmark = pytest.mark.integration
TRIP = "CNS2014-CNS_MUL-Saturday-00-4166188"


@pytest.fixture
def db_client(
    live: MemoryLiveStore, notices: MemoryNoticeStore, network: Network, database_url: str
) -> Iterator[tuple[TestClient, Keys, str]]:
    migrate_sync(database_url, force_plain=True)
    app = create_app(
        live, network, clock=lambda: NOW, timetable=False, database=Database(database_url), notices=notices
    )
    with TestClient(app) as client:
        yield client, make_keys(client, database_url), database_url


def feed(client: TestClient, name: str) -> rt.FeedMessage:
    message = rt.FeedMessage()
    message.ParseFromString(client.get(f"/gtfs-rt/{name}.pb").content)
    return message


def test_operator_cancels_a_trip_and_riders_see_it(db_client: tuple[TestClient, Keys, str]) -> None:
    client, keys, _ = db_client
    body = {"trip_id": TRIP, "service_date": "20140601", "reason": "no driver"}
    assert client.post("/api/operator/cancellations", json=body).status_code == 401
    assert client.post("/api/operator/cancellations", json=body, headers=keys.header("analyst")).status_code == 403
    response = client.post("/api/operator/cancellations", json=body, headers=keys.header("operator"))
    assert response.status_code == 201
    [entity] = feed(client, "trip-updates").entity
    assert entity.trip_update.trip.schedule_relationship == rt.TripDescriptor.CANCELED
    listed = client.get("/api/operator/cancellations", headers=keys.header("operator")).json()["notices"]
    assert [n["trip_id"] for n in listed] == [TRIP]
    gone = client.delete(f"/api/operator/cancellations/{TRIP}/20140601", headers=keys.header("operator"))
    assert gone.status_code == 200 and len(feed(client, "trip-updates").entity) == 0
    unknown = client.post("/api/operator/cancellations", json={**body, "trip_id": "nope"}, headers=keys.header("admin"))
    assert unknown.status_code == 404


def test_operator_alerts_reach_the_alerts_feed_and_bad_alerts_are_refused(
    db_client: tuple[TestClient, Keys, str],
) -> None:
    client, keys, _ = db_client
    alert = {
        "alert_id": "flood",
        "header": {"en": "Flooding", "vi": "Ngập lụt"},
        "effect": "DETOUR",
        "cause": "WEATHER",
        "route_ids": ["110-423"],
        "end": NOW + 3600,
    }
    headers = keys.header("operator")
    assert client.put("/api/operator/alerts/flood", json=alert, headers=headers).status_code == 200
    [entity] = feed(client, "alerts").entity
    assert entity.alert.effect == rt.Alert.DETOUR and entity.alert.informed_entity[0].route_id == "110-423"
    for bad in [
        {**alert, "effect": "EXPLODES"},
        {**alert, "end": NOW - 1},
        {**alert, "end": NOW + 30 * 86400},
        {**alert, "header": {}},
        {**alert, "route_ids": ["no-such-route"]},
        {**alert, "alert_id": "other"},
    ]:
        response = client.put("/api/operator/alerts/flood", json=bad, headers=headers)
        assert response.status_code in (400, 404, 422) and response.json()["error"]["message"]
    assert client.delete("/api/operator/alerts/flood", headers=headers).status_code == 200
    assert client.delete("/api/operator/alerts/flood", headers=headers).status_code == 404
    assert len(feed(client, "alerts").entity) == 0


def test_skipped_stops_must_be_on_the_trip(db_client: tuple[TestClient, Keys, str], network: Network) -> None:
    client, keys, _ = db_client
    stop = network.trips[TRIP].stop_ids[2]
    body = {"trip_id": TRIP, "service_date": "20140601", "stop_ids": [stop]}
    assert client.post("/api/operator/skips", json=body, headers=keys.header("operator")).status_code == 201
    board = client.get(f"/api/stops/{stop}/arrivals").json()["arrivals"]
    assert board == []  # nothing predicted; a skip alone does not invent an arrival
    stranger = client.post(
        "/api/operator/skips", json={**body, "stop_ids": ["750001x"]}, headers=keys.header("operator")
    )
    assert stranger.status_code == 400


def test_assignment_override_is_kept_for_the_tracker(db_client: tuple[TestClient, Keys, str]) -> None:
    client, keys, _ = db_client
    headers = keys.header("operator")
    response = client.put(
        "/api/operator/vehicles/bus-7/assignment",
        json={"trip_id": TRIP, "service_date": "20140601", "minutes": 30},
        headers=headers,
    )
    assert response.status_code == 200
    [override] = client.get("/api/operator/overrides", headers=headers).json()["notices"]
    assert (override["vehicle_id"], override["trip_id"]) == ("bus-7", TRIP)
    assert client.delete("/api/operator/vehicles/bus-7/assignment", headers=headers).status_code == 200
    bad = client.put(
        "/api/operator/vehicles/bus-7/assignment", json={"trip_id": TRIP, "service_date": "2014-06-01"}, headers=headers
    )
    assert bad.status_code == 422


def test_playback_returns_a_local_days_track_in_order(db_client: tuple[TestClient, Keys, str]) -> None:
    client, keys, url = db_client
    # 2014-06-02 in Cairns runs from 2014-06-01 14:00 UTC; the last position is on the next local day.
    t0 = 1401631200.0
    states = [
        VehicleState(vehicle_id="bus-7", timestamp=t0 + dt, latitude=-16.92, longitude=145.77, status="in_transit")
        for dt in (3600.0, 60.0, 86400.0 + 10)
    ]
    store(client, url, [], states)
    body = client.get(
        "/api/operator/vehicles/bus-7/playback", params={"date": "2014-06-02"}, headers=keys.header("operator")
    ).json()
    assert [p["timestamp"] for p in body["positions"]] == [t0 + 60, t0 + 3600]
    assert body["timezone"] == "Australia/Brisbane"


def test_rate_limit_answers_429_in_json(live: MemoryLiveStore, network: Network) -> None:
    with TestClient(create_app(live, network, clock=lambda: NOW, rate_per_s=0.01, rate_burst=3)) as client:
        statuses = [client.get("/api/routes").status_code for _ in range(5)]
        assert statuses == [200, 200, 200, 429, 429]
        response = client.get("/healthz")
        assert response.json()["error"]["status"] == 429 and int(response.headers["Retry-After"]) >= 1
        assert client.get("/static/board.css").status_code == 200  # a page's assets are not counted


def test_openapi_is_public_and_lists_every_kind_of_endpoint(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in [
        "/api/stops/{stop_id}/arrivals",
        "/gtfs-rt/trip-updates.{fmt}",
        "/api/analytics/on-time",
        "/api/operator/cancellations",
        "/api/fleet/problems",
    ]:
        assert path in paths
