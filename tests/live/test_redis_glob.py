"""Channel patterns a subscriber gives are matched as Redis itself matches them, by both live stores (the Redis store
hands board changes out as "stop:{id}" channels itself, from one channel)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from smartbus.live.glob import redis_glob
from smartbus.settings import Settings

pytestmark = pytest.mark.integration

NAMES = ["stop:a1", "stop:b1", "stop:c1", "stop:d", "stop:", "stop:*", "stop:[x]", "stop:a-1", "stop:^", "stop:\\",
         "fleet", "stop:Ä1", "stop:a1\nb"]
PATTERNS = ["stop:*", "stop:?1", "stop:[ab]*", "stop:[^a]*", "stop:[c-a]1", "stop:\\*", "*", "stop:[a-]*",
            "stop:[\\]]*", "stop:[^]", "stop:[]", "stop:[ab", "s*:*1", "stop:\\[x\\]", "stop:[\\^]", "?", "stop:a1*"]


@pytest.fixture
async def names() -> AsyncIterator[tuple[aioredis.Redis, str]]:
    client = aioredis.Redis.from_url(Settings().redis_url)
    prefix = f"test-{uuid.uuid4().hex[:12]}:"
    for name in NAMES:
        await client.set(prefix + name, b"1", px=60_000)
    yield client, prefix
    await client.delete(*(prefix + name for name in NAMES))
    await client.aclose()


@pytest.mark.parametrize("pattern", PATTERNS)
async def test_a_stop_pattern_matches_what_redis_matches(names: tuple[aioredis.Redis, str], pattern: str) -> None:
    client, prefix = names
    by_redis = {key.decode()[len(prefix):] async for key in client.scan_iter(match=prefix + pattern, count=1000)}
    assert {name for name in NAMES if redis_glob(pattern).fullmatch(name.encode())} == by_redis
