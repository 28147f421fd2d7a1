from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg
import pytest

from smartbus.storage.migrate import (
    Flavour,
    MigrationError,
    load_migrations,
    migrate,
)

TABLES = {
    "positions", "stop_events", "predictions", "rejected_pings",
    "punctuality_hourly", "punctuality_route_hourly", "punctuality_stop_daily",
    "punctuality_delays_route_daily", "punctuality_delays_hourly", "punctuality_headways_stop_daily",
}


async def _relations(conn: psycopg.AsyncConnection) -> set[str]:
    cur = await conn.execute(
        "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p', 'm', 'v')"
    )
    return {row[0] for row in await cur.fetchall()}


async def test_migrate_creates_the_schema_and_records_each_version(conn: psycopg.AsyncConnection) -> None:
    flavour = await migrate(conn, force_plain=True)

    assert flavour is Flavour.PLAIN
    assert TABLES <= await _relations(conn)
    cur = await conn.execute("SELECT version, name, flavour FROM schema_migrations ORDER BY version")
    expected = [(m.version, m.name, "plain") for m in load_migrations(Flavour.PLAIN)]
    assert await cur.fetchall() == expected


async def test_migrate_twice_applies_nothing_the_second_time(conn: psycopg.AsyncConnection) -> None:
    await migrate(conn, force_plain=True)
    cur = await conn.execute("SELECT version, applied_at FROM schema_migrations ORDER BY version")
    first = await cur.fetchall()

    await migrate(conn, force_plain=True)

    cur = await conn.execute("SELECT version, applied_at FROM schema_migrations ORDER BY version")
    assert await cur.fetchall() == first


async def test_concurrent_migrators_apply_each_migration_once(database_url: str) -> None:
    async def one() -> Flavour:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as c:
            return await migrate(c, force_plain=True)

    flavours = await asyncio.gather(*(one() for _ in range(4)))

    assert set(flavours) == {Flavour.PLAIN}
    async with await psycopg.AsyncConnection.connect(database_url) as c:
        cur = await c.execute("SELECT count(*), count(DISTINCT version) FROM schema_migrations")
        assert await cur.fetchone() == (len(load_migrations(Flavour.PLAIN)),) * 2


async def test_the_recorded_flavour_is_kept_on_an_existing_database(conn: psycopg.AsyncConnection) -> None:
    await migrate(conn, force_plain=True)

    # Without force_plain the detection would run again; the recorded choice must win instead.
    assert await migrate(conn) is Flavour.PLAIN
    cur = await conn.execute("SELECT value FROM smartbus_meta WHERE key = 'flavour'")
    assert await cur.fetchone() == ("plain",)


async def test_an_edited_migration_is_refused(conn: psycopg.AsyncConnection) -> None:
    await migrate(conn, force_plain=True)
    await conn.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1")

    with pytest.raises(MigrationError, match="edited"):
        await migrate(conn, force_plain=True)


async def test_migrate_works_on_a_connection_not_in_autocommit(database_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=False) as c:
        assert await migrate(c, force_plain=True) is Flavour.PLAIN
        assert not c.autocommit
        cur = await c.execute("SELECT count(*) FROM positions")
        assert await cur.fetchone() == (0,)


def test_every_flavour_has_a_file_for_every_version() -> None:
    plain = [(m.version, m.name) for m in load_migrations(Flavour.PLAIN)]
    timescale = [(m.version, m.name) for m in load_migrations(Flavour.TIMESCALE)]

    assert [v for v, _ in plain] == [v for v, _ in timescale] == list(range(1, len(plain) + 1))


def test_a_version_missing_for_one_flavour_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "001_tables.plain.sql").write_text("SELECT 1;")

    with pytest.raises(MigrationError, match="timescale"):
        load_migrations(Flavour.TIMESCALE, tmp_path)


def test_one_version_taken_by_a_shared_and_a_flavour_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "006_learned_state.sql").write_text("SELECT 1;")
    (tmp_path / "006_rollups.plain.sql").write_text("SELECT 2;")
    (tmp_path / "006_rollups.timescale.sql").write_text("SELECT 3;")

    with pytest.raises(MigrationError, match="006"):
        load_migrations(Flavour.PLAIN, tmp_path)


@pytest.mark.parametrize("suffix", ["sql", "plain.sql"])
def test_one_version_taken_twice_for_a_flavour_is_an_error(tmp_path: Path, suffix: str) -> None:
    """Two branches each adding their 008: without this, the one sorting last would be applied alone."""
    (tmp_path / f"008_delay_rollups.{suffix}").write_text("SELECT 1;")
    (tmp_path / f"008_retention_by_day.{suffix}").write_text("SELECT 2;")

    with pytest.raises(MigrationError, match="008_delay_rollups.*008_retention_by_day"):
        load_migrations(Flavour.PLAIN, tmp_path)
