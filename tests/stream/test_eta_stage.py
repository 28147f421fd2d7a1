"""The ETA stage on the in-process bus: retried batches, feed versions switched while running, snapshots."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

from eta.engine import Engine
from eta.network import Network, load_network
from eta.schedule_predictor import SchedulePredictor
from eta.worker import EtaStage
from smartbus import messages
from smartbus.bus.base import Record
from smartbus.bus.memory import MemoryBus, MemoryProducer
from smartbus.errors import ServiceUnavailable
from smartbus.messages import StopEvent, VehicleState
from smartbus.settings import BUNDLED_FEED
from smartbus.stream.feed_watch import watch_feed
from smartbus.stream.tracker_snapshots import EncodedSnapshot, MemoryTrackerSnapshots
from tests.pipeline.fleet import Fleet, drive_fleet

FEEDS = Path(__file__).resolve().parents[1] / "data" / "feeds"


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Network:
    return load_network(BUNDLED_FEED, Path("var/cache"))


@pytest.fixture(scope="module")
def fleet(network: Network) -> Fleet:
    return drive_fleet(network, "stage", vehicles=3, interval_s=20.0)


def _records(fleet: Fleet) -> list[Record]:
    return [
        Record(messages.TOPIC_PINGS, 0, offset, p.vehicle_id.encode(), messages.encode(p))
        for offset, p in enumerate(fleet.pings)
    ]


async def _states(bus: MemoryBus) -> list[VehicleState]:
    records = await bus.consumer([messages.TOPIC_VEHICLE_STATES], "t").getmany(0.01, 100_000)
    return [messages.decode_as(r.value, VehicleState) for r in records]


class FlakyProducer:
    """Takes messages like the in-process producer, but the first flush fails as a broker outage would."""

    def __init__(self, inner: MemoryProducer) -> None:
        self.inner = inner
        self.pending: list[tuple[str, bytes, str | None]] = []
        self.failures_left = 1

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, topic: str, value: bytes, key: str | None = None) -> None:
        self.pending.append((topic, value, key))

    async def flush(self) -> None:
        batch, self.pending = self.pending, []
        if self.failures_left:
            self.failures_left -= 1
            raise ServiceUnavailable("broker down")
        for topic, value, key in batch:
            await self.inner.send(topic, value, key)


def _stage(network: Network, producer: object, snapshots: MemoryTrackerSnapshots | None = None) -> EtaStage:
    return EtaStage(Engine(network), SchedulePredictor(network), producer, snapshots)  # type: ignore[arg-type]


async def _run(stage: EtaStage, records: Sequence[Record], size: int = 50, *, checkpoint: bool = True) -> None:
    """Handle `records` in batches as the loop does, with a checkpoint at the end (as before a commit)."""
    for start in range(0, len(records), size):
        await stage.handle(records[start : start + size])
    if checkpoint:
        await stage.checkpoint()


async def test_a_batch_whose_outputs_were_not_delivered_is_sent_again_in_full(network: Network, fleet: Fleet) -> None:
    bus = MemoryBus()
    stage = _stage(network, FlakyProducer(bus.producer()))
    records = _records(fleet)
    with pytest.raises(ServiceUnavailable):
        await stage.handle(records[:50])  # the loop would now retry the same batch
    await _run(stage, records)
    states = await _states(bus)
    # The trackers had already taken the first batch: recomputing it would have produced nothing for it.
    assert len(states) == fleet.positions
    assert len({(s.vehicle_id, s.timestamp) for s in states}) == fleet.positions


async def test_a_worker_restarted_from_snapshots_carries_on_exactly(network: Network, fleet: Fleet) -> None:
    records = _records(fleet)
    half = len(records) // 2
    snapshots = MemoryTrackerSnapshots()
    bus = MemoryBus()
    await _run(_stage(network, bus.producer(), snapshots), records[:half])
    await _run(_stage(network, bus.producer(), snapshots), records[half:])  # a new process: nothing in memory
    events = await bus.consumer([messages.TOPIC_STOP_EVENTS], "t").getmany(0.01, 100_000)
    got = {(e.vehicle_id, e.trip_id, e.stop_sequence) for e in
           (messages.decode_as(r.value, messages.StopEvent) for r in events)}
    assert got == fleet.stop_events
    assert len(await _states(bus)) == fleet.positions


async def test_a_worker_killed_between_checkpoints_restarts_from_the_last_one_and_loses_nothing(
    network: Network, fleet: Fleet
) -> None:
    records = _records(fleet)
    committed, killed_at = len(records) // 3, 2 * len(records) // 3
    whole_run = await _uninterrupted(network, records)

    snapshots = MemoryTrackerSnapshots()
    bus = MemoryBus()
    first = _stage(network, bus.producer(), snapshots)
    await _run(first, records[:committed])  # a checkpoint, after which the loop commits offset `committed`
    await _run(first, records[committed:killed_at], checkpoint=False)  # outputs sent; killed before the next
    # A new process reads again from the committed offset, from the snapshots of that checkpoint.
    await _run(_stage(network, bus.producer(), snapshots), records[committed:])

    # What the writers keep (the last word on each stop event, one row per position) is that of a run never
    # interrupted: the pings handled twice gave the same outputs again.
    assert await _last_stop_events(bus) == await _last_stop_events(whole_run)
    assert set(await _states(bus)) == set(await _states(whole_run))
    assert len({(s.vehicle_id, s.timestamp) for s in await _states(bus)}) == fleet.positions


@pytest.fixture(scope="module")
def ten_buses(network: Network) -> Fleet:
    return drive_fleet(network, "rolling", vehicles=10, interval_s=20.0)


async def _heard_unsaved(
    network: Network, fleet: Fleet, snapshots: MemoryTrackerSnapshots
) -> tuple[EtaStage, list[Record]]:
    """A stage that has handled the fleet's first 200 pings and saved nothing yet; and all the fleet's records."""
    records = _records(fleet)
    stage = _stage(network, MemoryBus().producer(), snapshots)
    await _run(stage, records[:200], checkpoint=False)
    return stage, records


async def _uninterrupted(network: Network, records: Sequence[Record]) -> MemoryBus:
    """The outputs of one stage handling all of `records`, never stopped."""
    bus = MemoryBus()
    await _run(_stage(network, bus.producer(), MemoryTrackerSnapshots()), records)
    return bus


def _first_pings(records: Sequence[Record]) -> dict[str, int]:
    """Each vehicle's first offset among `records`."""
    first_ping: dict[str, int] = {}
    for record in records:
        first_ping.setdefault(record.key.decode(), record.offset)  # type: ignore[union-attr]
    return first_ping


async def test_a_checkpoint_saves_the_longest_unsaved_fifth_and_commits_only_what_finished_saves_cover(
    network: Network, ten_buses: Fleet
) -> None:
    snapshots = MemoryTrackerSnapshots()
    stage, records = await _heard_unsaved(network, ten_buses, snapshots)
    first_ping = _first_pings(records[:200])
    oldest_first = sorted(first_ping, key=first_ping.__getitem__)

    # The first saves a fifth of the 10, the two first heard, while the stage goes on: it covers no ping yet.
    offsets = await stage.checkpoint(final=False)
    assert offsets == {(messages.TOPIC_PINGS, 0): first_ping[oldest_first[0]]}
    # The next waits for it, saves the next two and covers what the first saved: up to the third's first ping.
    offsets = await stage.checkpoint(final=False)
    assert set(snapshots.blobs) >= set(oldest_first[:2])
    assert offsets == {(messages.TOPIC_PINGS, 0): first_ping[oldest_first[2]]}
    offsets = await stage.checkpoint(final=False)
    assert set(snapshots.blobs) >= set(oldest_first[:4])
    assert offsets == {(messages.TOPIC_PINGS, 0): first_ping[oldest_first[4]]}
    assert await stage.checkpoint(final=True) is None  # stopping: every vehicle saved, everything covered
    assert set(snapshots.blobs) == set(oldest_first)


class FlakySnapshots(MemoryTrackerSnapshots):
    """Keeps snapshots in memory, but a save fails while `down` (Redis away), after the worker has gone on."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    async def save_encoded(self, snapshots: Sequence[EncodedSnapshot]) -> None:
        await asyncio.sleep(0)  # under way while the stage handles its next batch
        if self.down:
            raise ServiceUnavailable("Redis down")
        await super().save_encoded(snapshots)


async def test_a_checkpoint_whose_save_failed_keeps_its_vehicles_unsaved_and_commits_nothing_they_need(
    network: Network, ten_buses: Fleet
) -> None:
    snapshots = FlakySnapshots()
    stage, records = await _heard_unsaved(network, ten_buses, snapshots)
    first_ping = _first_pings(records[:200])
    oldest = min(first_ping.values())

    snapshots.down = True
    assert await stage.checkpoint(final=False) == {(messages.TOPIC_PINGS, 0): oldest}
    await _run(stage, records[200:250], checkpoint=False)  # the save fails meanwhile
    with pytest.raises(ServiceUnavailable):  # the loop backs off and tries again; it commits nothing
        await stage.checkpoint(final=False)
    assert snapshots.blobs == {}

    snapshots.down = False
    # Tried again: the vehicles whose save failed are the oldest unsaved again, from their first ping unsaved.
    assert await stage.checkpoint(final=False) == {(messages.TOPIC_PINGS, 0): oldest}
    offsets = await stage.checkpoint(final=False)
    assert offsets is not None and offsets[(messages.TOPIC_PINGS, 0)] > oldest
    assert await stage.checkpoint(final=True) is None
    assert set(snapshots.blobs) == {r.key.decode() for r in records[:250]}  # type: ignore[union-attr]


async def test_a_snapshot_is_the_state_at_its_checkpoint_whatever_the_tracker_does_while_it_is_saved(
    network: Network, ten_buses: Fleet
) -> None:
    snapshots = MemoryTrackerSnapshots()
    stage, records = await _heard_unsaved(network, ten_buses, snapshots)
    taken = {vid: tracker.s.last_ts for vid, tracker in stage.engine.trackers.items()}
    await stage.checkpoint(final=False)  # saves two, on the way while the next batch is handled
    await stage.handle(records[200:300])
    await stage.checkpoint(final=False)
    saved = await snapshots.load(taken)
    assert len(saved) >= 2
    assert all(snapshot.state.last_ts == taken[vid] for vid, snapshot in saved.items())


async def test_a_worker_killed_between_partial_checkpoints_restarts_from_what_they_covered_and_loses_nothing(
    network: Network, ten_buses: Fleet
) -> None:
    records = _records(ten_buses)
    whole_run = await _uninterrupted(network, records)

    snapshots = MemoryTrackerSnapshots()
    bus = MemoryBus()
    first = _stage(network, bus.producer(), snapshots)
    killed_at = 2 * len(records) // 3
    committed = 0
    for start in range(0, killed_at, 50):  # a partial checkpoint and a commit after every batch
        await first.handle(records[start : min(start + 50, killed_at)])
        offsets = await first.checkpoint(final=False)
        assert offsets is not None
        committed = offsets[(messages.TOPIC_PINGS, 0)]
    assert 0 < committed < killed_at  # some vehicles still unsaved when killed
    # A new process reads again from the committed offset, each vehicle from its own last snapshot.
    sent_before = len(await _states(bus))
    covered = {vid: at.offset for vid, (_, at) in (await snapshots.load(ten_buses.vehicles())).items() if at}
    await _run(_stage(network, bus.producer(), snapshots), records[committed:])

    # What the writers keep (the last word on each stop event, the first row for each position) is that of a
    # run never interrupted.
    assert await _last_stop_events(bus) == await _last_stop_events(whole_run)
    assert await _first_states(bus) == await _first_states(whole_run)
    assert len(await _first_states(bus)) == ten_buses.positions
    # A vehicle saved after the committed offset skips the pings its snapshot took: the new process sends states
    # only for the pings no snapshot covered, and each is the state of the uninterrupted run (not one placed late).
    pings = ten_buses.pings  # records[k] is pings[k]
    new_pings = {(pings[k].vehicle_id, pings[k].timestamp)
                 for k in range(committed, len(records)) if k > covered.get(pings[k].vehicle_id, -1)}
    assert len(new_pings) < len(records) - committed  # some were covered
    resent = (await _states(bus))[sent_before:]
    expected = [s for s in await _states(whole_run) if (s.vehicle_id, s.timestamp) in new_pings]
    assert len(resent) == len(expected)
    assert set(resent) == set(expected)


async def _first_states(bus: MemoryBus) -> dict[tuple[str, float], VehicleState]:
    """Each position as stored: the first state sent for it (a replayed one changes nothing)."""
    first: dict[tuple[str, float], VehicleState] = {}
    for state in await _states(bus):
        first.setdefault((state.vehicle_id, state.timestamp), state)
    return first


async def _last_stop_events(bus: MemoryBus) -> dict[tuple[str, str | None, int | None], StopEvent]:
    """Each stop event by its key, as last sent (an arrival is sent again once its departure is known)."""
    records = await bus.consumer([messages.TOPIC_STOP_EVENTS], "t").getmany(0.01, 100_000)
    events = (messages.decode_as(r.value, StopEvent) for r in records)
    return {(e.vehicle_id, e.trip_id, e.stop_sequence): e for e in events}


async def test_a_new_feed_version_takes_over_between_batches_and_no_ping_is_lost(
    network: Network, fleet: Fleet
) -> None:
    bus = MemoryBus()
    stage = _stage(network, bus.producer())
    records = _records(fleet)
    half = len(records) // 2
    await _run(stage, records[:half])
    upgraded = dataclasses.replace(network, feed_hash="f" * 64)  # the same timetable, as a new version
    stage.use_network(Engine(upgraded), SchedulePredictor(upgraded), None)
    await _run(stage, records[half:])

    states = await _states(bus)
    assert len(states) >= fleet.positions_after[half] + (len(records) - half) * 0.9  # a re-acquired trip or two
    versions = [s.feed_version for s in states]
    switch = versions.index("f" * 64)
    assert set(versions[:switch]) == {network.feed_hash} and set(versions[switch:]) == {"f" * 64}
    assert {s.vehicle_id for s in states[switch:] if s.trip_id} == {p.vehicle_id for p in fleet.pings}


async def test_the_watcher_hands_over_a_changed_feed_and_ignores_a_broken_one(tmp_path: Path) -> None:
    import asyncio

    feed = tmp_path / "feed"
    shutil.copytree(FEEDS / "loop", feed)
    first = load_network(feed)
    handed: list[Network] = []
    stop = asyncio.Event()
    watching = asyncio.create_task(watch_feed(feed, first.feed_hash, load_network, handed.append, stop,
                                              interval_s=0.05))
    stops = feed / "stops.txt"
    stops.write_text(stops.read_text().replace("\n", "\r\n"))  # same stops, new bytes: a new version

    async def wait_for(count: int) -> None:
        for _ in range(400):
            if len(handed) >= count:
                return
            await asyncio.sleep(0.05)

    await wait_for(1)
    assert [n.feed_hash for n in handed] != [] and handed[0].feed_hash != first.feed_hash

    (feed / "stop_times.txt").write_text("not,a,timetable\n")
    await asyncio.sleep(1.0)
    stop.set()
    await watching
    assert len(handed) == 1  # the broken version was not handed over


async def test_a_slow_sink_holds_the_worker_back_instead_of_growing_memory(network: Network, fleet: Fleet) -> None:
    import asyncio

    from smartbus.stream.loop import run_stage

    bus = MemoryBus(max_backlog=40)
    eta_consumer = bus.consumer([messages.TOPIC_PINGS], "eta")
    outputs = [messages.TOPIC_VEHICLE_STATES, messages.TOPIC_STOP_EVENTS, messages.TOPIC_PREDICTIONS]
    sink_consumer = bus.consumer(outputs, "storage")

    async def feed() -> None:
        pings = bus.producer()
        for p in fleet.pings:
            await pings.send(messages.TOPIC_PINGS, messages.encode(p), p.vehicle_id)

    sink_open = asyncio.Event()
    stored: list[Record] = []

    async def slow_sink(records: Sequence[Record]) -> None:
        await sink_open.wait()  # the database is stuck until the test opens it
        stored.extend(r for r in records if r.topic == messages.TOPIC_VEHICLE_STATES)

    stop = asyncio.Event()
    stage = _stage(network, bus.producer())
    running = [
        asyncio.create_task(feed()),
        asyncio.create_task(run_stage("eta", eta_consumer, stage.handle, stop)),
        asyncio.create_task(run_stage("storage", sink_consumer, slow_sink, stop, poll_timeout_s=0.05)),
    ]
    await asyncio.sleep(1.0)
    states = bus.topic(messages.TOPIC_VEHICLE_STATES)
    assert states.backlog() <= 40  # the worker waits on the bus rather than piling states up
    assert states.next_offset < fleet.positions

    sink_open.set()
    for _ in range(400):
        if len(stored) >= fleet.positions:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.gather(*running)
    assert len(stored) == fleet.positions
