"""The README's main command, as a new user runs it: buses appear, move, and stops get arrivals."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def _demo(data_dir: Path, speed: int = 10) -> Iterator[tuple[str, Path]]:
    """`smartbus demo` on `data_dir`, answering: its URL and its log. Stopped with Ctrl-C (SIGINT) after."""
    port = _free_port()
    log_path = data_dir / f"demo-{port}.log"
    log = log_path.open("w")  # a file, not a pipe: a pipe nobody reads would fill and stall the demo
    process = subprocess.Popen(
        [sys.executable, "-m", "smartbus.cli", "demo", "--port", str(port), "--speed", str(speed),
         "--vehicles", "30", "--data-dir", str(data_dir)],
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "SMARTBUS_CACHE_DIR": str(data_dir / "cache")},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, f"demo exited: {log_path.read_text()}"
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "demo did not answer within 120 s"
            time.sleep(0.5)
        yield url, log_path
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture(scope="module")
def demo_url() -> Iterator[str]:
    data_dir = Path(tempfile.mkdtemp(prefix="smartbus-demo-test-"))
    try:
        with _demo(data_dir) as (url, _):
            yield url
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def _vehicles(url: str) -> dict[str, dict[str, Any]]:
    body = httpx.get(f"{url}/api/vehicles", timeout=5).json()
    return {v["vehicle_id"]: v for v in body["vehicles"]}


def _wait_for_vehicles(url: str, timeout_s: float = 60) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while not (found := _vehicles(url)):
        assert time.monotonic() < deadline, "no bus appeared within a minute"
        time.sleep(1)
    return found


def test_the_demo_shows_buses_that_move(demo_url: str) -> None:
    page = httpx.get(demo_url + "/", timeout=5)
    assert page.status_code == 200 and "leaflet" in page.text.lower()
    before = _wait_for_vehicles(demo_url)
    time.sleep(8)  # at x10, 80 simulated seconds: several pings per bus
    after = _vehicles(demo_url)
    moved = [
        v for v, state in after.items()
        if v in before and (state["latitude"], state["longitude"]) != (before[v]["latitude"], before[v]["longitude"])
    ]
    assert len(moved) >= 1, "no bus moved"
    assert any(state.get("trip_id") for state in after.values()), "no bus matched to a trip"


def test_the_demo_serves_arrivals_at_the_stops_ahead_of_buses(demo_url: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        stops = {v["next_stop_id"] for v in _wait_for_vehicles(demo_url).values() if v.get("next_stop_id")}
        boards = {s: httpx.get(f"{demo_url}/api/stops/{s}/arrivals", timeout=5).json() for s in stops}
        # (a board may show trips no bus reports on yet by the timetable alone: a live row is a bus's own)
        served = {s: b for s, b in boards.items() if any(a["live"] for a in b.get("arrivals", ()))}
        if served:
            break
        assert time.monotonic() < deadline, "no stop ahead of a bus got a bus's arrival within a minute"
        time.sleep(1)
    stop_id, board = next(iter(served.items()))
    arrivals = board["arrivals"]
    assert all(a["stop_id"] == stop_id and a["trip_id"] and a["scheduled_arrival"] for a in arrivals)
    predicted = [a["predicted_arrival"] for a in arrivals]
    assert predicted == sorted(predicted), "the board is not soonest first"
    live_vehicles = _vehicles(demo_url)
    assert any(a["live"] and a["vehicle_id"] in live_vehicles for a in arrivals)
    assert all(a["method"] == "schedule" for a in arrivals if not a["live"])


def test_the_demo_starts_again_from_what_its_predictor_learned() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="smartbus-demo-test-"))
    try:
        with _demo(data_dir, speed=100) as (_, first_log):
            time.sleep(12)  # at x100, 20 simulated minutes: buses run between stops, the predictor learns
        first = first_log.read_text()
        assert "learned state saved for the next start" in first, first[-3000:]
        with _demo(data_dir, speed=100) as (_, second_log):
            deadline = time.monotonic() + 30
            while "learned state: 1 worker(s)' state loaded" not in second_log.read_text():
                assert time.monotonic() < deadline, second_log.read_text()[-3000:]
                time.sleep(0.5)
        loaded = next(line for line in second_log.read_text().splitlines() if "state loaded" in line)
        assert int(loaded.split(": ")[-1].split()[0]) > 0  # segments it knows from the run before
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
