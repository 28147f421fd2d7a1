"""The ETA stage sends a vehicle's predictions when they change or grow old, not after every ping."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from eta.engine import Engine
from eta.network import load_network
from eta.prediction import LearningPredictor
from eta.prediction.predictor import REFRESH_S
from eta.worker import EtaStage
from smartbus import messages
from smartbus.bus.base import Record
from smartbus.bus.memory import MemoryBus
from smartbus.messages import PredictionSet
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
