"""The ETA stage: pings from the bus through the pure engine and predictor, results back onto the bus.

Keyed by vehicle_id end to end, so a vehicle's pings reach one worker in order and its outputs keep that
order. Bad pings are rejected with a reason onto `pings.rejected` and counted; they never stop the worker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from eta.engine import Engine
from ingest.validate import PingRejected, ping_from_message
from smartbus import messages, metrics
from smartbus.bus.base import Producer, Record
from smartbus.messages import PredictionSet, RejectedPing, VehicleState

log = logging.getLogger(__name__)

Predictor = Callable[[VehicleState], PredictionSet | None]


class EtaStage:
    def __init__(self, engine: Engine, predict: Predictor, producer: Producer) -> None:
        self.engine = engine
        self._predict = predict
        self.producer = producer

    async def _reject(self, record: Record, reason: str, detail: str) -> None:
        metrics.PINGS_REJECTED.labels(reason).inc()
        rejected = RejectedPing(
            payload=record.value.decode("utf-8", errors="replace")[:4096],
            reason=reason,
            detail=detail,
            received_at=time.time(),
        )
        await self.producer.send(messages.TOPIC_PINGS_REJECTED, messages.encode(rejected), None)

    async def handle(self, records: Sequence[Record]) -> None:
        send = self.producer.send
        for record in records:
            metrics.PINGS_IN.inc()
            try:
                ping = ping_from_message(record.value)
            except PingRejected as exc:
                await self._reject(record, exc.code, str(exc))
                continue
            try:
                output = self.engine.process(ping)
                prediction = self._predict(output.state) if output.state is not None else None
            except Exception as exc:  # a bug must cost one ping, never the worker
                log.exception("engine failed on a ping of %s", ping.vehicle_id)
                await self._reject(record, "internal_error", f"{type(exc).__name__}: {exc}")
                continue
            if output.rejected_reason is not None:
                metrics.PINGS_REJECTED.labels(output.rejected_reason).inc()
            key = ping.vehicle_id
            if output.state is not None:
                metrics.STATES_OUT.inc()
                await send(messages.TOPIC_VEHICLE_STATES, messages.encode(output.state), key)
            for event in output.events:
                metrics.STOP_EVENTS_OUT.inc()
                await send(messages.TOPIC_STOP_EVENTS, messages.encode(event), key)
            if prediction is not None and prediction.stops:
                metrics.PREDICTIONS_OUT.inc()
                await send(messages.TOPIC_PREDICTIONS, messages.encode(prediction), key)
        await self.producer.flush()
