"""The ETA core compiled by mypyc: used only when built from the sources on disk, and it changes no output."""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from eta import native
from simulator.sinks import strip_trip_fields
from tests.eta.conftest import CAIRNS

FEEDS = Path(__file__).resolve().parents[1] / "data" / "feeds"
# scripts/test.sh builds before testing: there a missing build is a failure, not a reason to skip
REQUIRED = os.environ.get("SMARTBUS_REQUIRE_NATIVE") == "1"


def fake_build(root: Path, digest: str | None = None) -> Path:
    """A build directory as smartbus.native_build leaves it, with empty files standing for the libraries."""
    for name in (*native.COMPILED_MODULES, native.SHARED_LIBRARY):
        file = native.module_file(root, name)
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(b"")
    manifest = {"digest": digest or native.source_digest(), "suffix": native.extension_suffix()}
    (root / native.MANIFEST).write_text(json.dumps(manifest))
    return root


def test_a_build_is_usable_only_whole_for_this_interpreter_and_these_sources(tmp_path: Path) -> None:
    assert native.check_build(tmp_path / "nothing") == "not built"
    assert native.check_build(fake_build(tmp_path / "current")) is None

    stale = fake_build(tmp_path / "stale", digest="0" * 64)
    assert native.check_build(stale) == "stale: the sources changed since it was built"

    other = fake_build(tmp_path / "other")
    (other / native.MANIFEST).write_text(json.dumps({"digest": native.source_digest(), "suffix": ".cpython-39.so"}))
    assert "built for .cpython-39.so" in (native.check_build(other) or "")

    partial = fake_build(tmp_path / "partial")
    native.module_file(partial, "eta.tracker").unlink()
    assert "eta.tracker missing" in (native.check_build(partial) or "")

    (partial / native.MANIFEST).write_text("{")
    assert "unreadable manifest" in (native.check_build(partial) or "")


def test_any_change_to_the_sources_changes_their_digest(tmp_path: Path) -> None:
    for package in native.HASHED_PACKAGES:
        shutil.copytree(native.PACKAGES_ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("*.pyc"))
    before = native.source_digest(tmp_path)
    assert before == native.source_digest()
    messages = tmp_path / "smartbus" / "messages.py"  # not compiled, but compiled modules read its types
    messages.write_text(messages.read_text() + "\n")
    assert native.source_digest(tmp_path) != before


def _run(args: list[str], native_on: bool, build: Path) -> str:
    """Runs `smartbus ARGS` (nothing when empty) in a fresh interpreter; returns what eta/native.py said it runs."""
    env = {**os.environ, "SMARTBUS_NATIVE": "1" if native_on else "0", "SMARTBUS_NATIVE_DIR": str(build)}
    code = (
        "import sys, eta, eta.tracker; from smartbus.cli import main; "
        "status = main(sys.argv[1:]) if sys.argv[1:] else 0; "
        "print(eta.native.STATUS, '|', eta.tracker.__file__); sys.exit(status)"
    )
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_a_stale_build_is_never_loaded_in_place_of_the_sources(tmp_path: Path) -> None:
    stale = fake_build(tmp_path / "stale", digest="0" * 64)  # empty files: loading one would fail loudly
    said = _run([], native_on=True, build=stale)
    assert said.startswith("interpreted (compiled build stale")
    assert said.endswith("eta/tracker.py")


@pytest.mark.parametrize(
    ("feed", "vehicles", "seed", "strip_trips"),
    [(CAIRNS, 12, 109, False), (CAIRNS, 12, 113, True), (FEEDS / "loop", 4, 5, True)],
    ids=["cairns", "cairns-without-trip-ids", "loop"],
)
def test_compiled_and_interpreted_replays_write_the_same_bytes(
    tmp_path: Path, feed: Path, vehicles: int, seed: int, strip_trips: bool
) -> None:
    build = native.native_dir()
    problem = native.check_build(build)
    if problem is not None:
        message = f"no usable compiled build in {build} ({problem}); `python -m smartbus.native_build` makes one"
        if REQUIRED:
            pytest.fail(message)
        pytest.skip(message)
    cache = ["--cache-dir", str(tmp_path / "cache")]
    sim = tmp_path / "sim"
    simulate = ["simulate", "--gtfs", str(feed), "--vehicles", str(vehicles), "--seed", str(seed)]
    _run([*simulate, "--date", "2024-08-06", "--out", str(sim), "--no-progress"], native_on=False, build=build)
    pings = sim / "pings.csv"
    if strip_trips:  # the tracker then infers every trip: assignment's code paths too
        pings = sim / "stripped.csv"
        strip_trip_fields(sim / "pings.csv", pings)

    outputs = {}
    for native_on in (True, False):
        out = tmp_path / ("compiled" if native_on else "interpreted")
        replay = ["replay", "--gtfs", str(feed), "--pings", str(pings), "--out", str(out), "--states"]
        said = _run([*replay, "--state-out", str(out / "state.bin"), *cache], native_on=native_on, build=build)
        assert said.startswith("compiled by mypyc" if native_on else "interpreted (SMARTBUS_NATIVE=0)"), said
        outputs[native_on] = out

    files = sorted(p.name for p in outputs[True].iterdir())
    assert {"stop_events.jsonl", "predictions.jsonl", "vehicle_states.jsonl", "summary.json", "state.bin"} <= set(files)
    assert json.loads((outputs[True] / "summary.json").read_text())  # something was replayed
    assert (outputs[True] / "stop_events.jsonl").stat().st_size > 0
    match, mismatch, errors = filecmp.cmpfiles(outputs[True], outputs[False], files, shallow=False)
    assert (mismatch, errors) == ([], [])
