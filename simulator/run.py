"""The simulate command's work: validate options, plan the day, stream events into the chosen sinks."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from zoneinfo import ZoneInfo

from eta.network import Network, load_network
from simulator.config import DeviceFaults, DrivingFaults, SimConfig
from simulator.gc_settings import relax_gc
from simulator.generator import DayPlan, plan_day, simulate
from simulator.live import live_events
from simulator.records import Delivery, Event
from simulator.sinks import CsvSink, Pacer, publish
from smartbus.errors import SmartbusError, ValidationError
from smartbus.messages import TOPIC_PINGS
from smartbus.settings import Settings

log = logging.getLogger("simulator")


@dataclass(frozen=True)
class SimulateRequest:
    gtfs: Path
    date: str | None
    config: SimConfig
    out: Path | None
    to: str
    speed: float | None
    from_now: bool
    progress: bool
    ingest_url: str | None = None
    ingest_token: str | None = None
    ingest_tokens: Path | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> SimulateRequest:
        device = DeviceFaults(**{f.name: getattr(args, f.name) for f in fields(DeviceFaults)})
        driving = DrivingFaults(**{f.name: getattr(args, f.name) for f in fields(DrivingFaults)})
        config = SimConfig(
            seed=args.seed, vehicles=args.vehicles, ping_interval_s=args.ping_interval,
            gps_noise_m=args.gps_noise, device=device, driving=driving,
        )
        return cls(args.gtfs, args.date, config, args.out, args.to, args.speed, args.from_now, not args.no_progress,
                   args.ingest_url, args.ingest_token, args.ingest_tokens)


def validate(request: SimulateRequest) -> None:
    c = request.config
    if c.vehicles is not None and not 1 <= c.vehicles <= 10_000:
        raise ValidationError("must be between 1 and 10000", "--vehicles", c.vehicles)
    if not 1.0 <= c.ping_interval_s <= 60.0:
        raise ValidationError("must be between 1 and 60 seconds", "--ping-interval", c.ping_interval_s)
    if c.gps_noise_m < 0:
        raise ValidationError("must not be negative", "--gps-noise", c.gps_noise_m)
    for group in (c.device, c.driving):
        for f in fields(group):
            value = getattr(group, f.name)
            limit = 60.0 if f.name == "gap_rate" else 1.0
            if not 0.0 <= value <= limit:
                raise ValidationError(f"must be between 0 and {limit:g}", "--" + f.name.replace("_", "-"), value)
    if request.speed is not None and not 1.0 <= request.speed <= 100.0:
        raise ValidationError("must be between 1 and 100", "--speed", request.speed)
    if request.to == "csv" and request.out is None:
        raise ValidationError("writing CSV needs an output directory", "--out", None)
    if request.to == "http" and not request.ingest_url:
        raise ValidationError("posting to the ingest endpoint needs its URL", "--ingest-url", None)
    if request.to != "http" and (request.ingest_url or request.ingest_token or request.ingest_tokens):
        raise ValidationError("only used with --to http", "--ingest-url", request.ingest_url)
    if request.from_now and request.to not in ("kafka", "http"):
        raise ValidationError("only makes sense when publishing live", "--from-now", True)


def real_day(network: Network, text: str | None) -> dt.date:
    if text is None:
        return dt.datetime.now(ZoneInfo(network.agency_timezone)).date()
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise ValidationError("expected YYYY-MM-DD", "--date", text) from exc


def execute(request: SimulateRequest) -> int:
    try:
        validate(request)
        network = load_network(request.gtfs, Settings().cache_dir)
        day = real_day(network, request.date)
        plan = plan_day(network, day, request.config)
    except SmartbusError as exc:
        print(f"smartbus simulate: {exc}", file=sys.stderr)
        return 2
    if plan.mapped:
        log.info("the feed has no service on %s: running its %s (same weekday) instead", day, plan.feed_day)
    peak = f" ({request.config.vehicles} at the busiest moment)" if request.config.vehicles else ""
    log.info("%d vehicles%s on %d trips, service date %s", len(plan.duties), peak,
             sum(len(d.trip_ids) for d in plan.duties), plan.service_date)
    relax_gc()
    start_at = time.time() if request.from_now else None
    events: Iterable[Event]
    if start_at is not None:  # live: from now on, day after day, until interrupted
        events = live_events(network, request.config, start_at)
    else:
        events = simulate(plan)
    if request.progress:
        events = _with_progress(events, plan)
    started = time.perf_counter()
    status = 0
    sink = CsvSink(request.out) if request.out is not None else None
    try:
        if request.to in ("kafka", "http"):
            if sink is not None:
                events = _tee(events, sink)
            if request.to == "kafka":
                sent = asyncio.run(_to_kafka(events, request.speed, start_at or plan.origin))
            else:
                sent, failed = asyncio.run(_to_http(events, request, start_at or plan.origin))
                status = 1 if failed else 0
        else:
            assert sink is not None
            sink.write_all(events)
            sent = sink.pings
    except SmartbusError as exc:
        print(f"smartbus simulate: {exc}", file=sys.stderr)
        return 1
    finally:
        if sink is not None:
            sink.close()
    elapsed = time.perf_counter() - started
    log.info("%d pings in %.1f s (%.0f pings/s)%s", sent, elapsed, sent / max(elapsed, 1e-9),
             f", files in {request.out}" if request.out else "")
    return status


def _tee(events: Iterable[Event], sink: CsvSink) -> Iterator[Event]:
    for event in events:
        sink.write(event)
        yield event


async def _to_kafka(events: Iterable[Event], speed: float | None, sim_start: float) -> int:
    from simulator.kafka_sink import kafka_send

    pacer = Pacer(sim_start, speed) if speed is not None else None
    settings = Settings()
    async with kafka_send(settings.kafka_bootstrap, settings.kafka_topic_prefix + TOPIC_PINGS) as send:
        return await publish(events, send, pacer=pacer)


async def _to_http(events: Iterable[Event], request: SimulateRequest, sim_start: float) -> tuple[int, int]:
    """Posts to the ingest endpoint; (pings sent, pings that never got an answer)."""
    from simulator.http_sink import HttpSink, read_device_tokens

    assert request.ingest_url is not None
    pacer = Pacer(sim_start, request.speed) if request.speed is not None else None
    device_tokens = read_device_tokens(request.ingest_tokens) if request.ingest_tokens else None
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request
    async with HttpSink(request.ingest_url, token=request.ingest_token, device_tokens=device_tokens) as sink:
        try:
            report = await sink.publish(events, pacer=pacer)
        finally:  # also when interrupted or given up: say what got through
            log.info("%s", sink.report.summary())
    if {"timestamp_in_future", "timestamp_too_old"} & set(report.rejected):
        log.warning("the edge checks timestamps against its own clock: to be accepted, pings must be recent; "
                    "run with --from-now --speed 1")
    return report.sent, report.failed_total


def _with_progress(events: Iterable[Event], plan: DayPlan) -> Iterator[Event]:
    """A progress line on stderr every 2 s: simulated local time reached and pings so far."""
    tz = ZoneInfo(plan.network.agency_timezone)
    pings, last = 0, time.monotonic()
    for event in events:
        if isinstance(event, Delivery):
            pings += 1
            if pings % 5000 == 0 and time.monotonic() - last > 2.0:
                last = time.monotonic()
                at = dt.datetime.fromtimestamp(event.deliver_at, tz).strftime("%H:%M")
                print(f"\r  {at} local, {pings:,} pings", end="", file=sys.stderr, flush=True)
        yield event
    print(f"\r  done, {pings:,} pings" + " " * 10, file=sys.stderr)
