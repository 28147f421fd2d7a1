"""The simulator as users run it: the command's files, the publisher, pacing, and the live stream."""

from __future__ import annotations

import csv
import datetime as dt
from collections import defaultdict
from pathlib import Path

import pytest

from eta.network import Network
from simulator.config import SimConfig
from simulator.generator import plan_day, simulate
from simulator.live import live_events, run_live
from simulator.records import Delivery
from simulator.sinks import Pacer, publish
from smartbus.cli import main
from smartbus.messages import Ping, decode_as
from tests.simulator.conftest import A_WEDNESDAY, FEEDS, edge_network

REQUIRED = ["vehicle_id", "timestamp", "latitude", "longitude"]


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_simulate_writes_pings_and_truth_files(tmp_path: Path) -> None:
    out = tmp_path / "day"
    code = main([
        "simulate", "--gtfs", str(FEEDS / "out_and_back"), "--date", "2025-09-03", "--seed", "4",
        "--ping-interval", "5", "--out", str(out), "--no-progress",
    ])
    assert code == 0
    pings, stops, positions = (read(out / n) for n in ("pings.csv", "truth_stops.csv", "truth_positions.csv"))
    assert pings and stops and positions
    assert list(pings[0])[:4] == REQUIRED
    assert {p["start_date"] for p in pings} <= {"20250903", ""}
    assert {s["service_date"] for s in stops} == {"20250903"}
    assert {s["served"] for s in stops} <= {"0", "1"}
    assert len(positions) == len({(p["vehicle_id"], p["timestamp"]) for p in pings})
    assert any(p["trip_id"] == "" for p in pings) or len({p["trip_id"] for p in pings}) >= 1
    float(pings[0]["timestamp"]), float(stops[0]["arrival_time"]), float(positions[0]["shape_dist"])


def test_the_same_seed_writes_the_same_files(tmp_path: Path) -> None:
    args = ["simulate", "--gtfs", str(FEEDS / "loop"), "--date", "2025-09-03", "--no-progress", "--out"]
    assert main([*args, str(tmp_path / "a")]) == 0
    assert main([*args, str(tmp_path / "b")]) == 0
    for name in ("pings.csv", "truth_stops.csv", "truth_positions.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


@pytest.mark.parametrize(
    "bad",
    [["--ping-interval", "0.5"], ["--vehicles", "0"], ["--dropout-rate", "1.5"], ["--date", "25/09/2025"]],
)
def test_bad_options_get_a_clear_error(tmp_path: Path, bad: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["simulate", "--gtfs", str(FEEDS / "loop"), "--out", str(tmp_path), "--no-progress", *bad])
    assert code == 2
    assert bad[0] in capsys.readouterr().err


def test_help_shows_every_fault_rate_with_its_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["simulate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for option in ("--dropout-rate", "--gap-rate", "--duplicate-rate", "--late-rate", "--out-of-order-rate",
                   "--zero-fix-rate", "--swapped-fix-rate", "--jump-fix-rate", "--missing-trip-rate",
                   "--wrong-trip-rate", "--skip-stop-rate", "--early-departure-rate", "--short-turn-rate"):
        after = text.split(option, 2)[-1]
        assert "(default: 0." in after.split("--", 1)[0], option


async def test_publish_sends_every_ping_encoded_and_keyed_by_vehicle() -> None:
    plan = plan_day(edge_network("loop"), A_WEDNESDAY, SimConfig())
    expected = [e.ping for e in simulate(plan) if isinstance(e, Delivery)]
    received: list[tuple[str, bytes]] = []

    async def send(key: str, value: bytes) -> None:
        received.append((key, value))

    assert await publish(simulate(plan), send) == len(expected)
    assert [decode_as(v, Ping) for _, v in received] == expected
    assert all(k == decode_as(v, Ping).vehicle_id for k, v in received)


def test_pacer_maps_simulated_time_onto_the_wall_clock() -> None:
    wall = [1000.0]
    pacer = Pacer(sim_start=50_000.0, speed=10.0, clock=lambda: wall[0])
    assert pacer.delay_until(50_100.0) == pytest.approx(10.0)
    wall[0] += 4.0
    assert pacer.delay_until(50_100.0) == pytest.approx(6.0)
    assert pacer.delay_until(49_000.0) == 0.0
    with pytest.raises(ValueError):
        Pacer(0.0, 500.0)


def test_a_live_start_finds_buses_already_on_the_road(cairns: Network) -> None:
    day = dt.date(2026, 11, 25)
    start_at = cairns.service_day_origin(day) + 10.5 * 3600  # 10:30 local
    config = SimConfig(seed=1)
    first_pings: dict[str, Delivery] = {}
    for event in live_events(cairns, config, start_at):
        if isinstance(event, Delivery):
            assert event.deliver_at >= start_at
            if event.deliver_at > start_at + 120:
                break
            if event.truth is not None:
                first_pings.setdefault(event.ping.vehicle_id, event)
    full_day = plan_day(cairns, day, config)
    in_service = {
        d.vehicle_id for d in full_day.duties
        if cairns.trips[d.trip_ids[0]].start_time < 10.5 * 3600 - 900 < cairns.trips[d.trip_ids[-1]].end_time
    }
    assert len(first_pings) >= 0.8 * len(in_service) > 5
    mid_trip = [d for d in first_pings.values() if d.truth is not None and d.truth.shape_dist > 100.0]
    assert len(mid_trip) > len(first_pings) / 2  # not all waiting at their first stop


def test_a_live_stream_crosses_midnight_into_the_next_service_day() -> None:
    net = edge_network("no_shapes")  # a trip from 23:50 to 24:20 every day
    start_at = net.service_day_origin(A_WEDNESDAY) + 23.9 * 3600
    dates: dict[str, int] = defaultdict(int)
    for event in live_events(net, SimConfig(), start_at):
        if not isinstance(event, Delivery):
            dates[event.service_date] += 1
        when = event.deliver_at if isinstance(event, Delivery) else event.departure_time
        if when > start_at + 14 * 3600:
            break
    assert dates["20250903"] > 0 and dates["20250904"] > 0


async def test_run_live_publishes_paced_pings_until_told_to_stop(cairns: Network) -> None:
    start_at = cairns.service_day_origin(dt.date(2026, 11, 25)) + 9 * 3600
    received: list[Ping] = []

    async def send(key: str, value: bytes) -> None:
        received.append(decode_as(value, Ping))

    sent = await run_live(cairns, send, vehicles=20, seed=2, speed=100.0, start_at=start_at, until=start_at + 60)
    assert sent == len(received) > 10
    assert len({p.vehicle_id for p in received}) > 10
    assert all(p.timestamp < start_at + 60 for p in received)


def test_leaving_out_the_truth_changes_no_ping() -> None:
    plan = plan_day(edge_network("loop"), A_WEDNESDAY, SimConfig())
    with_truth = [e for e in simulate(plan) if isinstance(e, Delivery)]
    without = list(simulate(plan, truth=False))
    assert all(isinstance(e, Delivery) and e.truth is None for e in without)
    assert [e.ping for e in without if isinstance(e, Delivery)] == [d.ping for d in with_truth]
