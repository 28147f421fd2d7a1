"""The ETA worker's learned prediction state, kept in PostgreSQL across restarts (issue 5).

At start the worker loads its group's rows for its feed version (smartbus/storage/learned_state.py), merges
them and adopts them, carried over from the group's last feed version when there is none for this one
(eta/prediction/learned_state.py). It waits for that at most `LOAD_WAIT_S` before taking pings: with the
database away it starts cold, says so, and tries again every `retry_s` while it predicts; a load that
succeeds later is merged into what it has learned meanwhile.

It saves every `save_every_s` and at a clean stop. A save encodes the model a slice at a time, letting the
batches run between slices (a few milliseconds each: smartbus_learned_state_hold_seconds is the longest),
compresses it in a thread and writes it on a connection of its own.
A failed save is logged and counted (smartbus_learned_state_saves_total{result="failed"}) and the next one
tries again; it never stops the worker. Nothing is saved before a load has succeeded: a worker that started
cold must not replace its stored history with the little it learned since.

Workers of one group each save their own row and merge all the group's rows when they start
(eta/prediction/model_merge.py), so what each learned from its own partitions' buses reaches every worker
after a restart. A feed version switch carries the model over to the new network; later saves go to the
new version's row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Sequence

import psycopg

from eta.network import Network
from eta.prediction import LearningPredictor
from eta.prediction.learned_state import Adopted, LearnedState, LearnedStateError, pack
from smartbus import metrics
from smartbus.settings import Settings
from smartbus.storage.learned_state import LearnedStates, StoredState

log = logging.getLogger(__name__)

LOAD_WAIT_S = 10.0  # the longest the first pings wait for the learned state
LOAD_TIMEOUT_S = 60.0
SAVE_TIMEOUT_S = 30.0
FINAL_SAVE_TIMEOUT_S = 10.0  # a stopping worker does not hang on a database that is away
RETRY_S = 30.0
CONNECT_TIMEOUT_S = 5


class LearnedStateKeeper:
    """Owns the worker's current `LearningPredictor`: loads into it, saves it, carries it to a new feed."""

    def __init__(
        self, network: Network, store: LearnedStates | None, *, save_every_s: float = 300.0,
        retry_s: float = RETRY_S,
    ) -> None:
        self.predictor = LearningPredictor(network)
        self._store = store
        self._save_every_s = save_every_s
        self._retry_s = retry_s
        self._loaded = False
        self._failed_loads = 0
        self._merged: list[StoredState] = []  # rows merged at the load, replaced by the next save
        self._saved_bytes = 0
        self._tried = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def loaded(self) -> bool:
        return self._loaded

    async def start(self, wait_s: float = LOAD_WAIT_S) -> LearningPredictor:
        """Start loading and saving in the background; return once the first load was tried, or `wait_s`."""
        if self._store is None:
            log.info("learned state: not kept (learned_state_save_s is 0); a restart starts cold")
            return self.predictor
        self._task = asyncio.create_task(self._run(), name="learned-state")
        try:
            await asyncio.wait_for(self._tried.wait(), wait_s)
        except TimeoutError:
            log.warning("learned state: the database has not answered within %.0f s; predicting from a cold "
                        "start meanwhile", wait_s)
        return self.predictor

    async def close(self) -> None:
        """Stop the background work and save a last time (after the stage has stopped: all it learned)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._loaded and await self.save(FINAL_SAVE_TIMEOUT_S):
            log.info("learned state saved for the next start (%d segments, %.0f kB)",
                     len(self.predictor.model.segment), self._saved_bytes / 1000)

    def switch(self, network: Network) -> LearningPredictor:
        """A predictor for a new feed version, carrying over what this one learned (the stage takes it at
        its next batch boundary)."""
        new = LearningPredictor(network, horizon_s=self.predictor.horizon_s)
        adopted = new.adopt(self.predictor.learned_state())
        new.absorb([adopted.model])
        log.info("learned state %s", adopted.describe())
        self.predictor = new
        return new

    async def _run(self) -> None:
        while not await self._loads():
            self._tried.set()
            await asyncio.sleep(self._retry_s)
        self._tried.set()
        while True:
            await asyncio.sleep(self._save_every_s)
            await self.save()

    async def _loads(self) -> bool:
        try:
            return await self.load()
        except Exception:  # a bug in merging, say: logged, tried again; the worker predicts on regardless
            log.exception("learned state: loading failed")
            metrics.LEARNED_STATE_LOADS.labels("failed").inc()
            return False

    async def load(self) -> bool:
        """Load the group's rows and merge them into the predictor. False when the database did not answer."""
        assert self._store is not None
        predictor = self.predictor
        version = predictor.network.feed_hash
        started = time.perf_counter()
        try:
            rows = await asyncio.wait_for(self._store.load(version), LOAD_TIMEOUT_S)
            read = await asyncio.to_thread(_adopt_rows, predictor, rows)  # decoding takes a while: not here
        except Exception as exc:  # noqa: BLE001 (away, timed out, or a bug: the worker predicts on regardless)
            metrics.LEARNED_STATE_LOADS.labels("failed").inc()
            self._failed_loads += 1
            if self._failed_loads == 1:
                log.warning("learned state: not loaded (%s); predicting from a cold start, trying again every "
                            "%.0f s", exc, self._retry_s)
            return False
        if predictor is not self.predictor:
            return False  # the feed version changed meanwhile: load again, for the new one
        was_learning = bool(predictor.model.segment)
        adopted = [a for _, a in read]
        predictor.absorb([a.model for a in adopted])
        self._loaded = True
        # rows it could not read (a newer smartbus's, in a rolling upgrade) are not its to replace
        self._merged = [row for row, _ in read if row.feed_version == version]
        result = "none" if not adopted else "applied" if all(a.same_version for a in adopted) else "carried_over"
        metrics.LEARNED_STATE_LOADS.labels(result).inc()
        if not adopted:
            log.info("learned state: none to load for group %s; learning from scratch", self._store.group)
            return True
        for a in adopted:
            if not a.same_version:
                log.warning("learned state %s", a.describe())
        model = predictor.model
        log.info(
            "learned state: %d worker(s)' state loaded in %.2f s%s: %d segments, %d stops' dwell",
            len(adopted), time.perf_counter() - started,
            " (merged into what was learned since the start)" if was_learning else "",
            len(model.segment), len(model.dwell),
        )
        return True

    async def save(self, timeout_s: float = SAVE_TIMEOUT_S) -> bool:
        """Save what the predictor has learned now. False (logged, counted) when it could not be."""
        if self._store is None or not self._loaded:
            return False
        predictor = self.predictor
        try:
            pieces, held = [], 0.0
            encoding = predictor.state_pieces()
            while True:  # a slice at a time, letting batches run in between
                started = time.perf_counter()
                piece = next(encoding, None)
                held = max(held, time.perf_counter() - started)
                if piece is None:
                    break
                pieces.append(piece)
                await asyncio.sleep(0)
            metrics.LEARNED_STATE_HOLD_SECONDS.set(held)
            blob = await asyncio.to_thread(pack, pieces)
            await asyncio.wait_for(
                self._store.save(predictor.network.feed_hash, blob, replaces=self._merged), timeout_s
            )
        except Exception as exc:  # noqa: BLE001 (never fatal: the next save tries again)
            metrics.LEARNED_STATE_SAVES.labels("failed").inc()
            log.warning("learned state: save failed (%s); the next save tries again", exc or type(exc).__name__)
            return False
        self._merged = []
        self._saved_bytes = len(blob)
        metrics.LEARNED_STATE_SAVES.labels("ok").inc()
        metrics.LEARNED_STATE_BYTES.set(len(blob))
        metrics.LEARNED_STATE_SAVED_AT.set_to_current_time()
        return True


def _adopt_rows(predictor: LearningPredictor, rows: Sequence[StoredState]) -> list[tuple[StoredState, Adopted]]:
    found = []
    for row in rows:
        try:
            found.append((row, predictor.adopt(LearnedState.from_bytes(row.state))))
        except LearnedStateError as exc:  # from a newer smartbus, say: the others still count
            log.warning("learned state of worker %s (feed version %s) skipped: %s", row.worker_id,
                        row.feed_version[:12], exc)
    return found


def learned_state_keeper(
    settings: Settings, network: Network, group: str, database_url: str | None = None
) -> LearnedStateKeeper:
    """The keeper a worker of `group` runs with, on settings.database_url (or `database_url`); none kept when
    learned_state_save_s is 0. The worker's row is named by host and process: unique among live workers,
    with nothing to configure (a restarted worker merges its old row like any other, and replaces it)."""
    if settings.learned_state_save_s <= 0:
        return LearnedStateKeeper(network, None)
    url = database_url or settings.database_url

    async def connect() -> psycopg.AsyncConnection:
        return await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)

    store = LearnedStates(connect, settings.kafka_topic_prefix + group, f"{socket.gethostname()}:{os.getpid()}")
    return LearnedStateKeeper(network, store, save_every_s=settings.learned_state_save_s)
