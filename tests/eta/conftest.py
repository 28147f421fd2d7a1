from __future__ import annotations

from pathlib import Path

import pytest

from eta.network import Network, load_network

REPO = Path(__file__).resolve().parents[2]
CAIRNS = REPO / "simulator" / "data" / "cairns_gtfs.zip"
FEEDS = REPO / "tests" / "data" / "feeds"
EDGE_FEEDS = ("loop", "out_and_back", "no_shapes", "holiday_frequencies", "translations")


@pytest.fixture(scope="session")
def network_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("network-cache")


@pytest.fixture(scope="session")
def cairns(network_cache: Path) -> Network:
    return load_network(CAIRNS, network_cache)


def edge_network(name: str) -> Network:
    return load_network(FEEDS / name)
