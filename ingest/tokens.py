"""Per-device ingest tokens: operators issue and revoke them; the edge checks them on every batch.

A token reads `sbd_<token_id>_<secret>`. Only SHA-256(secret) is stored (the secret is 32 random bytes, so a
fast hash resists guessing without stretching); the token_id finds the row. A token belongs to one
vehicle of one feed: the vehicle ids it publishes are namespaced as `<feed>:<vehicle_id>`, so several
agencies can share a deployment without their ids colliding.

Verified tokens are cached for `cache_s` (30 s by default): a revocation takes effect within that time,
and a busy edge does not ask the database once per batch.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

import psycopg

TOKEN_PATTERN: Final = re.compile(r"^sbd_(?P<token_id>[0-9a-f]{16})_(?P<secret>[A-Za-z0-9_-]{43})$")
DEFAULT_FEED: Final = "default"

Connect = Callable[[], Awaitable[psycopg.AsyncConnection]]


@dataclass(frozen=True)
class DeviceIdentity:
    token_id: str
    feed: str
    vehicle_id: str  # as the device knows it, without the feed

    @property
    def namespaced_vehicle_id(self) -> str:
        return namespaced(self.feed, self.vehicle_id)


@dataclass(frozen=True)
class IssuedToken:
    identity: DeviceIdentity
    token: str  # shown once, never stored


def namespaced(feed: str, vehicle_id: str) -> str:
    return f"{feed}:{vehicle_id}"


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def parse_token(token: str) -> tuple[str, str] | None:
    """(token_id, secret) of a well-formed token, else None."""
    match = TOKEN_PATTERN.match(token.strip())
    return (match["token_id"], match["secret"]) if match else None


async def issue_token(
    conn: psycopg.AsyncConnection, vehicle_id: str, feed: str = DEFAULT_FEED, note: str = ""
) -> IssuedToken:
    if not vehicle_id or not feed or ":" in feed:
        raise ValueError("a token needs a vehicle id and a feed name without ':'")
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    await conn.execute(
        "INSERT INTO device_tokens (token_id, secret_hash, feed, vehicle_id, note) VALUES (%s, %s, %s, %s, %s)",
        (token_id, _hash(secret), feed, vehicle_id, note),
    )
    await conn.commit()
    return IssuedToken(DeviceIdentity(token_id, feed, vehicle_id), f"sbd_{token_id}_{secret}")


async def revoke_token(conn: psycopg.AsyncConnection, token_id: str) -> bool:
    """True if a live token was revoked."""
    cur = await conn.execute(
        "UPDATE device_tokens SET revoked_at = now() WHERE token_id = %s AND revoked_at IS NULL", (token_id,)
    )
    await conn.commit()
    return cur.rowcount == 1


async def list_tokens(conn: psycopg.AsyncConnection) -> list[tuple[str, str, str, str, bool]]:
    """(token_id, feed, vehicle_id, note, revoked) of every token, newest first."""
    cur = await conn.execute(
        "SELECT token_id, feed, vehicle_id, note, revoked_at IS NOT NULL FROM device_tokens"
        " ORDER BY created_at DESC"
    )
    return [(str(a), str(b), str(c), str(d), bool(e)) for a, b, c, d, e in await cur.fetchall()]


class TokenVerifier:
    """Checks a presented token against the registry, with a short cache of the registry's answers."""

    def __init__(
        self, connect: Connect, *, cache_s: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._connect = connect
        self._cache_s = cache_s
        self._clock = clock
        # token_id -> (when looked up, (identity, stored hash) or None when unknown or revoked)
        self._cache: dict[str, tuple[float, tuple[DeviceIdentity, bytes] | None]] = {}

    async def verify(self, token: str) -> DeviceIdentity | None:
        parsed = parse_token(token)
        if parsed is None:
            return None
        token_id, secret = parsed
        now = self._clock()
        cached = self._cache.get(token_id)
        if cached is None or now - cached[0] >= self._cache_s:
            if len(self._cache) > 100_000:  # clients inventing token ids must not grow it without bound
                self._cache.clear()
            cached = (now, await self._lookup(token_id))
            self._cache[token_id] = cached
        entry = cached[1]
        if entry is None or not hmac.compare_digest(entry[1], _hash(secret)):
            return None
        return entry[0]

    async def _lookup(self, token_id: str) -> tuple[DeviceIdentity, bytes] | None:
        async with await self._connect() as conn:
            cur = await conn.execute(
                "SELECT secret_hash, feed, vehicle_id FROM device_tokens WHERE token_id = %s AND revoked_at IS NULL",
                (token_id,),
            )
            row = await cur.fetchone()
        if row is None:
            return None
        stored, feed, vehicle_id = row
        return DeviceIdentity(token_id, str(feed), str(vehicle_id)), bytes(stored)
