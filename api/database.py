"""The api's optional PostgreSQL connection: a small async pool, for analyst and operator endpoints only.

Rider endpoints never touch it, so riders keep their boards when the database is down or absent.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import psycopg
from psycopg_pool import AsyncConnectionPool

from smartbus.errors import ServiceUnavailable


class Database:
    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 4, timeout_s: float = 5.0) -> None:
        # Autocommit: every api query is one read or one small write; no transaction spans requests.
        self._pool = AsyncConnectionPool(
            url, min_size=min_size, max_size=max_size, timeout=timeout_s, open=False, kwargs={"autocommit": True}
        )

    async def open(self) -> None:
        await self._pool.open(wait=False)

    async def close(self) -> None:
        await self._pool.close()

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection]:
        try:
            async with self._pool.connection() as conn:
                yield conn
        except (psycopg.OperationalError, TimeoutError) as exc:
            raise ServiceUnavailable(f"database: {exc}") from exc
        except psycopg.errors.UndefinedTable as exc:  # never migrated
            raise ServiceUnavailable(f"database not migrated: {exc}") from exc
