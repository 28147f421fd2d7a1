"""The ETA stage: pings from the bus through the pure engine and predictor, results back onto the bus.

Keyed by vehicle_id end to end, so a vehicle's pings reach one worker in order and its outputs keep that
order. Bad pings are rejected with a reason onto `pings.rejected` and counted; they never stop the worker.

One batch, in this order: restore the trackers of vehicles this worker has not seen (from their
snapshots), run the engine, send every output, wait until they are durable (acks=all). A batch retried
after a failed send resends the outputs it computed the first time instead of running the engine again:
the trackers have already moved past those pings and would drop them as duplicates.

Snapshots are saved by `checkpoint`, which the loop runs before it commits, every CHECKPOINT_EVERY_S. Each saves
the vehicles longest unsaved, a share of them, so that every vehicle moved is saved within SAVED_WITHIN_S of its
first ping since its last save, and the loop commits, partition by partition, up to the first ping of a vehicle
still unsaved. A checkpoint's save goes on while the next batches are handled, and the next checkpoint waits for
it first: so the offsets committed are a checkpoint behind, covering the saves finished. At 1 Hz a bus is then
pickled and saved once in those seconds, not once a ping (that saving was a seventh of the worker's CPU), and a
restart handles at most those seconds of pings again (see smartbus.stream.tracker_snapshots). Saving the whole
fleet at once instead stalled the worker (and Redis) for a fifth of a second at 10,000 buses, a spike in every
rider's latency every few seconds. Each snapshot names the last ping it took: a restored vehicle skips the pings
read again up to that one (counted as replayed), so a restart neither sends their outputs again nor counts them as
out-of-order fixes.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from eta.engine import Engine
from eta.tracker import VehicleTracker
from ingest.validate import PingRejected, ping_from_message
from smartbus import messages, metrics
from smartbus.bus.base import Offsets, Producer, Record
from smartbus.messages import Ping, PredictionSet, RejectedPing, StopEvent, VehicleState
from smartbus.stream.overrides import OverrideFeed
from smartbus.stream.tracker_snapshots import PingAt, Snapshot, TrackerSnapshots, encode_snapshots

log = logging.getLogger(__name__)

CHECKPOINT_EVERY_S = 1.0
SAVED_WITHIN_S = 5.0  # every vehicle moved is saved within this long of its first ping since its last save


class Predictor(Protocol):
    """What the stage needs of a predictor: learn from arrivals, then predict from a vehicle's state."""

    # Whole walks of a vehicle's stops ahead it may make before the stage hands out more (see WalkAllowance);
    # a predictor that makes none ignores it.
    walk_allowance: float
    walks_held_back: int

    def observe(self, events: list[StopEvent]) -> None: ...

    def publish(self, state: VehicleState, now: float | None = None) -> PredictionSet | None:
        """The predictions riders should now be shown for this vehicle; None when what they were shown last
        still holds (nothing moved enough, and it is recent enough) or there is nothing to predict. `now`: when
        the fix reached us, should its device have held it back. None too when the vehicle needs a whole walk of its
        stops ahead and `walk_allowance` has none left."""

Outgoing = tuple[str, bytes, str | None]  # topic, value, key

# Whole walks a second the predictor may make (see WalkAllowance). A walk costs the worker about 0.13 ms of CPU
# (10,000 first walks took 1.3 CPU-s), before what its set costs in Kafka, both writers, Redis and PostgreSQL.
# Between restarts a 10,000-bus fleet walks some 40 to 50 a second (each bus every RECOMPUTE_S or so, and at each
# new trip); at 500 a second a restart of that fleet is walked over 20 s.
WALKS_PER_S = 500.0


class WalkAllowance:
    """How many whole walks the predictor may make, handed out per batch from a bucket refilled at `per_s` a
    second (wall clock) and holding at most a second's worth (and at least one walk).

    A worker that starts (or restarts, or takes over partitions) hears its whole fleet within a ping interval,
    and every bus then needs a walk at once. Unlimited, a 10,000-bus fleet at 1 Hz sent 10,000 sets in its first
    second, and every fix behind them waited seconds for the writers and Redis. A bus walked later keeps its
    vehicle state flowing meanwhile, and its riders keep the board they had (after a restart) or see its first
    one a few seconds on (at a first start)."""

    def __init__(self, per_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        if not per_s > 0:
            raise ValueError(f"walks a second must be above 0 (unlimited: inf), not {per_s}")
        self.per_s = per_s
        self._clock = clock
        self._most = max(per_s, 1.0)  # a second's worth, and at least one walk (for a rate below one a second)
        self._left = self._most
        self._at: float | None = None

    def grant(self) -> float:
        """The walks the predictor may make now (it counts them down; hand back what is left to `spent_down_to`)."""
        if math.isinf(self.per_s):
            return math.inf
        now = self._clock()
        if self._at is not None:
            self._left = min(self._most, self._left + max(now - self._at, 0.0) * self.per_s)
        self._at = now
        return self._left

    def spent_down_to(self, left: float) -> None:
        """What the predictor left of the last grant (it counts its walks down)."""
        if not math.isinf(self.per_s):
            self._left = max(left, 0.0)


@dataclass
class _Outbox:
    """The outputs of one batch, kept until they are durable."""

    batch: tuple[str, int, int, int, int]  # topic, partition, first offset, last offset, count
    outgoing: list[Outgoing]
    touched: dict[str, tuple[str, int, int]]  # vehicle -> (topic, partition, offset) of its first ping here
    last: dict[str, tuple[str, int, int]]  # vehicle -> (topic, partition, offset) of its last ping here
    received_at: list[float]


@dataclass
class _Saving:
    """A checkpoint's snapshots on their way to the store, and what to put back if they do not get there."""

    task: asyncio.Future[None]
    unsaved: dict[str, tuple[str, int, int, float]]  # the vehicles' entries taken out of EtaStage._unsaved
    last_ping: dict[str, tuple[str, int, int]]  # and out of EtaStage._last_ping


def _batch_id(records: Sequence[Record]) -> tuple[str, int, int, int, int]:
    first, last = records[0], records[-1]
    return (first.topic, first.partition, first.offset, last.offset, len(records))


class EtaStage:
    def __init__(
        self,
        engine: Engine,
        predict: Predictor,
        producer: Producer,
        snapshots: TrackerSnapshots | None = None,
        overrides: OverrideFeed | None = None,
        walks: WalkAllowance | None = None,
    ) -> None:
        self.engine = engine
        self._walks = walks if walks is not None else WalkAllowance(math.inf)
        self._overrides = overrides
        self._predict = predict
        self.producer = producer
        self._snapshots = snapshots
        self._outbox: _Outbox | None = None
        # vehicles moved since their snapshots were last saved -> (topic, partition, offset of the first ping
        # since then, when it was handled), oldest first
        self._unsaved: dict[str, tuple[str, int, int, float]] = {}
        self._handled: dict[tuple[str, int], int] = {}  # (topic, partition) -> the offset after the last handled
        # each unsaved vehicle's last ping handled, (topic, partition, offset): what its snapshot will cover
        self._last_ping: dict[str, tuple[str, int, int]] = {}
        # restored vehicles -> the last ping their snapshot covers: pings up to it, read again after a restart or
        # a rebalance, were handled before and their outputs are on the bus
        self._covered: dict[str, PingAt] = {}
        self._saving: _Saving | None = None  # the last checkpoint's save, while it goes on beside the next batches
        self._next: tuple[Engine, Predictor, TrackerSnapshots | None] | None = None

    @property
    def feed_version(self) -> str:
        return self.engine.network.feed_hash

    def use_network(self, engine: Engine, predict: Predictor, snapshots: TrackerSnapshots | None) -> None:
        """Switch to a new feed version at the next batch boundary (never in the middle of a batch).

        Vehicles start afresh on the new version (their trip and shape may not exist in it); each re-acquires
        its trip within a ping or two. Snapshots are per version, so a restart after the switch uses the new.
        """
        self._next = (engine, predict, snapshots)

    def forget_vehicles(self) -> None:
        """The group moved partitions: drop every tracker. Each vehicle this worker still (or now) owns is
        restored from its snapshot at its next ping, so no state another worker advanced meanwhile is lost."""
        if self._snapshots is None:
            return  # nowhere to restore from: keeping the state is the better guess
        self.engine.trackers.clear()
        self.engine.ctx.claims.clear()
        # the consumer goes back to the committed offsets, which the snapshots match: what was handled since is
        # handled again, and nothing past those offsets may be committed until it is
        self._unsaved.clear()
        self._handled.clear()
        self._last_ping.clear()
        self._covered.clear()
        if self._saving is not None:  # it goes on (a save never moves a vehicle back), but nothing is put back
            self._saving.unsaved.clear()
            self._saving.last_ping.clear()

    async def handle(self, records: Sequence[Record]) -> None:
        if not records:
            return
        if self._next is not None and self._outbox is None:
            await self.checkpoint()  # the old version's trackers, saved for a restart on the old feed
            old = self._snapshots
            self.engine, self._predict, self._snapshots = self._next
            self._next = None
            log.info("now on feed version %s", self.feed_version[:12])
            if old is not None and old is not self._snapshots:
                await old.close()
        batch = _batch_id(records)
        clock = time.perf_counter
        started = clock()
        if self._outbox is None or self._outbox.batch != batch:
            self._outbox = await self._compute(batch, records)
        outbox = self._outbox
        computed = clock()
        send = self.producer.send
        for topic, value, key in outbox.outgoing:
            await send(topic, value, key)
        sent = clock()
        await self.producer.flush()
        flushed = clock()
        if self._snapshots is not None:
            handled_at = time.monotonic()
            unsaved = self._unsaved
            for vehicle_id, (topic, partition, offset) in outbox.touched.items():
                if vehicle_id not in unsaved:
                    unsaved[vehicle_id] = (topic, partition, offset, handled_at)
            self._last_ping.update(outbox.last)
            for record in records:  # (in partition order: the last of each partition is its furthest)
                self._handled[(record.topic, record.partition)] = record.offset + 1
        self._outbox = None
        for phase, seconds in (
            ("compute", computed - started), ("send", sent - computed), ("flush", flushed - sent),
        ):
            metrics.PHASE_SECONDS.labels("eta", phase).observe(seconds)
        now = time.time()
        for received_at in outbox.received_at:
            metrics.PING_LATENCY_SECONDS.observe(max(0.0, now - received_at))

    async def checkpoint(self, final: bool = True) -> Offsets | None:
        """Save the snapshots of vehicles moved since their last save (their outputs are durable: each batch's
        were flushed before `handle` returned) and return the offsets that saved state covers; the loop runs this
        before it commits. Not `final`: only those longest unsaved, a share of them so that each is saved within
        SAVED_WITHIN_S (a fleet pinging every second is saved over those seconds, not all in one). `final`
        (stopping, or switching feed versions): all of them, and None, for everything handled.

        Not `final`, the save goes on beside the next batches: the states are pickled now, and written while the
        stage handles what comes next. The worker waited for it before (50 to 60 ms a second at 10,000 buses,
        most of it the Redis round trip), and every ping behind it waited too. So the offsets returned cover the
        saves finished by now: the one before this, which the next checkpoint waits for first. A save that
        failed puts its vehicles back among the unsaved and raises here, and the loop tries again."""
        if self._snapshots is None:
            return None
        started = time.perf_counter()
        await self._settle()
        unsaved = self._unsaved
        up_to = None
        if final or not unsaved:  # (nothing unsaved: all handled is covered, None says so)
            due = list(unsaved)
        else:
            up_to = self._saved_up_to()  # nothing is in flight now: all before these offsets is saved
            rounds = max(1.0, SAVED_WITHIN_S / CHECKPOINT_EVERY_S)
            overdue_before = time.monotonic() - SAVED_WITHIN_S
            overdue = sum(1 for _ in itertools.takewhile(lambda where: where[3] <= overdue_before, unsaved.values()))
            due = list(itertools.islice(unsaved, max(math.ceil(len(unsaved) / rounds), overdue)))
        if due:
            trackers, last_ping = self.engine.trackers, self._last_ping
            encoded = encode_snapshots({
                vid: Snapshot(trackers[vid].s, PingAt(*last_ping[vid]) if vid in last_ping else None)
                for vid in due if vid in trackers
            })
            taken = {vid: unsaved.pop(vid) for vid in due}
            pings = {vid: last_ping.pop(vid) for vid in due if vid in last_ping}
            self._saving = _Saving(asyncio.ensure_future(self._snapshots.save_encoded(encoded)), taken, pings)
            if final:
                await self._settle()
        metrics.PHASE_SECONDS.labels("eta", "snapshots").observe(time.perf_counter() - started)
        return up_to

    async def finish_saving(self) -> None:
        """Stopping: wait for the save in flight, if any (the loop's final checkpoint, when it runs, has)."""
        try:
            await self._settle()
        except Exception as exc:  # nothing lost: the offsets committed do not cover what it would have saved
            log.warning("the last tracker snapshots were not saved (%s): a restart handles their pings again", exc)

    async def _settle(self) -> None:
        """Wait for the save in flight; if it failed, its vehicles are unsaved again (they are the oldest) and
        its error is raised."""
        saving, self._saving = self._saving, None
        if saving is None:
            return
        try:
            await saving.task
        except Exception:
            back = saving.unsaved
            self._unsaved = {**back, **{vid: at for vid, at in self._unsaved.items() if vid not in back}}
            for vid, at in saving.last_ping.items():
                self._last_ping.setdefault(vid, at)  # a ping handled since is the newer: the next save takes it
            raise

    def _saved_up_to(self) -> Offsets:
        """Per partition handled, the first ping of a vehicle still unsaved (the oldest comes first in
        `_unsaved`), or, with none, the offset after the last handled: all before it is in saved snapshots."""
        up_to = dict(self._handled)
        open_partitions = set(up_to)
        for topic, partition, offset, _ in self._unsaved.values():
            if (topic, partition) in open_partitions:
                up_to[(topic, partition)] = offset
                open_partitions.discard((topic, partition))
                if not open_partitions:
                    break
        return up_to

    async def _restore(self, pings: list[Ping]) -> None:
        if self._snapshots is None:
            return
        trackers = self.engine.trackers
        unknown = {p.vehicle_id for p in pings if p.vehicle_id not in trackers}
        if not unknown:
            return
        restored = await self._snapshots.load(unknown)
        ctx = self.engine.ctx
        for vid, (state, covered) in restored.items():
            trackers[vid] = VehicleTracker(ctx, vid, state)
            if state.trip_id is not None and state.service_date is not None:
                ctx.claims[(state.service_date, state.trip_id)] = vid
            if covered is not None:
                self._covered[vid] = covered
        metrics.SNAPSHOT_LOADS.inc(len(restored))

    async def _compute(self, batch: tuple[str, int, int, int, int], records: Sequence[Record]) -> _Outbox:
        outbox = _Outbox(batch, [], {}, {}, [])
        if self._overrides is not None:
            self.engine.set_overrides(await self._overrides.current())
        parsed: list[tuple[Record, Ping | PingRejected]] = []
        for record in records:
            try:
                parsed.append((record, ping_from_message(record.value)))
            except PingRejected as exc:
                parsed.append((record, exc))
        await self._restore([p for _, p in parsed if isinstance(p, Ping)])

        out = outbox.outgoing
        predictor = self._predict
        predictor.walk_allowance = self._walks.grant()
        held_back = predictor.walks_held_back
        # counted per batch: a metric's inc costs about 0.4 us under its lock, and a ping made four of them
        states = late = events = sets = skipped = 0
        covered = self._covered
        rejected: Counter[str] = Counter()
        for record, ping in parsed:
            if isinstance(ping, PingRejected):
                out.append(self._reject(record, ping.code, str(ping)))
                continue
            if covered and ping.vehicle_id in covered:
                at = covered[ping.vehicle_id]
                if record.offset <= at.offset and record.partition == at.partition and record.topic == at.topic:
                    skipped += 1
                    continue
                del covered[ping.vehicle_id]  # past what the snapshot took: from here on, pings are new to it
            try:
                output = self.engine.process(ping)
                if output.events:
                    predictor.observe(output.events)  # learn from the arrivals before predicting
                # the clock is when ingest received the fix (the server's, not the device's clock, nor this
                # stage's, which runs behind after an outage): a fix the device held back for minutes does not
                # put the stops passed meanwhile on the boards
                prediction = (
                    predictor.publish(output.state, ping.received_at) if output.state is not None else None
                )
            except Exception as exc:  # a bug must cost one ping, never the worker
                log.exception("engine failed on a ping of %s", ping.vehicle_id)
                out.append(self._reject(record, "internal_error", f"{type(exc).__name__}: {exc}"))
                continue
            key = ping.vehicle_id
            if key not in outbox.touched:
                outbox.touched[key] = (record.topic, record.partition, record.offset)
            outbox.last[key] = (record.topic, record.partition, record.offset)
            if ping.received_at is not None:
                outbox.received_at.append(ping.received_at)
            if output.rejected_reason is not None:
                rejected[output.rejected_reason] += 1
            if output.state is not None:
                states += 1
                out.append((messages.TOPIC_VEHICLE_STATES, messages.encode(output.state), key))
            elif output.past is not None:  # a late fix: stored as history; the live store keeps the newer state
                late += 1
                out.append((messages.TOPIC_VEHICLE_STATES, messages.encode(output.past), key))
            for event in output.events:
                events += 1
                out.append((messages.TOPIC_STOP_EVENTS, messages.encode(event), key))
            if prediction is not None and prediction.stops:
                sets += 1
                out.append((messages.TOPIC_PREDICTIONS, messages.encode(prediction), key))
        self._walks.spent_down_to(predictor.walk_allowance)
        metrics.PINGS_IN.inc(len(parsed))
        for counter, count in (
            (metrics.STATES_OUT, states), (metrics.PINGS_PLACED_LATE, late),
            (metrics.STOP_EVENTS_OUT, events), (metrics.PREDICTIONS_OUT, sets),
            (metrics.PINGS_REPLAYED, skipped),
        ):
            if count:
                counter.inc(count)
        for reason, count in rejected.items():
            metrics.PINGS_REJECTED.labels(reason).inc(count)
        metrics.WALKS_HELD_BACK.inc(predictor.walks_held_back - held_back)
        return outbox

    @staticmethod
    def _reject(record: Record, reason: str, detail: str) -> Outgoing:
        metrics.PINGS_REJECTED.labels(reason).inc()
        rejected = RejectedPing(
            payload=record.value.decode("utf-8", errors="replace")[:4096],
            reason=reason,
            detail=detail,
            received_at=time.time(),
        )
        return (messages.TOPIC_PINGS_REJECTED, messages.encode(rejected), None)
