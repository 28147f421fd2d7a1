"""Our Redis clients pack commands with hiredis: the same bytes on the wire as redis-py's own packer, the same
refusals, for every kind of URL, and they work against the real Redis."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import DataError

from smartbus import redis_client
from smartbus.settings import Settings

# what our writers send: ids, Vietnamese text, NUL-separated rows, JSON, times as floats (repr must survive), ints
ARGUMENTS: list[Any] = [
    "EVALSHA", "0123abcd", 0, "ns", 900_000, "xe-51B", "Bến xe Bắc Ninh", b"stop\0trip\0" + b"x" * 10_000,
    1797983472.32, 0.1 + 0.2, -0.0, 1e300, 2**70, b"", "", memoryview(b"view"),
]


def _python_packed(*args: Any) -> bytes:
    return b"".join(aioredis.Connection().pack_command(*args))


def _ours_packed(url: str, *args: Any) -> bytes:
    connection = redis_client.connection_pool(url).make_connection()  # type: ignore[no-untyped-call]
    return b"".join(connection.pack_command(*args))


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/0", "unix:///tmp/redis.sock", "rediss://127.0.0.1:6380"])
def test_commands_are_packed_by_hiredis_into_the_bytes_redis_py_would_send(url: str) -> None:
    pool = redis_client.connection_pool(url)
    default = aioredis.ConnectionPool.from_url(url).connection_class
    assert issubclass(pool.connection_class, default)  # still a unix socket, still TLS
    assert pool.connection_class is not default  # and packed by hiredis
    assert _ours_packed(url, *ARGUMENTS) == _python_packed(*ARGUMENTS)
    # a command given with its subcommand goes as two words, as redis-py sends it
    assert _ours_packed(url, "CONFIG GET", "maxmemory") == _python_packed("CONFIG GET", "maxmemory")
    assert _ours_packed(url, b"SCRIPT LOAD", "return 1") == _python_packed(b"SCRIPT LOAD", "return 1")


@pytest.mark.parametrize("bad", [None, True, [1, 2], {"a": 1}])
def test_an_argument_redis_cannot_take_is_refused_as_redis_py_refuses_it(bad: Any) -> None:
    with pytest.raises(DataError):
        aioredis.Connection().pack_command("SET", "k", bad)
    with pytest.raises(DataError):
        _ours_packed("redis://127.0.0.1:6379/0", "SET", "k", bad)


def test_a_blocking_pool_keeps_its_limits() -> None:
    pool = redis_client.connection_pool("redis://127.0.0.1:6379/0", blocking=True, max_connections=3, timeout=2)
    assert isinstance(pool, aioredis.BlockingConnectionPool)
    assert pool.max_connections == 3
    assert pool.timeout == 2


@pytest.mark.integration
async def test_a_script_of_many_arguments_round_trips_through_the_real_redis() -> None:
    client = redis_client.client(Settings().redis_url)
    key = f"test-{uuid.uuid4().hex[:12]}:packed"
    values = [f"Trạm {i}\0{1797983472.32 + i!r}".encode() for i in range(3000)]
    try:
        script = client.register_script("for i = 1, #ARGV do redis.call('RPUSH', KEYS[1], ARGV[i]) end return #ARGV")
        assert await script(keys=[key], args=values) == len(values)
        assert await client.lrange(key, 0, -1) == values
    finally:
        await client.delete(key)
        await client.aclose()
    # closing the client closed its own pool's connections
    connections = client.connection_pool._available_connections
    assert connections
    assert not any(c.is_connected for c in connections)
