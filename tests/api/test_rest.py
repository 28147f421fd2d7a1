"""The REST endpoints as a client uses them, on the bundled feed and an in-memory live store."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from eta.network import Network
from smartbus.live.memory_store import MemoryLiveStore
from smartbus.messages import PredictionSet, StopPrediction, VehicleState
from tests.api.conftest import NOW

TRIP = "CNS2014-CNS_MUL-Saturday-00-4165937"  # route 110 towards "The Pier Cairns Terminus"
STOP = "750001"


def bus(vehicle_id: str, lat: float, lon: float, route_id: str | None = "110-423", **fields: object) -> VehicleState:
    fields.setdefault("timestamp", NOW - 5)
    return VehicleState(
        vehicle_id=vehicle_id,
        latitude=lat,
        longitude=lon,
        status="in_transit",
        route_id=route_id,
        trip_id=TRIP if route_id == "110-423" else None,
        **fields,  # type: ignore[arg-type]
    )


def predictions(vehicle_id: str, *at: tuple[str, float, str]) -> PredictionSet:
    return PredictionSet(
        vehicle_id=vehicle_id,
        made_at=NOW - 5,
        stops=tuple(
            StopPrediction(
                trip_id=TRIP,
                service_date="20140601",
                stop_id=stop_id,
                stop_sequence=i + 1,
                predicted_arrival=when,
                scheduled_arrival=when - 30,
                method=method,  # type: ignore[arg-type]
                uncertainty_s=40.0,
                route_id="110-423",
            )
            for i, (stop_id, when, method) in enumerate(at)
        ),
    )


def assert_json_error(response: object, status: int) -> dict[str, object]:
    assert response.status_code == status  # type: ignore[attr-defined]
    assert response.headers["content-type"].startswith("application/json")  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert body["error"]["status"] == status
    assert "Traceback" not in response.text  # type: ignore[attr-defined]
    return body  # type: ignore[no-any-return]


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}


def test_vehicles_filtered_by_route_and_bbox(client: TestClient, live: MemoryLiveStore) -> None:
    client.portal.call(  # type: ignore[union-attr]
        live.put_states,
        [
            bus("in-city", -16.92, 145.77, delay_s=120.0),
            bus("north", -16.74, 145.67),
            bus("other", -16.92, 145.77, "x"),
        ],
    )

    every = client.get("/api/vehicles").json()["vehicles"]
    assert [v["vehicle_id"] for v in every] == ["in-city", "north", "other"]
    city = every[0]
    assert (city["route_short_name"], city["headsign"], city["delay_s"]) == ("110", "The Pier Cairns Terminus", 120.0)
    assert city["route_color"] == "#7BC142"

    on_110 = client.get("/api/vehicles", params={"route_id": "110-423"}).json()["vehicles"]
    assert [v["vehicle_id"] for v in on_110] == ["in-city", "north"]
    boxed = client.get("/api/vehicles", params={"route_id": "110-423", "bbox": "145.7,-17.0,145.8,-16.8"}).json()
    assert [v["vehicle_id"] for v in boxed["vehicles"]] == ["in-city"]


@pytest.mark.parametrize(
    "bbox", ["1,2,3", "a,b,c,d", "145.8,-17,145.7,-16.8", "nan,0,1,1", "0,-91,1,1", "1e999,0,1,1", "", "1,2,3,4,5"]
)
def test_bad_bbox_is_a_json_400(client: TestClient, bbox: str) -> None:
    assert_json_error(client.get("/api/vehicles", params={"bbox": bbox}), 400)


def test_one_vehicle_and_unknown_vehicle(client: TestClient, live: MemoryLiveStore) -> None:
    client.portal.call(live.put_states, [bus("V1", -16.92, 145.77)])  # type: ignore[union-attr]
    assert client.get("/api/vehicles/V1").json()["vehicle_id"] == "V1"
    body = assert_json_error(client.get("/api/vehicles/nope"), 404)
    assert body["error"]["message"] == "unknown vehicle"  # type: ignore[index]


@pytest.mark.parametrize(
    ("query", "expected"),
    [("bac ninh", "vn-1"), ("BẮC NINH", "vn-1"), ("ben xe", "vn-1"), ("duong ly thai to", "vn-2"), ("đường", "vn-2")],
)
def test_stop_search_ignores_case_and_vietnamese_diacritics(client: TestClient, query: str, expected: str) -> None:
    found = client.get("/api/stops", params={"q": query}).json()["stops"]
    assert [s["stop_id"] for s in found] == [expected]


def test_stop_search_on_the_real_feed(client: TestClient) -> None:
    found = client.get("/api/stops", params={"q": "williams esplanade", "limit": 50}).json()["stops"]
    assert found and all("williams esplanade" in s["name"].lower() for s in found)
    assert STOP in [s["stop_id"] for s in found]
    assert len(client.get("/api/stops", params={"limit": 5}).json()["stops"]) == 5


@pytest.mark.parametrize("query", ["<script>alert(1)</script>", "' OR 1=1 --", "%00", "\u202e\u0000", "(((", "*"])
def test_hostile_search_strings_are_just_text(client: TestClient, query: str) -> None:
    response = client.get("/api/stops", params={"q": query})
    assert response.status_code == 200
    stops = response.json()["stops"]
    assert len(stops) <= 20  # the default limit holds: no way to dump everything
    if query.startswith("<script>"):
        assert stops == []
    if query.startswith("'"):  # searched as the words "or 1 1", not as SQL
        assert all("or" in s["name"].lower() and "1" in s["name"] for s in stops)


def test_too_long_query_and_bad_limit_are_json_422(client: TestClient) -> None:
    assert_json_error(client.get("/api/stops", params={"q": "x" * 201}), 422)
    body = assert_json_error(client.get("/api/stops", params={"limit": "lots"}), 422)
    assert "lots" not in str(body)  # the offending input is not echoed back


def test_stop_arrivals_board(client: TestClient, live: MemoryLiveStore) -> None:
    client.portal.call(  # type: ignore[union-attr]
        live.put_predictions, [predictions("V1", (STOP, NOW + 300, "blend"), ("750003", NOW + 400, "schedule"))]
    )
    body = client.get(f"/api/stops/{STOP}/arrivals").json()
    assert body["stop"]["name"] == "Williams Esplanade N201"
    assert body["server_time"] == NOW
    [arrival] = body["arrivals"]
    assert (arrival["trip_id"], arrival["vehicle_id"], arrival["predicted_arrival"]) == (TRIP, "V1", NOW + 300)
    assert (arrival["route_short_name"], arrival["headsign"], arrival["live"]) == (
        "110",
        "The Pier Cairns Terminus",
        True,
    )
    [scheduled_only] = client.get("/api/stops/750003/arrivals").json()["arrivals"]
    assert scheduled_only["live"] is False
    assert client.get("/api/stops/750002/arrivals").json()["arrivals"] == []


@pytest.mark.parametrize("stop_id", ["nope", "..%2F..%2Fetc", "<b>x</b>", "750001%00"])
def test_unknown_stop_is_a_json_404(client: TestClient, stop_id: str) -> None:
    assert_json_error(client.get(f"/api/stops/{stop_id}/arrivals"), 404)
    assert_json_error(client.get(f"/api/stops/{stop_id}"), 404)


def test_routes_and_their_shapes(client: TestClient, network: Network) -> None:
    routes = client.get("/api/routes").json()["routes"]
    assert len(routes) == len(network.routes) == 22
    assert {"route_id": "110-423", "short_name": "110", "long_name": "City - Palm Cove"}.items() <= routes[0].items()

    geojson = client.get("/api/routes.geojson")
    assert geojson.headers["content-type"] == "application/geo+json"
    features = geojson.json()["features"]
    assert {f["properties"]["route_id"] for f in features} == {t.route_id for t in network.trips.values()}
    for feature in features:
        assert feature["geometry"]["type"] == "MultiLineString"
        for line in feature["geometry"]["coordinates"]:
            assert len(line) >= 2
            assert all(145 < lon < 146.5 and -17.5 < lat < -16.5 for lon, lat in line)  # Cairns


def test_stops_geojson_has_every_stop(client: TestClient, network: Network) -> None:
    features = client.get("/api/stops.geojson").json()["features"]
    assert len(features) == len(network.stops)


def test_pages_and_assets(client: TestClient) -> None:
    home = client.get("/")
    assert home.status_code == 200 and "leaflet" in home.text.lower()
    board = client.get(f"/stops/{STOP}")
    assert board.status_code == 200 and "<html" in board.text
    assert client.get("/stops/nope").status_code == 404
    assert client.get("/static/vendor/leaflet/leaflet.js").status_code == 200
    assert client.get("/api/config").json()["tile_url"] is None
    dashboard = client.get("/analytics")
    assert dashboard.status_code == 200 and "/static/analytics.js" in dashboard.text
    for asset in ("analytics.js", "charts.js", "analytics.css"):
        assert client.get(f"/static/{asset}").status_code == 200
    # Nothing is loaded from elsewhere at run time: every script and stylesheet is ours.
    for page in (home.text, board.text, dashboard.text):
        assert "http://" not in page and "https://" not in page


def test_unknown_path_is_json_404(client: TestClient) -> None:
    assert_json_error(client.get("/api/nothing-here"), 404)
