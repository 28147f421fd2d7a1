"""The learned-state rows on the real PostgreSQL: one per worker, a group's own, kept per feed version."""

from __future__ import annotations

import socket

import psycopg
import pytest

from smartbus.errors import ServiceUnavailable
from smartbus.storage.learned_state import LearnedStates
from smartbus.storage.migrate import migrate

A, B = "a" * 64, "b" * 64


def _store(database_url: str, worker: str, group: str = "eta") -> LearnedStates:
    async def connect() -> psycopg.AsyncConnection:
        return await psycopg.AsyncConnection.connect(database_url, autocommit=True)

    return LearnedStates(connect, group, worker)


@pytest.fixture
async def migrated(database_url: str) -> str:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await migrate(conn, force_plain=True)
    return database_url


async def test_each_worker_keeps_its_own_row_and_a_starting_worker_reads_them_all(migrated: str) -> None:
    one, two = _store(migrated, "w1"), _store(migrated, "w2")
    assert await one.load(A) == []  # a group's first start
    await one.save(A, b"first")
    await two.save(A, b"second")
    await one.save(A, b"first, later")  # rewrites its own row
    rows = await _store(migrated, "w3").load(A)
    assert [(r.worker_id, r.state) for r in rows] == [("w1", b"first, later"), ("w2", b"second")]
    assert await _store(migrated, "w1", group="another-deployment").load(A) == []


async def test_without_a_row_for_its_feed_version_a_worker_gets_the_latest_version_and_others_stay(
    migrated: str,
) -> None:
    await _store(migrated, "w1").save(A, b"learned on A")
    await _store(migrated, "w1").save(B, b"learned on B")
    rows = await _store(migrated, "w1").load("c" * 64)  # a third timetable: carry over from B, the latest
    assert [(r.feed_version, r.state) for r in rows] == [(B, b"learned on B")]
    # saving on B did not remove A's row: rolling back to A finds exactly what was learned on it
    assert [r.state for r in await _store(migrated, "w2").load(A)] == [b"learned on A"]


async def test_the_rows_a_worker_merged_go_at_its_next_save_unless_saved_again_since(migrated: str) -> None:
    await _store(migrated, "gone").save(A, b"a worker that has stopped")
    await _store(migrated, "alive").save(A, b"a worker still running")
    starting = _store(migrated, "new")
    merged = await starting.load(A)
    await _store(migrated, "alive").save(A, b"saved again meanwhile")
    await starting.save(A, b"merged", replaces=merged)
    rows = await starting.load(A)
    assert [(r.worker_id, r.state) for r in rows] == [("alive", b"saved again meanwhile"), ("new", b"merged")]


async def test_a_database_away_or_not_migrated_is_unavailable_not_a_crash(database_url: str) -> None:
    with pytest.raises(ServiceUnavailable):
        await _store(database_url, "w1").load(A)  # no table yet: the writer has not migrated
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there
    with pytest.raises(ServiceUnavailable):
        await _store(f"postgresql://smartbus@127.0.0.1:{port}/smartbus?connect_timeout=2", "w1").save(A, b"x")
