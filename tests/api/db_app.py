"""An app with a migrated database and keys of each role, for the analyst and operator endpoint tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from starlette.testclient import TestClient

from api.keys import Role, create_key
from smartbus.messages import StopEvent, VehicleState
from smartbus.storage.queries import refresh_punctuality
from smartbus.storage.writer import StorageWriter


@dataclass
class Keys:
    analyst: str
    operator: str
    admin: str

    def header(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {getattr(self, role)}"}


def make_keys(client: TestClient, database_url: str) -> Keys:
    async def create() -> Keys:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            roles: Sequence[tuple[Role, ...]] = (("analyst",), ("operator",), ("admin",))
            made = [await create_key(conn, f"test {r[0]}", r) for r in roles]
        return Keys(*made)

    return client.portal.call(create)  # type: ignore[union-attr]


def store(
    client: TestClient, database_url: str, events: Sequence[StopEvent], states: Sequence[VehicleState] = ()
) -> None:
    async def write() -> None:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            await StorageWriter(conn).write(list(states), list(events), [])
            await refresh_punctuality(conn)

    client.portal.call(write)  # type: ignore[union-attr]
