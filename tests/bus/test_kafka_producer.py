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


async def test_messages_flushed_are_on_the_broker_in_order() -> None:
    settings = Settings()
    prefix = f"producer-{uuid.uuid4().hex[:8]}."
    await ensure_topics(settings.kafka_bootstrap, ["t"], 1, topic_prefix=prefix)
    producer = KafkaProducer(settings.kafka_bootstrap, topic_prefix=prefix)
    try:
        for n in range(50):
            await producer.send("t", f"m{n}".encode(), key="bus-1")
        await producer.flush()
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partition = TopicPartition(prefix + "t", 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        batch = await consumer.getmany(partition, timeout_ms=5000, max_records=100)
        assert [m.value for m in batch[partition]] == [f"m{n}".encode() for n in range(50)]
    finally:
        await consumer.stop()


async def test_an_absent_broker_gives_service_unavailable_at_each_try_and_never_a_hang() -> None:
    producer = KafkaProducer(f"127.0.0.1:{free_port()}", request_timeout_ms=1_000)
    for _attempt in range(3):  # a caller's retry loop: each try fails fast and cleanly
        with pytest.raises(ServiceUnavailable):
            await asyncio.wait_for(producer.send("t", b"x", key="bus-1"), 30)
        await asyncio.wait_for(producer.flush(), 30)  # nothing was queued: returns at once
    await producer.stop()
