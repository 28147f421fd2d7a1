"""`smartbus replay` then `smartbus eval` as a user runs them: files written, no garbage, figures in range."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from eta.network import Network
from smartbus.cli import main
from tests.eta.conftest import CAIRNS
from tests.eta.pings import trip_pings

DAY = dt.date(2024, 5, 14)


def test_replay_then_eval_writes_the_report(cairns: Network, tmp_path: Path) -> None:
    ids = cairns.trips_on(cairns.service_day_for(DAY)[0])
    trip_id = max(ids[:200], key=lambda t: len(cairns.trips[t].stop_ids))
    pings, _ = trip_pings(cairns, trip_id, DAY, interval_s=20.0, noise_m=5.0, seed=3, lead_s=300.0)
    csv_path = tmp_path / "pings.csv"
    lines = ["vehicle_id,timestamp,latitude,longitude,trip_id"]
    lines += [f"{p.vehicle_id},{p.timestamp},{p.latitude:.7f},{p.longitude:.7f},{trip_id}" for p in pings]
    csv_path.write_text("\n".join(lines) + "\n")
    cache = ["--cache-dir", str(tmp_path / "cache")]
    replayed = tmp_path / "replay"
    assert main(["replay", "--gtfs", str(CAIRNS), "--pings", str(csv_path), "--out", str(replayed), *cache]) == 0
    scored = tmp_path / "eval"
    assert main([
        "eval", "--gtfs", str(CAIRNS), "--pings", str(csv_path), "--predictions",
        str(replayed / "predictions.jsonl"), "--observed", str(replayed / "stop_events.jsonl"), "--out", str(scored),
        *cache,
    ]) == 0
    body = json.loads((scored / "eval.json").read_text())
    assert (scored / "accuracy.png").read_bytes().startswith(b"\x89PNG")
    assert body["garbage"]["before_made_at"] == 0 and body["garbage"]["not_monotone"] == 0
    model = body["scores"]["model"]
    assert model["availability"] > 0.5
    assert 0.0 <= model["mbta"]["overall"] <= 1.0
    assert set(body["scores"]) == {"model", "schedule", "schedule_delay"}
