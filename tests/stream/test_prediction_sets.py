"""The ETA stage sends a vehicle's predictions when they change or grow old, not after every ping."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from pathlib import Path

import pytest

from eta.engine import Engine
from eta.network import Network, load_network
from eta.prediction import LearningPredictor
from eta.prediction.predictor import REFRESH_S
from eta.worker import EtaStage, WalkAllowance
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


async def test_a_fleet_first_heard_all_at_once_is_walked_so_many_a_second_and_each_bus_gets_its_board() -> None:
    """A worker that starts (or restarts) under a big fleet hears every bus within a ping interval, and each
    needs a whole walk of its stops ahead at once. The stage walks so many a second; the others are walked at a
    later fix. Every vehicle state goes out at once meanwhile, so the fleet map is not held up."""
    network = load_network(BUNDLED_FEED, Path("var/cache"))
    trips = [t for t in network.trips_on(network.service_day_for(DAY)[0]) if len(network.trips[t].stop_ids) > 20]
    fleet = [
        trip_pings(network, trip_id, DAY, vehicle_id=f"bus-{k}", interval_s=5.0, with_trip_id=True)[0][40:46]
        for k, trip_id in enumerate(trips[:6])
    ]
    clock = [0.0]
    bus = MemoryBus()
    stage = EtaStage(
        Engine(network), LearningPredictor(network), bus.producer(), walks=WalkAllowance(2.0, clock=lambda: clock[0])
    )
    consumer = bus.consumer([messages.TOPIC_PREDICTIONS, messages.TOPIC_VEHICLE_STATES], "t")
    boards: dict[int, set[str]] = {}
    for round_ in range(6):  # every bus's next fix, twice a second
        clock[0] = 0.5 * round_
        await stage.handle([
            Record(messages.TOPIC_PINGS, 0, 6 * round_ + k, p.vehicle_id.encode(), messages.encode(p))
            for k, p in enumerate(pings[round_] for pings in fleet)
        ])
        out = await consumer.getmany(0.01, 10_000)
        assert sum(r.topic == messages.TOPIC_VEHICLE_STATES for r in out) == len(fleet)
        boards[round_] = {(r.key or b"").decode() for r in out if r.topic == messages.TOPIC_PREDICTIONS}
    # a second's worth at once, then two a second: one every half second
    assert [len(boards[r]) for r in range(6)] == [2, 1, 1, 1, 1, 0]
    assert set().union(*boards.values()) == {f"bus-{k}" for k in range(6)}  # each bus once


def test_the_walk_allowance_refills_at_its_rate_and_a_rate_below_one_a_second_still_walks() -> None:
    clock = [0.0]
    allowance = WalkAllowance(0.5, clock=lambda: clock[0])
    assert allowance.grant() == 1.0
    allowance.spent_down_to(0.0)
    clock[0] = 1.0
    assert allowance.grant() == 0.5  # not yet one
    allowance.spent_down_to(0.5)
    clock[0] = 5.0
    assert allowance.grant() == 1.0  # never more than a second's worth (and one), however long it waited
    assert WalkAllowance(math.inf).grant() == math.inf
    with pytest.raises(ValueError):
        WalkAllowance(0.0)
