"""API keys with roles: `sb_<key_id>_<secret>`. Only SHA-256 of the secret is stored (table api_keys).

Secrets are 32 random bytes, so a fast hash is enough: stretching protects guessable passwords, and these
are not guessable. Lookups are cached briefly so a busy analyst does not cost a query per request, which
also means a revoked key stops working within `cache_s`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Final, Literal

import psycopg

Role = Literal["operator", "analyst", "admin"]
ROLES: Final[tuple[Role, ...]] = ("operator", "analyst", "admin")
_KEY_FORMAT: Final = re.compile(r"^sb_(?P<key_id>[a-z0-9]{12})_(?P<secret>[A-Za-z0-9_-]{43})$")


@dataclass(frozen=True, slots=True)
class ApiKey:
    key_id: str
    name: str
    roles: frozenset[str]

    def allows(self, role: Role) -> bool:
        return role in self.roles or "admin" in self.roles


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


async def create_key(conn: psycopg.AsyncConnection, name: str, roles: Sequence[Role]) -> str:
    """Store a new key and return it in full; this is the only time the secret is seen."""
    unknown = set(roles) - set(ROLES)
    if unknown or not roles:
        raise ValueError(f"roles must be some of {', '.join(ROLES)}; got {', '.join(roles) or 'none'}")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    await conn.execute(
        "INSERT INTO api_keys (key_id, secret_hash, name, roles) VALUES (%s, %s, %s, %s)",
        (key_id, _hash(secret), name, list(roles)),
    )
    return f"sb_{key_id}_{secret}"


async def revoke_key(conn: psycopg.AsyncConnection, key_id: str) -> bool:
    cur = await conn.execute(
        "UPDATE api_keys SET revoked_at = now() WHERE key_id = %s AND revoked_at IS NULL", (key_id,)
    )
    return cur.rowcount == 1


class KeyChecker:
    def __init__(self, *, cache_s: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._cache: dict[str, tuple[ApiKey | None, float]] = {}
        self._cache_s = cache_s
        self._clock = clock

    async def check(
        self, conn_factory: Callable[[], AbstractAsyncContextManager[psycopg.AsyncConnection]], presented: str
    ) -> ApiKey | None:
        """The key's record when `presented` is a live key, else None. `conn_factory` opens a connection."""
        match = _KEY_FORMAT.match(presented)
        if match is None:
            return None
        digest = hashlib.sha256(presented.encode()).hexdigest()
        cached = self._cache.get(digest)
        if cached is not None and cached[1] > self._clock():
            return cached[0]
        async with conn_factory() as conn:
            cur = await conn.execute(
                "SELECT secret_hash, name, roles FROM api_keys WHERE key_id = %s AND revoked_at IS NULL",
                (match["key_id"],),
            )
            row = await cur.fetchone()
        key = None
        if row is not None and hmac.compare_digest(bytes(row[0]), _hash(match["secret"])):
            key = ApiKey(match["key_id"], row[1], frozenset(row[2]))
        if len(self._cache) > 10_000:
            self._cache.clear()  # hostile clients presenting random keys cannot grow it without bound
        self._cache[digest] = (key, self._clock() + self._cache_s)
        return key
