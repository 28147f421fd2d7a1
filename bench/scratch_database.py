"""A migrated database of its own for one bench run, dropped afterwards (for the benches that run async)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from psycopg.conninfo import make_conninfo

from smartbus.storage.migrate import migrate

DROP_ATTEMPTS = 30


@asynccontextmanager
async def scratch_database(server_url: str, name: str) -> AsyncIterator[str]:
    """Creates `name` on the server of `server_url`, migrates it and yields its URL; drops it at the end. No
    earlier run's rows or learned state slow or warm the run, and none of it is left on the disk."""
    async with await psycopg.AsyncConnection.connect(server_url, autocommit=True) as admin:
        await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = make_conninfo(server_url, dbname=name)
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await migrate(conn)
        yield url
    finally:
        await _drop(server_url, name)


async def _drop(server_url: str, name: str) -> None:
    # not WITH (FORCE): that must be allowed to end the server's own autovacuum workers, which a plain role is
    # not; they leave a fresh database within seconds, as do the bench's connections once they close
    async with await psycopg.AsyncConnection.connect(server_url, autocommit=True) as admin:
        for attempt in range(DROP_ATTEMPTS):
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
                return
            except psycopg.errors.ObjectInUse:
                if attempt == DROP_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(1.0)
