"""The two stacks the end-to-end test runs on: the real services, and the embedded default."""

from __future__ import annotations

import shutil
import tempfile
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
    topic_prefix: str = ""


@pytest.fixture(scope="session")
def cairns_network(tmp_path_factory: pytest.TempPathFactory) -> Network:
    return load_network(BUNDLED_FEED, tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def embedded_database() -> Iterator[str]:
    from smartbus.storage.embedded import embedded_postgres

    # Not under pytest's basetemp: pytest resets that to mode 0700, which the server's user cannot traverse.
    data_dir = Path(tempfile.mkdtemp(prefix="smartbus-test-pg-"))
    try:
        with embedded_postgres(data_dir / "data", delete=True) as url:
            yield url
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def service_database() -> Iterator[str]:
    """A fresh database on the PostgreSQL that `smartbus services` runs, dropped afterwards.

    Fresh, because stop events are keyed by (trip, stop, service day): an earlier run that drove the same
    trip today would own those rows, and this run's would be (rightly) taken as duplicates.
    """
    from tests.storage.conftest import fresh_database

    # Not the storage tests' fallback to an embedded server: this stack is the real services or nothing.
    with fresh_database(Settings().database_url, "smartbus_e2e") as url:
        yield url


def _services_stack(database_url: str) -> Stack:
    from smartbus.bus.kafka import KafkaConsumer, KafkaProducer
    from smartbus.live.redis_store import RedisLiveStore

    settings = Settings()
    prefix = f"e2e-{uuid.uuid4().hex[:8]}."  # fresh topics: earlier runs' messages stay out of this one
    return Stack(
        "services",
        lambda: KafkaProducer(settings.kafka_bootstrap, topic_prefix=prefix),
        lambda topics, group: KafkaConsumer(settings.kafka_bootstrap, topics, group, topic_prefix=prefix),
        database_url,
        RedisLiveStore(settings.redis_url, namespace=prefix.rstrip(".")),
        prefix,
    )


def _embedded_stack(database_url: str) -> Stack:
    from smartbus.bus.memory import MemoryBus
    from smartbus.live.memory_store import MemoryLiveStore

    bus = MemoryBus()
    return Stack("embedded", bus.producer, bus.consumer, database_url, MemoryLiveStore())


@pytest.fixture(params=["embedded", pytest.param("services", marks=pytest.mark.integration)])
async def stack(request: pytest.FixtureRequest) -> AsyncIterator[Stack]:
    if request.param == "services":
        from smartbus.bus.kafka import ensure_topics
        from smartbus.messages import ALL_TOPICS

        built = _services_stack(request.getfixturevalue("service_database"))
        settings = Settings()
        await ensure_topics(settings.kafka_bootstrap, ALL_TOPICS, 3, topic_prefix=built.topic_prefix)
    else:
        built = _embedded_stack(request.getfixturevalue("embedded_database"))
    yield built
    await built.live.close()
