"""Predictions during a replay: feed each tracker output to the learning predictor and write what a rider
would be shown to DIR/predictions.jsonl.

The clock is the latest ping timestamp seen, so `made_at` never goes back and no arrival is before it.
A vehicle's predictions are written when they are new or moved, or when the last ones written are getting
old (`LearningPredictor.publish`): what a live board publishes, and several times smaller than one line per
stop per ping. Same inputs give byte-identical files.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import IO, Protocol

from eta.network import Network
from eta.prediction.predictor import LearningPredictor, Shown, ceil_tenth
from eta.prediction.schedule_board import ScheduleBoard
from eta.prediction.trip_plan import TripPlan
from smartbus.messages import PredictionSet, StopEvent, VehicleState


class TrackerOutput(Protocol):
    state: VehicleState | None
    events: list[StopEvent]


class PredictionRecorder:
    def __init__(self, network: Network, out_dir: Path, state_in: Path | None = None,
                 state_out: Path | None = None) -> None:
        self.predictor = (
            LearningPredictor.load(network, state_in) if state_in is not None else LearningPredictor(network)
        )
        self.board = ScheduleBoard(self.predictor)
        self._state_out = state_out
        out_dir.mkdir(parents=True, exist_ok=True)
        # a megabyte of buffer: a replay writes hundreds of megabytes, a few kilobytes at a time
        self._file: IO[str] = (out_dir / "predictions.jsonl").open("w", encoding="utf-8", buffering=1 << 20)
        self.clock = float("-inf")
        self.written = 0
        self._quoted: dict[str | None, str] = {}
        self._tail_cache: dict[tuple[str, str, str], list[str]] = {}

    def _q(self, text: str | None) -> str:
        quoted = self._quoted.get(text)
        if quoted is None:
            quoted = json.dumps(text, ensure_ascii=False)
            self._quoted[text] = quoted
        return quoted

    def on_output(self, output: TrackerOutput) -> None:
        if output.events:
            self.predictor.observe(output.events)
        state = output.state
        if state is None:
            return
        advanced = state.timestamp > self.clock
        if advanced:
            self.clock = state.timestamp
        shown = self.predictor.publish_shown(state, self.clock)
        if shown is not None and shown.entries:
            self.board.covered_trips(_trips_of(shown), self.clock)
        # what this bus stands for is known before the timetable is consulted at this clock, also when nothing
        # riders see changed at this fix, or when all its trip's stops lie beyond the horizon (a long layover)
        stood = self.predictor.stands_for(state)
        if stood is not None:
            self.board.covered_trips((stood,), self.clock)
        if advanced:
            if self.board.due_silent(self.clock):
                self.board.covered_trips(self.predictor.silent_trips(self.clock), self.clock)
                for again in self.predictor.republish_silent_shown(self.clock):
                    # a silent bus still stands for its trips: the timetable must not take them over meanwhile
                    self.board.covered_trips(_trips_of(again), self.clock)
                    self._write_shown(again)
            for board in self.board.tick(self.clock):
                self._write(board)
        if shown is not None and shown.entries:
            self._write_shown(shown)

    def _write(self, prediction: PredictionSet) -> None:
        made = self.clock
        q = self._q
        vehicle = q(prediction.vehicle_id or None)
        lines: list[str] = []
        floor = made
        for stop in prediction.stops:
            arrival = ceil_tenth(max(stop.predicted_arrival, floor))
            floor = arrival
            lines.append(
                f'{{"made_at":{made:.3f},"predicted_arrival":{arrival:.1f},"vehicle_id":{vehicle},'
                f'"trip_id":{q(stop.trip_id)},"service_date":{q(stop.service_date)},"stop_id":{q(stop.stop_id)},'
                f'"stop_sequence":{stop.stop_sequence},"method":"{stop.method}"}}\n'
            )
        self.written += len(lines)
        self._file.write("".join(lines))

    def _tails(self, plan: TripPlan, service_date: str, method: str) -> list[str]:
        """The end of each stop's line from "trip_id" on: the same for every set that walks this trip."""
        key = (plan.trip_id, service_date, method)
        tails = self._tail_cache.get(key)
        if tails is None:
            q = self._q
            head = f'"trip_id":{q(plan.trip_id)},"service_date":{q(service_date)},'
            tails = [
                f'{head}"stop_id":{q(stop_id)},"stop_sequence":{seq},"method":"{method}"}}\n'
                for stop_id, seq in zip(plan.stop_ids, plan.stop_sequences, strict=True)
            ]
            self._tail_cache[key] = tails
        return tails

    def _write_shown(self, shown: Shown) -> None:
        """The same lines as `_write` would of `shown.to_set()`, without building a message per stop."""
        made = self.clock
        head = f'{{"made_at":{made:.3f},"predicted_arrival":'
        middle = f',"vehicle_id":{self._q(shown.vehicle_id or None)},'
        lines: list[str] = []
        floor = made
        ceil = math.ceil
        plan: TripPlan | None = None
        service_date = method = ""
        tails: list[str] = []
        for e, predicted in zip(shown.entries, shown.arrivals, strict=True):
            if e.plan is not plan or e.service_date != service_date or e.method != method:
                plan, service_date, method = e.plan, e.service_date, e.method
                tails = self._tails(plan, service_date, method)
            value = predicted if predicted > floor else floor
            tenths = ceil(value * 10.0)
            arrival = tenths / 10.0  # ceil_tenth, inline
            if arrival < value:
                arrival += 0.1
                tenths += 1
            floor = arrival
            # the digits of f"{arrival:.1f}" from the whole tenths, a third quicker than formatting the float
            lines.append(f"{head}{tenths // 10}.{tenths % 10}{middle}{tails[e.index]}")
        self.written += len(lines)
        self._file.write("".join(lines))

    def close(self) -> None:
        self._file.close()
        if self._state_out is not None:
            self.predictor.save(self._state_out)


def _trips_of(shown: Shown) -> list[tuple[str, str]]:
    """(service_date, trip_id) of each trip in `shown`, in order (consecutive stops share a trip)."""
    trips: list[tuple[str, str]] = []
    plan: TripPlan | None = None
    for e in shown.entries:
        if e.plan is not plan:
            plan = e.plan
            trips.append((e.service_date, plan.trip_id))
    return trips
