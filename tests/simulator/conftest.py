from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pytest

from eta.network import Network, load_network
from simulator.config import SimConfig
from simulator.generator import DayPlan, plan_day, simulate
from simulator.records import Delivery, StopTruth

REPO = Path(__file__).resolve().parents[2]
CAIRNS = REPO / "simulator" / "data" / "cairns_gtfs.zip"
FEEDS = REPO / "tests" / "data" / "feeds"
EDGE_FEEDS = ("loop", "out_and_back", "no_shapes", "holiday_frequencies")
A_WEDNESDAY = dt.date(2025, 9, 3)  # inside the edge feeds' calendars


@dataclass
class Day:
    plan: DayPlan
    deliveries: list[Delivery]
    stops: list[StopTruth]


def run_day(network: Network, day: dt.date, config: SimConfig) -> Day:
    plan = plan_day(network, day, config)
    deliveries: list[Delivery] = []
    stops: list[StopTruth] = []
    for event in simulate(plan):
        (deliveries if isinstance(event, Delivery) else stops).append(event)  # type: ignore[arg-type]
    return Day(plan, deliveries, stops)


@pytest.fixture(scope="session")
def cairns(tmp_path_factory: pytest.TempPathFactory) -> Network:
    return load_network(CAIRNS, tmp_path_factory.mktemp("network-cache"))


def edge_network(name: str) -> Network:
    return load_network(FEEDS / name)
