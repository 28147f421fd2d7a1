"""Live service for the demo: buses already out where they would be now, then pinging in (accelerated)
real time, day after day."""

from __future__ import annotations

import dataclasses
import datetime as dt
import heapq
import logging
import time
from collections.abc import Iterator
from zoneinfo import ZoneInfo

from eta.network import Network
from simulator.config import SimConfig
from simulator.generator import plan_day, simulate
from simulator.records import Delivery, Event
from simulator.sinks import Pacer, Send, publish

log = logging.getLogger(__name__)

OPEN_AHEAD_S = 6 * 3600.0  # a service day's stream opens this long before its GTFS origin (early pull-outs)


async def run_live(
    network: Network,
    send: Send,
    *,
    vehicles: int | None = None,
    seed: int = 0,
    speed: float = 1.0,
    start_at: float | None = None,
    until: float | None = None,
    config: SimConfig | None = None,
) -> int:
    """Publishes pings from `start_at` (UTC epoch, default now) onwards, paced at `speed` x real time,
    until simulated time reaches `until` (default: never). Returns how many pings were sent.

    Starts mid-day: vehicles whose trips began earlier are already on the road, including the previous
    service day's trips that run past midnight. Ping timestamps are simulated time (real time at speed 1).
    """
    config = dataclasses.replace(config or SimConfig(), vehicles=vehicles, seed=seed)
    now = time.time() if start_at is None else start_at
    events: Iterator[Event] = live_events(network, config, now, truth=False)
    if until is not None:
        events = _before(events, until)
    return await publish(events, send, pacer=Pacer(now, speed))


def live_events(network: Network, config: SimConfig, start_at: float, *, truth: bool = True) -> Iterator[Event]:
    """Every event from `start_at` on, across as many service days as it takes, in delivery order.

    Consecutive service days overlap (trips past midnight), so each day's stream is opened ahead of its
    origin and merged with the days still running.
    """
    tz = ZoneInfo(network.agency_timezone)
    next_day = dt.datetime.fromtimestamp(start_at, tz).date() - dt.timedelta(days=1)
    running: list[tuple[float, int, Event, Iterator[Event]]] = []
    opened = empty_days = 0

    def open_day(day: dt.date) -> None:
        nonlocal opened, empty_days
        plan = plan_day(network, day, config)
        if plan.mapped:
            log.info("no service in the feed on %s: running the feed's %s instead", day, plan.feed_day)
        stream = simulate(plan, start_at=start_at, truth=truth)
        first = next(stream, None)
        if first is not None:
            heapq.heappush(running, (_key(first), opened, first, stream))
        empty_days = 0 if first is not None else empty_days + 1
        opened += 1

    while True:
        horizon = running[0][0] if running else float("inf")
        if not running and empty_days > 8:
            log.warning("the feed has no service in any of the last %d days: stopping", empty_days)
            return
        if network.service_day_origin(next_day) - OPEN_AHEAD_S <= max(horizon, start_at) or not running:
            open_day(next_day)
            next_day += dt.timedelta(days=1)
            continue
        _, order, event, stream = running[0]
        yield event
        following = next(stream, None)
        if following is None:
            heapq.heappop(running)
        else:
            heapq.heapreplace(running, (_key(following), order, following, stream))


def _key(event: Event) -> float:
    return event.deliver_at if isinstance(event, Delivery) else event.departure_time


def _before(events: Iterator[Event], until: float) -> Iterator[Event]:
    for event in events:
        if _key(event) >= until:
            return
        yield event
