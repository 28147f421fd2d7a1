"""The ETA stage sends a vehicle's predictions when they change or grow old, not after every ping."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

from eta.engine import Engine
from eta.network import Network, load_network
from eta.prediction import LearningPredictor
from eta.prediction.predictor import REFRESH_S
from eta.worker import EtaStage
from smartbus import messages
from smartbus.bus.base import Record
from smartbus.bus.memory import MemoryBus
from smartbus.messages import Ping, PredictionSet
from smartbus.settings import BUNDLED_FEED
from tests.eta.pings import trip_pings
from tests.eta.test_tracker_assignment import ROUTE_120_TRIP

DAY = dt.date(2014, 6, 3)


async def test_a_bus_running_as_predicted_is_not_resent_after_every_ping() -> None:
    network = load_network(BUNDLED_FEED, Path("var/cache"))
    # exactly on its timetable, reporting every 10 s: what riders were shown keeps holding
    pings, _ = trip_pings(network, ROUTE_120_TRIP, DAY, interval_s=10.0, with_trip_id=True)
    bus = MemoryBus()
    stage = EtaStage(Engine(network), LearningPredictor(network), bus.producer())
    await stage.handle(
        [Record(messages.TOPIC_PINGS, 0, k, b"bus-1", messages.encode(p)) for k, p in enumerate(pings)]
    )
    sets = [
        messages.decode_as(r.value, PredictionSet)
        for r in await bus.consumer([messages.TOPIC_PREDICTIONS], "t").getmany(0.01, 10_000)
    ]
    made = [s.made_at for s in sets]
    assert len(pings) > 200
    assert 0 < len(sets) < len(pings) / 3
    # and riders' boards never go without a fresh set for longer than the refresh interval
    assert all(b - a <= REFRESH_S + 10.0 for a, b in zip(made, made[1:], strict=False))


async def _sets_after(network: Network, pings: list[Ping]) -> list[PredictionSet]:
    bus = MemoryBus()
    stage = EtaStage(Engine(network), LearningPredictor(network), bus.producer())
    await stage.handle(
        [Record(messages.TOPIC_PINGS, 0, k, b"bus-1", messages.encode(p)) for k, p in enumerate(pings)]
    )
    return [
        messages.decode_as(r.value, PredictionSet)
        for r in await bus.consumer([messages.TOPIC_PREDICTIONS], "t").getmany(0.01, 10_000)
    ]


async def test_a_fix_its_device_held_back_for_minutes_does_not_put_stops_passed_since_on_the_boards() -> None:
    """A device buffers through a coverage gap and sends a fix eight minutes after taking it (ingest stamps when it
    arrived). The bus has most likely passed the next stops since: the set made from that fix leaves out the stops
    it puts before the moment we heard of it, which a fix arriving at once would show."""
    network = load_network(BUNDLED_FEED, Path("var/cache"))
    pings, _ = trip_pings(network, ROUTE_120_TRIP, DAY, interval_s=30.0, with_trip_id=True)
    before, held = pings[:20], pings[36]  # silent for eight minutes, then a fix from then, sent only now
    arrived = held.timestamp + 8 * 60.0

    at_once = (await _sets_after(network, [*before, dataclasses.replace(held, received_at=held.timestamp + 1.0)]))[-1]
    late = (await _sets_after(network, [*before, dataclasses.replace(held, received_at=arrived)]))[-1]

    assert at_once.made_at == late.made_at == held.timestamp
    assert min(s.predicted_arrival for s in at_once.stops) < arrived
    assert late.stops and min(s.predicted_arrival for s in late.stops) >= arrived
