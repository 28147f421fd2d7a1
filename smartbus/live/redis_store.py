"""Live state in Redis: latest vehicle states, per-stop arrival boards, and pub/sub for the api.

Layout under a namespace (default "smartbus"), all keys expiring so a dead vehicle does not linger:
  {ns}:veh:{vehicle_id}     hash {ts, state}            the latest VehicleState (messages JSON)
  {ns}:vehicles             sorted set vehicle_id->ts   index of vehicles (entries whose hash expired are
                                                        dropped when read)
  {ns}:board:{stop_id}      hash trip_key -> Arrival JSON
  {ns}:vpred:{vehicle_id}   JSON {made_at, entries}     what the vehicle's latest set wrote, to replace it
  {ns}:arrived:{stop_id}    set of trip_keys            trips that reached the stop: a late prediction
                                                        must not put them back on the board
Channels are published as "{ns}:fleet" and "{ns}:stop:{stop_id}" and handed to subscribers without the
namespace. Every write batch runs as Lua scripts in one pipeline: one round trip, and each vehicle's
compare-and-replace is atomic even with several writers.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any, Final

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

# ARGV: ns, ttl_ms, vehicle_id, made_at, the prediction set as its bus message (smartbus.messages, version 2:
# stops grouped by trip, a row of values each). The script writes each stop's Arrival JSON itself: encoding
# ~25 of them per set in Python, and handing Redis three arguments per stop, were most of the live writer.
# The board key of a trip is smartbus.live.board.trip_key: service date, colon, trip id.
_PUT_PREDICTIONS: Final = """
local ns, ttl, vid, made_at = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local index_key = ns .. ':vpred:' .. vid
local message = cjson.decode(ARGV[5])
local rows = {}
for _, trip in ipairs(message.trips) do
  local key = trip.service_date .. ':' .. trip.trip_id
  for _, stop in ipairs(trip.stops) do
    rows[#rows + 1] = {stop[1], key, trip, stop}
  end
end
local touched = {}
local old = redis.call('GET', index_key)
if old then
  local index = cjson.decode(old)
  if tonumber(index.made_at) > made_at then return 0 end
  -- entries the new set writes again are overwritten below: only the ones it drops are removed here
  local kept = {}
  for _, row in ipairs(rows) do kept[row[1] .. '\0' .. row[2]] = true end
  for _, entry in ipairs(index.entries) do
    if not kept[entry[1] .. '\0' .. entry[2]] then
      local board = ns .. ':board:' .. entry[1]
      local current = redis.call('HGET', board, entry[2])
      -- another vehicle may have taken the trip over since: leave its entry alone
      if current and cjson.decode(current).vehicle_id == vid then
        redis.call('HDEL', board, entry[2])
        touched[entry[1]] = true
      end
    end
  end
end
local entries = {}
for _, row in ipairs(rows) do
  local stop_id, key, trip, stop = row[1], row[2], row[3], row[4]
  if redis.call('SISMEMBER', ns .. ':arrived:' .. stop_id, key) == 0 then
    local board = ns .. ':board:' .. stop_id
    local arrival = cjson.encode({
      stop_id = stop_id, trip_id = trip.trip_id, service_date = trip.service_date, route_id = trip.route_id,
      vehicle_id = vid, stop_sequence = stop[2], predicted_arrival = stop[3], scheduled_arrival = stop[4],
      method = stop[5], uncertainty_s = stop[6], updated_at = made_at,
    })
    redis.call('HSET', board, key, arrival)
    redis.call('PEXPIRE', board, ttl)
    touched[stop_id] = true
    entries[#entries + 1] = {stop_id, key}
  end
end
redis.call('SET', index_key, cjson.encode({made_at = ARGV[4], entries = entries}), 'PX', ttl)
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
                    encode(prediction_set),
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
            raw_index = await self._redis.get(f"{self._ns}:vpred:{vehicle_id}")
            if raw_index is None:
                return []
            entries = json.loads(raw_index).get("entries") or []  # cjson encodes an empty list as {}
            async with self._redis.pipeline(transaction=False) as pipe:
                for stop_id, key in entries:
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
