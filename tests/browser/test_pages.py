"""Each page in headless Chromium (Playwright driving Debian's /usr/bin/chromium) against a running api fed
live data through real Redis and PostgreSQL: the page loads, live updates arrive in it, screenshots are saved
under tests/artifacts/. Needs `sh api/frontend/install-browser-deps.sh` first."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import uvicorn
from fastapi import FastAPI

from api.app import create_app
from api.database import Database
from api.keys import create_key
from eta.network import Network, load_network
from smartbus.live.notices import MemoryNoticeStore
from smartbus.live.redis_store import RedisLiveStore
from smartbus.messages import PredictionSet, StopEvent, StopPrediction, VehicleState
from smartbus.settings import BUNDLED_FEED, Settings
from smartbus.storage.migrate import migrate_sync
from smartbus.storage.queries import refresh_punctuality
from smartbus.storage.writer import StorageWriter

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HERE = Path(__file__).resolve().parent
ARTIFACTS = HERE.parent / "artifacts"
STOP = "750449"  # the busiest stop of the bundled feed
MAREY_DAY = dt.date(2014, 6, 7)
# A Vietnamese feed with English names (translations.txt), for the board's names in the chosen language.
TRANSLATED_FEED = HERE.parent / "data" / "feeds" / "translations"
TRANSLATED_STOP = "CN"


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Network:
    """The bundled feed, with the trips through STOP marked wheelchair accessible (the feed says nothing)."""
    real = load_network(BUNDLED_FEED, tmp_path_factory.mktemp("network-cache"))
    trips = {
        trip_id: dataclasses.replace(trip, wheelchair_accessible=1) if STOP in trip.stop_ids else trip
        for trip_id, trip in real.trips.items()
    }
    return dataclasses.replace(real, trips=trips)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(network: Network, database_url: str) -> Iterator[tuple[str, str]]:
    """(base URL, Redis namespace) of an api on a free port, with a migrated database."""
    migrate_sync(database_url, force_plain=True)
    namespace = f"browser-{uuid.uuid4().hex[:10]}"
    redis_url = Settings().redis_url
    live = RedisLiveStore(redis_url, namespace=namespace)
    app = create_app(
        live,
        network,
        notices=MemoryNoticeStore(),
        database=Database(database_url),
        min_interval_s=0.5,
        expiry_sweep_s=2.0,
    )
    with running(app, live) as base_url:
        yield base_url, namespace


@pytest.fixture
def translated_server() -> Iterator[str]:
    """Base URL of an api on the translated feed, one bus due at TRANSLATED_STOP per route (no database)."""
    network = load_network(TRANSLATED_FEED)
    namespace = f"browser-{uuid.uuid4().hex[:10]}"
    live = RedisLiveStore(Settings().redis_url, namespace=namespace)
    app = create_app(live, network, notices=MemoryNoticeStore(), min_interval_s=0.5)

    async def due_buses(clear: bool) -> None:
        store = RedisLiveStore(Settings().redis_url, namespace=namespace)
        try:
            if clear:
                keys = [k async for k in store._redis.scan_iter(match=f"{namespace}:*")]
                if keys:
                    await store._redis.delete(*keys)
                return
            now = time.time()
            for k, trip_id in enumerate(("01-east-0", "vong-0")):
                trip = network.trips[trip_id]
                index = trip.stop_ids.index(TRANSLATED_STOP)
                prediction = StopPrediction(
                    trip_id=trip_id,
                    service_date="20250903",
                    stop_id=TRANSLATED_STOP,
                    stop_sequence=int(trip.stop_sequences[index]),
                    predicted_arrival=now + 300 + 240 * k,
                    scheduled_arrival=now + 240 + 240 * k,
                    method="blend",
                    uncertainty_s=45.0,
                    route_id=trip.route_id,
                )
                await store.put_predictions([PredictionSet(f"bn-{k}", now, (prediction,))])
        finally:
            await store.close()

    asyncio.run(due_buses(clear=False))
    try:
        with running(app, live) as base_url:
            yield base_url
    finally:
        asyncio.run(due_buses(clear=True))


@contextlib.contextmanager
def running(app: FastAPI, live: RedisLiveStore) -> Iterator[str]:
    """Serve `app` on a free port in a thread; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", ws_per_message_deflate=False, loop="asyncio"
    )
    uv = uvicorn.Server(config)

    async def serve() -> None:
        try:
            await uv.serve()
        finally:
            await live.close()  # on the server's loop, before it ends

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    for _ in range(200):
        if uv.started:
            break
        time.sleep(0.05)
    assert uv.started, "api did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        uv.should_exit = True
        thread.join(10)


def store_history(database_url: str, network: Network) -> tuple[str, str]:
    """A Saturday of observed arrivals on one route, two minutes late; returns (route_id, analyst key)."""
    trip_ids = [t for t in network.trips_on(MAREY_DAY) if network.trips[t].route_id == "110-423"][:6]
    origin = network.service_day_origin(MAREY_DAY)
    events = [
        StopEvent(
            vehicle_id=f"bus-{i}",
            trip_id=trip_id,
            service_date="20140607",
            stop_id=stop_id,
            stop_sequence=int(seq),
            arrival_time=origin + float(t) + 60 * i,
            departure_time=None,
            interpolated=False,
            route_id="110-423",
            scheduled_arrival=origin + float(t),
        )
        for i, trip_id in enumerate(trip_ids)
        for stop_id, seq, t in zip(
            network.trips[trip_id].stop_ids,
            network.trips[trip_id].stop_sequences,
            network.trips[trip_id].arrival,
            strict=True,
        )
    ]

    async def write() -> str:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            await StorageWriter(conn).write([], events, [])
            await refresh_punctuality(conn)
            return await create_key(conn, "browser test", ["analyst"])

    return "110-423", asyncio.run(write())


class LiveFeed:
    """Writes to Redis as the pipeline would: one more bus and one more arrival on the board every 0.7 s."""

    def __init__(self, namespace: str, network: Network) -> None:
        self._namespace = namespace
        self._network = network
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def __enter__(self) -> LiveFeed:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    async def _run(self) -> None:
        store = RedisLiveStore(Settings().redis_url, namespace=self._namespace)
        through_stop = [t for t in self._network.trips.values() if STOP in t.stop_ids][:60]
        try:
            for step in range(10_000):
                if self._stop.is_set():
                    break
                now = time.time()
                trip = through_stop[step % len(through_stop)]
                shape = self._network.shapes[trip.shape_id]
                k = min(len(shape.lat) - 1, 20 * step)
                dist = 1000.0 + 3000.0 * step if step > 1 else 1000.0 + 80.0 * step  # the first two bunch
                state = VehicleState(
                    vehicle_id=f"bus-{step:03d}",
                    timestamp=now,
                    latitude=float(shape.lat[k]),
                    longitude=float(shape.lon[k]),
                    status="in_transit",
                    trip_id=through_stop[0].trip_id,
                    route_id=through_stop[0].route_id,
                    service_date="20140607",
                    shape_dist=dist,
                    delay_s=60.0 * (step % 8) - 120,
                )
                index = trip.stop_ids.index(STOP)
                prediction = StopPrediction(
                    trip_id=trip.trip_id,
                    service_date="20140607",
                    stop_id=STOP,
                    stop_sequence=int(trip.stop_sequences[index]),
                    predicted_arrival=now + 120 + 90 * step,
                    scheduled_arrival=now + 60 + 90 * step,
                    method="blend" if step % 3 else "schedule",
                    uncertainty_s=45.0,
                    route_id=trip.route_id,
                )
                await store.put_states([state])
                await store.put_predictions([PredictionSet(f"bus-{step:03d}", now, (prediction,))])
                await asyncio.sleep(0.7)
        finally:
            keys = [k async for k in store._redis.scan_iter(match=f"{self._namespace}:*")]
            if keys:
                await store._redis.delete(*keys)
            await store.close()


def test_pages_load_and_show_live_updates(
    server: tuple[str, str], translated_server: str, network: Network, database_url: str
) -> None:
    if not (HERE / "node_modules" / "playwright-core").is_dir():
        pytest.fail("playwright-core is not installed: run `sh api/frontend/install-browser-deps.sh`")
    base_url, namespace = server
    route_id, key = store_history(database_url, network)
    env = {
        **os.environ,
        "BASE_URL": base_url,
        "STOP_ID": STOP,
        "API_KEY": key,
        "DAY": MAREY_DAY.isoformat(),
        "ROUTE_ID": route_id,
        "ARTIFACTS": str(ARTIFACTS),
        "TIMEZONE": network.agency_timezone,
        "TRANSLATED_URL": translated_server,
        "TRANSLATED_STOP_ID": TRANSLATED_STOP,
    }
    with LiveFeed(namespace, network):
        run = subprocess.run(["node", str(HERE / "pages.mjs")], env=env, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, f"browser checks failed:\n{run.stderr}\n{run.stdout}"
    results = {r["name"]: r for r in json.loads(run.stdout.strip().splitlines()[-1])}
    assert set(results) == {"board", "board-languages", "map", "analytics"} and all(r["ok"] for r in results.values())
    assert results["board"]["rows_after"] > results["board"]["rows_before"]
    assert results["map"]["buses_after"] > results["map"]["buses_before"]
    # The board's names follow its language switch, both ways, where the feed translates them. Its rows are the two
    # live buses and, in the hours around its morning trips (07:00 to 08:12 in the feed's time zone), the feed's
    # own trips by the timetable too (its last trip east named "(last trip)" in English by the feed).
    names = results["board-languages"]["names"]
    assert names["en"]["stop"] == "Nhon Market" and names["vi"]["stop"] == "Chợ Nhớn"
    for lang, live_headsigns, all_headsigns, routes in (
        ("en", {"Pho Moi", "Vòng quanh thành phố"}, {"Bac Ninh Bus Station", "Pho Moi (last trip)"}, {"01", "Loop"}),
        ("vi", {"Phố Mới", "Vòng quanh thành phố"}, {"Bến xe Bắc Ninh"}, {"01", "Tuyến vòng"}),
    ):
        assert live_headsigns <= set(names[lang]["headsigns"]) <= live_headsigns | all_headsigns, names[lang]
        assert set(names[lang]["routes"]) == routes, names[lang]
    assert results["board-languages"]["back_to_english"] == "Nhon Market"
    for name in ("board-en.png", "board-vi.png", "board-names-vi.png", "map.png", "analytics.png"):
        assert (ARTIFACTS / name).stat().st_size > 1000
