from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

from smartbus.live.memory_store import MemoryLiveStore
from smartbus.live.redis_store import BOARDS_CHANNEL, RedisLiveStore
from smartbus.live.store import DEFAULT_BOARD_TTL_S, DEFAULT_VEHICLE_TTL_S, STOP_CHANNEL_PREFIX
from smartbus.settings import Settings

StoreFactory = Callable[..., MemoryLiveStore | RedisLiveStore]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
async def make_store(request: pytest.FixtureRequest) -> AsyncIterator[StoreFactory]:
    """Builds stores of one kind; a Redis store gets a namespace of its own, removed afterwards."""
    created: list[MemoryLiveStore | RedisLiveStore] = []
    namespace = f"test-{uuid.uuid4().hex[:12]}"
    url = Settings().redis_url

    def make(
        vehicle_ttl_s: float = DEFAULT_VEHICLE_TTL_S, board_ttl_s: float = DEFAULT_BOARD_TTL_S
    ) -> MemoryLiveStore | RedisLiveStore:
        store: MemoryLiveStore | RedisLiveStore
        if request.param == "memory":
            store = MemoryLiveStore(vehicle_ttl_s=vehicle_ttl_s, board_ttl_s=board_ttl_s)
        else:
            store = RedisLiveStore(url, namespace=namespace, vehicle_ttl_s=vehicle_ttl_s, board_ttl_s=board_ttl_s)
        created.append(store)
        return store

    if request.param == "redis":
        client = aioredis.Redis.from_url(url)
        try:
            await client.ping()
        except OSError as exc:
            pytest.fail(f"Redis at {url} is not up (start it with `smartbus services up`): {exc}")
    yield make
    for store in created:
        await store.close()
    if request.param == "redis":
        keys = [k async for k in client.scan_iter(match=f"{namespace}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


class Collector:
    """Runs one subscription in the background and keeps what it receives."""

    def __init__(self, store: MemoryLiveStore | RedisLiveStore, channels: list[str]) -> None:
        self.store = store
        self.messages: list[tuple[str, bytes]] = []
        self._arrived = asyncio.Event()
        self._task = asyncio.create_task(self._run(channels))

    async def _run(self, channels: list[str]) -> None:
        async for message in self.store.subscribe(channels):
            self.messages.append(message)
            self._arrived.set()

    async def ready(self, probe_channel: str) -> None:
        """Publish probes until one comes back, so no later publish can race ahead of the subscription."""
        for _ in range(500):
            if isinstance(self.store, MemoryLiveStore):
                self.store._publish(probe_channel, b"probe")
            elif probe_channel.startswith(STOP_CHANNEL_PREFIX):  # stop channels travel as ids on one channel
                stop_id = probe_channel.removeprefix(STOP_CHANNEL_PREFIX)
                await self.store._redis.publish(f"{self.store._ns}:{BOARDS_CHANNEL}", stop_id)
            else:
                await self.store._redis.publish(f"{self.store._ns}:{probe_channel}", b"probe")
            await asyncio.sleep(0.01)
            if any(channel == probe_channel for channel, _ in self.messages):
                self.messages.clear()
                return
        raise AssertionError("subscription never became active")

    async def wait_for(self, count: int) -> list[tuple[str, bytes]]:
        async with asyncio.timeout(5):
            while len(self.messages) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.messages

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
