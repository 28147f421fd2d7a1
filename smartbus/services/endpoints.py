"""Where each service must listen, read from the same Settings URLs the clients connect with.

Starting the servers from the clients' own addresses keeps the two from drifting apart, and lets a
second set of services run beside the first (other ports, other services_dir) for tests.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from smartbus.errors import ValidationError
from smartbus.services.postgres_server import Database


def kafka_address(bootstrap: str) -> tuple[str, int]:
    """host and port of the first bootstrap server, e.g. "127.0.0.1:19092"."""
    first = bootstrap.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    if not host or not port.isdigit():
        raise ValidationError("expected host:port", field="kafka_bootstrap", value=bootstrap)
    return host, int(port)


def redis_address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme != "redis" or not parts.hostname:
        raise ValidationError("expected redis://host:port/db", field="redis_url", value=url)
    return parts.hostname, parts.port or 6379


def database_from_url(url: str) -> Database:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname or not parts.username or not name:
        raise ValidationError("expected postgresql://user:password@host:port/dbname", field="database_url", value=url)
    return Database(
        host=parts.hostname,
        port=parts.port or 5432,
        role=unquote(parts.username),
        password=unquote(parts.password or ""),
        name=unquote(name),
    )
