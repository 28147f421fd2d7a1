"""The ETA workers' learned prediction state in PostgreSQL (table `learned_states`, migration 006).

One row per (consumer group, feed version, worker): the workers of a group each see only their own
partitions' buses, so each keeps its own row and a starting worker reads them all and merges them
(eta/prediction/model_merge.py). Its first save then replaces the rows it merged that nobody has saved again
since: mostly rows of workers that have gone, its own earlier process's among them (a worker still running
rewrites its row at its next save, with everything it learned), so the table keeps about one row per live
worker. When a group has no row for its feed version
(a new timetable), `load` gives the rows of the version it saved most recently, for the predictor to carry
over. Rows of other feed versions not saved for `OTHER_VERSIONS_KEPT_DAYS` are deleted at each save.

The state itself is opaque bytes here: its format and versioning belong to eta/prediction/learned_state.py.
Each call opens its own short connection: saves are minutes apart, and a database that went away and came
back needs nothing special.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import psycopg

from smartbus.errors import ServiceUnavailable

Connect = Callable[[], Awaitable[psycopg.AsyncConnection]]

OTHER_VERSIONS_KEPT_DAYS = 30

_SELECT = """
SELECT feed_version, worker_id, saved_at, state FROM learned_states
 WHERE consumer_group = %s AND feed_version = %s
 ORDER BY worker_id
"""
_LATEST_VERSION = """
SELECT feed_version FROM learned_states WHERE consumer_group = %s ORDER BY saved_at DESC, feed_version LIMIT 1
"""
_UPSERT = """
INSERT INTO learned_states (consumer_group, feed_version, worker_id, state, saved_at)
VALUES (%s, %s, %s, %s, now())
ON CONFLICT (consumer_group, feed_version, worker_id)
DO UPDATE SET state = EXCLUDED.state, saved_at = EXCLUDED.saved_at
"""
_DELETE_MERGED = """
DELETE FROM learned_states
 WHERE consumer_group = %s AND feed_version = %s AND worker_id = %s AND saved_at = %s
"""
_DELETE_OLD_VERSIONS = """
DELETE FROM learned_states
 WHERE consumer_group = %s AND feed_version <> %s AND saved_at < now() - make_interval(days => %s)
"""


@dataclass(frozen=True, slots=True)
class StoredState:
    feed_version: str
    worker_id: str
    saved_at: dt.datetime
    state: bytes


class LearnedStates:
    """The rows of one consumer group, written as one worker of it."""

    def __init__(self, connect: Connect, group: str, worker_id: str) -> None:
        self._connect = connect
        self.group = group
        self.worker_id = worker_id

    async def load(self, feed_version: str) -> list[StoredState]:
        """Every worker's row for `feed_version`; without any, those of the version saved most recently
        (to carry over); none at all on a group's first start."""
        try:
            async with await self._connect() as conn:
                rows = await (await conn.execute(_SELECT, (self.group, feed_version))).fetchall()
                if not rows:
                    latest = await (await conn.execute(_LATEST_VERSION, (self.group,))).fetchone()
                    if latest is not None:
                        rows = await (await conn.execute(_SELECT, (self.group, latest[0]))).fetchall()
        except psycopg.Error as exc:  # away, or not migrated yet (no table): both pass
            raise ServiceUnavailable(f"PostgreSQL (learned state): {exc}") from exc
        return [StoredState(version, worker, saved_at, bytes(state)) for version, worker, saved_at, state in rows]

    async def save(self, feed_version: str, state: bytes, *, replaces: Sequence[StoredState] = ()) -> None:
        """Write this worker's row for `feed_version`; in the same transaction, delete the rows of that
        version in `replaces` (merged into `state`) unless they were saved again since."""
        try:
            async with await self._connect() as conn, conn.transaction():
                await conn.execute(_UPSERT, (self.group, feed_version, self.worker_id, state))
                for row in replaces:
                    if row.feed_version == feed_version and row.worker_id != self.worker_id:
                        await conn.execute(_DELETE_MERGED, (self.group, row.feed_version, row.worker_id, row.saved_at))
                await conn.execute(_DELETE_OLD_VERSIONS, (self.group, feed_version, OTHER_VERSIONS_KEPT_DAYS))
        except psycopg.Error as exc:
            raise ServiceUnavailable(f"PostgreSQL (learned state): {exc}") from exc
