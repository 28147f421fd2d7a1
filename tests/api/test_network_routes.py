"""The static network as a trip planner or a rider app reads it: agencies, routes, a day's trips, stop times, shapes,
stops near a point; on the bundled Cairns feed."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from starlette.testclient import TestClient

from eta.network import Network
from tests.api.conftest import NOW
from tests.api.test_rest import STOP, TRIP, assert_json_error

ROUTE = "110-423"


def test_agencies_name_the_feeds_operator_and_its_time_zone(client: TestClient) -> None:
    [agency] = client.get("/api/agencies").json()["agencies"]
    assert agency["name"].startswith("Department of Transport and Main Roads")
    assert agency["timezone"] == "Australia/Brisbane"


def test_a_route_lists_its_stops_in_order_per_direction(client: TestClient, network: Network) -> None:
    body = client.get(f"/api/routes/{ROUTE}").json()
    assert (body["route_id"], body["short_name"]) == (ROUTE, "110")
    directions = {d["direction_id"]: d for d in body["directions"]}
    assert set(directions) == {0, 1}
    towards_city = directions[0]
    assert towards_city["headsign"] == "The Pier Cairns Terminus"
    ids = [s["stop_id"] for s in towards_city["stops"]]
    # The pattern is one real trip's stops, in its order, and most of the direction's trips run it.
    assert any(t.stop_ids == tuple(ids) for t in network.trips.values() if t.route_id == ROUTE)
    assert towards_city["trip_count"] > 1
    assert towards_city["shape_id"] in network.shapes


def test_a_days_trips_of_a_route_with_real_times(client: TestClient) -> None:
    body = client.get(f"/api/routes/{ROUTE}/trips", params={"date": "2014-05-31"}).json()  # a Saturday in the feed
    assert (body["date"], body["feed_day"], body["mapped"]) == ("2014-05-31", "2014-05-31", False)
    trips = body["trips"]
    assert len(trips) == 34
    first = trips[0]
    assert first["trip_id"] == TRIP and first["start_time"] == "06:16:00"
    # 06:16 in Brisbane (UTC+10, no daylight saving) on 31 May 2014.
    start = dt.datetime(2014, 5, 31, 6, 16, tzinfo=dt.timezone(dt.timedelta(hours=10)))
    assert first["scheduled_start"] == start.timestamp()
    starts = [t["scheduled_start"] for t in trips]
    assert starts == sorted(starts)
    assert all(t["route_id"] == ROUTE for t in trips)


def test_a_date_outside_the_feed_maps_onto_a_feed_day_and_says_so(client: TestClient) -> None:
    body = client.get(f"/api/routes/{ROUTE}/trips", params={"date": "2026-11-28"}).json()  # a Saturday
    assert body["mapped"] is True
    assert dt.date.fromisoformat(body["feed_day"]).weekday() == 5
    assert body["trips"], "the mapped Saturday has service"
    origin = dt.datetime(2026, 11, 28, tzinfo=dt.timezone(dt.timedelta(hours=10))).timestamp()
    assert all(origin < t["scheduled_start"] < origin + 86400 + 6 * 3600 for t in body["trips"])


def test_without_a_date_trips_are_for_today_in_the_agencys_zone(client: TestClient) -> None:
    today = dt.datetime.fromtimestamp(NOW, dt.timezone(dt.timedelta(hours=10))).date()
    assert client.get(f"/api/routes/{ROUTE}/trips").json()["date"] == today.isoformat()


def test_a_trip_with_its_stop_times(client: TestClient, network: Network) -> None:
    body = client.get(f"/api/trips/{TRIP}").json()
    assert (body["route_id"], body["headsign"], body["direction_id"]) == (ROUTE, "The Pier Cairns Terminus", 0)
    stop_times = body["stop_times"]
    assert len(stop_times) == 35
    assert [s["stop_id"] for s in stop_times[:3]] == ["750337", "750000", "750001"]
    assert (stop_times[2]["arrival_time"], stop_times[2]["stop_name"]) == ("06:18:00", "Williams Esplanade N201")
    distances = [s["shape_dist_m"] for s in stop_times]
    assert distances == sorted(distances) and distances[-1] > 1000
    assert "scheduled_arrival" not in stop_times[0]

    on_a_day = client.get(f"/api/trips/{TRIP}", params={"date": "2014-05-31"}).json()
    assert on_a_day["runs"] is True
    assert (
        on_a_day["stop_times"][2]["scheduled_arrival"]
        == dt.datetime(2014, 5, 31, 6, 18, tzinfo=dt.timezone(dt.timedelta(hours=10))).timestamp()
    )
    assert client.get(f"/api/trips/{TRIP}", params={"date": "2014-06-02"}).json()["runs"] is False  # a Monday


def test_a_shape_at_full_resolution(client: TestClient, network: Network) -> None:
    shape_id = network.trips[TRIP].shape_id
    response = client.get(f"/api/shapes/{shape_id}")
    assert response.headers["content-type"] == "application/geo+json"
    feature = response.json()
    assert feature["geometry"]["type"] == "LineString"
    assert len(feature["geometry"]["coordinates"]) == len(network.shapes[shape_id].lat)
    assert feature["properties"]["length_m"] == pytest.approx(network.shapes[shape_id].length, abs=0.1)


def test_stops_near_a_point_nearest_first_with_their_distance(client: TestClient, network: Network) -> None:
    here = network.stops[STOP]
    found = client.get("/api/stops", params={"lat": here.lat, "lon": here.lon, "radius_m": 400}).json()["stops"]
    assert found[0]["stop_id"] == STOP and found[0]["distance_m"] == 0.0
    distances = [s["distance_m"] for s in found]
    assert distances == sorted(distances) and 0 < distances[-1] <= 400
    # Every stop within the radius is there, checked against a plain haversine over the whole feed.
    within = {s.stop_id for s in network.stops.values() if _metres(here.lat, here.lon, s.lat, s.lon) <= 400}
    assert {s["stop_id"] for s in found} == within


def test_near_and_name_together(client: TestClient, network: Network) -> None:
    here = network.stops[STOP]
    found = client.get("/api/stops", params={"q": "esplanade", "lat": here.lat, "lon": here.lon, "radius_m": 2000})
    names = [s["name"] for s in found.json()["stops"]]
    assert names and all("esplanade" in n.lower() for n in names)


@pytest.mark.parametrize(
    "path",
    [
        "/api/routes/nope",
        "/api/routes/nope/trips",
        "/api/trips/nope",
        "/api/shapes/nope",
        "/api/trips/%00%27%3B%20DROP%20TABLE%20trips",
        "/api/routes/" + "x" * 300,
    ],
)
def test_unknown_or_hostile_ids_are_json_errors(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code in (404, 422)
    assert_json_error(response, response.status_code)


@pytest.mark.parametrize(
    "params",
    [
        {"date": "31/05/2014"},
        {"date": "2014-02-30"},
        {"date": "'; select 1"},
    ],
)
def test_bad_dates_are_json_422(client: TestClient, params: dict[str, str]) -> None:
    assert_json_error(client.get(f"/api/routes/{ROUTE}/trips", params=params), 422)


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"lat": "-16.7"}, 400),
        ({"lat": "91", "lon": "145"}, 422),
        ({"lat": "-16.7", "lon": "nan"}, 422),
        ({"lat": "-16.7", "lon": "145.6", "radius_m": "0"}, 422),
        ({"lat": "-16.7", "lon": "145.6", "radius_m": "1e9"}, 422),
    ],
)
def test_bad_points_are_json_errors(client: TestClient, params: dict[str, str], status: int) -> None:
    assert_json_error(client.get("/api/stops", params=params), status)


def _metres(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(a))
