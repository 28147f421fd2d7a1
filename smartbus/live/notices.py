"""Operator notices: alerts, cancelled trips, skipped stops and trip-assignment overrides.

Operators write them through the api; riders see them on boards and in the GTFS-realtime feeds; the
tracker can read the overrides. They live beside the live state (Redis, or memory for the demo), so
every api process sees the same notices, and each carries its own end time (UTC epoch seconds) after
which it is gone by itself.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Literal, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from smartbus import redis_client
from smartbus.errors import ServiceUnavailable

NoticeKind = Literal["alert", "cancellation", "skip", "override"]
NOTICES_CHANNEL: Final = "notices"


@dataclass(frozen=True, slots=True)
class Alert:
    """A service alert. Texts are keyed by BCP-47 language ("en", "vi"); times are UTC epoch seconds."""

    alert_id: str
    header: dict[str, str]
    description: dict[str, str] = field(default_factory=dict)
    cause: str = "UNKNOWN_CAUSE"  # GTFS-realtime Alert.Cause name
    effect: str = "UNKNOWN_EFFECT"  # GTFS-realtime Alert.Effect name
    route_ids: tuple[str, ...] = ()
    stop_ids: tuple[str, ...] = ()
    trip_ids: tuple[str, ...] = ()
    start: float | None = None
    end: float | None = None
    created_at: float = 0.0


@dataclass(frozen=True, slots=True)
class TripCancellation:
    trip_id: str
    service_date: str  # YYYYMMDD
    reason: str = ""
    created_at: float = 0.0


@dataclass(frozen=True, slots=True)
class SkippedStops:
    """Stops a trip will not serve (a detour, a closed road)."""

    trip_id: str
    service_date: str  # YYYYMMDD
    stop_ids: tuple[str, ...]
    reason: str = ""
    created_at: float = 0.0


@dataclass(frozen=True, slots=True)
class AssignmentOverride:
    """An operator says which trip a vehicle runs, overriding what the tracker inferred."""

    vehicle_id: str
    trip_id: str
    service_date: str  # YYYYMMDD
    created_at: float = 0.0


def notice_key(kind: NoticeKind, body: Alert | TripCancellation | SkippedStops | AssignmentOverride) -> str:
    if isinstance(body, Alert):
        return body.alert_id
    if isinstance(body, AssignmentOverride):
        return body.vehicle_id
    return json.dumps([body.trip_id, body.service_date], separators=(",", ":"))


def alert_from_dict(body: dict[str, Any]) -> Alert:
    tuples = {k: tuple(body.get(k) or ()) for k in ("route_ids", "stop_ids", "trip_ids")}
    return Alert(**{**body, **tuples})


def skipped_from_dict(body: dict[str, Any]) -> SkippedStops:
    return SkippedStops(**{**body, "stop_ids": tuple(body.get("stop_ids") or ())})


class NoticeStore(Protocol):
    async def put(self, kind: NoticeKind, key: str, body: dict[str, Any], expires_at: float) -> None:
        """Create or replace one notice; it disappears at `expires_at` (UTC epoch seconds)."""

    async def delete(self, kind: NoticeKind, key: str) -> bool: ...

    async def all(self, kind: NoticeKind, now: float) -> list[dict[str, Any]]:
        """Every notice of a kind still in force at `now`, ordered by key."""


class MemoryNoticeStore:
    def __init__(self) -> None:
        self._notices: dict[NoticeKind, dict[str, tuple[dict[str, Any], float]]] = {}

    async def put(self, kind: NoticeKind, key: str, body: dict[str, Any], expires_at: float) -> None:
        self._notices.setdefault(kind, {})[key] = (body, expires_at)

    async def delete(self, kind: NoticeKind, key: str) -> bool:
        return self._notices.get(kind, {}).pop(key, None) is not None

    async def all(self, kind: NoticeKind, now: float) -> list[dict[str, Any]]:
        notices = self._notices.get(kind, {})
        for key in [k for k, (_, end) in notices.items() if end <= now]:
            del notices[key]
        return [notices[k][0] for k in sorted(notices)]


class RedisNoticeStore:
    """One hash per kind, `{ns}:notices:{kind}`, key -> {"body", "expires_at"}; expired entries pruned on read."""

    def __init__(self, url: str, *, namespace: str = "smartbus", clock: Callable[[], float] = time.time) -> None:
        self._redis: aioredis.Redis = redis_client.client(url)
        self._ns = namespace
        self._clock = clock

    async def put(self, kind: NoticeKind, key: str, body: dict[str, Any], expires_at: float) -> None:
        payload = json.dumps({"body": body, "expires_at": expires_at}, ensure_ascii=False)
        await self._run(self._redis.hset(self._key(kind), key, payload))
        await self._run(self._redis.publish(f"{self._ns}:{NOTICES_CHANNEL}", kind))

    async def delete(self, kind: NoticeKind, key: str) -> bool:
        removed = bool(await self._run(self._redis.hdel(self._key(kind), key)))
        if removed:
            await self._run(self._redis.publish(f"{self._ns}:{NOTICES_CHANNEL}", kind))
        return removed

    async def all(self, kind: NoticeKind, now: float) -> list[dict[str, Any]]:
        raw: dict[bytes, bytes] = await self._run(self._redis.hgetall(self._key(kind)))
        alive: list[tuple[str, dict[str, Any]]] = []
        expired = []
        for key, value in raw.items():
            entry = json.loads(value)
            if float(entry["expires_at"]) <= now:
                expired.append(key)
            else:
                alive.append((key.decode(), entry["body"]))
        if expired:
            await self._run(self._redis.hdel(self._key(kind), *expired))
        return [body for _, body in sorted(alive, key=lambda kv: kv[0])]

    async def close(self) -> None:
        await self._redis.aclose()

    def _key(self, kind: NoticeKind) -> str:
        return f"{self._ns}:notices:{kind}"

    async def _run(self, awaitable: Any) -> Any:
        try:
            return await awaitable
        except (RedisError, OSError) as exc:
            raise ServiceUnavailable(f"redis: {exc}") from exc


def as_dict(body: Alert | TripCancellation | SkippedStops | AssignmentOverride) -> dict[str, Any]:
    return asdict(body)
