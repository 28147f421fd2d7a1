"""Replay a pings file through the Engine: deterministic, for accuracy checks and offline analysis."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from eta.engine import Engine, EngineOutput
from eta.network import Network
from smartbus.messages import Ping, StopEvent, VehicleState

_REQUIRED = ("vehicle_id", "timestamp", "latitude", "longitude")
_OPTIONAL = ("bearing", "speed", "trip_id", "route_id", "direction_id", "start_date", "start_time")


def read_pings(path: Path, bad: Counter[str]) -> Iterator[Ping]:
    """Pings from the shared CSV format; malformed rows are counted in `bad` and skipped."""
    # the raw file closed by its own `with`: a gzip stream over it does not close it
    with path.open("rb") as raw, io.TextIOWrapper(
        gzip.open(raw) if path.suffix == ".gz" else raw, encoding="utf-8", newline=""
    ) as text:
        # rows as lists, columns found once by name: a dict per row was most of the reading
        reader = csv.reader(text)
        header = next(reader, [])
        missing = [c for c in _REQUIRED if c not in header]
        if missing:
            raise ValueError(f"{path}: missing required columns {missing}")
        where = {name: k for k, name in enumerate(header)}  # a repeated column: its last, as a dict of the row has
        required = tuple(where[c] for c in _REQUIRED)
        # a column the file lacks is read from one past the header's last, always blank
        optional = tuple(where.get(c, len(header)) for c in _OPTIONAL)
        width = max(*required, *optional) + 1
        for row in reader:
            if not row:
                continue  # a blank line
            if len(row) < width:  # a short row (or a lacking column): blank values, so a lacking required one fails
                row.extend([""] * (width - len(row)))
            try:
                yield _ping(row, required, optional)
            except (ValueError, TypeError):
                bad["malformed_row"] += 1


def _ping(row: list[str], required: tuple[int, ...], optional: tuple[int, ...]) -> Ping:
    vehicle, timestamp, latitude, longitude = required
    b, s, t, r, d, sd, st = optional
    bearing, speed, trip_id, route_id = row[b] or None, row[s] or None, row[t] or None, row[r] or None
    direction, start_date, start_time = row[d] or None, row[sd] or None, row[st] or None
    vehicle_id = row[vehicle]
    if not vehicle_id:
        raise ValueError("no vehicle_id")
    return Ping(
        vehicle_id=vehicle_id,
        timestamp=float(row[timestamp]),
        latitude=float(row[latitude]),
        longitude=float(row[longitude]),
        bearing=float(bearing) if bearing is not None else None,
        speed=float(speed) if speed is not None else None,
        trip_id=trip_id,
        route_id=route_id,
        direction_id=int(direction) if direction is not None else None,
        start_date=start_date,
        start_time=start_time,
    )


def _event_record(event: StopEvent) -> dict[str, Any]:
    return {
        "vehicle_id": event.vehicle_id,
        "trip_id": event.trip_id,
        "service_date": event.service_date,
        "stop_id": event.stop_id,
        "stop_sequence": event.stop_sequence,
        "arrival_time": event.arrival_time,
        "departure_time": event.departure_time,
        "interpolated": event.interpolated,
    }


def _state_record(state: VehicleState) -> dict[str, Any]:
    return {
        "vehicle_id": state.vehicle_id,
        "timestamp": state.timestamp,
        "status": state.status,
        "trip_id": state.trip_id,
        "service_date": state.service_date,
        "shape_dist": state.shape_dist,
        "offset_m": state.offset_m,
        "delay_s": state.delay_s,
    }


def replay(
    network: Network,
    pings_path: Path,
    out: Path,
    write_states: bool = False,
    on_output: Callable[[EngineOutput], object] | None = None,
) -> dict[str, Any]:
    """Run `pings_path` through a fresh Engine; write DIR/stop_events.jsonl, DIR/summary.json and, when
    asked, DIR/vehicle_states.jsonl (one state per accepted ping, for accuracy scoring). `on_output` sees
    every engine output in order (the predictions hook)."""
    engine = Engine(network)
    out.mkdir(parents=True, exist_ok=True)
    states_file = (out / "vehicle_states.jsonl").open("w", encoding="utf-8") if write_states else None
    counts: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    final: dict[tuple[str, str, str, int], StopEvent] = {}  # the latest record of each stop visit
    for ping in read_pings(pings_path, counts):
        counts["pings"] += 1
        output = engine.process(ping)
        if on_output is not None:
            on_output(output)
        if output.rejected_reason:
            counts[f"rejected_{output.rejected_reason}"] += 1
        if output.state is not None:
            statuses[output.state.status] += 1
            if states_file is not None:
                states_file.write(json.dumps(_state_record(output.state), separators=(",", ":")) + "\n")
        elif output.past is not None:
            counts["placed_late"] += 1  # rejected for tracking, kept as a position of the past
            if states_file is not None:
                states_file.write(json.dumps(_state_record(output.past), separators=(",", ":")) + "\n")
        for event in output.events:
            final[(event.vehicle_id, event.service_date, event.trip_id, event.stop_sequence)] = event
    if states_file is not None:
        states_file.close()
    events = sorted(final.values(), key=lambda e: (e.vehicle_id, e.arrival_time, e.trip_id, e.stop_sequence))
    with (out / "stop_events.jsonl").open("w", encoding="utf-8") as f:
        for event in events:
            f.write(json.dumps(_event_record(event), separators=(",", ":")) + "\n")
    summary: dict[str, Any] = {
        "pings": counts.pop("pings", 0),
        "rejected": {k.removeprefix("rejected_"): v for k, v in sorted(counts.items()) if k.startswith("rejected_")},
        "malformed_rows": counts.get("malformed_row", 0),
        "placed_late": counts.get("placed_late", 0),
        "states_by_status": dict(sorted(statuses.items())),
        "stop_events": len(events),
        "stop_events_interpolated": sum(1 for e in events if e.interpolated),
        "vehicles": len(engine.trackers),
        "trips": len({(e.service_date, e.trip_id) for e in events}),
        "feed_version": network.feed_hash,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return summary
