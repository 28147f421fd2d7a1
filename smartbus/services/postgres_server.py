"""PostgreSQL from Debian's packages, run as our own cluster under the services directory.

Debian's own cluster and service are left alone: we initdb a data directory owned by the `postgres`
OS user (the server refuses to run as root) and start it with pg_ctl on 127.0.0.1:15432.
"""

from __future__ import annotations

import functools
import os
import pwd
import re
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from smartbus.services.apt import ensure_packages
from smartbus.services.base import Service
from smartbus.services.process import live_pid, run_checked, terminate

PG_OS_USER = "postgres"
DEBIAN_PG_ROOT = Path("/usr/lib/postgresql")
PLAIN_PATH = "using the plain PostgreSQL path (native partitioning, BRIN, materialized views)"


def newest_bin_dir(root: Path = DEBIAN_PG_ROOT) -> Path | None:
    """The bin directory of the newest PostgreSQL major version installed, e.g. /usr/lib/postgresql/16/bin."""
    candidates = [
        (int(version_dir.name), version_dir / "bin")
        for version_dir in root.glob("*")
        if version_dir.name.isdigit() and (version_dir / "bin" / "postgres").exists()
    ]
    return max(candidates)[1] if candidates else None


def timescale_version(share_dir: Path) -> str | None:
    """The default version in timescaledb.control under `share_dir`/extension, or None when absent."""
    control = share_dir / "extension" / "timescaledb.control"
    try:
        text = control.read_text()
    except OSError:
        return None
    match = re.search(r"default_version\s*=\s*'([^']+)'", text)
    return match.group(1) if match else "unknown"


def render_postgresql_conf(socket_dir: Path, use_timescale: bool, host: str, port: int) -> str:
    """Our settings, included from the cluster's postgresql.conf: a small machine shared with others."""
    lines = [
        "# Written by `smartbus services`; edits are overwritten at the next start.",
        f"listen_addresses = '{host}'",
        f"port = {port}",
        f"unix_socket_directories = '{socket_dir}'",
        "max_connections = 200",
        "shared_buffers = 256MB",
        "work_mem = 8MB",
        "maintenance_work_mem = 128MB",
        "effective_cache_size = 1GB",
        # Durability is the point of the store: keep both on.
        "fsync = on",
        "synchronous_commit = on",
        "max_wal_size = 1GB",
        "logging_collector = off",
        "log_min_duration_statement = 1000",
        "timezone = 'UTC'",
    ]
    if use_timescale:
        lines += ["shared_preload_libraries = 'timescaledb'", "timescaledb.telemetry_level = off"]
    return "\n".join(lines) + "\n"


def render_pg_hba(host: str) -> str:
    """Local socket (ours, mode 0700) trusted for the superuser; TCP on loopback needs a password."""
    return "\n".join(
        [
            "# Written by `smartbus services`.",
            "local   all   all                   trust",
            f"host    all   all   {host}/32    scram-sha-256",
            "host    all   all   ::1/128         scram-sha-256",
            "",
        ]
    )


@dataclass(frozen=True)
class Database:
    """Where the server listens, and the application's role and database to create there."""

    host: str
    port: int
    role: str
    password: str
    name: str


@dataclass(frozen=True)
class PostgresPaths:
    data_dir: Path
    socket_dir: Path
    logfile: Path


class PostgresService(Service):
    name = "postgres"
    startup_timeout_seconds = 60.0

    def __init__(self, services_dir: Path, database: Database, allow_timescale: bool = True) -> None:
        super().__init__(services_dir)
        self.database = database
        self.allow_timescale = allow_timescale

    @property
    def endpoint(self) -> str:
        return f"{self.database.host}:{self.database.port}"

    @property
    def paths(self) -> PostgresPaths:
        return PostgresPaths(
            data_dir=self.home / "data", socket_dir=self.home / "socket", logfile=self.home / "postgres.log"
        )

    @property
    def log_path(self) -> Path:
        return self.paths.logfile

    @property
    def bin_dir(self) -> Path:
        found = newest_bin_dir()
        if found is None:
            from smartbus.errors import ServiceUnavailable

            raise ServiceUnavailable(f"no PostgreSQL server under {DEBIAN_PG_ROOT}")
        return found

    @functools.cache  # noqa: B019 (a handful of short-lived instances per command)
    def share_dir(self) -> Path:
        output = run_checked([str(self.bin_dir / "pg_config"), "--sharedir"], "pg_config --sharedir")
        return Path(output.strip())

    def installed_timescale(self) -> str | None:
        """The TimescaleDB extension's version when the server has it installed."""
        return timescale_version(self.share_dir())

    def timescale(self) -> str | None:
        """The TimescaleDB version we will load, or None for the plain PostgreSQL path."""
        return self.installed_timescale() if self.allow_timescale else None

    def install(self) -> None:
        if newest_bin_dir() is None:
            ensure_packages(["postgresql"])

    def pid(self) -> int | None:
        return live_pid(self.paths.data_dir / "postmaster.pid", "postgres")

    def _superuser_conninfo(self) -> str:
        """The superuser over our private unix socket (trusted), so set-up needs no password."""
        from psycopg.conninfo import make_conninfo

        return make_conninfo(
            host=str(self.paths.socket_dir),
            port=self.database.port,
            user=PG_OS_USER,
            dbname="postgres",
            connect_timeout=2,
        )

    def _application_conninfo(self) -> str:
        """The application's role over TCP, as every smartbus process connects."""
        from psycopg.conninfo import make_conninfo

        db = self.database
        return make_conninfo(
            host=db.host, port=db.port, user=db.role, password=db.password, dbname=db.name, connect_timeout=2
        )

    def _our_version(self) -> str | None:
        """The version of the server this checkout started, over its private socket; None when it is not up."""
        return _server_version(self._superuser_conninfo()) if self.paths.socket_dir.exists() else None

    def _ours_answers(self) -> bool:
        return self._our_version() is not None

    def probe(self) -> str | None:
        """The server's version when one answers: ours over its private socket, or one started elsewhere (another
        checkout's `smartbus services up`, say) that already serves our role and database on our port."""
        return self._our_version() or _server_version(self._application_conninfo())

    def _as_postgres(self, *argv: str) -> list[str]:
        return ["runuser", "-u", PG_OS_USER, "--", *argv]

    def _make_reachable(self) -> None:
        """The postgres user must be able to walk down to its data directory: add search (x) bits."""
        for directory in [*reversed(self.home.parents), self.home]:
            mode = directory.stat().st_mode
            if not mode & stat.S_IXOTH:
                directory.chmod(mode | stat.S_IXOTH)

    def _initdb(self) -> None:
        paths = self.paths
        account = pwd.getpwnam(PG_OS_USER)
        for directory in (paths.data_dir, paths.socket_dir):
            directory.mkdir(parents=True, exist_ok=True)
            os.chown(directory, account.pw_uid, account.pw_gid)
            directory.chmod(0o700)
        if (paths.data_dir / "PG_VERSION").exists():
            return
        run_checked(
            self._as_postgres(
                str(self.bin_dir / "initdb"),
                "-D",
                str(paths.data_dir),
                "-U",
                PG_OS_USER,
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--no-instructions",
            ),
            "initdb",
        )
        with open(paths.data_dir / "postgresql.conf", "a") as conf:
            conf.write("\ninclude_if_exists = 'smartbus.conf'\n")

    def _write_config(self) -> None:
        account = pwd.getpwnam(PG_OS_USER)
        for name, text in (
            ("smartbus.conf", self._wanted_config()),
            ("pg_hba.conf", render_pg_hba(self.database.host)),
        ):
            target = self.paths.data_dir / name
            target.write_text(text)
            os.chown(target, account.pw_uid, account.pw_gid)

    def _wanted_config(self) -> str:
        return render_postgresql_conf(
            self.paths.socket_dir, self.timescale() is not None, self.database.host, self.database.port
        )

    def config_is_stale(self) -> bool:
        current = self.paths.data_dir / "smartbus.conf"
        return current.exists() and current.read_text() != self._wanted_config()

    def launch(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self._make_reachable()
        self._initdb()
        self._write_config()
        account = pwd.getpwnam(PG_OS_USER)
        self.paths.logfile.touch()
        os.chown(self.paths.logfile, account.pw_uid, account.pw_gid)
        # A postmaster.pid left by a killed server makes pg_ctl refuse to start; it is stale when its pid is gone.
        stale = self.paths.data_dir / "postmaster.pid"
        if stale.exists() and self.pid() is None:
            stale.unlink()
        run_checked(
            self._as_postgres(
                str(self.bin_dir / "pg_ctl"),
                "-D",
                str(self.paths.data_dir),
                "-l",
                str(self.paths.logfile),
                "-w",
                "-t",
                str(int(self.startup_timeout_seconds)),
                "start",
            ),
            "pg_ctl start",
        )

    def prepare(self) -> None:
        import psycopg
        from psycopg import sql

        if not self._ours_answers():
            # Not our server, so not ours to set up: it answered our role on our database, which is all we need.
            return
        with psycopg.connect(self._superuser_conninfo(), autocommit=True) as conn:
            exists = conn.execute("select 1 from pg_roles where rolname = %s", (self.database.role,)).fetchone()
            if exists is None:
                conn.execute(
                    sql.SQL("create role {} login createdb password {}").format(
                        sql.Identifier(self.database.role), sql.Literal(self.database.password)
                    )
                )
            has_db = conn.execute("select 1 from pg_database where datname = %s", (self.database.name,)).fetchone()
            if has_db is None:
                conn.execute(
                    sql.SQL("create database {} owner {}").format(
                        sql.Identifier(self.database.name), sql.Identifier(self.database.role)
                    )
                )

    def stop(self) -> None:
        pid = self.pid()
        if pid is None:
            return
        # Fast shutdown: roll back open transactions, checkpoint, exit. Kill only if it hangs.
        result = subprocess.run(
            self._as_postgres(
                str(self.bin_dir / "pg_ctl"),
                "-D",
                str(self.paths.data_dir),
                "-m",
                "fast",
                "-w",
                "-t",
                str(int(self.stop_grace_seconds)),
                "stop",
            ),
            capture_output=True,
            check=False,
        )
        if result.returncode != 0:
            terminate(pid, "postgres", 5.0)


def _server_version(conninfo: str) -> str | None:
    import psycopg

    try:
        with psycopg.connect(conninfo) as conn:
            row = conn.execute("show server_version").fetchone()
    except psycopg.Error:
        return None
    return str(row[0]).split()[0] if row else None
