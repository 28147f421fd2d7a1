from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from smartbus.storage.embedded import embedded_postgres
from smartbus.storage.migrate import Flavour, migrate_sync


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Not under pytest's tmp_path: pytest keeps its base directory at mode 0700 (and re-applies that
    # whenever another pytest starts), which the unprivileged server user cannot traverse.
    path = Path(tempfile.mkdtemp(prefix="smartbus-pg-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.slow
def test_embedded_server_runs_the_schema_and_keeps_data_across_restarts(data_dir: Path) -> None:
    tmp_path = data_dir
    with embedded_postgres(tmp_path) as url:
        assert url.startswith("postgresql://postgres@127.0.0.1:")
        assert migrate_sync(url) is Flavour.PLAIN  # no TimescaleDB in the wheel
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("INSERT INTO smartbus_meta VALUES ('marker', 'kept')")

    with embedded_postgres(tmp_path, delete=True) as url, psycopg.connect(url) as conn:
        row = conn.execute("SELECT value FROM smartbus_meta WHERE key = 'marker'").fetchone()
        assert row == ("kept",)

    assert not (tmp_path / "pgdata").exists()
