"""The ingest endpoint as a publish target: simulated pings POSTed in batches to `POST /v1/pings`, as a fleet
of devices (or a gateway in front of them) would send them.

Pings are grouped per delivery moment (what is due before the pacer next sleeps; without pacing, as full as a
request may be) into requests within the edge's limits. Requests go out over a few keep-alive connections
("lanes"); a vehicle always uses the same lane, so its pings reach the edge in the order they were delivered.
A request that meets a 5xx, a 429 or a broken connection is sent again after a growing pause; one the edge
refuses as a whole (400, 413) is split or counted as failed; nothing is dropped without being counted.
A retried request may have been published already (a timeout after the edge wrote it): the pipeline's
writes are idempotent on (vehicle_id, timestamp), so that duplicate changes nothing downstream.
"""

from __future__ import annotations

import asyncio
import csv
import json
import logging
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ingest.edge import MAX_BATCH
from ingest.http_app import MAX_BODY_BYTES
from simulator.records import Delivery, Event
from simulator.sinks import Pacer
from smartbus.errors import ServiceUnavailable, SmartbusError, ValidationError
from smartbus.messages import Ping

log = logging.getLogger(__name__)

PINGS_PATH = "/v1/pings"
# The fields a device sends (GTFS-realtime VehiclePosition names); received_at is the edge's to stamp.
WIRE_FIELDS = (
    "vehicle_id", "timestamp", "latitude", "longitude", "bearing", "speed",
    "trip_id", "route_id", "direction_id", "start_date", "start_time",
)
_ENVELOPE = len(b'{"pings":[]}')
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

Sleep = Callable[[float], Awaitable[None]]


class IngestRefused(SmartbusError):
    """The edge refuses every request (bad token, wrong URL): going on would only fail again."""


@dataclass
class HttpReport:
    """What happened to the pings handed to the sink. Every ping ends up in exactly one of
    accepted, rejected (by the edge's reason) or failed (by cause), so `sent == accepted + rejected + failed`."""

    sent: int = 0
    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)  # edge reason -> pings
    failed: Counter[str] = field(default_factory=Counter)  # cause -> pings never acknowledged
    requests: int = 0  # HTTP requests made, retries included
    retries: int = 0

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    @property
    def failed_total(self) -> int:
        return sum(self.failed.values())

    def summary(self) -> str:
        text = f"{self.sent} pings in {self.requests} requests: {self.accepted} accepted"
        if self.rejected:
            reasons = ", ".join(f"{reason} {n}" for reason, n in self.rejected.most_common())
            text += f", {self.rejected_total} rejected ({reasons})"
        if self.retries:
            text += f", {self.retries} retries"
        if self.failed:
            causes = ", ".join(f"{cause} {n}" for cause, n in self.failed.most_common())
            text += f", {self.failed_total} FAILED ({causes})"
        return text


def read_device_tokens(path: Path) -> dict[str, str]:
    """vehicle_id -> token from a CSV file with the header `vehicle_id,token` (one row per device)."""
    try:
        with open(path, newline="", encoding="utf-8") as file:
            rows = list(csv.DictReader(file))
    except OSError as exc:
        raise ValidationError(f"cannot read the device tokens: {exc.strerror}", "--ingest-tokens", str(path)) from exc
    tokens: dict[str, str] = {}
    for number, row in enumerate(rows, start=2):
        vehicle, token = (row.get("vehicle_id") or "").strip(), (row.get("token") or "").strip()
        if not vehicle or not token:
            raise ValidationError(f"line {number} needs a vehicle_id and a token (header: vehicle_id,token)",
                                  "--ingest-tokens", str(path))
        tokens[vehicle] = token
    return tokens


def wire_ping(ping: Ping) -> bytes:
    """One ping as the JSON object a device posts; absent values are left out."""
    body = {name: getattr(ping, name) for name in WIRE_FIELDS}
    return json.dumps({k: v for k, v in body.items() if v is not None}, ensure_ascii=False).encode()


@dataclass
class _Batch:
    lane: int
    token: str | None
    pings: list[bytes] = field(default_factory=list)
    size: int = _ENVELOPE


class HttpSink:
    """Posts batches of pings to an ingest endpoint. Use as `async with HttpSink(url) as sink:
    report = await sink.publish(events, pacer=...)`.

    `token` goes with every request as `Authorization: Bearer <token>` (a gateway's credential). With
    `device_tokens` (vehicle_id -> token) each vehicle authenticates as itself: a request then carries one
    vehicle's pings only, with its token (`token`, if any, for vehicles not in the mapping).

    `lanes` requests may be in flight at once (one keep-alive connection each). A failing request is tried
    `attempts` times in all, pausing `backoff_s`, doubling up to `max_backoff_s`; after `give_up_after`
    batches in a row fail that way the endpoint counts as down and ServiceUnavailable is raised.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        device_tokens: Mapping[str, str] | None = None,
        lanes: int = 4,
        max_batch: int = MAX_BATCH,
        max_body_bytes: int = MAX_BODY_BYTES,
        attempts: int = 6,
        backoff_s: float = 0.5,
        max_backoff_s: float = 15.0,
        give_up_after: int = 3,
        timeout_s: float = 30.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not 1 <= max_batch <= MAX_BATCH:
            raise ValueError(f"max_batch must be between 1 and {MAX_BATCH}, got {max_batch}")
        self.url = url.rstrip("/")
        self._endpoint = self.url if self.url.endswith(PINGS_PATH) else self.url + PINGS_PATH
        self._lanes = max(1, lanes)
        self._max_batch, self._max_body = max_batch, max_body_bytes
        self._attempts, self._backoff_s, self._max_backoff_s = max(1, attempts), backoff_s, max_backoff_s
        self._give_up_after = give_up_after
        self._sleep = sleep
        self._token, self._device_tokens = token, device_tokens
        self._client = httpx.AsyncClient(
            headers={"content-type": "application/json"},
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=self._lanes, max_keepalive_connections=self._lanes),
        )
        self.report = HttpReport()
        self._failing_in_a_row = 0

    async def __aenter__(self) -> HttpSink:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()

    async def publish(self, events: Iterable[Event], *, pacer: Pacer | None = None,
                      max_batch_wait: float = 0.05) -> HttpReport:
        """Posts every ping of `events` (stop truths are skipped); returns the report once all are answered.

        With a pacer, pings due within `max_batch_wait` of each other travel together, and everything pending
        goes out before the sink sleeps; without one, requests are filled to the limits.
        """
        queues: list[asyncio.Queue[_Batch | None]] = [asyncio.Queue(maxsize=2) for _ in range(self._lanes)]
        try:
            async with asyncio.TaskGroup() as group:
                for queue in queues:
                    group.create_task(self._lane(queue))
                group.create_task(self._feed(events, queues, pacer, max_batch_wait))
        except ExceptionGroup as caught:  # a lane gave up: the others were cancelled; say why, once
            ours = [exc for exc in caught.exceptions if isinstance(exc, SmartbusError)]
            if ours:
                raise ours[0] from None
            raise
        return self.report

    async def _feed(self, events: Iterable[Event], queues: list[asyncio.Queue[_Batch | None]],
                    pacer: Pacer | None, max_batch_wait: float) -> None:
        pending: dict[str, _Batch] = {}  # by lane, or by vehicle when each vehicle has its own token
        held = 0  # pings in `pending`: bounded, or per-vehicle batches of 10,000 buses would fill memory

        async def flush(key: str) -> None:
            nonlocal held
            batch = pending.pop(key, None)
            if batch is not None:
                held -= len(batch.pings)
                await queues[batch.lane].put(batch)

        async def flush_all() -> None:
            for key in list(pending):
                await flush(key)

        for event in events:
            if not isinstance(event, Delivery):
                continue
            if pacer is not None:
                wait = pacer.delay_until(event.deliver_at)
                if wait > max_batch_wait:
                    await flush_all()
                    await asyncio.sleep(pacer.delay_until(event.deliver_at))
            vehicle = event.ping.vehicle_id
            item = wire_ping(event.ping)
            lane = zlib.crc32(vehicle.encode()) % len(queues)
            key = vehicle if self._device_tokens is not None else str(lane)
            batch = pending.get(key)
            if batch is not None and (len(batch.pings) >= self._max_batch
                                      or batch.size + len(item) + 1 > self._max_body):
                await flush(key)
                batch = None
            if batch is None:
                token = self._device_tokens.get(vehicle, self._token) if self._device_tokens else self._token
                batch = pending[key] = _Batch(lane, token)
            batch.pings.append(item)
            batch.size += len(item) + (1 if len(batch.pings) > 1 else 0)
            held += 1
            self.report.sent += 1
            if held >= 10 * self._max_batch:
                await flush_all()
            if self.report.sent % 2000 == 0:
                await asyncio.sleep(0)  # let the lanes (and an in-process server) run
        await flush_all()
        for queue in queues:
            await queue.put(None)

    async def _lane(self, queue: asyncio.Queue[_Batch | None]) -> None:
        while (batch := await queue.get()) is not None:
            await self._deliver(batch.pings, batch.token)

    async def _deliver(self, pings: list[bytes], token: str | None) -> None:
        """Posts one batch until the edge answers it; splits a batch the edge finds too large."""
        status, answer = await self._post_with_retries(pings, token)
        if status == 200:
            self._failing_in_a_row = 0
            self._count_answer(len(pings), answer)
        elif status == 413 and len(pings) > 1:
            half = len(pings) // 2
            await self._deliver(pings[:half], token)
            await self._deliver(pings[half:], token)
        elif status in (401, 403, 404):
            self.report.failed[f"http_{status}"] += len(pings)
            raise IngestRefused(f"the ingest endpoint {self._endpoint} refused the batch with HTTP {status}: "
                                f"{_error_text(answer)}")
        else:
            cause = f"http_{status}" if status else "unreachable"
            self.report.failed[cause] += len(pings)
            log.error("%d pings not delivered to %s (%s)", len(pings), self._endpoint, cause)
            if status == 0 or status in RETRY_STATUSES:
                self._failing_in_a_row += 1
                never_answered = self.report.accepted + self.report.rejected_total == 0
                if never_answered or self._failing_in_a_row >= self._give_up_after:
                    raise ServiceUnavailable(
                        f"the ingest endpoint {self._endpoint} failed {self._failing_in_a_row} batches in a row "
                        f"after {self._attempts} attempts each; giving up: {self.report.summary()}")

    async def _post_with_retries(self, pings: list[bytes], token: str | None) -> tuple[int, Any]:
        """(status, parsed JSON answer or None); status 0 when the endpoint never answered."""
        body = b'{"pings":[' + b",".join(pings) + b"]}"
        headers = {"authorization": f"Bearer {token}"} if token else None
        pause = self._backoff_s
        status, answer = 0, None
        for attempt in range(self._attempts):
            if attempt:
                self.report.retries += 1
                await self._sleep(pause)
                pause = min(pause * 2, self._max_backoff_s)
            self.report.requests += 1
            try:
                response = await self._client.post(self._endpoint, content=body, headers=headers)
            except httpx.TransportError as exc:  # refused, reset, timed out: the endpoint may come back
                log.warning("POST %s: %s (attempt %d of %d)", self._endpoint, exc or type(exc).__name__,
                            attempt + 1, self._attempts)
                status, answer = 0, None
                continue
            status, answer = response.status_code, _json_or_none(response)
            if status not in RETRY_STATUSES:
                return status, answer
            log.warning("POST %s: HTTP %d (attempt %d of %d)", self._endpoint, status, attempt + 1, self._attempts)
        return status, answer

    def _count_answer(self, count: int, answer: Any) -> None:
        if not isinstance(answer, dict) or not isinstance(answer.get("accepted"), int):
            self.report.failed["bad_answer"] += count
            log.error("the ingest endpoint answered 200 without a count of accepted pings: %r", answer)
            return
        rejected = answer.get("rejected") or []
        self.report.accepted += answer["accepted"]
        for item in rejected:
            reason = item.get("reason") if isinstance(item, dict) else None
            self.report.rejected[str(reason or "unknown")] += 1
        unanswered = count - answer["accepted"] - len(rejected)
        if unanswered:
            self.report.failed["unanswered"] += unanswered


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _error_text(answer: Any) -> str:
    if isinstance(answer, dict) and "error" in answer:
        return str(answer["error"])
    if isinstance(answer, dict) and "detail" in answer:
        return str(answer["detail"])
    return "no explanation given"
