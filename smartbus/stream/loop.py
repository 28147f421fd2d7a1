"""The at-least-once loop every stage runs: read a batch, handle it, make its outputs durable, commit.

A batch whose handling fails with a retriable error (a sink is down) is retried, with back-off, until it
succeeds or the stage is asked to stop; offsets are committed only after success, so nothing is lost and
a replay after a crash changes nothing (the sinks are idempotent).

A stage that keeps state of its own beside its outputs (the ETA stage's tracker snapshots) passes a
`checkpoint`: it runs, retried the same way, before every commit, so the committed offsets never run ahead
of that state. It may save only part of its state and return the offsets that part covers (the loop commits
those rather than everything read, and checkpoints again at the next interval, whether batches came or not, until
one returns None: all covered); asked for a final checkpoint, when the stage stops, it saves it all.

A stage may commit only every `commit_every_s` seconds (after every batch by default): a restart then handles the
batches since its last committed offsets again (idempotently), and a stage that stops commits what it handled.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Literal

from smartbus import metrics
from smartbus.bus.base import Consumer, Offsets, Record
from smartbus.stream.health import HEALTH

log = logging.getLogger(__name__)

BatchHandler = Callable[[Sequence[Record]], Awaitable[None]]
# (final) -> the offsets up to which the stage's state is saved; None: all it has handled
Checkpoint = Callable[[bool], Awaitable[Offsets | None]]

MAX_BACKOFF_S = 5.0


async def run_stage(
    name: str,
    consumer: Consumer,
    handle: BatchHandler,
    stop: asyncio.Event,
    *,
    max_records: int = 2000,
    poll_timeout_s: float = 0.2,
    checkpoint: Checkpoint | None = None,
    commit_every_s: float = 0.0,
) -> None:
    HEALTH.beat(name)
    try:
        await _loop(name, consumer, handle, stop, max_records, poll_timeout_s, checkpoint, commit_every_s)
    finally:
        HEALTH.forget(name)  # a stage that has ended is no longer expected to beat


async def _loop(
    name: str,
    consumer: Consumer,
    handle: BatchHandler,
    stop: asyncio.Event,
    max_records: int,
    poll_timeout_s: float,
    checkpoint: Checkpoint | None,
    commit_every_s: float,
) -> None:
    uncommitted = False  # batches handled since the last commit
    last_commit = time.monotonic()
    while not stop.is_set():
        HEALTH.beat(name)
        if uncommitted and time.monotonic() - last_commit >= commit_every_s:
            committed = await _commit(name, consumer, checkpoint, stop, final=False)
            if committed == "failed":
                return  # asked to stop while the checkpoint failed: the batches are read again after restart
            # A checkpoint that saved part of the state comes again after the interval, batches or not: a stream
            # gone quiet still gets the rest saved and committed.
            uncommitted = committed == "part"
            last_commit = time.monotonic()
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
        if not await _retry(name, f"batch of {len(records)}", functools.partial(handle, records), stop):
            return  # uncommitted: the batch is read again after restart
        uncommitted = True
        metrics.BATCH_SIZE.labels(name).observe(len(records))
        metrics.PROCESSING_SECONDS.labels(name).observe(time.perf_counter() - started)
        metrics.LAST_BATCH_AT.labels(name).set_to_current_time()
    if uncommitted:  # stopping: leave the next start no work to do again (one attempt; it is safe to skip)
        stopped = asyncio.Event()
        stopped.set()
        await _commit(name, consumer, checkpoint, stopped, final=True)


async def _commit(
    name: str, consumer: Consumer, checkpoint: Checkpoint | None, stop: asyncio.Event, *, final: bool
) -> Literal["all", "part", "failed"]:
    """Checkpoint (retried until it succeeds or the stage stops), then commit: what the commit covered, everything
    handled or the part the checkpoint saved; "failed" when the checkpoint never succeeded."""
    saved: list[Offsets | None] = [None]
    if checkpoint is not None:
        save = checkpoint

        async def attempt() -> None:
            saved[0] = await save(final)

        if not await _retry(name, "checkpoint", attempt, stop):
            return "failed"
    try:
        await consumer.commit(saved[0])
    except Exception as exc:
        # Not retried here: the next commit covers these batches (positions only move past handled
        # records); after a rebalance the new owner replays them, and the writes are idempotent.
        metrics.COMMIT_ERRORS.labels(name).inc()
        log.warning("%s: commit failed (%s); the next commit covers these batches", name, exc)
    return "all" if saved[0] is None else "part"


async def _retry(name: str, what: str, action: Callable[[], Awaitable[None]], stop: asyncio.Event) -> bool:
    """Run `action` until it succeeds (True), backing off between failures, or until asked to stop (False).
    A stop asked for while an attempt succeeds still returns True: that work is done."""
    backoff = 0.2
    while True:
        try:
            await action()
            HEALTH.recovered(name)
            return True
        except Exception as exc:
            HEALTH.beat(name)
            HEALTH.failing(name, f"{what} failed: {exc}")
            metrics.SINK_ERRORS.labels(name).inc()
            log.warning("%s: %s failed (%s); retrying in %.1f s", name, what, exc, backoff)
            if await _sleep_or_stop(stop, backoff):
                return False
            backoff = min(backoff * 2, MAX_BACKOFF_S)


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep, or return True at once when asked to stop."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True
