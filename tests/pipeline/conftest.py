from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from eta.network import Network, load_network
from smartbus.settings import BUNDLED_FEED
from tests.pipeline.harness import REPO, Deployment


@pytest.fixture(scope="session")
def network() -> Network:
    # The workers' own cache: the subprocesses then load the compiled network instead of parsing the feed.
    return load_network(BUNDLED_FEED, REPO / "var" / "cache")


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    built = Deployment(tmp_path)
    try:
        yield built
    finally:
        built.stop_all()
