"""Versioned SQL migrations, applied at start-up, for one of two flavours of the same schema.

Files are `migrations/NNN_name.sql` (both flavours) or `NNN_name.<flavour>.sql` (one flavour; each
flavour then needs its own file for that version). `schema_migrations` records what was applied with
a checksum, so an edited migration is caught instead of silently diverging. A session-level advisory
lock makes two processes starting at once apply each migration exactly once.

The flavour is chosen once, on an empty database, and kept in `smartbus_meta`: TimescaleDB when the
extension is available and loads, plain PostgreSQL otherwise (or when forced). It never flips later.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import psycopg
from psycopg import sql

from smartbus.errors import SmartbusError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Any fixed 64-bit number: the advisory lock that serialises concurrent migrators.
MIGRATION_LOCK_KEY = 0x5B05_0001
_FILE_NAME = re.compile(r"^(?P<version>\d{3})_(?P<name>[a-z0-9_]+)(?:\.(?P<flavour>plain|timescale))?\.sql$")

log = logging.getLogger(__name__)


class Flavour(StrEnum):
    TIMESCALE = "timescale"
    PLAIN = "plain"


class MigrationError(SmartbusError):
    """The database and the migration files disagree (edited migration, flipped flavour, missing file)."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class StoragePolicy:
    """How long data is kept and when TimescaleDB compresses it (days)."""

    retention_days: int = 90
    compress_after_days: int = 7


def load_migrations(flavour: Flavour, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migrations for `flavour`, in version order."""
    generic: dict[int, Path] = {}
    specific: dict[tuple[int, str], Path] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise MigrationError(f"migration file name not understood: {path.name} (want NNN_name[.flavour].sql)")
        version = int(match["version"])
        # Two branches that took the same number: say so rather than keep whichever file sorts last.
        taken = generic.get(version) if match["flavour"] is None else specific.get((version, match["flavour"]))
        if taken is not None:
            raise MigrationError(f"migration {version:03d} has two files: {taken.name} and {path.name}")
        if match["flavour"] is None:
            generic[version] = path
        else:
            specific[(version, match["flavour"])] = path
    versions = sorted(set(generic) | {version for version, _ in specific})
    for version, flavour_name in specific:
        if version in generic:  # two branches took the same number: say so rather than pick one silently
            raise MigrationError(
                f"migration {version:03d} has both {generic[version].name} and a {flavour_name}-only file"
            )
    migrations = []
    for version in versions:
        chosen = specific.get((version, flavour.value)) or generic.get(version)
        if chosen is None:
            raise MigrationError(f"migration {version:03d} has no file for the {flavour} flavour")
        name = chosen.name.split(".")[0][4:]
        migrations.append(Migration(version, name, chosen.read_text(encoding="utf-8")))
    return migrations


_BOOTSTRAP = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer     PRIMARY KEY,
    name        text        NOT NULL,
    flavour     text        NOT NULL,
    checksum    text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS smartbus_meta (
    key    text PRIMARY KEY,
    value  text NOT NULL
);
"""


async def current_flavour(conn: psycopg.AsyncConnection) -> Flavour | None:
    """The flavour recorded in the database, or None before the first migration."""
    cur = await conn.execute("SELECT to_regclass('smartbus_meta') IS NOT NULL")
    row = await cur.fetchone()
    if row is None or not row[0]:
        return None
    cur = await conn.execute("SELECT value FROM smartbus_meta WHERE key = 'flavour'")
    row = await cur.fetchone()
    return Flavour(row[0]) if row is not None else None


async def _timescale_loads(conn: psycopg.AsyncConnection) -> bool:
    cur = await conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
    if await cur.fetchone() is None:
        return False
    # Installed but not preloaded (as under `smartbus services up --no-timescale`), CREATE EXTENSION
    # ends the session with FATAL rather than failing the statement; so look before trying. The
    # preloaded library defines its settings with their types; a name merely set in a config file
    # would be an untyped placeholder (a string).
    cur = await conn.execute(
        "SELECT 1 FROM pg_settings WHERE name = 'timescaledb.max_background_workers' AND vartype = 'integer'"
    )
    if await cur.fetchone() is None:
        log.warning("TimescaleDB is installed but not in shared_preload_libraries; using plain PostgreSQL")
        return False
    try:
        async with conn.transaction():
            await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except psycopg.Error as exc:  # typically: not in shared_preload_libraries
        log.warning("TimescaleDB is installed but does not load (%s); using plain PostgreSQL", exc)
        return False
    return True


async def _choose_flavour(conn: psycopg.AsyncConnection, force_plain: bool) -> Flavour:
    recorded = await current_flavour(conn)
    if recorded is Flavour.TIMESCALE:
        if force_plain:
            raise MigrationError("this database already uses TimescaleDB; it cannot be switched to plain")
        if not await _timescale_loads(conn):
            raise MigrationError("this database uses TimescaleDB, but the extension does not load here")
        return recorded
    if recorded is Flavour.PLAIN:
        return recorded
    flavour = Flavour.PLAIN if force_plain or not await _timescale_loads(conn) else Flavour.TIMESCALE
    async with conn.transaction():
        await conn.execute("INSERT INTO smartbus_meta (key, value) VALUES ('flavour', %s)", (flavour.value,))
    log.info("new database: chose the %s flavour", flavour)
    return flavour


async def _apply_pending(conn: psycopg.AsyncConnection, flavour: Flavour) -> int:
    cur = await conn.execute("SELECT version, name, checksum FROM schema_migrations")
    applied = {version: (name, checksum) for version, name, checksum in await cur.fetchall()}
    count = 0
    for migration in load_migrations(flavour):
        done = applied.get(migration.version)
        if done is not None:
            if done[1] != migration.checksum:
                raise MigrationError(
                    f"migration {migration.version:03d}_{done[0]} was edited after it was applied "
                    "(checksum differs); write a new migration instead"
                )
            continue
        async with conn.transaction():
            await conn.execute(migration.sql.encode())  # bytes: no parameter parsing of the script
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, flavour, checksum) VALUES (%s, %s, %s, %s)",
                (migration.version, migration.name, flavour.value, migration.checksum),
            )
        log.info("applied migration %03d_%s (%s)", migration.version, migration.name, flavour)
        count += 1
    return count


_HYPERTABLES = ("positions", "stop_events", "predictions", "rejected_pings")
_COMPRESSED = ("positions", "stop_events", "predictions")
# The punctuality rollups (migrations 003, 007 and 009): materialized views (plain) or continuous aggregates.
PUNCTUALITY_ROLLUPS = (
    "punctuality_hourly", "punctuality_route_hourly", "punctuality_stop_daily",
    "punctuality_delays_route_daily", "punctuality_delays_hourly", "punctuality_headways_stop_daily",
)


async def _policy_job(conn: psycopg.AsyncConnection, proc: str, relation: str) -> tuple[int, dict[str, object]] | None:
    """The (job id, config) of the `proc` background job on `relation` (hypertable or continuous aggregate)."""
    cur = await conn.execute(
        "SELECT job_id, config FROM timescaledb_information.jobs"
        " WHERE proc_name = %s AND hypertable_schema = current_schema() AND hypertable_name = %s",
        (proc, relation),
    )
    row = await cur.fetchone()
    return (row[0], row[1]) if row is not None else None


async def _intervals_equal(conn: psycopg.AsyncConnection, first: object, second: str) -> bool:
    cur = await conn.execute("SELECT %s::text::interval = %s::interval", (str(first), second))
    row = await cur.fetchone()
    return row is not None and bool(row[0])


async def _set_policy(
    conn: psycopg.AsyncConnection, proc: str, relation: str, wanted: dict[str, str], add: sql.SQL | sql.Composed
) -> None:
    """Make the `proc` job on `relation` have the `wanted` interval settings, leaving a job that has them alone.

    Re-adding a job on every start-up would restart its clock, and a process restarted more often
    than daily would then never run its retention. A new job's first run waits one schedule interval
    instead of running at once: a new database has nothing to drop, compress or materialize yet, and
    a job firing while the first rows (possibly of old service days, as in replays) arrive would race them.
    """
    job = await _policy_job(conn, proc, relation)
    if job is not None:
        job_id, config = job
        if all([await _intervals_equal(conn, config.get(key), value) for key, value in wanted.items()]):
            return
        await conn.execute("SELECT delete_job(%s)", (job_id,))
    cur = await conn.execute(add)
    row = await cur.fetchone()
    assert row is not None
    await conn.execute(
        "SELECT alter_job(job_id, next_start => now() + schedule_interval)"
        " FROM timescaledb_information.jobs WHERE job_id = %s",
        (row[0],),
    )


async def apply_policies(conn: psycopg.AsyncConnection, flavour: Flavour, policy: StoragePolicy) -> None:
    """Set retention, compression and rollup refresh jobs (TimescaleDB); idempotent, follows the settings.

    The plain flavour has no background jobs: whoever runs maintenance calls
    `smartbus_drop_old_partitions(retention_days)` and `refresh_punctuality()`.
    """
    if flavour is not Flavour.TIMESCALE:
        return
    retention = f"{policy.retention_days} days"
    compress = f"{policy.compress_after_days} days"
    async with conn.transaction():
        for table in _HYPERTABLES:
            name = sql.Literal(table)
            await _set_policy(
                conn, "policy_retention", table, {"drop_after": retention},
                sql.SQL("SELECT add_retention_policy({}, drop_after => {}::interval)").format(
                    name, sql.Literal(retention)
                ),
            )
            if table in _COMPRESSED:
                await _set_policy(
                    conn, "policy_compression", table, {"compress_after": compress},
                    sql.SQL("SELECT add_compression_policy({}, compress_after => {}::interval)").format(
                        name, sql.Literal(compress)
                    ),
                )
        for rollup in PUNCTUALITY_ROLLUPS:
            await _set_policy(
                conn, "policy_refresh_continuous_aggregate", rollup,
                {"start_offset": "7 days", "end_offset": "1 day"},
                sql.SQL(
                    "SELECT add_continuous_aggregate_policy({},"
                    " start_offset => INTERVAL '7 days', end_offset => INTERVAL '1 day',"
                    " schedule_interval => INTERVAL '1 hour')"
                ).format(sql.Literal(rollup)),
            )


async def migrate(
    conn: psycopg.AsyncConnection,
    *,
    force_plain: bool = False,
    policy: StoragePolicy | None = None,
) -> Flavour:
    """Bring the database to the latest schema; returns the flavour in use. Safe to run concurrently."""
    was_autocommit = conn.autocommit
    if not was_autocommit:
        await conn.commit()  # autocommit cannot be switched inside a transaction
        await conn.set_autocommit(True)
    try:
        await conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        try:
            await conn.execute(_BOOTSTRAP)
            flavour = await _choose_flavour(conn, force_plain)
            await _apply_pending(conn, flavour)
            await apply_policies(conn, flavour, policy or StoragePolicy())
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
    finally:
        if not was_autocommit:
            await conn.set_autocommit(False)
    return flavour


def migrate_sync(database_url: str, *, force_plain: bool = False, policy: StoragePolicy | None = None) -> Flavour:
    """`migrate` for callers without an event loop (the CLI, the demo's start-up)."""

    async def run() -> Flavour:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            return await migrate(conn, force_plain=force_plain, policy=policy)

    return asyncio.run(run())
