from __future__ import annotations

from pathlib import Path

import pytest

from eta.network import Network, load_network

REPO = Path(__file__).resolve().parents[2]
CAIRNS = REPO / "simulator" / "data" / "cairns_gtfs.zip"


@pytest.fixture(scope="session")
def cairns(tmp_path_factory: pytest.TempPathFactory) -> Network:
    return load_network(CAIRNS, tmp_path_factory.mktemp("network-cache"))
