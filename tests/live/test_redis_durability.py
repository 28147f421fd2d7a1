"""What the Redis live store writes to Redis's append-only file: nothing. The live state is rebuilt from the stream
(a bus's next ping, its next prediction set), and at 10,000 pings/s writing it to disk cost more of Redis's time
than storing it. Operators' notices, written with plain commands, still go to the file (tests/services)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from smartbus.live.redis_store import RedisLiveStore
from smartbus.messages import PredictionSet, StopEvent, StopPrediction, VehicleState
from smartbus.settings import Settings

pytestmark = pytest.mark.integration

T0 = 1_700_000_000.0


@pytest.fixture
async def client() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(Settings().redis_url)
    yield client
    await client.aclose()


async def _aof_size_and_forks(client: aioredis.Redis) -> tuple[int, int]:
    persistence = await client.info("persistence")
    stats = await client.info("stats")
    return int(persistence.get("aof_current_size", -1)), int(stats["total_forks"])


async def _write_live_state(store: RedisLiveStore) -> None:
    for step in range(20):
        made_at = T0 + step
        await store.put_states([
            VehicleState(vehicle_id=f"V{k}", timestamp=made_at, latitude=-16.9, longitude=145.7, status="in_transit")
            for k in range(20)
        ])
        await store.put_predictions([
            PredictionSet(vehicle_id=f"V{k}", made_at=made_at, stops=tuple(
                StopPrediction(f"T{k}", "20140601", f"S{n}", n, made_at + 60 * n, None, "schedule", 30.0, "R1")
                for n in range(1, 11)
            ))
            for k in range(20)
        ])
    await store.put_stop_events(
        [StopEvent("V1", "T1", "20140601", "S1", 1, T0 + 30, None, False)]
    )


async def test_the_live_state_is_kept_out_of_the_append_only_file(client: aioredis.Redis) -> None:
    if (await client.info("persistence")).get("aof_enabled") != 1:
        pytest.skip("this Redis keeps no append-only file")
    namespace = f"test-{uuid.uuid4().hex[:12]}"
    store = RedisLiveStore(Settings().redis_url, namespace=namespace)
    try:
        for _ in range(5):  # a rewrite of the file (a fork) during the writes changes its size: measure again
            size_before, forks_before = await _aof_size_and_forks(client)
            await _write_live_state(store)
            size_after, forks_after = await _aof_size_and_forks(client)
            if forks_after == forks_before:
                break
        # 400 states and 400 sets of 10 stops: some 1.5 MB of commands, had they been written to the file
        assert size_after - size_before < 10_000
        assert len(await store.stop_arrivals("S5", now=T0 + 19)) == 20  # and they were stored
        await client.set(f"{namespace}:plain", b"x" * 20_000)  # a plain write, as a notice's, does go to the file
        assert (await _aof_size_and_forks(client))[0] - size_after > 20_000
    finally:
        await store.close()
        keys = [k async for k in client.scan_iter(match=f"{namespace}:*")]
        if keys:
            await client.delete(*keys)


async def test_tracker_snapshots_are_kept_out_of_the_append_only_file(client: aioredis.Redis) -> None:
    from eta.tracker import TrackState
    from smartbus.stream.tracker_snapshots import RedisTrackerSnapshots, Snapshot

    if (await client.info("persistence")).get("aof_enabled") != 1:
        pytest.skip("this Redis keeps no append-only file")
    namespace = f"test-{uuid.uuid4().hex[:12]}"
    snapshots = RedisTrackerSnapshots(Settings().redis_url, "f" * 64, namespace=namespace)
    try:
        states = {f"V{k}": Snapshot(TrackState(last_ts=T0 + k), None) for k in range(200)}
        for _ in range(5):
            size_before, forks_before = await _aof_size_and_forks(client)
            await snapshots.save(states)
            size_after, forks_after = await _aof_size_and_forks(client)
            if forks_after == forks_before:
                break
        assert size_after - size_before < 5_000
        assert set(await snapshots.load(["V1", "V199"])) == {"V1", "V199"}  # and they were saved
    finally:
        await snapshots.close()
        keys = [k async for k in client.scan_iter(match=f"{namespace}:*")]
        if keys:
            await client.delete(*keys)
