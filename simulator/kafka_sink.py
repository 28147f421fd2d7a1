"""Kafka as a publish target: an AIOKafkaProducer wrapped as the `send(key, value)` the publisher takes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaProducer

from simulator.sinks import Send
from smartbus.errors import ServiceUnavailable
from smartbus.messages import TOPIC_PINGS


@asynccontextmanager
async def kafka_send(bootstrap: str, topic: str = TOPIC_PINGS) -> AsyncIterator[Send]:
    """Yields a `send` that queues each message (never waiting per message); flushes and stops on exit."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    try:
        await producer.start()
    except Exception as exc:  # aiokafka raises its own KafkaConnectionError and friends
        await producer.stop()
        raise ServiceUnavailable(f"cannot reach Kafka at {bootstrap}: {exc}") from exc

    async def send(key: str, value: bytes) -> None:
        await producer.send(topic, value=value, key=key.encode())

    try:
        yield send
        await producer.flush()
    finally:
        await producer.stop()
