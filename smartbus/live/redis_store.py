"""Live state in Redis: latest vehicle states, per-stop arrival boards, and pub/sub for the api.

Layout under a namespace (default "smartbus"), all keys expiring so a dead vehicle does not linger:
  {ns}:veh:{vehicle_id}       hash {ts, state}           the latest VehicleState (messages JSON)
  {ns}:vehicles               sorted set vehicle_id->ts  index of vehicles (entries whose hash expired are
                                                         dropped when read)
  {ns}:board:{stop_id}        hash trip_key -> Arrival JSON
  {ns}:vidx:{vehicle_id}      made_at NUL stop_id NUL    what the vehicle's latest set wrote, to replace it
                              trip_key NUL ...
  {ns}:arrived:{stop_id}      set of trip_keys           trips that reached the stop: a late prediction
  {ns}:tarrived:{trip_key}    set of stop_ids            must not put them back on the board (the same facts
                                                         both ways: by stop for the api, by trip for the writer)
Channels: "{ns}:fleet" carries the accepted states. Board changes go out on one channel, "{ns}:boards", as the
ids of the stops a write touched, NUL between; `subscribe` hands them to subscribers as the contract's
"stop:{stop_id}" channels, without the namespace. Every write batch runs as Lua scripts in one pipeline: one round
trip, and each vehicle's compare-and-replace is atomic even with several writers.

Redis runs every writer's scripts on its one thread, so what they cost it bounds the whole deployment
(bench/live_store.py measures it). Two things keep that low:
- a script's redis.call count: a stop of a prediction set is one HSET. The arrived check is one SMEMBERS per trip of
  the set, one PUBLISH carries all its stops, and a key's TTL is set again only when this process last set it
  more than a quarter of the TTL ago (see _TtlClock). A set of 23 stops made 92 calls before.
- the live state's writes are not appended to Redis's append-only file: every write script begins with
  redis.set_repl(redis.REPL_NONE). It is rebuilt from the stream (a bus's next ping; its next prediction set,
  within eta.prediction's REFRESH_S), and at 10,000 pings/s writing it to disk, and rewriting that file every few
  seconds, took Redis more CPU than storing it. Operators' notices, written with plain commands, still go to it.
  A rewrite of the file (which dumps the whole dataset, rarely now) takes the live state as it is then, so a
  restarted Redis may come back with an older picture, which the stream writes over as above.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any, Final

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from smartbus import redis_client
from smartbus.errors import ServiceUnavailable
from smartbus.live.board import Arrival, is_expired, trip_key, visible_board
from smartbus.live.glob import redis_glob
from smartbus.live.store import DEFAULT_BOARD_TTL_S, DEFAULT_VEHICLE_TTL_S, STOP_CHANNEL_PREFIX
from smartbus.messages import EncodedState, PredictionSet, StopEvent, VehicleState, decode_as, encode

BOARDS_CHANNEL: Final = "boards"  # under the namespace; what subscribers see as "stop:{id}", one per id

# ARGV: ns, ttl_ms, then (vehicle_id, timestamp, refresh, state JSON) quadruples; refresh "1" sets the key's TTL
# and the index entry (see _TtlClock). Publishes the accepted states.
_PUT_STATES: Final = """
redis.set_repl(redis.REPL_NONE)
local ns, ttl = ARGV[1], tonumber(ARGV[2])
local accepted = {}
for i = 3, #ARGV, 4 do
  local vid, ts, payload = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 3]
  local key = ns .. ':veh:' .. vid
  local old = redis.call('HGET', key, 'ts')
  if (not old) or tonumber(old) <= ts then
    redis.call('HSET', key, 'ts', ARGV[i + 1], 'state', payload)
    -- a hash new to Redis (the bus's first, or it expired, or Redis lost it) gets its TTL and index entry now
    if (not old) or ARGV[i + 2] == '1' then
      redis.call('PEXPIRE', key, ttl)
      redis.call('ZADD', ns .. ':vehicles', ts, vid)
    end
    accepted[#accepted + 1] = payload
  elseif ARGV[i + 2] == '1' then
    redis.call('PEXPIRE', key, ttl)  -- a late state is not stored, but the refresh due is not lost
  end
end
if #accepted > 0 then
  redis.call('PUBLISH', ns .. ':fleet', '[' .. table.concat(accepted, ',') .. ']')
end
return #accepted
"""

# ARGV: ns, ttl_ms, vehicle_id, made_at, then every stop of the set in one string: stop_id NUL trip_key NUL
# refresh NUL Arrival JSON, NUL between stops (see _board_rows); refresh "1" sets the board's TTL. The writer
# encodes the board entries (orjson, a microsecond each) and the script only splits and stores them: building
# JSON in Lua was most of Redis's time. The index of what the set wrote, {ns}:vidx:{vid}, is made_at NUL stop_id
# NUL trip_key NUL ..., so that the next set can remove what it drops. The board key of a trip is
# smartbus.live.board.trip_key: service date, colon, trip id. Returns 1, or 0 for a set older than the last.
_PUT_PREDICTIONS: Final = """
redis.set_repl(redis.REPL_NONE)
local ns, ttl, vid, made_at = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local find, sub = string.find, string.sub
local index_key = ns .. ':vidx:' .. vid
local old = redis.call('GET', index_key)
local cut
if old then
  cut = find(old, '\\0', 1, true) or (#old + 1)
  if tonumber(sub(old, 1, cut - 1)) > made_at then return 0 end
end
local rows, n = ARGV[5], 0
local stops, keys, refresh, arrivals, written = {}, {}, {}, {}, {}
local pos, last = 1, #ARGV[5]
while pos <= last do
  local a = find(rows, '\\0', pos, true)
  local b = find(rows, '\\0', a + 1, true)
  local c = find(rows, '\\0', b + 1, true)
  local d = find(rows, '\\0', c + 1, true) or (last + 1)
  n = n + 1
  stops[n], keys[n] = sub(rows, pos, a - 1), sub(rows, a + 1, b - 1)
  refresh[n], arrivals[n] = sub(rows, b + 1, c - 1) == '1', sub(rows, c + 1, d - 1)
  written[sub(rows, pos, b - 1)] = true
  pos = d + 1
end
local touched, touched_list = {}, {}
if old then
  -- entries the new set writes again are overwritten below: only the ones it drops are removed here
  local p = cut + 1
  while p <= #old do
    local x = find(old, '\\0', p, true)
    local y = find(old, '\\0', x + 1, true) or (#old + 1)
    if not written[sub(old, p, y - 1)] then
      local stop_id, key = sub(old, p, x - 1), sub(old, x + 1, y - 1)
      local board = ns .. ':board:' .. stop_id
      local current = redis.call('HGET', board, key)
      -- another vehicle may have taken the trip over since: leave its entry alone
      if current and cjson.decode(current).vehicle_id == vid then
        redis.call('HDEL', board, key)
        if not touched[stop_id] then
          touched[stop_id] = true
          touched_list[#touched_list + 1] = stop_id
        end
      end
    end
    p = y + 1
  end
end
local arrived = {}  -- trip_key -> the stops it reached, read once per trip of the set
local index = {ARGV[4]}
for i = 1, n do
  local stop_id, key = stops[i], keys[i]
  local reached = arrived[key]
  if not reached then
    reached = {}
    for _, s in ipairs(redis.call('SMEMBERS', ns .. ':tarrived:' .. key)) do reached[s] = true end
    arrived[key] = reached
  end
  local board = ns .. ':board:' .. stop_id
  if not reached[stop_id] then
    local added = redis.call('HSET', board, key, arrivals[i])
    -- a trip new to the board may be a board new to Redis (emptied and so deleted, or expired): its TTL now
    if refresh[i] or (added == 1 and redis.call('PTTL', board) == -1) then redis.call('PEXPIRE', board, ttl) end
    if not touched[stop_id] then
      touched[stop_id] = true
      touched_list[#touched_list + 1] = stop_id
    end
    index[#index + 1] = stop_id .. '\\0' .. key
  elseif refresh[i] then
    redis.call('PEXPIRE', board, ttl)  -- this trip has arrived there, but the board's refresh due is not lost
  end
end
redis.call('SET', index_key, table.concat(index, '\\0'), 'PX', ttl)
if #touched_list > 0 then
  redis.call('PUBLISH', ns .. ':boards', table.concat(touched_list, '\\0'))
end
return 1
"""

# ARGV: ns, ttl_ms, then (stop_id, trip_key) pairs. Publishes the stops whose board lost an entry.
_REMOVE_ARRIVED: Final = """
redis.set_repl(redis.REPL_NONE)
local ns, ttl = ARGV[1], tonumber(ARGV[2])
local touched = {}
for i = 3, #ARGV, 2 do
  local stop_id, key = ARGV[i], ARGV[i + 1]
  redis.call('SADD', ns .. ':arrived:' .. stop_id, key)
  redis.call('PEXPIRE', ns .. ':arrived:' .. stop_id, ttl)
  redis.call('SADD', ns .. ':tarrived:' .. key, stop_id)
  redis.call('PEXPIRE', ns .. ':tarrived:' .. key, ttl)
  if redis.call('HDEL', ns .. ':board:' .. stop_id, key) == 1 then
    touched[#touched + 1] = stop_id
  end
end
if #touched > 0 then
  redis.call('PUBLISH', ns .. ':boards', table.concat(touched, '\\0'))
end
return 1
"""

# ARGV: ns, then vehicle ids whose state was gone when read: dropped from the index unless written since.
_DROP_GONE: Final = """
redis.set_repl(redis.REPL_NONE)
for i = 2, #ARGV do
  if redis.call('EXISTS', ARGV[1] .. ':veh:' .. ARGV[i]) == 0 then
    redis.call('ZREM', ARGV[1] .. ':vehicles', ARGV[i])
  end
end
return 1
"""

# KEYS[1]: board; ARGV: (trip_key, expected JSON) pairs. Deletes entries only if unchanged since read.
_PRUNE_BOARD: Final = """
redis.set_repl(redis.REPL_NONE)
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return 1
"""


class _TtlClock:
    """When this process last set each key's TTL, so that a key written every second gets it again only when it is
    a quarter of the TTL old: every key written still lives three quarters of the TTL past its last write, the
    same guarantee for the boards' 900 s as the readers' own 600 s refresh limit needs. A key new to Redis (a
    first write, or the key expired, or a board emptied and so deleted, or Redis lost it) gets its TTL from the
    script with the write that makes it, whatever the clock says. Forgetting is always safe (the next write sets
    the TTL again), so the clock forgets everything after any Redis error and when it grows past `max_keys`."""

    def __init__(self, ttl_s: float, max_keys: int = 500_000) -> None:
        self._every_s = ttl_s / 4
        self._set_at: dict[str, float] = {}
        self._max_keys = max_keys

    def due(self, key: str, now: float) -> bool:
        """True when the write about to be sent should set `key`'s TTL; counts it as set."""
        set_at = self._set_at.get(key)
        if set_at is not None and now - set_at < self._every_s:
            return False
        if len(self._set_at) >= self._max_keys:
            self._set_at.clear()
        self._set_at[key] = now
        return True

    def forget(self, keys: Iterable[str] | None = None) -> None:
        if keys is None:
            self._set_at.clear()
            return
        for key in keys:
            self._set_at.pop(key, None)


def _board_rows(prediction_set: PredictionSet, board_ttl: _TtlClock, now: float) -> tuple[bytes, list[str]]:
    """The set's board entries for _PUT_PREDICTIONS (stop_id, trip key, TTL flag and Arrival JSON of each stop, NUL
    between), and the stops whose TTL it sets. A stop whose ids hold a NUL (no real feed's do) is left out rather
    than split wrongly."""
    dumps = orjson.dumps
    vehicle_id, made_at = prediction_set.vehicle_id, prediction_set.made_at
    parts: list[bytes] = []
    refreshed: list[str] = []
    for p in prediction_set.stops:
        key = trip_key(p.trip_id, p.service_date)
        if "\0" in p.stop_id or "\0" in key:
            continue
        refresh = board_ttl.due(p.stop_id, now)
        if refresh:
            refreshed.append(p.stop_id)
        parts += (p.stop_id.encode(), key.encode(), b"1" if refresh else b"0", dumps({
            "stop_id": p.stop_id, "trip_id": p.trip_id, "service_date": p.service_date, "route_id": p.route_id,
            "vehicle_id": vehicle_id, "stop_sequence": p.stop_sequence, "scheduled_arrival": p.scheduled_arrival,
            "predicted_arrival": p.predicted_arrival, "method": p.method, "uncertainty_s": p.uncertainty_s,
            "updated_at": made_at,
        }))
    return b"\0".join(parts), refreshed


class RedisLiveStore:
    def __init__(
        self,
        url: str,
        *,
        namespace: str = "smartbus",
        vehicle_ttl_s: float = DEFAULT_VEHICLE_TTL_S,
        board_ttl_s: float = DEFAULT_BOARD_TTL_S,
        max_connections: int = 64,
    ) -> None:
        # A bounded pool that waits for a free connection: thousands of riders connecting at once must queue
        # for Redis, not open thousands of connections (Redis refuses them beyond maxclients).
        self._redis: aioredis.Redis = redis_client.client(
            url, blocking=True, max_connections=max_connections, timeout=10
        )
        self._ns = namespace
        self._vehicle_ttl_ms = max(1, int(vehicle_ttl_s * 1000))
        self._board_ttl_ms = max(1, int(board_ttl_s * 1000))
        self._put_states = self._redis.register_script(_PUT_STATES)
        self._put_predictions = self._redis.register_script(_PUT_PREDICTIONS)
        self._remove_arrived = self._redis.register_script(_REMOVE_ARRIVED)
        self._prune_board = self._redis.register_script(_PRUNE_BOARD)
        self._drop_gone = self._redis.register_script(_DROP_GONE)
        self._vehicle_ttl = _TtlClock(vehicle_ttl_s)
        self._board_ttl = _TtlClock(board_ttl_s)

    async def put_states(self, states: Sequence[VehicleState | EncodedState]) -> None:
        if not states:
            return
        args: list[Any] = [self._ns, self._vehicle_ttl_ms]
        now = time.monotonic()
        due = self._vehicle_ttl.due
        for state in states:
            if isinstance(state, EncodedState):
                vehicle_id, timestamp, payload = state
            else:
                vehicle_id, timestamp, payload = state.vehicle_id, state.timestamp, encode(state)
            args += [vehicle_id, repr(timestamp), b"1" if due(vehicle_id, now) else b"0", payload]
        await self._run(self._put_states(args=args))

    async def vehicles(self) -> list[VehicleState]:
        async def read() -> list[VehicleState]:
            members: list[Any] = await self._redis.zrange(f"{self._ns}:vehicles", 0, -1)
            ids = [bytes(v).decode() for v in members]
            async with self._redis.pipeline(transaction=False) as pipe:
                for vehicle_id in ids:
                    pipe.hget(self._vehicle_key(vehicle_id), "state")
                raw_states = await pipe.execute()
            gone = [v for v, raw in zip(ids, raw_states, strict=True) if raw is None]
            if gone:  # a writer may have stored one of them again meanwhile: the script checks
                await self._drop_gone(args=[self._ns, *gone])
            states = [decode_as(raw, VehicleState) for raw in raw_states if raw is not None]
            return sorted(states, key=lambda s: s.vehicle_id)

        states: list[VehicleState] = await self._run(read())
        return states

    async def vehicle(self, vehicle_id: str) -> VehicleState | None:
        raw = await self._run(self._redis.hget(self._vehicle_key(vehicle_id), "state"))
        return None if raw is None else decode_as(raw, VehicleState)

    async def put_predictions(self, sets: Sequence[PredictionSet]) -> None:
        if not sets:
            return
        now = time.monotonic()
        refreshed: list[list[str]] = []
        async with self._redis.pipeline(transaction=False) as pipe:
            for prediction_set in sets:
                rows, set_refreshes = _board_rows(prediction_set, self._board_ttl, now)
                refreshed.append(set_refreshes)
                args: list[Any] = [
                    self._ns, self._board_ttl_ms, prediction_set.vehicle_id, repr(prediction_set.made_at), rows
                ]
                await self._put_predictions(args=args, client=pipe)
            results: list[Any] = await self._run(pipe.execute())
        for result, set_refreshes in zip(results, refreshed, strict=True):
            if not result:  # an older set, refused before it wrote anything: its boards' TTLs were not set
                self._board_ttl.forget(set_refreshes)

    async def put_stop_events(self, events: Sequence[StopEvent]) -> None:
        if not events:
            return
        args: list[Any] = [self._ns, self._board_ttl_ms]
        for event in events:
            args += [event.stop_id, trip_key(event.trip_id, event.service_date)]
        await self._run(self._remove_arrived(args=args))

    async def stop_arrivals(self, stop_id: str, now: float) -> list[Arrival]:
        board_key = f"{self._ns}:board:{stop_id}"
        raw: dict[bytes, bytes] = await self._run(self._redis.hgetall(board_key))
        entries = {key: Arrival.from_json(value) for key, value in raw.items()}
        expired = [key for key, arrival in entries.items() if is_expired(arrival, now)]
        if expired:
            # Hidden entries of vehicles that went silent would otherwise pile up on a busy stop.
            args = [x for key in expired for x in (key, raw[key])]
            await self._run(self._prune_board(keys=[board_key], args=args))
        return visible_board(entries.values(), now)

    async def arrived_trips(self, stop_id: str, now: float) -> set[str]:
        members: set[bytes] = await self._run(self._redis.smembers(f"{self._ns}:arrived:{stop_id}"))
        return {m.decode() for m in members}

    async def vehicle_arrivals(self, vehicle_id: str, now: float) -> list[Arrival]:
        async def read() -> list[Arrival]:
            raw_index = await self._redis.get(f"{self._ns}:vidx:{vehicle_id}")
            if raw_index is None:
                return []
            text = raw_index.decode() if isinstance(raw_index, bytes) else raw_index
            fields = text.split("\0")[1:]  # made_at, then stop_id and trip_key in turn
            async with self._redis.pipeline(transaction=False) as pipe:
                for stop_id, key in zip(fields[0::2], fields[1::2], strict=True):
                    pipe.hget(f"{self._ns}:board:{stop_id}", key)
                raw = await pipe.execute()
            arrivals = [Arrival.from_json(r) for r in raw if r is not None]
            return [a for a in arrivals if a.vehicle_id == vehicle_id]

        arrivals: list[Arrival] = await self._run(read())
        return visible_board(arrivals, now)

    async def subscribe(self, channels: Sequence[str]) -> AsyncIterator[tuple[str, bytes]]:
        prefix = self._ns + ":"
        boards = prefix + BOARDS_CHANNEL
        pubsub = self._redis.pubsub()
        try:
            patterns = [c for c in channels if any(ch in c for ch in "*?[")]
            exact = {c for c in channels if c not in patterns}
            matchers = [redis_glob(p) for p in patterns]  # as Redis would match them had they been subscribed
            if patterns:
                await pubsub.psubscribe(*(prefix + c for c in patterns))
            # board changes come as stop ids on one channel; each becomes the "stop:{id}" it stands for
            await pubsub.subscribe(*(prefix + c for c in exact), boards)
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is None or message["type"] not in ("message", "pmessage"):
                    continue
                channel = message["channel"].decode()
                if channel != boards:
                    yield channel.removeprefix(prefix), message["data"]
                elif message["type"] == "message":  # not again through a pattern that also matches it
                    for stop_id in message["data"].decode().split("\0"):
                        stop = STOP_CHANNEL_PREFIX + stop_id
                        if stop in exact or any(m.fullmatch(stop.encode()) for m in matchers):
                            yield stop, b""
        except RedisError as exc:
            raise ServiceUnavailable(f"redis subscription failed: {exc}") from exc
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        await self._redis.aclose()  # and the pool's connections: the client owns it

    def _vehicle_key(self, vehicle_id: str) -> str:
        return f"{self._ns}:veh:{vehicle_id}"

    async def _run(self, awaitable: Any) -> Any:
        try:
            return await awaitable
        except (RedisError, OSError) as exc:
            # Redis may have restarted without the keys whose TTLs we set: set them again with the next writes
            self._vehicle_ttl.forget()
            self._board_ttl.forget()
            raise ServiceUnavailable(f"redis: {exc}") from exc
