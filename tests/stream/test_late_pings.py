"""The ETA stage keeps a late fix as a stored position, and never predicts from it."""

from __future__ import annotations

import datetime as dt
import pickle
from pathlib import Path

from eta.engine import Engine
from eta.network import load_network
from eta.prediction import LearningPredictor
from eta.worker import EtaStage
from smartbus import messages
from smartbus.bus.base import Record
from smartbus.bus.memory import MemoryBus
from smartbus.messages import PredictionSet, VehicleState
from smartbus.settings import BUNDLED_FEED
from smartbus.stream.tracker_snapshots import MemoryTrackerSnapshots
from tests.eta.pings import trip_pings
from tests.eta.test_tracker_assignment import ROUTE_120_TRIP

DAY = dt.date(2014, 6, 3)


async def test_a_late_fix_is_stored_as_history_and_predicts_nothing() -> None:
    network = load_network(BUNDLED_FEED, Path("var/cache"))
    pings, _ = trip_pings(network, ROUTE_120_TRIP, DAY, interval_s=30.0, with_trip_id=True)
    delivered = [*pings[:20], pings[21], pings[22], pings[20]]  # the 21st fix arrives two fixes late
    bus = MemoryBus()
    stage = EtaStage(Engine(network), LearningPredictor(network), bus.producer())
    await stage.handle(
        [Record(messages.TOPIC_PINGS, 0, k, b"bus-1", messages.encode(p)) for k, p in enumerate(delivered)]
    )
    states = [
        messages.decode_as(r.value, VehicleState)
        for r in await bus.consumer([messages.TOPIC_VEHICLE_STATES], "t").getmany(0.01, 1000)
    ]
    sets = [
        messages.decode_as(r.value, PredictionSet)
        for r in await bus.consumer([messages.TOPIC_PREDICTIONS], "t").getmany(0.01, 1000)
    ]
    assert [s.timestamp for s in states][-1] == pings[20].timestamp  # stored, in delivery order
    assert sorted(s.timestamp for s in states) == [p.timestamp for p in pings[:23]]
    assert sets and all(s.made_at != pings[20].timestamp for s in sets)


async def test_a_tracker_restored_from_a_snapshot_of_the_older_layout_carries_on_and_places_late_fixes() -> None:
    network = load_network(BUNDLED_FEED, Path("var/cache"))
    pings, _ = trip_pings(network, ROUTE_120_TRIP, DAY, interval_s=30.0, with_trip_id=True)
    snapshots = MemoryTrackerSnapshots()
    bus = MemoryBus()
    first = EtaStage(Engine(network), LearningPredictor(network), bus.producer(), snapshots)
    await first.handle(
        [Record(messages.TOPIC_PINGS, 0, k, b"bus-1", messages.encode(p)) for k, p in enumerate(pings[:20])]
    )
    await first.checkpoint()
    # Earlier versions kept the recent fixes as a list of (ts, progress) tuples, and pickled them so.
    blob, covered = snapshots.blobs["bus-1"]
    state = pickle.loads(blob)
    state.recent = list(zip(state.recent[0::2], state.recent[1::2], strict=True))
    assert state.recent
    snapshots.blobs["bus-1"] = (pickle.dumps(state), covered)

    second = EtaStage(Engine(network), LearningPredictor(network), bus.producer(), snapshots)  # a new process
    delivered = [pings[20], pings[22], pings[23], pings[21]]  # the 22nd fix arrives two fixes late
    await second.handle(
        [Record(messages.TOPIC_PINGS, 0, 20 + k, b"bus-1", messages.encode(p)) for k, p in enumerate(delivered)]
    )
    states = [
        messages.decode_as(r.value, VehicleState)
        for r in await bus.consumer([messages.TOPIC_VEHICLE_STATES], "t").getmany(0.01, 1000)
    ]
    assert [s.timestamp for s in states][-1] == pings[21].timestamp  # placed on the trip, and stored
    assert states[-1].trip_id is not None
    assert sorted(s.timestamp for s in states) == [p.timestamp for p in pings[:24]]
