"""The ingest edge's core: a batch of device pings in, valid pings and rejects out onto the bus.

Transport-free (the HTTP app and the GTFS-rt poller call it), so its rules are tested without a server.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ingest.tokens import DeviceIdentity
from ingest.validate import PingRejected, ping_from_fields
from smartbus import messages, metrics
from smartbus.bus.base import Producer
from smartbus.messages import RejectedPing

MAX_BATCH = 1000


@dataclass
class BatchResult:
    accepted: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)  # {"index", "reason", "detail"}


class IngestEdge:
    def __init__(
        self,
        producer: Producer,
        *,
        clock: Callable[[], float] = time.time,
        max_future_s: float = 300.0,
        max_age_s: float = 24 * 3600.0,
        source: str = "http",
    ) -> None:
        self._producer = producer
        self._source = source
        self._clock = clock
        self._max_future_s = max_future_s
        self._max_age_s = max_age_s

    async def _reject(self, payload: object, reason: str, detail: str, received_at: float) -> None:
        metrics.PINGS_REJECTED.labels(reason).inc()
        text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False, default=str)
        rejected = RejectedPing(payload=text[:4096], reason=reason, detail=detail, received_at=received_at)
        await self._producer.send(messages.TOPIC_PINGS_REJECTED, messages.encode(rejected), None)

    async def accept_batch(self, items: list[object], device: DeviceIdentity | None = None) -> BatchResult:
        """Validate and publish each ping; make them durable before returning (the device may then forget them).

        With a `device` (the batch came with its token), every ping must be that device's vehicle (a ping
        without vehicle_id is taken as its), and is published under the feed-namespaced vehicle id.
        """
        received_at = self._clock()
        result = BatchResult()
        for index, item in enumerate(items):
            try:
                if not isinstance(item, dict):
                    raise PingRejected("not_an_object", "each ping must be a JSON object")
                if device is not None:
                    item = _as_device(item, device)
                ping = ping_from_fields(
                    item,
                    received_at=received_at,
                    now=received_at,
                    max_future_s=self._max_future_s,
                    max_age_s=self._max_age_s,
                )
            except PingRejected as exc:
                await self._reject(item, exc.code, str(exc), received_at)
                result.rejected.append({"index": index, "reason": exc.code, "detail": str(exc)})
                continue
            await self._producer.send(messages.TOPIC_PINGS, messages.encode(ping), ping.vehicle_id)
            metrics.PINGS_ACCEPTED.labels(self._source).inc()
            result.accepted += 1
        await self._producer.flush()
        return result


def _as_device(item: dict[str, Any], device: DeviceIdentity) -> dict[str, Any]:
    claimed = item.get("vehicle_id")
    if claimed not in (None, "", device.vehicle_id):
        raise PingRejected(
            "vehicle_not_allowed", f"this token is for vehicle {device.vehicle_id!r}", "vehicle_id", claimed
        )
    return {**item, "vehicle_id": device.namespaced_vehicle_id}
