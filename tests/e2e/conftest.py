"""The two stacks the end-to-end test runs on: the real services, and the embedded default."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from eta.network import Network, load_network
from smartbus.bus.base import Consumer, Producer
from smartbus.live import LiveStore
from smartbus.settings import BUNDLED_FEED, Settings


@dataclass
class Stack:
    name: str
    make_producer: Callable[[], Producer]
    make_consumer: Callable[[Sequence[str], str], Consumer]
    database_url: str
    live: LiveStore


@pytest.fixture(scope="session")
def cairns_network(tmp_path_factory: pytest.TempPathFactory) -> Network:
    return load_network(BUNDLED_FEED, tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def embedded_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from smartbus.storage.embedded import embedded_postgres

    with embedded_postgres(Path(tmp_path_factory.mktemp("embedded-pg")) / "data", delete=True) as url:
        yield url


def _services_stack() -> Stack:
    from smartbus.bus.kafka import KafkaConsumer, KafkaProducer
    from smartbus.live.redis_store import RedisLiveStore

    settings = Settings()
    prefix = f"e2e-{uuid.uuid4().hex[:8]}."  # fresh topics: earlier runs' messages stay out of this one
    return Stack(
        "services",
        lambda: KafkaProducer(settings.kafka_bootstrap, topic_prefix=prefix),
        lambda topics, group: KafkaConsumer(settings.kafka_bootstrap, topics, group, topic_prefix=prefix),
        settings.database_url,
        RedisLiveStore(settings.redis_url, namespace=prefix.rstrip(".")),
    )


def _embedded_stack(database_url: str) -> Stack:
    from smartbus.bus.memory import MemoryBus
    from smartbus.live.memory_store import MemoryLiveStore

    bus = MemoryBus()
    return Stack("embedded", bus.producer, bus.consumer, database_url, MemoryLiveStore())


@pytest.fixture(params=["embedded", pytest.param("services", marks=pytest.mark.integration)])
async def stack(request: pytest.FixtureRequest) -> AsyncIterator[Stack]:
    if request.param == "services":
        built = _services_stack()
    else:
        built = _embedded_stack(request.getfixturevalue("embedded_database"))
    yield built
    await built.live.close()
