"""Live service for the demo: buses already out where they would be now, then pinging in (accelerated)
real time, day after day."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from zoneinfo import ZoneInfo

from eta.network import Network
from simulator.config import SimConfig
from simulator.generator import plan_day, simulate
from simulator.records import Delivery
from simulator.sinks import Pacer, Send, publish

log = logging.getLogger(__name__)


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

    Starts mid-day: vehicles whose trips began earlier are already on the road. Ping timestamps are
    simulated time, which equals real time at speed 1.
    """
    config = dataclasses.replace(config or SimConfig(), vehicles=vehicles, seed=seed)
    now = time.time() if start_at is None else start_at
    pacer = Pacer(now, speed)
    tz = ZoneInfo(network.agency_timezone)
    day = dt.datetime.fromtimestamp(now, tz).date()
    sent = 0
    while until is None or network.service_day_origin(day) < until:
        plan = plan_day(network, day, config)
        if plan.mapped:
            log.info("no service in the feed on %s: running the feed's %s instead", day, plan.feed_day)
        events = simulate(plan, start_at=now)
        if until is not None:
            events = (e for e in events if not isinstance(e, Delivery) or e.deliver_at < until)
        sent += await publish(events, send, pacer=pacer)
        day += dt.timedelta(days=1)
        now = max(now, network.service_day_origin(day))
    return sent
