"""`smartbus migrate`: apply the database migrations (and storage policies) from the settings."""

from __future__ import annotations

import argparse
import logging


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--plain",
        action="store_true",
        help="use plain PostgreSQL even where TimescaleDB is available (only on a new database)",
    )


def run(args: argparse.Namespace) -> int:
    import psycopg

    from smartbus.settings import Settings
    from smartbus.storage.migrate import MigrationError, StoragePolicy, migrate_sync

    settings = Settings()
    policy = StoragePolicy(settings.retention_days, settings.compress_after_days)
    try:
        flavour = migrate_sync(settings.database_url, force_plain=args.plain, policy=policy)
    except (MigrationError, psycopg.OperationalError) as exc:
        logging.getLogger(__name__).error("migration failed: %s", exc)
        return 1
    print(f"database is up to date ({flavour} flavour)")
    return 0
