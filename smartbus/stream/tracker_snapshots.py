"""Per-vehicle tracker snapshots, so a vehicle's state survives a worker restart or a partition rebalance.

Why snapshots rather than a rebuild from recent pings: a tracker's state (trip, progress, held events,
next stop) depends on its whole history since the trip began, which can be an hour of pings; replaying
that on every takeover would need a second read path over Kafka and minutes of catch-up at 10,000
vehicles. A snapshot is one small blob per vehicle, written in one pipelined round trip per batch.

The ETA stage saves a vehicle's snapshot within a few seconds of its first ping since its last save
(eta.worker.SAVED_WITHIN_S), a share of the fleet at each checkpoint, after their outputs are durable, and
commits each partition up to the first ping of a vehicle still unsaved. So after a crash a vehicle's state is
either the one matching the committed offset (the pings since are handled again and give the same outputs: the
writes are idempotent) or ahead of it. Each snapshot names the last ping it covers (topic, partition, offset):
the replayed pings up to that one are skipped, their outputs already on the bus. (Taken again, they would be
late fixes to the restored state: counted as out-of-order rejects and sent again as history, where the writers
keep the first row of each position.) A save never moves a vehicle's state backwards: the newest ping's
timestamp wins.

Blobs are pickles of `eta.tracker.TrackState`, keyed by the network's feed hash: a new feed version starts
clean rather than misapply state. Redis is our own trusted store (never fed by devices). They are not written to
Redis's append-only file (redis.set_repl in the script): after Redis restarts, the next checkpoint, seconds later,
saves every vehicle that moved again, and at 10,000 vehicles they would add over 1 MB a second to the file.
(A rewrite of the file dumps the snapshots there at that moment: if Redis restarts, and then a worker, before the
next checkpoint, the worker may load an older snapshot and carry on from it as a tracker does after a GPS gap.)
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable, Mapping, Sequence
from typing import Final, NamedTuple, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from eta.tracker import TrackState
from smartbus import redis_client
from smartbus.errors import ServiceUnavailable

SNAPSHOT_TTL_S: Final = 6 * 3600  # a vehicle silent this long starts fresh anyway
SAVE_CHUNK: Final = 250  # snapshots a script saves

# KEYS: snapshot keys; ARGV: ttl_ms, then (timestamp, blob, covered) triples in KEYS order. Keeps the newest.
_SAVE_NEWEST: Final = """
redis.set_repl(redis.REPL_NONE)
local ttl = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local ts, blob, covered = ARGV[3 * i - 1], ARGV[3 * i], ARGV[3 * i + 1]
  local old = redis.call('HGET', key, 'ts')
  if (not old) or tonumber(old) <= tonumber(ts) then
    redis.call('HSET', key, 'ts', ts, 'state', blob, 'covered', covered)
  end
  redis.call('PEXPIRE', key, ttl)
end
return #KEYS
"""


# KEYS: snapshot keys; returns each one's state and covered in turn (false for what is not there). One command for
# many vehicles: a pipelined HMGET for each cost redis-py 11 us of CPU a vehicle with hiredis (22-24 without), this
# 1.2-1.6 (5-9): 2,000 vehicles, half of them saved (scratch timing), as a worker hears a whole fleet at a start.
_LOAD: Final = """
local found = {}
for i, key in ipairs(KEYS) do
  local state_and_covered = redis.call('HMGET', key, 'state', 'covered')
  found[2 * i - 1], found[2 * i] = state_and_covered[1], state_and_covered[2]
end
return found
"""
LOAD_CHUNK: Final = 500  # keys a load script reads: Redis serves others between them


class PingAt(NamedTuple):
    """Where a ping sits on the bus."""

    topic: str
    partition: int
    offset: int


class Snapshot(NamedTuple):
    state: TrackState
    covered: PingAt | None  # the last ping the state has taken (None: saved by a worker that did not say)


class EncodedSnapshot(NamedTuple):
    """A snapshot as it is stored: taken when encoded, whatever its tracker does afterwards."""

    vehicle_id: str
    timestamp: float  # of the last ping the state took: the newer of two saves wins
    blob: bytes
    covered: str  # PingAt as text, "" for None


def encode_snapshots(snapshots: Mapping[str, Snapshot]) -> list[EncodedSnapshot]:
    """Pickle the states now, so that a save may go on while their trackers take the next pings."""
    return [
        EncodedSnapshot(vid, state.last_ts or 0.0, _dump(state), _covered_text(covered))
        for vid, (state, covered) in snapshots.items()
    ]


class TrackerSnapshots(Protocol):
    async def load(self, vehicle_ids: Iterable[str]) -> dict[str, Snapshot]: ...

    async def save(self, snapshots: Mapping[str, Snapshot]) -> None:
        """Encode and save (`save_encoded(encode_snapshots(snapshots))`)."""
        ...

    async def save_encoded(self, snapshots: Sequence[EncodedSnapshot]) -> None: ...

    async def close(self) -> None: ...


def _dump(state: TrackState) -> bytes:
    return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)


def _load(blob: bytes) -> TrackState | None:
    try:
        state = pickle.loads(blob)
    except Exception:  # a snapshot of an older TrackState layout: start that vehicle clean
        return None
    return state if isinstance(state, TrackState) else None


def _covered_text(at: PingAt | None) -> str:
    return "" if at is None else f"{at.partition} {at.offset} {at.topic}"


def _covered(text: bytes | str | None) -> PingAt | None:
    if not text:
        return None
    try:
        partition, offset, topic = (text.decode() if isinstance(text, bytes) else text).split(" ", 2)
        return PingAt(topic, int(partition), int(offset))
    except ValueError:
        return None


def _restorable(loaded: Mapping[str, tuple[TrackState | None, bytes | str | None]]) -> dict[str, Snapshot]:
    return {vid: Snapshot(state, _covered(covered)) for vid, (state, covered) in loaded.items() if state is not None}


class MemoryTrackerSnapshots:
    """The in-process twin (the embedded default, unit tests)."""

    def __init__(self) -> None:
        self.blobs: dict[str, tuple[bytes, str]] = {}  # vehicle -> (pickled state, covered as Redis keeps it)

    async def load(self, vehicle_ids: Iterable[str]) -> dict[str, Snapshot]:
        found = {vid: self.blobs[vid] for vid in vehicle_ids if vid in self.blobs}
        loaded = {vid: (_load(blob), covered) for vid, (blob, covered) in found.items()}
        return _restorable(loaded)

    async def save(self, snapshots: Mapping[str, Snapshot]) -> None:
        await self.save_encoded(encode_snapshots(snapshots))

    async def save_encoded(self, snapshots: Sequence[EncodedSnapshot]) -> None:
        for vid, _, blob, covered in snapshots:
            self.blobs[vid] = (blob, covered)

    async def close(self) -> None:
        pass


class RedisTrackerSnapshots:
    """`{namespace}:trk:{feed_hash[:16]}:{vehicle_id}` hash {ts, state, covered: "partition offset topic" or ""},
    expiring after SNAPSHOT_TTL_S."""

    def __init__(self, url: str, feed_hash: str, *, namespace: str = "smartbus") -> None:
        self._redis: aioredis.Redis = redis_client.client(url)
        self._prefix = f"{namespace}:trk:{feed_hash[:16]}:"
        self._save = self._redis.register_script(_SAVE_NEWEST)
        self._load = self._redis.register_script(_LOAD)

    async def load(self, vehicle_ids: Iterable[str]) -> dict[str, Snapshot]:
        ids = list(vehicle_ids)
        if not ids:
            return {}
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for start in range(0, len(ids), LOAD_CHUNK):
                    await self._load(keys=[self._prefix + vid for vid in ids[start : start + LOAD_CHUNK]], client=pipe)
                chunks: list[list[bytes | None]] = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise ServiceUnavailable(f"Redis (tracker snapshots): {exc}") from exc
        found = [value for chunk in chunks for value in chunk]
        loaded = {vid: (_load(blob), found[2 * i + 1]) for i, vid in enumerate(ids) if (blob := found[2 * i])}
        return _restorable(loaded)

    async def save(self, snapshots: Mapping[str, Snapshot]) -> None:
        await self.save_encoded(encode_snapshots(snapshots))

    async def save_encoded(self, snapshots: Sequence[EncodedSnapshot]) -> None:
        if not snapshots:
            return
        try:
            # In scripts of SAVE_CHUNK keys, one round trip: Redis serves the live writer between them. One script
            # of a 10,000-bus fleet's second of snapshots (2,000) held Redis for the whole of it.
            async with self._redis.pipeline(transaction=False) as pipe:
                for start in range(0, len(snapshots), SAVE_CHUNK):
                    keys: list[str] = []
                    args: list[bytes | str | float] = [SNAPSHOT_TTL_S * 1000]
                    for vid, timestamp, blob, covered in snapshots[start : start + SAVE_CHUNK]:
                        keys.append(self._prefix + vid)
                        args += [repr(timestamp), blob, covered]
                    await self._save(keys=keys, args=args, client=pipe)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            raise ServiceUnavailable(f"Redis (tracker snapshots): {exc}") from exc

    async def close(self) -> None:
        await self._redis.aclose()
