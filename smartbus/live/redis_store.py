"""Live state in Redis: latest vehicle states, per-stop arrival boards, and pub/sub for the api.

Layout under a namespace (default "smartbus"), all keys expiring so a dead vehicle does not linger:
  {ns}:veh:{vehicle_id}     hash {ts, state}            the latest VehicleState (messages JSON)
  {ns}:vehicles             sorted set vehicle_id->ts   index of vehicles (entries whose hash expired are
                                                        dropped when read)
  {ns}:board:{stop_id}      hash trip_key -> Arrival JSON
  {ns}:vidx:{vehicle_id}    made_at NUL stop_id NUL     what the vehicle's latest set wrote, to replace it
                            trip_key NUL ...
  {ns}:arrived:{stop_id}    set of trip_keys            trips that reached the stop: a late prediction
                                                        must not put them back on the board
Channels are published as "{ns}:fleet" and "{ns}:stop:{stop_id}" and handed to subscribers without the
namespace. Every write batch runs as Lua scripts in one pipeline: one round trip, and each vehicle's
compare-and-replace is atomic even with several writers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, Final

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from smartbus.errors import ServiceUnavailable
from smartbus.live.board import Arrival, is_expired, trip_key, visible_board
from smartbus.live.store import DEFAULT_BOARD_TTL_S, DEFAULT_VEHICLE_TTL_S
from smartbus.messages import PredictionSet, StopEvent, VehicleState, decode_as, encode

# ARGV: ns, ttl_ms, then (vehicle_id, timestamp, state JSON) triples. Publishes the accepted states.
_PUT_STATES: Final = """
local ns, ttl = ARGV[1], tonumber(ARGV[2])
local accepted = {}
for i = 3, #ARGV, 3 do
  local vid, ts, payload = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
  local key = ns .. ':veh:' .. vid
  local old = redis.call('HGET', key, 'ts')
  if (not old) or tonumber(old) <= ts then
    redis.call('HSET', key, 'ts', ARGV[i + 1], 'state', payload)
    redis.call('PEXPIRE', key, ttl)
    redis.call('ZADD', ns .. ':vehicles', ts, vid)
    accepted[#accepted + 1] = payload
  end
end
if #accepted > 0 then
  redis.call('PUBLISH', ns .. ':fleet', '[' .. table.concat(accepted, ',') .. ']')
end
return #accepted
"""

# ARGV: ns, ttl_ms, vehicle_id, made_at, then every stop of the set in one string: stop_id NUL trip_key NUL
# Arrival JSON, NUL between stops (see _board_rows). The writer encodes the board entries (orjson, a microsecond
# each) and the script only splits and stores them: Redis runs every writer's scripts on its one thread, and
# building JSON in Lua was most of its time (bench/live_store.py). The index of what the set wrote,
# {ns}:vidx:{vid}, is made_at NUL stop_id NUL trip_key NUL ..., so that the next set can remove what it drops.
# The board key of a trip is smartbus.live.board.trip_key: service date, colon, trip id.
_PUT_PREDICTIONS: Final = """
local ns, ttl, vid, made_at = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local index_key = ns .. ':vidx:' .. vid
local rows, n = ARGV[5], 0
local stops, keys, arrivals, written = {}, {}, {}, {}
local pos, last = 1, #ARGV[5]
while pos <= last do
  local a = string.find(rows, '\\0', pos, true)
  local b = string.find(rows, '\\0', a + 1, true)
  local c = string.find(rows, '\\0', b + 1, true) or (last + 1)
  n = n + 1
  stops[n], keys[n] = string.sub(rows, pos, a - 1), string.sub(rows, a + 1, b - 1)
  arrivals[n] = string.sub(rows, b + 1, c - 1)
  written[string.sub(rows, pos, b - 1)] = true
  pos = c + 1
end
local touched = {}
local old = redis.call('GET', index_key)
if old then
  local cut = string.find(old, '\\0', 1, true) or (#old + 1)
  if tonumber(string.sub(old, 1, cut - 1)) > made_at then return 0 end
  -- entries the new set writes again are overwritten below: only the ones it drops are removed here
  local p = cut + 1
  while p <= #old do
    local x = string.find(old, '\\0', p, true)
    local y = string.find(old, '\\0', x + 1, true) or (#old + 1)
    if not written[string.sub(old, p, y - 1)] then
      local stop_id, key = string.sub(old, p, x - 1), string.sub(old, x + 1, y - 1)
      local board = ns .. ':board:' .. stop_id
      local current = redis.call('HGET', board, key)
      -- another vehicle may have taken the trip over since: leave its entry alone
      if current and cjson.decode(current).vehicle_id == vid then
        redis.call('HDEL', board, key)
        touched[stop_id] = true
      end
    end
    p = y + 1
  end
end
local index = {ARGV[4]}
for i = 1, n do
  local stop_id, key = stops[i], keys[i]
  if redis.call('SISMEMBER', ns .. ':arrived:' .. stop_id, key) == 0 then
    local board = ns .. ':board:' .. stop_id
    redis.call('HSET', board, key, arrivals[i])
    redis.call('PEXPIRE', board, ttl)
    touched[stop_id] = true
    index[#index + 1] = stop_id .. '\\0' .. key
  end
end
redis.call('SET', index_key, table.concat(index, '\\0'), 'PX', ttl)
for stop_id, _ in pairs(touched) do
  redis.call('PUBLISH', ns .. ':stop:' .. stop_id, '')
end
return 1
"""

# ARGV: ns, ttl_ms, then (stop_id, trip_key) pairs. Publishes for each stop whose board lost an entry.
_REMOVE_ARRIVED: Final = """
local ns, ttl = ARGV[1], tonumber(ARGV[2])
for i = 3, #ARGV, 2 do
  redis.call('SADD', ns .. ':arrived:' .. ARGV[i], ARGV[i + 1])
  redis.call('PEXPIRE', ns .. ':arrived:' .. ARGV[i], ttl)
  if redis.call('HDEL', ns .. ':board:' .. ARGV[i], ARGV[i + 1]) == 1 then
    redis.call('PUBLISH', ns .. ':stop:' .. ARGV[i], '')
  end
end
return 1
"""

# KEYS[1]: board; ARGV: (trip_key, expected JSON) pairs. Deletes entries only if unchanged since read.
_PRUNE_BOARD: Final = """
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return 1
"""


def _board_rows(prediction_set: PredictionSet) -> bytes:
    """The set's board entries for _PUT_PREDICTIONS: stop_id, trip key and Arrival JSON of each stop, NUL between.
    A stop whose ids hold a NUL (no real feed's do) is left out rather than split wrongly."""
    dumps = orjson.dumps
    vehicle_id, made_at = prediction_set.vehicle_id, prediction_set.made_at
    parts: list[bytes] = []
    for p in prediction_set.stops:
        key = trip_key(p.trip_id, p.service_date)
        if "\0" in p.stop_id or "\0" in key:
            continue
        parts += (p.stop_id.encode(), key.encode(), dumps({
            "stop_id": p.stop_id, "trip_id": p.trip_id, "service_date": p.service_date, "route_id": p.route_id,
            "vehicle_id": vehicle_id, "stop_sequence": p.stop_sequence, "scheduled_arrival": p.scheduled_arrival,
            "predicted_arrival": p.predicted_arrival, "method": p.method, "uncertainty_s": p.uncertainty_s,
            "updated_at": made_at,
        }))
    return b"\0".join(parts)


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
        pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=10)
        self._redis: aioredis.Redis = aioredis.Redis(connection_pool=pool)
        self._ns = namespace
        self._vehicle_ttl_ms = max(1, int(vehicle_ttl_s * 1000))
        self._board_ttl_ms = max(1, int(board_ttl_s * 1000))
        self._put_states = self._redis.register_script(_PUT_STATES)
        self._put_predictions = self._redis.register_script(_PUT_PREDICTIONS)
        self._remove_arrived = self._redis.register_script(_REMOVE_ARRIVED)
        self._prune_board = self._redis.register_script(_PRUNE_BOARD)

    async def put_states(self, states: Sequence[VehicleState]) -> None:
        if not states:
            return
        args: list[Any] = [self._ns, self._vehicle_ttl_ms]
        for state in states:
            args += [state.vehicle_id, repr(state.timestamp), encode(state)]
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
            if gone:
                await self._redis.zrem(f"{self._ns}:vehicles", *gone)
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
        async with self._redis.pipeline(transaction=False) as pipe:
            for prediction_set in sets:
                args: list[Any] = [
                    self._ns,
                    self._board_ttl_ms,
                    prediction_set.vehicle_id,
                    repr(prediction_set.made_at),
                    _board_rows(prediction_set),
                ]
                await self._put_predictions(args=args, client=pipe)
            await self._run(pipe.execute())

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
        pubsub = self._redis.pubsub()
        try:
            patterns = [prefix + c for c in channels if any(ch in c for ch in "*?[")]
            exact = [prefix + c for c in channels if c not in patterns and prefix + c not in patterns]
            if patterns:
                await pubsub.psubscribe(*patterns)
            if exact:
                await pubsub.subscribe(*exact)
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is None or message["type"] not in ("message", "pmessage"):
                    continue
                channel = message["channel"].decode()
                yield channel.removeprefix(prefix), message["data"]
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
        await self._redis.aclose(close_connection_pool=True)  # the pool is ours, made in __init__

    def _vehicle_key(self, vehicle_id: str) -> str:
        return f"{self._ns}:veh:{vehicle_id}"

    async def _run(self, awaitable: Any) -> Any:
        try:
            return await awaitable
        except (RedisError, OSError) as exc:
            raise ServiceUnavailable(f"redis: {exc}") from exc
