"""Analyst endpoints on a real PostgreSQL: on-time performance, delays, headways, exports, a route's day."""

from __future__ import annotations

import datetime as dt
import io
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest
from starlette.testclient import TestClient

from api.app import create_app
from api.database import Database
from eta.network import Network
from smartbus.live.memory_store import MemoryLiveStore
from smartbus.messages import StopEvent
from smartbus.storage import analytics
from smartbus.storage.migrate import migrate_sync
from smartbus.storage.writer import StorageWriter
from tests.api.conftest import NOW
from tests.api.db_app import Keys, make_keys, store

pytestmark = pytest.mark.integration

T0 = 1401696000.0  # 2014-06-02 08:00 UTC = 18:00 in Cairns (UTC+10)
DAY = "2014-06-02"
MARY_TRIP = "CNS2014-CNS_MUL-Saturday-00-4165937"  # runs on Saturdays, e.g. 2014-06-07


def arrival(
    sequence: int,
    at: float,
    scheduled: float | None,
    *,
    route: str = "A",
    trip: str = "t1",
    stop: str | None = None,
    service_date: str = "20140602",
) -> StopEvent:
    return StopEvent(
        vehicle_id="bus-1",
        trip_id=trip,
        service_date=service_date,
        stop_id=stop or f"s{sequence}",
        stop_sequence=sequence,
        arrival_time=at,
        departure_time=None,
        interpolated=False,
        route_id=route,
        scheduled_arrival=scheduled,
    )


SAMPLE = [
    arrival(1, T0 + 60, T0 + 180),  # 120 s early
    arrival(2, T0 + 60, T0 + 60),  # on time
    arrival(3, T0 + 900, T0 + 600),  # 300 s late: still on time
    arrival(4, T0 + 1501, T0 + 1200),  # 301 s late
    arrival(5, T0 + 1600, None),  # no schedule: counted as an arrival only
    arrival(1, T0 + 1200, T0 + 600, route="B", trip="t9"),  # 600 s late
]


@pytest.fixture
def db_client(live: MemoryLiveStore, network: Network, database_url: str) -> Iterator[tuple[TestClient, Keys, str]]:
    migrate_sync(database_url, force_plain=True)
    app = create_app(live, network, clock=lambda: NOW, database=Database(database_url))
    with TestClient(app) as client:
        yield client, make_keys(client, database_url), database_url


def get(client: TestClient, keys: Keys, path: str, **params: Any) -> dict[str, Any]:
    response = client.get(path, params=params, headers=keys.header("analyst"))
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_analyst_endpoints_need_a_key_with_the_role(db_client: tuple[TestClient, Keys, str]) -> None:
    client, keys, _ = db_client
    path, params = "/api/analytics/on-time", {"from": DAY, "to": DAY}
    for headers, status in [
        ({}, 401),
        ({"Authorization": "Bearer nonsense"}, 401),
        ({"X-API-Key": keys.analyst[:-2] + "xx"}, 401),  # right id, wrong secret
        (keys.header("operator"), 403),
        (keys.header("analyst"), 200),
        (keys.header("admin"), 200),
    ]:
        response = client.get(path, params=params, headers=headers)
        assert response.status_code == status
        if status != 200:
            assert response.json()["error"]["status"] == status
    assert client.get("/api/operator/alerts", headers=keys.header("analyst")).status_code == 403


def test_on_time_by_route_stop_hour_and_day(db_client: tuple[TestClient, Keys, str]) -> None:
    client, keys, url = db_client
    store(client, url, SAMPLE)
    by_route = get(client, keys, "/api/analytics/on-time", **{"from": DAY, "to": DAY, "by": "route"})["rows"]
    assert [(r["key"], r["arrivals"], r["scheduled"], r["early"], r["on_time"], r["late"]) for r in by_route] == [
        ("A", 5, 4, 1, 2, 1),
        ("B", 1, 1, 0, 0, 1),
    ]
    assert by_route[0]["on_time_ratio"] == 0.5
    assert by_route[0]["mean_delay_s"] == pytest.approx((-120 + 0 + 300 + 301) / 4)
    by_hour = get(client, keys, "/api/analytics/on-time", **{"from": DAY, "to": DAY, "by": "hour"})["rows"]
    assert [r["key"] for r in by_hour] == [18]  # Cairns local time, not UTC 08
    by_day = get(client, keys, "/api/analytics/on-time", **{"from": DAY, "to": DAY, "by": "day", "route_id": "A"})
    assert [(r["key"], r["on_time"]) for r in by_day["rows"]] == [(DAY, 2)]
    by_stop = get(client, keys, "/api/analytics/on-time", **{"from": DAY, "to": DAY, "by": "stop", "stop_id": "s1"})
    assert [(r["key"], r["arrivals"]) for r in by_stop["rows"]] == [("s1", 2)]
    outside = get(client, keys, "/api/analytics/on-time", **{"from": "2014-06-03", "to": "2014-06-09"})
    assert outside["rows"] == []


def test_a_wider_window_counts_more_on_time_and_the_two_paths_agree(db_client: tuple[TestClient, Keys, str]) -> None:
    client, keys, url = db_client
    store(client, url, SAMPLE)
    wide = get(client, keys, "/api/analytics/on-time", **{"from": DAY, "to": DAY, "early_s": 150, "late_s": 400})
    assert [(r["key"], r["early"], r["on_time"], r["late"]) for r in wide["rows"]] == [("A", 0, 4, 0), ("B", 0, 0, 1)]

    async def both() -> tuple[list[analytics.OnTime], list[analytics.OnTime]]:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            day = dt.date(2014, 6, 2)
            rollup = [
                await analytics.on_time(conn, day, day, by, "Australia/Brisbane", use_rollup=True)
                for by in ("route", "stop", "hour", "day")
            ]
            raw = [
                await analytics.on_time(conn, day, day, by, "Australia/Brisbane", use_rollup=False)
                for by in ("route", "stop", "hour", "day")
            ]
            return [r for rows in rollup for r in rows], [r for rows in raw for r in rows]

    rollup, raw = client.portal.call(both)  # type: ignore[union-attr]
    assert rollup == raw


def test_exports_as_csv_and_parquet(db_client: tuple[TestClient, Keys, str]) -> None:
    client, keys, url = db_client
    store(client, url, SAMPLE)
    params = {"from": DAY, "to": DAY, "by": "route"}
    csv = client.get("/api/analytics/on-time", params={**params, "format": "csv"}, headers=keys.header("analyst"))
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.lstrip("\ufeff").splitlines()
    assert lines[0].startswith("key,arrivals,scheduled,early,on_time,late") and lines[1].startswith("A,5,4,1,2,1")
    parquet = client.get(
        "/api/analytics/on-time", params={**params, "format": "parquet"}, headers=keys.header("analyst")
    )
    table = pq.read_table(io.BytesIO(parquet.content))
    assert table.column("key").to_pylist() == ["A", "B"] and table.column("late").to_pylist() == [1, 1]
    assert (
        client.get(
            "/api/analytics/on-time", params={**params, "format": "xlsx"}, headers=keys.header("analyst")
        ).status_code
        == 422
    )


def test_delay_distribution_and_percentiles(db_client: tuple[TestClient, Keys, str]) -> None:
    client, keys, url = db_client
    store(client, url, SAMPLE)
    body = get(client, keys, "/api/analytics/delays", **{"from": DAY, "to": DAY, "bin_s": 300})
    assert [(r["delay_from_s"], r["arrivals"]) for r in body["rows"]] == [(-300.0, 1), (0.0, 1), (300.0, 2), (600.0, 1)]
    assert body["count"] == 5 and body["percentiles_s"]["p50"] == pytest.approx(300.0)
    assert body["percentiles_within_s"] == 10.0  # from 10 s delay buckets: the analysts' page's call
    one_stop = get(client, keys, "/api/analytics/delays", **{"from": DAY, "to": DAY, "bin_s": 300, "stop_id": "s4"})
    assert one_stop["count"] == 1 and one_stop["percentiles_within_s"] == 0.0  # from the arrivals: exact
    assert one_stop["percentiles_s"]["p5"] == 301.0 and one_stop["rows"][0]["delay_from_s"] == 300.0


def test_excess_wait_time_of_an_irregular_frequent_route(db_client: tuple[TestClient, Keys, str]) -> None:
    client, keys, url = db_client
    # Buses due every 10 min came 5 then 15 min apart: riders waited 75 s longer on average.
    events = [
        arrival(1, T0, T0, trip="a", route="F", stop="x"),
        arrival(1, T0 + 300, T0 + 600, trip="b", route="F", stop="x"),
        arrival(1, T0 + 1200, T0 + 1200, trip="c", route="F", stop="x"),
    ]
    store(client, url, events)
    [row] = get(client, keys, "/api/analytics/headways", **{"from": DAY, "to": DAY})["rows"]
    assert (row["route_id"], row["headways"]) == ("F", 2)
    assert row["scheduled_wait_s"] == pytest.approx(300.0) and row["actual_wait_s"] == pytest.approx(375.0)
    assert row["excess_wait_s"] == pytest.approx(75.0)
    infrequent = get(
        client, keys, "/api/analytics/headways", **{"from": DAY, "to": DAY, "max_scheduled_headway_s": 300}
    )
    assert infrequent["rows"] == []


def test_route_day_gives_scheduled_and_actual_lines_for_a_marey_chart(
    db_client: tuple[TestClient, Keys, str], network: Network
) -> None:
    client, keys, url = db_client
    trip = network.trips[MARY_TRIP]
    origin = network.service_day_origin(dt.date(2014, 6, 7))
    events = [
        arrival(
            int(seq),
            origin + float(t) + 120,
            origin + float(t),
            trip=MARY_TRIP,
            route=trip.route_id,
            stop=stop,
            service_date="20140607",
        )
        for seq, stop, t in zip(trip.stop_sequences[:5], trip.stop_ids[:5], trip.arrival[:5], strict=True)
    ]
    store(client, url, events)
    body = get(client, keys, f"/api/analytics/routes/{trip.route_id}/day", date="2014-06-07", direction_id=0)
    [line] = [t for t in body["trips"] if t["trip_id"] == MARY_TRIP]
    assert len(line["actual"]) == 5 and len(line["scheduled"]) >= 5
    assert [p[1] - s[1] for p, s in zip(line["actual"], line["scheduled"], strict=False)] == [120.0] * 5
    distances = [s["distance_m"] for s in body["stops"]]
    assert distances == sorted(distances)
    assert (
        client.get(
            "/api/analytics/routes/nope/day", params={"date": "2014-06-07"}, headers=keys.header("analyst")
        ).status_code
        == 404
    )


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2014-06-09", "to": "2014-06-02"},
        {"from": "2014-01-01", "to": "2015-06-02"},
        {"from": "yesterday", "to": "2014-06-02"},
        {"from": DAY, "to": DAY, "by": "planet"},
        {"from": DAY, "to": DAY, "early_s": -5},
        {"from": DAY, "to": DAY, "route_id": "x" * 500},
        {"from": DAY, "to": DAY, "route_id": "'; DROP TABLE stop_events; --"},
    ],
)
def test_bad_analyst_input_is_a_clear_json_error(
    db_client: tuple[TestClient, Keys, str], params: dict[str, Any]
) -> None:
    client, keys, _ = db_client
    response = client.get("/api/analytics/on-time", params=params, headers=keys.header("analyst"))
    if str(params.get("route_id", "")).startswith("'"):
        assert response.status_code == 200 and response.json()["rows"] == []  # just an unknown route
        return
    assert response.status_code in (400, 422)
    assert "Traceback" not in response.text and response.json()["error"]["message"]


def test_without_a_database_riders_are_served_and_analysts_told_why_not(
    live: MemoryLiveStore, network: Network
) -> None:
    with TestClient(create_app(live, network, clock=lambda: NOW)) as client:
        assert client.get("/api/stops/750001/arrivals").status_code == 200
        assert client.get("/gtfs-rt/trip-updates.pb").status_code == 200
        response = client.get(
            "/api/analytics/on-time", params={"from": DAY, "to": DAY}, headers={"Authorization": "Bearer sb_x"}
        )
        assert response.status_code == 503 and "database" in response.json()["error"]["message"]


def test_the_api_keeps_the_rollup_fresh_by_itself(live: MemoryLiveStore, network: Network, database_url: str) -> None:
    migrate_sync(database_url, force_plain=True)
    app = create_app(live, network, clock=lambda: NOW, database=Database(database_url), rollup_refresh_s=0.2)
    with TestClient(app) as client:
        keys = make_keys(client, database_url)

        async def write_only() -> None:  # no refresh here: the api must do it
            async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
                await StorageWriter(conn).write([], SAMPLE, [])

        client.portal.call(write_only)  # type: ignore[union-attr]
        deadline = time.monotonic() + 10
        rows: list[Any] = []
        while not rows and time.monotonic() < deadline:
            time.sleep(0.2)
            rows = get(client, keys, "/api/analytics/on-time", **{"from": DAY, "to": DAY})["rows"]
        assert [r["key"] for r in rows] == ["A", "B"]
