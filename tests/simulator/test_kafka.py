"""The simulator's Kafka sink against the real broker (`smartbus services up`)."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest

from simulator.config import SimConfig
from simulator.generator import plan_day, simulate
from simulator.kafka_sink import kafka_send
from simulator.records import Delivery
from simulator.sinks import publish
from smartbus.errors import ServiceUnavailable
from smartbus.messages import Ping, decode_as
from smartbus.settings import Settings
from tests.simulator.conftest import A_WEDNESDAY, edge_network

pytestmark = pytest.mark.integration


async def test_every_ping_reaches_kafka_keyed_by_vehicle() -> None:
    from aiokafka import AIOKafkaConsumer

    settings = Settings()
    topic = f"sim-test-{uuid.uuid4().hex[:8]}"
    plan = plan_day(edge_network("out_and_back"), A_WEDNESDAY, SimConfig(ping_interval_s=10.0))
    expected = Counter(e.ping.vehicle_id for e in simulate(plan) if isinstance(e, Delivery))
    async with kafka_send(settings.kafka_bootstrap, topic) as send:
        sent = await publish(simulate(plan), send)
    assert sent == sum(expected.values()) > 100

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=settings.kafka_bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    received: Counter[str] = Counter()
    try:
        while sum(received.values()) < sent:
            batches = await consumer.getmany(timeout_ms=10_000)
            if not batches:
                break
            for records in batches.values():
                for record in records:
                    ping = decode_as(record.value, Ping)
                    assert record.key == ping.vehicle_id.encode()
                    received[ping.vehicle_id] += 1
    finally:
        await consumer.stop()
    assert received == expected


async def test_an_unreachable_broker_is_a_clear_retriable_error() -> None:
    with pytest.raises(ServiceUnavailable) as caught:
        async with kafka_send("127.0.0.1:1", "nowhere"):
            pass
    assert caught.value.retriable
