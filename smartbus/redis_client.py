"""Asyncio Redis clients whose commands are packed by hiredis, in C.

redis-py's asyncio connections pack every command into the wire protocol in Python, argument by argument; its
synchronous connections use hiredis's packer when hiredis is installed, but the asyncio ones never do. Our writers
send few commands with many arguments: a live writer's batch of vehicle states is one script call of four
arguments a state, and packing them in Python was a third of what the call cost the writer: 4.8 µs a state
against 3.1 with hiredis (`bench/live_store.py --states`). hiredis writes the same bytes, which
tests/smartbus/test_redis_client.py holds it to; without hiredis, redis-py packs as before.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import DataError

try:
    import hiredis
except ImportError:  # an optional speed-up of redis-py's: without it, redis-py's own packer
    hiredis = None  # type: ignore[assignment]


class _HiredisPacking:
    """Mixed into a redis-py asyncio connection class: the command packed by hiredis.pack_command."""

    def pack_command(self, *args: Any) -> list[bytes]:
        # as redis-py's packer: a command name given with its subcommand ("CONFIG GET") goes as two arguments
        if isinstance(args[0], str):
            args = (*args[0].encode().split(), *args[1:])
        elif b" " in args[0]:
            args = (*args[0].split(), *args[1:])
        try:
            return [hiredis.pack_command(args)]
        except TypeError as exc:  # None, a bool, a list: refused as redis-py's own encoder refuses them
            raise DataError(f"an argument Redis cannot take: {exc}") from exc


def _packing(connection_class: type[AbstractConnection]) -> type[AbstractConnection]:
    if hiredis is None or issubclass(connection_class, _HiredisPacking):
        return connection_class
    return type(f"HiredisPacking{connection_class.__name__}", (_HiredisPacking, connection_class), {})


def connection_pool(url: str, *, blocking: bool = False, **options: Any) -> aioredis.ConnectionPool:
    """A pool for `url` (any scheme redis-py reads: redis, rediss, unix) whose connections pack with hiredis.
    `blocking`: a BlockingConnectionPool, where a caller waits for a free connection rather than opening one
    past max_connections."""
    pool_class = aioredis.BlockingConnectionPool if blocking else aioredis.ConnectionPool
    pool = pool_class.from_url(url, **options)
    pool.connection_class = _packing(pool.connection_class)
    return pool


def client(url: str, *, blocking: bool = False, **options: Any) -> aioredis.Redis:
    """A client owning a pool of its own (connection_pool's); `aclose` closes the pool's connections too."""
    return aioredis.Redis.from_pool(connection_pool(url, blocking=blocking, **options))
