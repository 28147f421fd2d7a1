"""Our Kafka producer on the real broker, and on a broker that is not there.

A producer must never wait for ever: a worker whose flush hangs holds its batch uncommitted and stops
every vehicle it owns (this is how a 30 s Kafka outage once wedged a worker for good).
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from smartbus.bus.kafka import KafkaProducer, ensure_topics
from smartbus.errors import ServiceUnavailable
from smartbus.settings import Settings
from tests.pipeline.harness import free_port

pytestmark = pytest.mark.integration


async def _fresh_topic(partitions: int) -> str:
    """A topic "t" under a prefix of its own; returns the prefix."""
    prefix = f"producer-{uuid.uuid4().hex[:8]}."
    await ensure_topics(Settings().kafka_bootstrap, ["t"], partitions, topic_prefix=prefix)
    return prefix


async def _read_back(prefix: str, partitions: int, count: int) -> list[tuple[int, bytes | None, bytes]]:
    """(partition, key, value) of what topic "t" holds, partition by partition in the order read: until `count`
    are read, or 20 reads have come back short."""
    consumer = AIOKafkaConsumer(bootstrap_servers=Settings().kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        assigned = [TopicPartition(prefix + "t", p) for p in range(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        got: list[tuple[int, bytes | None, bytes]] = []
        for _ in range(20):
            if len(got) >= count:
                break
            for tp, records in (await consumer.getmany(*assigned, timeout_ms=5000, max_records=1000)).items():
                got += [(tp.partition, record.key, record.value) for record in records]
        return got
    finally:
        await consumer.stop()


async def test_messages_flushed_are_on_the_broker_in_order() -> None:
    prefix = await _fresh_topic(1)
    producer = KafkaProducer(Settings().kafka_bootstrap, topic_prefix=prefix)
    try:
        for n in range(50):
            await producer.send("t", f"m{n}".encode(), key="bus-1")
        await producer.flush()
    finally:
        await producer.stop()

    assert [value for _, _, value in await _read_back(prefix, 1, 50)] == [f"m{n}".encode() for n in range(50)]


async def test_an_absent_broker_gives_service_unavailable_at_each_try_and_never_a_hang() -> None:
    producer = KafkaProducer(f"127.0.0.1:{free_port()}", request_timeout_ms=1_000)
    for _attempt in range(3):  # a caller's retry loop: each try fails fast and cleanly
        with pytest.raises(ServiceUnavailable):
            await asyncio.wait_for(producer.send("t", b"x", key="bus-1"), 30)
        await asyncio.wait_for(producer.flush(), 30)  # nothing was queued: returns at once
    await producer.stop()


async def test_each_key_s_messages_land_in_its_default_partition_in_order_over_many_batches() -> None:
    from aiokafka.partitioner import murmur2

    prefix = await _fresh_topic(3)
    keys = [f"bus-{k}" for k in range(7)]
    # batches of 2 KB: some 20 of them per key's partition, handed over as they fill and at each flush
    producer = KafkaProducer(Settings().kafka_bootstrap, topic_prefix=prefix, max_batch_bytes=2048)
    try:
        for flush in range(3):
            for n in range(100):
                await producer.send("t", f"{flush}-{n:03d}".encode() + b"." * 100, key=keys[n % len(keys)])
            await producer.flush()
        await producer.send("t", b"unflushed" + b"." * 100, key=keys[0])  # stop() delivers what was sent
    finally:
        await producer.stop()

    got: dict[str, list[tuple[int, bytes]]] = {}
    for partition, record_key, value in await _read_back(prefix, 3, 301):
        assert record_key is not None
        got.setdefault(record_key.decode(), []).append((partition, value[:9]))
    for k, key in enumerate(keys):
        expected = [f"{flush}-{n:03d}".encode() for flush in range(3) for n in range(100) if n % len(keys) == k]
        expected += [b"unflushed"] if k == 0 else []
        assert [value.rstrip(b".") for _, value in got[key]] == expected
        assert {partition for partition, _ in got[key]} == {(murmur2(key.encode()) & 0x7FFFFFFF) % 3}


async def test_callers_sharing_the_producer_each_get_their_messages_delivered_once_in_order() -> None:
    # the ingest edge's requests share one producer: batches fill while other callers send and flush
    prefix = await _fresh_topic(1)
    producer = KafkaProducer(Settings().kafka_bootstrap, topic_prefix=prefix, max_batch_bytes=1024)

    async def caller(name: str) -> None:
        for n in range(150):
            await producer.send("t", f"{name}-{n:03d}".encode() + b"." * 60, key="bus-1")
            if n % 50 == 49:
                await producer.flush()
            await asyncio.sleep(0)

    try:
        await asyncio.gather(caller("a"), caller("b"), caller("c"))
    finally:
        await producer.stop()

    values = [value[:5] for _, _, value in await _read_back(prefix, 1, 450)]
    assert len(values) == 450
    for name in "abc":
        assert [v for v in values if v.startswith(name.encode())] == [f"{name}-{n:03d}".encode() for n in range(150)]


async def test_a_caller_whose_messages_a_failure_may_have_dropped_is_told_even_if_another_met_it() -> None:
    prefix = await _fresh_topic(1)
    producer = KafkaProducer(Settings().kafka_bootstrap, topic_prefix=prefix)
    sent = asyncio.Event()
    failed = asyncio.Event()

    async def request_b() -> None:
        await producer.send("t", b"from b", key="bus-2")
        sent.set()
        await failed.wait()
        with pytest.raises(ServiceUnavailable):  # its message went with the producer request a saw fail
            await producer.flush()
        await producer.send("t", b"from b again", key="bus-2")  # the device sends again: this time it holds
        await producer.flush()

    async def request_a() -> None:
        await sent.wait()
        await producer.send("t", b"from a", key="bus-1")
        await producer._discard()  # what a failure seen by request a's send or flush does
        failed.set()

    try:
        await asyncio.gather(request_a(), request_b())
    finally:
        await producer.stop()
