"""Kafka adapters of the bus contract, on aiokafka.

Producer: acks=all with idempotence, so `flush()` returning means every message is on the broker's
in-sync replicas. Consumer: no auto-commit; the caller commits after its outputs are durable.

`topic_prefix` namespaces every topic of one deployment (or one test run) on a shared broker; the rest of
the code only ever sees the plain names of `smartbus.messages`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
from collections.abc import Callable, Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner, murmur2
from aiokafka.producer.message_accumulator import BatchBuilder

from smartbus import metrics
from smartbus.bus.base import Offsets, Record
from smartbus.errors import ServiceUnavailable


class CachingPartitioner:
    """Kafka's default partitioner (murmur2 of the key, as the Java client and aiokafka do), remembering each key's
    hash: aiokafka's murmur2 is pure Python, and hashing every vehicle id again for each of its messages was a
    twentieth of the ETA worker's CPU. A fleet has a bounded set of ids; the cache is emptied if it outgrows that."""

    MAX_KEYS = 200_000

    def __init__(self) -> None:
        self._hashes: dict[bytes, int] = {}

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:
            return DefaultPartitioner()(key, all_partitions, available)  # type: ignore[no-any-return]
        hashed = self._hashes.get(key)
        if hashed is None:
            if len(self._hashes) >= self.MAX_KEYS:
                self._hashes.clear()
            hashed = self._hashes[key] = murmur2(key) & 0x7FFFFFFF
        return all_partitions[hashed % len(all_partitions)]


class KafkaProducer:
    """acks=all, idempotent; `send()` queues, `flush()` returns once every queued message is durable or raises.

    Never blocks for ever on a broker that is away: starting is retried lazily at the next `send()` (an
    aiokafka producer whose start() failed has no sender task, and its flush() would wait for good), and a
    flush gives up after `flush_timeout_s` with ServiceUnavailable, so the caller's retry loop stays in charge.

    Messages are gathered here into one batch per partition (aiokafka's batch API: create_batch, send_batch)
    and handed over when a batch is full or at `flush()`. aiokafka's own send() costs about 8 us of CPU a
    message (a coroutine, a future and a metadata wait each); a batch append about 2 us. Every caller sends a
    batch of messages and then flushes, so nothing waits longer for it. The partition is the one aiokafka's
    send() would choose (CachingPartitioner, on the same metadata).
    """

    def __init__(
        self,
        bootstrap: str,
        *,
        topic_prefix: str = "",
        # Every caller sends a batch then flushes, and a flush waits out the linger: 20 ms of it cost the ETA
        # worker ~20 ms a batch (median flush 23 ms against 6 ms at 5 ms, 100 messages on the local broker). The
        # ingest edge's requests, sent side by side, share a produce request within it; a lone sender that hands
        # over whole batches (the ETA worker, the GTFS-rt poller) passes 0.
        linger_ms: int = 5,
        max_batch_bytes: int = 256 * 1024,
        request_timeout_ms: int = 30_000,
    ) -> None:
        self._prefix = topic_prefix
        self._settings = {
            "bootstrap_servers": bootstrap,
            "linger_ms": linger_ms,
            "max_batch_size": max_batch_bytes,
            "request_timeout_ms": request_timeout_ms,
        }
        # A batch expires undelivered after request_timeout_ms; a flush waiting twice that long is stuck.
        self._flush_timeout_s = 2 * request_timeout_ms / 1000 + 5
        self._producer: AIOKafkaProducer | None = None
        # aiokafka's flush() waits for delivery but does not raise when a batch expired undelivered (broker
        # down longer than request_timeout_ms); keeping the futures lets flush() tell the caller.
        self._in_flight: list[asyncio.Future[object]] = []
        self._partitioner = CachingPartitioner()
        self._open: dict[tuple[str, int], BatchBuilder] = {}  # (topic, partition): the batch being filled
        self._ready: collections.deque[tuple[tuple[str, int], BatchBuilder]] = collections.deque()  # to hand over
        self._starting = asyncio.Lock()
        self._submitting = asyncio.Lock()  # batches are handed to aiokafka one at a time, in the order they filled
        self._partitions: dict[str, list[int]] = {}  # topic: its partitions, as of this flush's first send
        # Callers may share the producer (the ingest edge's requests, each its own asyncio task). A failure drops
        # every batch not yet delivered, whoever sent it, and starts a new generation; each task remembers the
        # generation of its first send since its last flush, so that its flush raises when its messages may have
        # been among those dropped, even if another task's flush met the failure.
        self._generation = 0
        self._sent_in: contextvars.ContextVar[int | None] = contextvars.ContextVar(
            f"kafka_producer_{id(self)}_sent_in", default=None
        )

    def _make(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            **self._settings, acks="all", enable_idempotence=True, compression_type=None, partitioner=self._partitioner
        )

    async def start(self) -> None:
        await self._started()

    async def _started(self) -> AIOKafkaProducer:
        if self._producer is not None:
            return self._producer
        async with self._starting:  # callers sending at once (the ingest edge's requests) start one producer
            if self._producer is not None:
                return self._producer
            return await self._start_one()

    async def _start_one(self) -> AIOKafkaProducer:
        producer = self._make()
        try:
            await producer.start()
        except KafkaError as exc:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), 5.0)
            raise ServiceUnavailable(f"Kafka producer could not connect: {exc}") from exc
        self._producer = producer
        return producer

    async def stop(self) -> None:
        producer = self._producer
        if producer is None:
            return
        with contextlib.suppress(ServiceUnavailable):
            await self._submit_open(producer)  # what was sent and not flushed still goes, as before
        if self._is_current(producer):  # not discarded by a failure meanwhile (then it is stopped already)
            self._producer = None
            await producer.stop()

    async def send(self, topic: str, value: bytes, key: str | None = None) -> None:
        # send() only queues (and waits when aiokafka's queue is full: back-pressure); flush() makes it durable.
        producer = await self._started()
        if self._sent_in.get() is None:
            self._sent_in.set(self._generation)
        name = self._prefix + topic
        key_bytes = key.encode() if key is not None else None
        try:
            partitions = self._partitions.get(name)
            if partitions is None:  # waits for the topic's metadata, as aiokafka's send() does
                partitions = self._partitions[name] = sorted(await producer.partitions_for(name))
            slot = (name, self._partitioner(key_bytes, partitions, partitions))
            builder = self._open.get(slot)
            if builder is None:
                builder = self._open[slot] = producer.create_batch()
            if builder.append(key=key_bytes, value=value, timestamp=None) is None:
                # Full: it joins the queue of batches to hand over, and a fresh one takes this message (aiokafka's
                # builder takes any first one), before anything awaits: no other sender appends to the full one,
                # and the queue keeps each partition's batches in the order they filled.
                self._ready.append((slot, builder))
                self._open[slot] = producer.create_batch()
                self._open[slot].append(key=key_bytes, value=value, timestamp=None)
                await self._submit_ready(producer)
        except KafkaError as exc:  # no metadata or no room within request_timeout_ms: the broker is away
            await self._discard()  # the caller sends its whole batch again
            self._sent_in.set(None)  # told so now: what it sends again is of the new generation
            raise ServiceUnavailable(f"Kafka did not accept a message: {exc!r}") from exc
        except ServiceUnavailable:
            self._sent_in.set(None)
            raise

    async def _submit_ready(self, producer: AIOKafkaProducer) -> None:
        """Hand the queued batches to aiokafka, oldest first, one caller at a time."""
        async with self._submitting:
            while self._ready:
                if not self._is_current(producer):
                    raise ServiceUnavailable("the Kafka producer was replaced after a failure: send again")
                (topic, partition), builder = self._ready[0]
                self._in_flight.append(await producer.send_batch(builder, topic, partition=partition))
                self._ready.popleft()

    async def _submit_open(self, producer: AIOKafkaProducer) -> None:
        self._ready.extend(self._open.items())  # after any full ones queued before: they filled first
        self._open = {}
        self._partitions.clear()  # the next flush's sends see partitions added since
        try:
            await self._submit_ready(producer)
        except KafkaError as exc:
            await self._discard()
            raise ServiceUnavailable(f"Kafka did not accept a batch: {exc!r}") from exc

    async def flush(self) -> None:
        """Every message sent before this call is durable when it returns, or it raises. Callers may share the
        producer (the ingest edge's requests do): a flush waits for every batch submitted before it, its own and
        others', and leaves them for the flushes that run beside it to wait for too."""
        sent_in = self._sent_in.get()
        self._sent_in.set(None)
        if sent_in is not None and sent_in != self._generation:
            raise ServiceUnavailable("Kafka failed since these messages were sent, and may have lost them: send again")
        producer = self._producer
        if producer is None:
            return
        await self._submit_open(producer)
        futures = list(self._in_flight)
        if not futures:
            return
        try:
            results = await asyncio.wait_for(
                asyncio.gather(*(asyncio.shield(f) for f in futures), return_exceptions=True),
                self._flush_timeout_s,
            )
        except TimeoutError as exc:
            await self._discard()
            raise ServiceUnavailable(
                f"Kafka did not take {len(futures)} batches within {self._flush_timeout_s:.0f} s"
            ) from exc
        done = set(futures)
        self._in_flight = [f for f in self._in_flight if f not in done]
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            # After lost batches an idempotent producer's sequence numbers no longer match the broker's
            # (OutOfOrderSequenceNumber on every later send, for ever): a fresh producer, with a new
            # producer id, is the way back. The caller resends the batch through it.
            if self._is_current(producer):
                await self._discard()
            raise ServiceUnavailable(f"{len(failed)} of {len(futures)} batches not delivered: {failed[0]!r}")

    def _is_current(self, producer: AIOKafkaProducer) -> bool:
        return self._producer is producer

    async def _discard(self) -> None:
        """Drop the current producer and what was sent through it; the next send() starts a fresh one."""
        self._generation += 1
        self._in_flight.clear()
        self._open.clear()
        self._ready.clear()
        self._partitions.clear()
        producer, self._producer = self._producer, None
        if producer is not None:
            # Its stop() would wait for batches it can no longer deliver: give it moments only.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), 5.0)


class KafkaConsumer:
    def __init__(
        self,
        bootstrap: str,
        topics: Sequence[str],
        group: str,
        *,
        topic_prefix: str = "",
        client_id: str | None = None,
        on_assigned: Callable[[], None] | None = None,
    ) -> None:
        """`on_assigned` runs (inside `getmany`, between batches) whenever the group hands this consumer a
        new set of partitions: a stage holding per-key state drops what it may no longer own."""
        self._prefix = topic_prefix
        self._topics = [topic_prefix + topic for topic in topics]
        self._group = topic_prefix + group
        self._listener = _Assignments(on_assigned)
        self._next_offset: dict[TopicPartition, int] = {}
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=topic_prefix + group,  # the prefix names a deployment: its groups are its own too
            client_id=client_id or group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=5000,
            fetch_max_wait_ms=100,
            session_timeout_ms=10_000,
            heartbeat_interval_ms=3_000,
        )

    async def start(self) -> None:
        try:
            await self._consumer.start()
        except KafkaError as exc:
            await self._consumer.stop()
            raise ServiceUnavailable(f"Kafka consumer could not connect: {exc}") from exc
        self._consumer.subscribe(self._topics, listener=self._listener)

    async def stop(self) -> None:
        await self._consumer.stop()

    async def getmany(self, timeout_s: float, max_records: int) -> Sequence[Record]:
        batches: dict[TopicPartition, list[object]] = await self._consumer.getmany(
            timeout_ms=int(timeout_s * 1000), max_records=max_records
        )
        records: list[Record] = []
        for tp, messages in batches.items():
            if messages:
                self._next_offset[tp] = messages[-1].offset + 1  # type: ignore[attr-defined]
            topic = tp.topic.removeprefix(self._prefix)
            records.extend(
                Record(topic, tp.partition, m.offset, m.key, m.value, m.timestamp / 1000)  # type: ignore[attr-defined]
                for m in messages
            )
        self._record_lag()
        return records

    def _record_lag(self) -> None:
        """Consumer lag per partition (high-water mark minus next offset), as the fetcher last saw it.

        Best effort and never raising: it runs after getmany() has taken records, which an exception here
        would drop from the batch (and a later commit would then skip them).
        """
        assigned = self._consumer.assignment()
        for tp in list(self._next_offset):
            if tp not in assigned:  # moved to another member at a rebalance
                del self._next_offset[tp]
                continue
            try:
                highwater = self._consumer.highwater(tp)
            except Exception:  # noqa: BLE001 (revoked between the two calls: skip it this time)
                continue
            if highwater is not None:
                metrics.CONSUMER_LAG.labels(self._group, tp.topic.removeprefix(self._prefix), str(tp.partition)).set(
                    max(0, highwater - self._next_offset[tp])
                )

    async def commit(self, offsets: Offsets | None = None) -> None:
        if offsets is None:
            # the positions of everything getmany() has returned (aiokafka tracks them)
            await self._consumer.commit()
            return
        assigned = self._consumer.assignment()  # a partition moved to another member is its to commit now
        chosen = {
            tp: offset
            for (topic, partition), offset in offsets.items()
            if (tp := TopicPartition(self._prefix + topic, partition)) in assigned
        }
        if chosen:
            await self._consumer.commit(chosen)


class _Assignments(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, on_assigned: Callable[[], None] | None) -> None:
        self._on_assigned = on_assigned

    async def on_partitions_revoked(self, revoked: object) -> None:
        pass

    async def on_partitions_assigned(self, assigned: object) -> None:
        if self._on_assigned is not None:
            self._on_assigned()


async def ensure_topics(bootstrap: str, topics: Sequence[str], partitions: int, *, topic_prefix: str = "") -> list[str]:
    """Create the topics that do not exist yet; returns the names created.

    Consumers subscribe to a fixed list and learn of topics created later only at their next metadata
    refresh (minutes), so every process makes sure its topics exist before it starts consuming.
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [topic_prefix + t for t in topics if topic_prefix + t not in existing]
        if missing:
            try:
                await admin.create_topics(
                    [NewTopic(name, num_partitions=partitions, replication_factor=1) for name in missing]
                )
            except TopicAlreadyExistsError:
                pass  # another process made them first
            await _wait_until_served(bootstrap, missing)
        return missing
    except KafkaError as exc:
        raise ServiceUnavailable(f"Kafka admin could not reach {bootstrap}: {exc}") from exc
    finally:
        await admin.close()


async def _wait_until_served(bootstrap: str, topics: Sequence[str], timeout_s: float = 30.0) -> None:
    """Return once the broker answers offset requests for every partition of freshly created topics.

    For a moment after creation the broker answers NotLeaderForPartition; a consumer that starts in that
    moment can fail its first offset look-up and lose its place at the start of the partition.
    """
    import asyncio
    import time

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                partitions = [
                    TopicPartition(topic, p) for topic in topics for p in (consumer.partitions_for_topic(topic) or ())
                ]
                if partitions and len({tp.topic for tp in partitions}) == len(topics):
                    await consumer.end_offsets(partitions)
                    await consumer.beginning_offsets(partitions)
                    return
                await consumer._client.force_metadata_update()
            except KafkaError:
                pass
            if time.monotonic() > deadline:
                raise ServiceUnavailable(f"Kafka did not start serving {', '.join(topics)} within {timeout_s:.0f} s")
            await asyncio.sleep(0.2)
    finally:
        await consumer.stop()
