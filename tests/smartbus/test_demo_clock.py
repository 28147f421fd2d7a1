from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from eta.network import Network, load_network
from smartbus.demo_clock import DemoClock, first_moment_with_service, trips_running_at
from smartbus.settings import BUNDLED_FEED


@pytest.fixture(scope="module")
def cairns(tmp_path_factory: pytest.TempPathFactory) -> Network:
    return load_network(BUNDLED_FEED, Path(tmp_path_factory.mktemp("cache")))


def _local(network: Network, hour: int, minute: int = 0) -> float:
    return dt.datetime(2026, 11, 25, hour, minute, tzinfo=ZoneInfo(network.agency_timezone)).timestamp()


def test_at_a_busy_hour_the_demo_clock_is_the_real_clock(cairns: Network) -> None:
    nine = _local(cairns, 9)
    assert trips_running_at(cairns, nine) >= 10
    assert first_moment_with_service(cairns, nine) == nine


def test_in_the_dead_of_night_the_demo_clock_jumps_to_the_first_buses(cairns: Network) -> None:
    three = _local(cairns, 3)
    assert trips_running_at(cairns, three) == 0
    start = first_moment_with_service(cairns, three)
    assert three < start < _local(cairns, 9)
    assert trips_running_at(cairns, start) >= 3
    assert trips_running_at(cairns, start - 300) < 3  # the first such moment, to 5 minutes


def test_the_demo_clock_starts_at_its_start_and_runs_at_its_speed() -> None:
    wall = [500.0]
    clock = DemoClock(sim_start=1000.0, speed=10.0, wall=lambda: wall[0])
    assert clock() == 1000.0
    wall[0] += 3.0
    assert clock() == 1030.0
