"""What the ETA worker learned survives a restart, on the real PostgreSQL: the next day's buses are predicted
from it; a state learned on another feed version is not applied where its streets changed; a database
that is away at start does not stop the worker, which starts cold and loads the state once it answers."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import datetime as dt
import logging
import socket
import zipfile
from collections.abc import Sequence
from pathlib import Path

import psycopg
import pytest
from prometheus_client import REGISTRY

from eta.engine import Engine
from eta.network import Network, Trip, load_network
from eta.prediction import LearningPredictor
from eta.worker import EtaStage
from smartbus import messages
from smartbus.bus.base import Record
from smartbus.messages import PredictionSet, StopEvent, VehicleState
from smartbus.settings import BUNDLED_FEED
from smartbus.storage.learned_state import LearnedStates
from smartbus.storage.migrate import migrate
from smartbus.stream.learned_state import LearnedStateKeeper
from tests.pipeline.fleet import Fleet, drive_fleet
from tests.storage.conftest import database_url, server_url  # noqa: F401 (the storage tests' real PostgreSQL)

GROUP = "smartbus-eta"


@pytest.fixture(scope="module")
def network() -> Network:
    return load_network(BUNDLED_FEED, Path("var/cache"))


@pytest.fixture(scope="module")
def days(network: Network) -> tuple[Fleet, Fleet]:
    """Three buses on the same three trips, on two Tuesdays (fresh ones, see drive_fleet), in time order."""
    first, second = drive_fleet(network, "day1", vehicles=3, interval_s=20.0), drive_fleet(network, "day2", 3, 20.0)
    assert first.pings[0].start_date != second.pings[0].start_date
    return (first, second) if first.pings[0].timestamp < second.pings[0].timestamp else (second, first)


@pytest.fixture
async def migrated(database_url: str) -> str:  # noqa: F811 (the fixture imported above)
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await migrate(conn, force_plain=True)
    return database_url


class Capture:
    """A producer that keeps what the stage sends."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, topic: str, value: bytes, key: str | None = None) -> None:
        self.sent.append((topic, value))

    async def flush(self) -> None: ...

    def predictions(self) -> list[PredictionSet]:
        return [messages.decode_as(v, PredictionSet) for t, v in self.sent if t == messages.TOPIC_PREDICTIONS]

    def stop_events(self) -> list[StopEvent]:
        return [messages.decode_as(v, StopEvent) for t, v in self.sent if t == messages.TOPIC_STOP_EVENTS]


def _store(url: str, worker: str = "w1", dead: list[bool] | None = None) -> LearnedStates:
    """The store a worker uses; while `dead[0]` it connects to a port where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        nowhere = f"postgresql://smartbus@127.0.0.1:{sock.getsockname()[1]}/smartbus"

    async def connect() -> psycopg.AsyncConnection:
        away = dead is not None and dead[0]
        return await psycopg.AsyncConnection.connect(nowhere if away else url, autocommit=True, connect_timeout=3)

    return LearnedStates(connect, GROUP, worker)


async def _run(network: Network, predictor: LearningPredictor, fleet: Fleet, engine: Engine | None = None) -> Capture:
    capture = Capture()
    stage = EtaStage(engine or Engine(network), predictor, capture)
    records = [
        Record(messages.TOPIC_PINGS, 0, offset, p.vehicle_id.encode(), messages.encode(p))
        for offset, p in enumerate(fleet.pings)
    ]
    for start in range(0, len(records), 50):
        await stage.handle(records[start : start + 50])
    return capture


def _methods(sets: Sequence[PredictionSet]) -> list[str]:
    """The method of every stop predicted on the buses' own trips (not the next trips of their blocks)."""
    return [s.method for p in sets for s in p.stops if s.method != "block_next"]


async def test_a_restarted_worker_predicts_the_next_day_exactly_as_if_it_had_never_stopped(
    network: Network, days: tuple[Fleet, Fleet], migrated: str
) -> None:
    day1, day2 = days
    # the reference: one worker that runs through both days
    engine, never_stopped = Engine(network), LearningPredictor(network)
    await _run(network, never_stopped, day1, engine)
    reference = await _run(network, never_stopped, day2, engine)

    first = LearnedStateKeeper(network, _store(migrated), save_every_s=3600)
    await _run(network, await first.start(), day1)
    await first.close()  # a clean stop saves
    second = LearnedStateKeeper(network, _store(migrated), save_every_s=3600)  # a new process
    restarted = await _run(network, await second.start(), day2)
    await second.close()

    assert restarted.predictions() == reference.predictions()
    methods = _methods(restarted.predictions())
    cold = _methods((await _run(network, LearningPredictor(network), day2)).predictions())
    assert methods.count("history") > 0.5 * len(methods)  # from the runs of these very trips the day before
    assert cold.count("schedule_delay") > 5 * methods.count("schedule_delay")  # a worker that forgot shows these


def _with_stop_moved(network: Network, stop_id: str, onto: str, folder: Path) -> Network:
    """A new version of the bundled feed in which `stop_id` stands where `onto` does."""
    with zipfile.ZipFile(BUNDLED_FEED) as feed:
        feed.extractall(folder)
    path = folder / "stops.txt"
    with path.open(newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    target = next(r for r in rows if r["stop_id"] == onto)
    for row in rows:
        if row["stop_id"] == stop_id:
            row["stop_lat"], row["stop_lon"] = target["stop_lat"], target["stop_lon"]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    moved = load_network(folder, folder / "cache")
    assert moved.feed_hash != network.feed_hash
    return moved


def _lonely_long_segment(network: Network, fleet: Fleet) -> tuple[Trip, int]:
    """A trip of the fleet and a stop k (from the 4th on) whose segments k-1 > k and k > k+1 no other bus of
    the fleet runs, the one with the longest k > k+1."""
    trips = [network.trips[t] for t in sorted({p.trip_id or "" for p in fleet.pings})]

    def segments(trip: Trip) -> set[tuple[str, str]]:
        return set(zip(trip.stop_ids, trip.stop_ids[1:], strict=False))

    found = [
        (float(trip.stop_dist[k + 1] - trip.stop_dist[k]), n, k)
        for n, trip in enumerate(trips)
        for k in range(3, len(trip.stop_ids) - 1)
        if not {(trip.stop_ids[k - 1], trip.stop_ids[k]), (trip.stop_ids[k], trip.stop_ids[k + 1])}
        & set().union(*(segments(other) for other in trips if other is not trip))
    ]
    length, n, k = max(found)
    assert length > 200.0
    return trips[n], k


def _first_method(predictor: LearningPredictor, fleet: Fleet, trip_id: str, index: int) -> str:
    """How the predictor predicts the next stop of a bus a third of the way to stop `index` of `trip_id`."""
    trip = predictor.network.trips[trip_id]
    date = next(p.start_date for p in fleet.pings if p.trip_id == trip_id)
    assert date is not None
    origin = predictor.network.service_day_origin(dt.datetime.strptime(date, "%Y%m%d").date())  # noqa: DTZ007
    before, after = float(trip.stop_dist[index - 1]), float(trip.stop_dist[index])
    probe = VehicleState(
        vehicle_id=f"probe-{index}", timestamp=origin + float(trip.departure[index - 1]) + 10.0, latitude=0.0,
        longitude=0.0, status="in_transit", trip_id=trip_id, service_date=date,
        shape_dist=before + (after - before) / 3.0, next_stop_sequence=int(trip.stop_sequences[index]),
        next_stop_id=trip.stop_ids[index],
    )
    found = predictor.predict(probe)
    assert found is not None and found.stops[0].stop_id == trip.stop_ids[index]
    return found.stops[0].method


async def test_a_state_learned_on_another_feed_version_is_not_applied_where_the_streets_changed(
    network: Network, days: tuple[Fleet, Fleet], migrated: str, tmp_path: Path
) -> None:
    day1, day2 = days
    first = LearnedStateKeeper(network, _store(migrated), save_every_s=3600)
    await _run(network, await first.start(), day1)
    await first.close()

    trip, k = _lonely_long_segment(network, day2)
    moved, onto = trip.stop_ids[k], trip.stop_ids[k + 1]  # both segments at `moved` change length
    new_version = _with_stop_moved(network, moved, onto, tmp_path / "feed")
    keeper = LearnedStateKeeper(new_version, _store(migrated), save_every_s=3600)
    predictor = await keeper.start()
    assert f"{trip.stop_ids[k - 1]}>{moved}" not in predictor.model.segment  # learned there, not applied
    assert f"{trip.stop_ids[1]}>{trip.stop_ids[2]}" in predictor.model.segment  # the same street: still known
    assert not predictor.model.prior_bias  # how late the old timetable ran is not applied either

    same_version = LearningPredictor.from_bytes(network, (await _store(migrated).load(network.feed_hash))[0].state)
    assert _first_method(same_version, day2, trip.trip_id, k) == "history"  # on its own version the state applies
    assert _first_method(predictor, day2, trip.trip_id, k) == "schedule_delay"  # heading for the moved stop
    assert _first_method(predictor, day2, trip.trip_id, 2) == "history"  # on a street that did not change
    await keeper.close()
    rows = {r.feed_version: r for r in await _store(migrated, "reader").load(network.feed_hash)}
    assert set(rows) == {network.feed_hash}  # the old version's row is left as it was learned
    assert LearningPredictor.from_bytes(network, rows[network.feed_hash].state).model == same_version.model
    assert (await _store(migrated).load(new_version.feed_hash))[0].feed_version == new_version.feed_hash


def _count(name: str, result: str) -> float:
    return REGISTRY.get_sample_value(name, {"result": result}) or 0.0


async def _until(what: str, check: object, timeout_s: float = 20.0) -> None:
    assert callable(check)
    for _ in range(int(timeout_s / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_with_the_database_away_the_worker_starts_cold_keeps_predicting_and_loads_once_it_is_back(
    network: Network, days: tuple[Fleet, Fleet], migrated: str, caplog: pytest.LogCaptureFixture
) -> None:
    day1, day2 = days
    learned = LearningPredictor(network)
    await _run(network, learned, day1)
    await _store(migrated, "w0").save(network.feed_hash, learned.state_bytes())  # yesterday's worker

    dead = [True]
    failed_loads = _count("smartbus_learned_state_loads_total", "failed")
    keeper = LearnedStateKeeper(network, _store(migrated, "w1", dead), save_every_s=0.3, retry_s=0.2)
    with caplog.at_level(logging.WARNING, "smartbus.stream.learned_state"):
        predictor = await keeper.start(wait_s=5.0)
    assert not keeper.loaded and not predictor.model.segment  # cold
    assert "cold start" in caplog.text  # and it says so
    assert _count("smartbus_learned_state_loads_total", "failed") > failed_loads
    engine = Engine(network)
    capture = await _run(network, predictor, day2, engine)  # every ping is handled meanwhile
    assert sum(t == messages.TOPIC_VEHICLE_STATES for t, _ in capture.sent) == day2.positions
    assert predictor.model.segment  # it learned from today's buses

    saves = _count("smartbus_learned_state_saves_total", "ok")
    dead[0] = False  # the database is back
    await _until("the learned state loaded", lambda: keeper.loaded)
    assert set(predictor.model.segment) >= set(learned.model.segment)  # yesterday's, merged into today's
    await _until("a periodic save", lambda: _count("smartbus_learned_state_saves_total", "ok") > saves)
    rows = await _store(migrated, "reader").load(network.feed_hash)
    assert [r.worker_id for r in rows] == ["w1"]  # the merged row of the worker that has gone is replaced

    failed_saves = _count("smartbus_learned_state_saves_total", "failed")
    dead[0] = True  # away again: saves fail, are counted, and the worker goes on
    await _until("a failed save counted", lambda: _count("smartbus_learned_state_saves_total", "failed")
                 > failed_saves)
    await _run(network, predictor, day1, engine)
    await asyncio.wait_for(keeper.close(), 15.0)  # a last save that fails does not hang the stop


async def test_after_a_restart_a_worker_predicts_from_what_every_worker_of_its_group_learned(
    network: Network, days: tuple[Fleet, Fleet], migrated: str, caplog: pytest.LogCaptureFixture
) -> None:
    day1, day2 = days
    vehicles = sorted(day1.vehicles())
    for number, mine in enumerate((vehicles[:1], vehicles[1:])):  # two workers, each with its own buses
        share = dataclasses.replace(day1, pings=[p for p in day1.pings if p.vehicle_id in mine])
        keeper = LearnedStateKeeper(network, _store(migrated, f"w{number}"), save_every_s=3600)
        await _run(network, await keeper.start(), share)
        await keeper.close()
    await _store(migrated, "w-newer").save(network.feed_hash, b"a state from a newer smartbus")

    restarted = LearnedStateKeeper(network, _store(migrated, "w0"), save_every_s=3600)
    with caplog.at_level(logging.WARNING, "smartbus.stream.learned_state"):
        predictor = await restarted.start()
    assert "w-newer" in caplog.text  # skipped, and said so; the others still count
    for trip_id in sorted({p.trip_id or "" for p in day2.pings}):  # every bus of the next day, whoever had it
        assert _first_method(predictor, day2, trip_id, 2) == "history"
    await restarted.close()
    rows = await _store(migrated, "reader").load(network.feed_hash)
    assert sorted(r.worker_id for r in rows) == ["w-newer", "w0"]  # merged rows replaced, the unread one kept


async def test_a_new_feed_version_while_running_keeps_what_was_learned_and_saves_under_the_new_version(
    network: Network, days: tuple[Fleet, Fleet], migrated: str
) -> None:
    keeper = LearnedStateKeeper(network, _store(migrated), save_every_s=3600)
    await _run(network, await keeper.start(), days[0])
    learned = set(keeper.predictor.model.segment)
    upgraded = dataclasses.replace(network, feed_hash="f" * 64)  # the same timetable, as a new version
    assert set(keeper.switch(upgraded).model.segment) == learned
    await keeper.close()
    rows = await _store(migrated, "reader").load(upgraded.feed_hash)
    assert [r.feed_version for r in rows] == [upgraded.feed_hash]
