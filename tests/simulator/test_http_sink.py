"""The simulator's HTTP sink against the real ingest app, served by uvicorn on loopback with the in-process bus
behind it: what the simulator sends is what lands on the bus, rejects are counted, failures are retried."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from ingest.edge import IngestEdge
from ingest.http_app import create_ingest_app
from simulator.config import DeviceFaults, SimConfig
from simulator.generator import plan_day, simulate
from simulator.http_sink import HttpSink, IngestRefused, read_device_tokens, wire_ping
from simulator.records import Delivery
from smartbus.bus.memory import MemoryBus
from smartbus.errors import ServiceUnavailable, ValidationError
from smartbus.messages import TOPIC_PINGS, TOPIC_PINGS_REJECTED, Ping, RejectedPing, decode_as
from tests.simulator.conftest import A_WEDNESDAY, FEEDS, edge_network

ASGIApp = Any  # the ASGI callable: (scope, receive, send) -> awaitable
# Enough bad fixes that a day of a small feed has rejects of both kinds the edge must catch.
FAULTY = SimConfig(ping_interval_s=4.0, device=DeviceFaults(zero_fix_rate=0.02, swapped_fix_rate=0.02))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def serving(app: ASGIApp, port: int | None = None) -> AsyncIterator[str]:
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn offers no event for this)
        assert not task.done(), "uvicorn stopped before it started"
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def a_day() -> list[Delivery]:
    plan = plan_day(edge_network("holiday_frequencies"), A_WEDNESDAY, FAULTY)
    return [e for e in simulate(plan) if isinstance(e, Delivery)]


def ingest_app(bus: MemoryBus, deliveries: list[Delivery]) -> ASGIApp:
    """The real ingest app, its clock at the end of the simulated day (so the day's pings are recent)."""
    day_end = max(d.deliver_at for d in deliveries) + 60.0
    return create_ingest_app(IngestEdge(bus.producer(), clock=lambda: day_end, max_age_s=2 * 86400.0))


def on_bus(bus: MemoryBus) -> tuple[list[Ping], list[RejectedPing]]:
    pings = [decode_as(r.value, Ping) for r in bus.topic(TOPIC_PINGS).records]
    rejects = [decode_as(r.value, RejectedPing) for r in bus.topic(TOPIC_PINGS_REJECTED).records]
    return pings, rejects


class Flaky:
    """Answers the first `failures` POSTs with 503, as an overloaded edge or its proxy would."""

    def __init__(self, app: ASGIApp, failures: int) -> None:
        self.app, self.failures = app, failures

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and self.failures > 0:
            self.failures -= 1
            await send({"type": "http.response.start", "status": 503, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"busy"})
            return
        await self.app(scope, receive, send)


class SmallBodies:
    """A proxy in front of the edge that refuses bodies over `limit` bytes with 413."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit, self.refused = app, limit, 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        length = dict(scope.get("headers", [])).get(b"content-length")
        if scope["type"] == "http" and length is not None and int(length) > self.limit:
            self.refused += 1
            await send({"type": "http.response.start", "status": 413, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await self.app(scope, receive, send)


class Guarded:
    """An edge that wants `Authorization: Bearer <token>` (answered as the ingest's auth would: 401 + reason)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app, self.expected = app, b"Bearer " + token.encode()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and dict(scope["headers"]).get(b"authorization") != self.expected:
            await send({"type": "http.response.start", "status": 401,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": b'{"error": "unknown device token"}'})
            return
        await self.app(scope, receive, send)


class PerDevice:
    """An edge where each device has its own token and may only report for itself (403 otherwise)."""

    def __init__(self, app: ASGIApp, tokens: dict[str, str]) -> None:
        self.app, self.vehicle_of = app, {f"Bearer {t}".encode(): v for v, t in tokens.items()}
        self.requests: Counter[str] = Counter()
        self.refused = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        device = self.vehicle_of.get(dict(scope["headers"]).get(b"authorization", b""))
        if device is None or any(p["vehicle_id"] != device for p in json.loads(body)["pings"]):
            self.refused += 1
            await send({"type": "http.response.start", "status": 403, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        self.requests[device] += 1

        async def replay() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def test_every_ping_sent_arrives_on_the_bus_unchanged_and_rejects_are_counted() -> None:
    deliveries = a_day()
    bus = MemoryBus()
    async with serving(ingest_app(bus, deliveries)) as url, HttpSink(url, lanes=3, max_batch=150) as sink:
        report = await sink.publish(deliveries)
    pings, rejects = on_bus(bus)

    assert report.sent == len(deliveries) > 1000
    assert report.requests > len(deliveries) / 150  # batched, within the batch limit
    assert report.failed_total == 0 and report.retries == 0
    # Each ping the simulator sent is either on the pings topic, the same as sent, or rejected with its payload.
    arrived = Counter(wire_ping(dataclasses.replace(p, received_at=None)) for p in pings)
    refused = Counter(json.dumps(json.loads(r.payload), ensure_ascii=False).encode() for r in rejects)
    assert arrived + refused == Counter(wire_ping(d.ping) for d in deliveries)
    assert report.accepted == len(pings)
    assert report.rejected == Counter(r.reason for r in rejects)
    assert report.rejected["null_island"] > 0 and report.rejected["latitude_out_of_range"] > 0
    assert report.sent == report.accepted + report.rejected_total
    # A vehicle's pings reach the bus in the order the simulator delivered them.
    for vehicle in {d.ping.vehicle_id for d in deliveries}:
        sent_order = [wire_ping(d.ping) for d in deliveries if d.ping.vehicle_id == vehicle]
        bus_order = [wire_ping(dataclasses.replace(p, received_at=None)) for p in pings if p.vehicle_id == vehicle]
        assert [w for w in sent_order if w in set(bus_order)] == bus_order


async def test_with_per_device_tokens_each_request_is_one_vehicle_with_its_own_token() -> None:
    deliveries = a_day()
    vehicles = sorted({d.ping.vehicle_id for d in deliveries})
    tokens = {vehicle: f"token-of-{vehicle}" for vehicle in vehicles}
    bus = MemoryBus()
    edge = PerDevice(ingest_app(bus, deliveries), tokens)
    async with serving(edge) as url, HttpSink(url, device_tokens=tokens, lanes=2) as sink:
        report = await sink.publish(deliveries)
    pings, rejects = on_bus(bus)

    assert edge.refused == 0 and len(vehicles) > 1
    assert set(edge.requests) == set(vehicles)
    assert report.sent == len(deliveries) == len(pings) + len(rejects) == report.accepted + report.rejected_total


def test_device_tokens_are_read_from_a_csv_and_a_bad_row_is_named(tmp_path: Path) -> None:
    good = tmp_path / "tokens.csv"
    good.write_text("vehicle_id,token\nbus-1,abc\nbus-2, def \n", encoding="utf-8")
    assert read_device_tokens(good) == {"bus-1": "abc", "bus-2": "def"}
    bad = tmp_path / "bad.csv"
    bad.write_text("vehicle_id,token\nbus-1,abc\nbus-2,\n", encoding="utf-8")
    with pytest.raises(ValidationError, match="line 3"):
        read_device_tokens(bad)


async def test_an_edge_that_starts_late_and_then_answers_503_loses_nothing() -> None:
    deliveries = a_day()
    bus = MemoryBus()
    port = free_port()
    app = Flaky(ingest_app(bus, deliveries), failures=3)
    pauses: list[float] = []

    async with AsyncExitStack() as edge:

        async def backoff(seconds: float) -> None:  # the edge comes up during the first pause
            pauses.append(seconds)
            if len(pauses) == 1:
                await edge.enter_async_context(serving(app, port))

        async with HttpSink(f"http://127.0.0.1:{port}", lanes=1, max_batch=500, backoff_s=0.5, sleep=backoff) as sink:
            report = await sink.publish(deliveries)
    pings, rejects = on_bus(bus)

    assert report.retries == 4  # one refused connection, then three 503s
    assert pauses == [0.5, 1.0, 2.0, 4.0]  # back-off doubles while the same batch keeps failing
    assert report.failed_total == 0
    assert report.sent == len(deliveries) == len(pings) + len(rejects)
    assert report.accepted == len(pings) and report.rejected_total == len(rejects)


async def test_a_batch_too_large_for_a_proxy_is_split_not_lost() -> None:
    deliveries = a_day()
    bus = MemoryBus()
    proxy = SmallBodies(ingest_app(bus, deliveries), limit=40_000)
    async with serving(proxy) as url, HttpSink(url, lanes=2) as sink:
        report = await sink.publish(deliveries)
    pings, rejects = on_bus(bus)

    assert proxy.refused > 0
    assert report.failed_total == 0
    assert report.sent == len(deliveries) == len(pings) + len(rejects) == report.accepted + report.rejected_total


async def test_an_edge_that_stays_down_is_a_retriable_error_with_the_loss_counted() -> None:
    deliveries = a_day()

    async def no_wait(seconds: float) -> None:
        return None

    sink = HttpSink(f"http://127.0.0.1:{free_port()}", attempts=3, sleep=no_wait)
    with pytest.raises(ServiceUnavailable) as caught:
        async with sink:
            await sink.publish(deliveries)
    assert caught.value.retriable
    assert sink.report.failed["unreachable"] > 0
    assert sink.report.accepted == 0 and sink.report.requests >= 3


async def test_the_token_is_sent_and_an_edge_refusing_it_stops_the_run() -> None:
    deliveries = a_day()
    bus = MemoryBus()
    guarded = Guarded(ingest_app(bus, deliveries), token="fleet-secret")
    async with serving(guarded) as url:
        async with HttpSink(url, token="fleet-secret") as sink:
            report = await sink.publish(deliveries)
        assert report.sent == report.accepted + report.rejected_total == len(deliveries)
        async with HttpSink(url, token="stolen") as sink:
            with pytest.raises(IngestRefused, match="401: unknown device token"):
                await sink.publish(deliveries)
    assert sink.report.failed["http_401"] > 0
    assert len(on_bus(bus)[0]) == report.accepted  # nothing from the refused run


async def test_smartbus_simulate_to_http_posts_the_day_and_reports_it() -> None:
    bus = MemoryBus()
    deliveries = a_day()
    async with serving(ingest_app(bus, deliveries)) as url:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "smartbus.cli", "simulate", "--gtfs", str(FEEDS / "holiday_frequencies"),
            "--date", A_WEDNESDAY.isoformat(), "--ping-interval", "4", "--zero-fix-rate", "0.02",
            "--swapped-fix-rate", "0.02", "--to", "http", "--ingest-url", url, "--no-progress",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
    pings, rejects = on_bus(bus)

    assert process.returncode == 0, err.decode()
    assert len(pings) + len(rejects) == len(deliveries)  # the same seed: the same day as a_day()
    summary = f"{len(deliveries)} pings in"
    assert summary in err.decode() and f"{len(pings)} accepted, {len(rejects)} rejected" in err.decode()
    assert "HTTP Request" not in err.decode()  # a summary, not a log line per request


async def test_simulate_to_http_needs_the_endpoint() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "smartbus.cli", "simulate", "--to", "http", "--no-progress",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    _, err = await process.communicate()
    assert process.returncode == 2
    assert "--ingest-url" in err.decode()
