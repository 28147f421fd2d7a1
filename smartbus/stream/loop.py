"""The at-least-once loop every stage runs: read a batch, handle it, make its outputs durable, commit.

A batch whose handling fails with a retriable error (a sink is down) is retried, with back-off, until it
succeeds or the stage is asked to stop; offsets are committed only after success, so nothing is lost and
a replay after a crash changes nothing (the sinks are idempotent).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from smartbus import metrics
from smartbus.bus.base import Consumer, Record
from smartbus.stream.health import HEALTH

log = logging.getLogger(__name__)

BatchHandler = Callable[[Sequence[Record]], Awaitable[None]]

MAX_BACKOFF_S = 5.0


async def run_stage(
    name: str,
    consumer: Consumer,
    handle: BatchHandler,
    stop: asyncio.Event,
    *,
    max_records: int = 2000,
    poll_timeout_s: float = 0.2,
) -> None:
    HEALTH.beat(name)
    try:
        await _loop(name, consumer, handle, stop, max_records, poll_timeout_s)
    finally:
        HEALTH.forget(name)  # a stage that has ended is no longer expected to beat


async def _loop(
    name: str, consumer: Consumer, handle: BatchHandler, stop: asyncio.Event, max_records: int, poll_timeout_s: float
) -> None:
    while not stop.is_set():
        HEALTH.beat(name)
        try:
            records = await consumer.getmany(poll_timeout_s, max_records)
        except Exception as exc:  # the bus is down: wait and poll again
            HEALTH.failing(name, f"reading the bus: {exc}")
            log.warning("%s: reading the bus failed (%s); retrying", name, exc)
            await _sleep_or_stop(stop, 1.0)
            continue
        if not records:
            continue
        started = time.perf_counter()
        backoff = 0.2
        while True:
            try:
                await handle(records)
                break
            except Exception as exc:
                HEALTH.beat(name)
                HEALTH.failing(name, f"batch failed: {exc}")
                metrics.SINK_ERRORS.labels(name).inc()
                log.warning("%s: batch of %d failed (%s); retrying in %.1f s", name, len(records), exc, backoff)
                if await _sleep_or_stop(stop, backoff):
                    return  # uncommitted: the batch is read again after restart
                backoff = min(backoff * 2, MAX_BACKOFF_S)
        HEALTH.recovered(name)
        try:
            await consumer.commit()
        except Exception as exc:
            # Not retried here: the next batch's commit covers this one (positions only move past handled
            # records); after a rebalance the new owner replays it, and the writes are idempotent.
            metrics.COMMIT_ERRORS.labels(name).inc()
            log.warning("%s: commit failed (%s); the next commit covers this batch", name, exc)
        metrics.BATCH_SIZE.labels(name).observe(len(records))
        metrics.PROCESSING_SECONDS.labels(name).observe(time.perf_counter() - started)
        metrics.LAST_BATCH_AT.labels(name).set_to_current_time()


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep, or return True at once when asked to stop."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True
