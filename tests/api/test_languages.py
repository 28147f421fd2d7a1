"""Names in the rider's language: ?lang= or Accept-Language against a feed with translations.txt.

The feed (tests/data/feeds/translations) is Vietnamese with English names, and French for one stop.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from api.app import create_app
from api.languages import MAX_LANGUAGES, accept_language, lang_parameter, localized, negotiate
from eta.network import Network, load_network
from smartbus.live.memory_store import MemoryLiveStore
from smartbus.live.notices import MemoryNoticeStore, TripCancellation, notice_key
from smartbus.messages import PredictionSet, StopPrediction, VehicleState
from tests.api.test_rest import assert_json_error
from tests.api.test_websockets import receive

FEED = Path(__file__).resolve().parents[1] / "data" / "feeds" / "translations"
NOW = 1_756_857_600.0  # 2025-09-03 07:00 in Bắc Ninh (a Wednesday): the first trips are under way
SERVICE_DATE = "20250903"


@pytest.fixture(scope="module")
def bac_ninh() -> Network:
    return load_network(FEED)


@pytest.fixture
def client(live: MemoryLiveStore, notices: MemoryNoticeStore, bac_ninh: Network) -> Iterator[TestClient]:
    app = create_app(live, bac_ninh, clock=lambda: NOW, timetable=False, notices=notices, min_interval_s=0.0)
    with TestClient(app) as test_client:
        yield test_client


def call(client: TestClient, function: Any, *args: Any) -> Any:
    return client.portal.call(function, *args)  # type: ignore[union-attr]


def bus(vehicle_id: str, trip_id: str, route_id: str, **fields: Any) -> VehicleState:
    fields.setdefault("timestamp", NOW - 5)
    return VehicleState(
        vehicle_id=vehicle_id,
        latitude=21.18,
        longitude=106.08,
        status="in_transit",
        route_id=route_id,
        trip_id=trip_id,
        service_date=SERVICE_DATE,
        **fields,
    )


def arriving(vehicle_id: str, trip_id: str, route_id: str, stop_id: str, sequence: int, at: float) -> PredictionSet:
    prediction = StopPrediction(
        trip_id=trip_id,
        service_date=SERVICE_DATE,
        stop_id=stop_id,
        stop_sequence=sequence,
        predicted_arrival=at,
        scheduled_arrival=at - 60,
        method="blend",
        uncertainty_s=30.0,
        route_id=route_id,
    )
    return PredictionSet(vehicle_id=vehicle_id, made_at=NOW - 5, stops=(prediction,))


def stop_name(client: TestClient, stop_id: str, **request: Any) -> str:
    response = client.get(f"/api/stops/{stop_id}", **request)
    assert response.status_code == 200
    return str(response.json()["name"])


# --- choosing the language ---------------------------------------------------------------------------------


def test_lang_parameter_picks_the_names_language(client: TestClient) -> None:
    assert stop_name(client, "BX") == "Bến xe Bắc Ninh"  # nothing asked: the feed's own text
    assert stop_name(client, "BX", params={"lang": "en"}) == "Bac Ninh Bus Station"
    assert stop_name(client, "BX", params={"lang": "fr"}) == "Gare routière de Bắc Ninh"
    assert stop_name(client, "BX", params={"lang": "vi"}) == "Bến xe Bắc Ninh"
    assert stop_name(client, "BX", params={"lang": "en-AU"}) == "Bac Ninh Bus Station"  # English of any region
    assert stop_name(client, "BX", params={"lang": "EN_gb"}) == "Bac Ninh Bus Station"
    assert stop_name(client, "PM", params={"lang": "en"}) == "Phố Mới"  # not translated: the feed's text
    # An empty ?lang= (a form left blank) is no choice: the browser's Accept-Language decides.
    assert stop_name(client, "BX", params={"lang": ""}, headers={"Accept-Language": "en"}) == "Bac Ninh Bus Station"


def test_an_unknown_language_falls_back_to_the_feeds_text(client: TestClient) -> None:
    assert stop_name(client, "BX", params={"lang": "de"}) == "Bến xe Bắc Ninh"
    assert stop_name(client, "BX", headers={"Accept-Language": "ja-JP,ja;q=0.9"}) == "Bến xe Bắc Ninh"


def test_accept_language_is_followed_and_lang_overrides_it(client: TestClient) -> None:
    english_browser = {"Accept-Language": "en-US,en;q=0.9"}
    assert stop_name(client, "CN", headers=english_browser) == "Nhon Market"
    # Vietnamese first: the feed's own text, even though the browser would take English next.
    assert stop_name(client, "CN", headers={"Accept-Language": "vi-VN,vi;q=0.9,en;q=0.8"}) == "Chợ Nhớn"
    assert stop_name(client, "CN", headers={"Accept-Language": "vi;q=0.4, en;q=0.8"}) == "Nhon Market"
    assert stop_name(client, "CN", params={"lang": "vi"}, headers=english_browser) == "Chợ Nhớn"
    assert stop_name(client, "CN", headers={"Accept-Language": "*;q=0.5, ???, en;q=0"}) == "Chợ Nhớn"


def test_each_name_falls_back_through_the_clients_languages(client: TestClient) -> None:
    names = {s: stop_name(client, s, params={"lang": "fr,en"}) for s in ("BX", "CN", "PM")}
    assert names == {"BX": "Gare routière de Bắc Ninh", "CN": "Nhon Market", "PM": "Phố Mới"}


def test_responses_that_follow_the_language_say_so_to_caches(client: TestClient) -> None:
    for path in ("/api/stops/BX", "/api/stops", "/api/routes", "/api/stops.geojson", "/api/routes.geojson"):
        assert "Accept-Language" in client.get(path).headers.get("vary", ""), path


@pytest.mark.parametrize("lang", ["<script>", "en;q=1", "e", "en,,fr", "x" * 101])
def test_a_lang_that_is_not_a_language_is_a_json_422(client: TestClient, lang: str) -> None:
    body = assert_json_error(client.get("/api/stops/BX", params={"lang": lang}), 422)
    assert "<script>" not in str(body)  # the offending input is not echoed back


def test_a_feed_without_translations_still_refuses_a_bad_lang_and_ignores_a_good_one(network: Network) -> None:
    app = create_app(MemoryLiveStore(), network, clock=lambda: NOW, timetable=False)
    with TestClient(app) as cairns:
        assert cairns.get("/api/stops/750001", params={"lang": "vi"}).json()["name"] == "Williams Esplanade N201"
        assert_json_error(cairns.get("/api/stops/750001", params={"lang": "vi!"}), 422)
        assert cairns.get("/api/config").json()["name_languages"] == []


def test_config_tells_the_feeds_languages(client: TestClient) -> None:
    config = client.get("/api/config").json()
    assert (config["feed_language"], config["name_languages"]) == ("vi", ["en", "fr"])


# --- static endpoints --------------------------------------------------------------------------------------


def test_routes_and_their_agency_in_the_clients_language(client: TestClient) -> None:
    feed = {r["route_id"]: r for r in client.get("/api/routes").json()["routes"]}
    english = {r["route_id"]: r for r in client.get("/api/routes", params={"lang": "en"}).json()["routes"]}
    assert (feed["VONG"]["short_name"], feed["VONG"]["long_name"]) == ("Tuyến vòng", "Vòng quanh thành phố")
    assert (english["VONG"]["short_name"], english["VONG"]["long_name"]) == ("Loop", "City circle")
    assert english["01"]["short_name"] == "01"  # not translated
    assert english["01"]["long_name"] == "Bac Ninh Bus Station – Pho Moi"
    assert (feed["01"]["agency_name"], english["01"]["agency_name"]) == ("Xe buýt Bắc Ninh", "Bac Ninh Buses")


def test_map_layers_in_the_clients_language(client: TestClient) -> None:
    stops = client.get("/api/stops.geojson", params={"lang": "en"}).json()["features"]
    assert {f["properties"]["stop_id"]: f["properties"]["name"] for f in stops}["VM"] == "Temple of Literature"
    routes = client.get("/api/routes.geojson", headers={"Accept-Language": "en"}).json()["features"]
    assert {f["properties"]["route_id"]: f["properties"]["short_name"] for f in routes}["VONG"] == "Loop"
    plain = client.get("/api/routes.geojson").json()["features"]
    assert {f["properties"]["route_id"]: f["properties"]["short_name"] for f in plain}["VONG"] == "Tuyến vòng"
    assert [f["geometry"] for f in plain] == [f["geometry"] for f in routes]


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("bus station", "BX"),  # English
        ("gare routiere", "BX"),  # French, typed without accents
        ("ben xe", "BX"),  # the feed's Vietnamese, without diacritics
        ("market", "CN"),
        ("chợ nhớn", "CN"),
        ("temple of literature", "VM"),
        ("university", "KB"),
    ],
)
def test_stop_search_finds_stops_by_any_of_their_names(client: TestClient, query: str, found: str) -> None:
    assert [s["stop_id"] for s in client.get("/api/stops", params={"q": query}).json()["stops"]] == [found]


def test_stop_search_answers_in_the_clients_language(client: TestClient) -> None:
    [english] = client.get("/api/stops", params={"q": "cho nhon", "lang": "en"}).json()["stops"]
    [vietnamese] = client.get("/api/stops", params={"q": "market", "lang": "vi"}).json()["stops"]
    assert (english["name"], vietnamese["name"]) == ("Nhon Market", "Chợ Nhớn")
    everything = client.get("/api/stops", params={"lang": "en"}).json()["stops"]
    assert len(everything) == 5  # one entry per stop, however many names it has


# --- live endpoints ----------------------------------------------------------------------------------------


def test_board_and_vehicles_in_the_clients_language(
    client: TestClient, live: MemoryLiveStore, notices: MemoryNoticeStore
) -> None:
    call(client, live.put_states, [bus("V1", "01-east-0", "01"), bus("V2", "vong-0", "VONG")])
    call(
        client,
        live.put_predictions,
        [
            arriving("V1", "01-east-0", "01", "CN", 2, NOW + 120),
            arriving("V3", "01-east-2", "01", "CN", 2, NOW + 3900),
            arriving("V2", "vong-0", "VONG", "CN", 2, NOW + 300),
        ],
    )
    # A cancelled trip nobody predicts still shows on the board, named like the others.
    cancelled = TripCancellation("01-east-1", SERVICE_DATE)
    body = dataclasses.asdict(cancelled)
    call(client, notices.put, "cancellation", notice_key("cancellation", cancelled), body, NOW + 3600)

    board = client.get("/api/stops/CN/arrivals", params={"lang": "en"}).json()
    assert board["stop"]["name"] == "Nhon Market"
    rows = [(a["trip_id"], a["route_short_name"], a["headsign"], a["cancelled"]) for a in board["arrivals"]]
    assert rows == [
        ("01-east-0", "01", "Pho Moi", False),
        ("vong-0", "Loop", "Vòng quanh thành phố", False),  # the headsign has no English: the feed's text
        ("01-east-1", "01", "Pho Moi", True),
        ("01-east-2", "01", "Pho Moi (last trip)", False),
    ]
    plain = client.get("/api/stops/CN/arrivals").json()
    assert [a["headsign"] for a in plain["arrivals"]][:2] == ["Phố Mới", "Vòng quanh thành phố"]
    assert plain["stop"]["name"] == "Chợ Nhớn"

    vehicles = client.get("/api/vehicles", headers={"Accept-Language": "en"}).json()["vehicles"]
    assert [(v["vehicle_id"], v["route_short_name"], v["headsign"]) for v in vehicles] == [
        ("V1", "01", "Pho Moi"),
        ("V2", "Loop", "Vòng quanh thành phố"),
    ]
    assert client.get("/api/vehicles/V2", params={"lang": "vi"}).json()["route_short_name"] == "Tuyến vòng"


def test_stop_socket_speaks_each_clients_language(client: TestClient, live: MemoryLiveStore) -> None:
    call(client, live.put_predictions, [arriving("V1", "01-east-0", "01", "CN", 2, NOW + 600)])
    with (
        client.websocket_connect("/ws/stops/CN?lang=en") as english,
        client.websocket_connect("/ws/stops/CN") as feed_text,
        client.websocket_connect("/ws/stops/CN", headers={"Accept-Language": "en-GB, vi;q=0.5"}) as browser,
    ):
        assert [a["headsign"] for a in receive(english)["arrivals"]] == ["Pho Moi"]
        assert [a["headsign"] for a in receive(feed_text)["arrivals"]] == ["Phố Mới"]
        assert [a["headsign"] for a in receive(browser)["arrivals"]] == ["Pho Moi"]

        # Updates are rendered once per language and shared: each client still gets its own language.
        call(client, live.put_predictions, [arriving("V3", "01-east-2", "01", "CN", 2, NOW + 900)])
        assert [a["headsign"] for a in receive(english)["arrivals"]] == ["Pho Moi", "Pho Moi (last trip)"]
        assert [a["headsign"] for a in receive(feed_text)["arrivals"]] == ["Phố Mới", "Phố Mới"]
        assert [a["headsign"] for a in receive(browser)["arrivals"]] == ["Pho Moi", "Pho Moi (last trip)"]


def test_fleet_socket_speaks_each_clients_language(client: TestClient, live: MemoryLiveStore) -> None:
    with (
        client.websocket_connect("/ws/fleet?lang=en") as english,
        client.websocket_connect("/ws/fleet?lang=vi") as vietnamese,
    ):
        assert receive(english)["vehicles"] == receive(vietnamese)["vehicles"] == []
        call(client, live.put_states, [bus("V2", "vong-0", "VONG")])
        [moved_en] = receive(english)["vehicles"]
        [moved_vi] = receive(vietnamese)["vehicles"]
        assert (moved_en["route_short_name"], moved_vi["route_short_name"]) == ("Loop", "Tuyến vòng")


def test_a_socket_with_a_bad_lang_closes_with_4422(client: TestClient) -> None:
    for path in ("/ws/stops/CN?lang=%3Cb%3E", "/ws/fleet?lang=en;q=1"):
        with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect(path) as ws:
            receive(ws)
        assert closed.value.code == 4422


# --- the pure rules ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "tags"),
    [
        ("vi-VN,vi;q=0.9,en;q=0.5", ["vi-VN", "vi", "en"]),
        ("en;q=0.5, fr", ["fr", "en"]),
        ("en;q=0.5, fr;q=0.5", ["en", "fr"]),  # equal weights keep the header's order
        ("*, en;q=0, de;q=abc, it;q=2, es;q=nan", []),
        ("garbage!, en-us", ["en-US"]),
        ("vi, vi-VN, VI", ["vi", "vi-VN"]),
        ("", []),
    ],
)
def test_accept_language_header(header: str, tags: list[str]) -> None:
    assert accept_language(header) == tags


def test_a_huge_accept_language_header_is_cut_short() -> None:
    assert len(accept_language(",".join(f"x{chr(97 + i % 26)}{chr(97 + i // 26 % 26)}" for i in range(5000)))) == (
        MAX_LANGUAGES
    )


@pytest.mark.parametrize("bad", ["", " ", "en;q=1", "vi,", "*", "<b>"])
def test_lang_parameter_refuses_what_is_not_a_language(bad: str) -> None:
    with pytest.raises(ValueError, match="language tag"):
        lang_parameter(bad)


@pytest.mark.parametrize(
    ("requested", "available", "feed_language", "chosen"),
    [
        (["vi-VN", "vi", "en"], ("en", "fr"), "vi", ()),  # the feed's own language comes first
        (["en-US"], ("en", "fr"), "vi", ("en",)),
        (["en"], ("en-GB", "en-US"), "vi", ("en-GB", "en-US")),
        (["zh-Hant-TW"], ("zh-Hant",), "en", ("zh-Hant",)),
        (["zh-Hans"], ("zh-Hant",), "zh-Hans", ()),  # never the other script of the feed's own language
        (["fr", "en"], ("en", "fr"), "vi", ("fr", "en")),
        (["de"], ("en",), None, ()),
        (["en"], ("en",), None, ("en",)),
    ],
)
def test_negotiation(
    requested: list[str], available: tuple[str, ...], feed_language: str | None, chosen: tuple[str, ...]
) -> None:
    assert negotiate(requested, available, feed_language) == chosen


def test_localized_takes_the_first_language_translated_else_the_feed_text() -> None:
    translations = (("en", "Market"), ("fr", "Marché"))
    assert localized("Chợ", translations, ("de", "fr", "en")) == "Marché"
    assert localized("Chợ", translations, ("de",)) == "Chợ"
    assert localized("Chợ", (), ("en",)) == "Chợ"
    assert localized(None, (), ("en",)) is None
