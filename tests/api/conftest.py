from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from api.app import create_app
from eta.network import Network, Stop, load_network
from smartbus.live.memory_store import MemoryLiveStore
from smartbus.live.notices import MemoryNoticeStore
from smartbus.settings import BUNDLED_FEED

# A real PostgreSQL for the analyst and operator endpoints: the storage tests' server and per-test database.
from tests.storage.conftest import database_url, server_url  # noqa: F401

NOW = 1_401_600_000.0  # 2014-06-01, inside the bundled feed's calendar; the app's clock in these tests
VIETNAMESE_STOP = Stop("vn-1", "Bến xe Bắc Ninh", -16.92, 145.77, 1)
DD_STOP = Stop("vn-2", "Đường Lý Thái Tổ", -16.93, 145.78, None)


@pytest.fixture(scope="session")
def network(tmp_path_factory: pytest.TempPathFactory) -> Network:
    """The bundled Cairns feed, plus two Vietnamese-named stops for search."""
    real = load_network(BUNDLED_FEED, Path(tmp_path_factory.mktemp("network-cache")))
    stops = {**real.stops, VIETNAMESE_STOP.stop_id: VIETNAMESE_STOP, DD_STOP.stop_id: DD_STOP}
    return dataclasses.replace(real, stops=stops)


@pytest.fixture
def live() -> MemoryLiveStore:
    return MemoryLiveStore()


@pytest.fixture
def notices() -> MemoryNoticeStore:
    return MemoryNoticeStore()


@pytest.fixture
def client(live: MemoryLiveStore, notices: MemoryNoticeStore, network: Network) -> Iterator[TestClient]:
    # boards of the vehicles' predictions alone: the timetable's rows (api.timetable) have tests of their own
    app = create_app(live, network, clock=lambda: NOW, tile_url=None, notices=notices, timetable=False)
    with TestClient(app) as test_client:
        yield test_client
