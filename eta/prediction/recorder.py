"""Predictions during a replay: feed each tracker output to the learning predictor and write what a rider
would be shown to DIR/predictions.jsonl.

The clock is the latest ping timestamp seen, so `made_at` never goes back and no arrival is before it.
A vehicle's predictions are written when they are new or moved, or when the last ones written are getting
old (`LearningPredictor.publish`): what a live board publishes, and several times smaller than one line per
stop per ping. Same inputs give byte-identical files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Protocol

from eta.network import Network
from eta.prediction.predictor import LearningPredictor, ceil_tenth
from eta.prediction.schedule_board import ScheduleBoard
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
        self._file: IO[str] = (out_dir / "predictions.jsonl").open("w", encoding="utf-8")
        self.clock = float("-inf")
        self.written = 0
        self._quoted: dict[str | None, str] = {}

    def _q(self, text: str | None) -> str:
        quoted = self._quoted.get(text)
        if quoted is None:
            quoted = json.dumps(text, ensure_ascii=False)
            self._quoted[text] = quoted
        return quoted

    def on_output(self, output: TrackerOutput) -> PredictionSet | None:
        if output.events:
            self.predictor.observe(output.events)
        state = output.state
        if state is None:
            return None
        if state.timestamp > self.clock:
            self.clock = state.timestamp
            for board in self.board.tick(self.clock):
                self._write(board)
            if self.board.due_silent(self.clock):
                for again in self.predictor.republish_silent(self.clock):
                    self._write(again)
        prediction = self.predictor.publish(state)
        if prediction is not None and prediction.stops:
            self.board.covered(prediction, self.clock)
            self._write(prediction)
        return prediction

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

    def close(self) -> None:
        self._file.close()
        if self._state_out is not None:
            self.predictor.save(self._state_out)
