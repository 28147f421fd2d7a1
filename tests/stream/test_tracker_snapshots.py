"""Tracker snapshots in the real Redis: each names the last ping it took, so a restarted worker skips the pings
read again up to it; a snapshot from a worker that did not say skips none; the newest state is never overwritten."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from eta.tracker import TrackState
from smartbus.settings import Settings
from smartbus.stream.tracker_snapshots import LOAD_CHUNK, SAVE_CHUNK, PingAt, RedisTrackerSnapshots, Snapshot

pytestmark = pytest.mark.integration

T0 = 1_700_000_000.0
FEED = "e" * 64


@pytest.fixture
async def snapshots() -> AsyncIterator[tuple[RedisTrackerSnapshots, aioredis.Redis, str]]:
    namespace = f"test-{uuid.uuid4().hex[:12]}"
    store = RedisTrackerSnapshots(Settings().redis_url, FEED, namespace=namespace)
    client = aioredis.Redis.from_url(Settings().redis_url)
    yield store, client, f"{namespace}:trk:{FEED[:16]}:"
    keys = [k async for k in client.scan_iter(match=f"{namespace}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()
    await store.close()


async def test_a_snapshot_comes_back_with_the_last_ping_it_took(
    snapshots: tuple[RedisTrackerSnapshots, aioredis.Redis, str],
) -> None:
    store, client, prefix = snapshots
    await store.save({
        "bus 1": Snapshot(TrackState(last_ts=T0), PingAt("acme.pings", 3, 41_200)),
        "bus 2": Snapshot(TrackState(last_ts=T0), None),
    })
    # a snapshot an older worker saved: a state, and no word of what it covered
    state = await client.hget(prefix + "bus 2", "state")
    assert state is not None
    await client.hset(prefix + "bus 3", mapping={"ts": repr(T0), "state": state})

    loaded = await store.load(["bus 1", "bus 2", "bus 3", "bus 4"])
    assert set(loaded) == {"bus 1", "bus 2", "bus 3"}
    assert loaded["bus 1"].covered == PingAt("acme.pings", 3, 41_200)
    assert loaded["bus 1"].state.last_ts == T0
    assert loaded["bus 2"].covered is None and loaded["bus 3"].covered is None


async def test_an_older_state_never_overwrites_a_newer_one_nor_what_it_covered(
    snapshots: tuple[RedisTrackerSnapshots, aioredis.Redis, str],
) -> None:
    store, _, _ = snapshots
    await store.save({"bus 1": Snapshot(TrackState(last_ts=T0 + 10), PingAt("pings", 0, 900))})
    await store.save({"bus 1": Snapshot(TrackState(last_ts=T0 + 5), PingAt("pings", 0, 450))})  # a slower worker
    (loaded,) = (await store.load(["bus 1"])).values()
    assert loaded.state.last_ts == T0 + 10
    assert loaded.covered == PingAt("pings", 0, 900)


async def test_a_fleet_larger_than_one_script_is_saved_and_loaded_whole(
    snapshots: tuple[RedisTrackerSnapshots, aioredis.Redis, str],
) -> None:
    store, _, _ = snapshots
    fleet = [f"bus {i}" for i in range(2 * SAVE_CHUNK + 7)]  # three scripts, the last one short
    await store.save({vid: Snapshot(TrackState(last_ts=T0 + i), PingAt("pings", 0, i)) for i, vid in enumerate(fleet)})
    never_saved = [f"new bus {i}" for i in range(LOAD_CHUNK)]
    asked = [vid for pair in zip(never_saved, fleet, strict=False) for vid in pair] + fleet[len(never_saved):]
    assert len(asked) > 2 * LOAD_CHUNK  # read by three scripts too, the saved and the never saved mixed
    loaded = await store.load(asked)
    assert set(loaded) == set(fleet)
    assert all(loaded[vid].state.last_ts == T0 + i and loaded[vid].covered == PingAt("pings", 0, i)
               for i, vid in enumerate(fleet))
