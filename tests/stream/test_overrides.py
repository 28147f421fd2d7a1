"""An operator's trip override written where the api writes it (Redis) reaches the ETA stage's vehicles;
a notice store that cannot be read costs no ping."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from pathlib import Path

import pytest

from eta.engine import Engine
from eta.network import Network, load_network
from eta.schedule_predictor import SchedulePredictor
from eta.worker import EtaStage
from smartbus import messages
from smartbus.bus.base import Record
from smartbus.bus.memory import MemoryBus
from smartbus.live.notices import AssignmentOverride, RedisNoticeStore
from smartbus.messages import Ping, VehicleState
from smartbus.settings import BUNDLED_FEED, Settings
from smartbus.stream.overrides import OverrideFeed
from tests.eta.pings import trip_pings
from tests.eta.test_tracker_overrides import _same_shape_pair
from tests.pipeline.harness import free_port

pytestmark = pytest.mark.integration

DAY = dt.date(2014, 6, 3)
SERVICE_DATE = DAY.strftime("%Y%m%d")


@pytest.fixture(scope="module")
def network() -> Network:
    return load_network(BUNDLED_FEED, Path("var/cache"))


def _records(pings: list[Ping], first_offset: int) -> list[Record]:
    return [
        Record(messages.TOPIC_PINGS, 0, first_offset + k, p.vehicle_id.encode(), messages.encode(p))
        for k, p in enumerate(pings)
    ]


async def _trips_seen(bus: MemoryBus) -> list[str | None]:
    records = await bus.consumer([messages.TOPIC_VEHICLE_STATES], "t").getmany(0.01, 100_000)
    return [messages.decode_as(r.value, VehicleState).trip_id for r in records]


async def test_an_override_in_redis_moves_the_bus_to_the_operator_s_trip(network: Network) -> None:
    inferred, given = _same_shape_pair(network)
    pings, _ = trip_pings(network, inferred, DAY, interval_s=30.0, noise_m=5.0, seed=2)
    store = RedisNoticeStore(Settings().redis_url, namespace=f"overrides-{uuid.uuid4().hex[:8]}")
    now = pings[0].timestamp
    bus = MemoryBus()
    stage = EtaStage(
        Engine(network), SchedulePredictor(network), bus.producer(),
        overrides=OverrideFeed(store, refresh_s=0.0, clock=lambda: now),
    )
    try:
        half = len(pings) // 2
        await stage.handle(_records(pings[:half], 0))
        before = await _trips_seen(bus)
        # what PUT /api/operator/vehicles/bus-1/assignment stores
        override = AssignmentOverride("bus-1", given, SERVICE_DATE, now)
        await store.put("override", "bus-1", dataclasses.asdict(override), now + 3600)
        await stage.handle(_records(pings[half : half + 10], half))
        after = (await _trips_seen(bus))[len(before) :]
    finally:
        await store.close()

    assert before[-1] == inferred
    assert after == [given] * 10


async def test_an_unreachable_notice_store_costs_no_ping(network: Network) -> None:
    trip_id, _ = _same_shape_pair(network)
    pings, _ = trip_pings(network, trip_id, DAY, interval_s=30.0, with_trip_id=True)
    store = RedisNoticeStore(f"redis://127.0.0.1:{free_port()}/0")
    bus = MemoryBus()
    stage = EtaStage(Engine(network), SchedulePredictor(network), bus.producer(), overrides=OverrideFeed(store))
    try:
        await stage.handle(_records(pings[:20], 0))
    finally:
        await store.close()
    assert await _trips_seen(bus) == [trip_id] * 20
