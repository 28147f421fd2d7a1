from __future__ import annotations

# A real PostgreSQL for the dashboard: the storage tests' server and per-test database.
from tests.storage.conftest import database_url, server_url  # noqa: F401
