"""Redis from Debian's redis-server, run with our own configuration (not the system service)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from smartbus.services.apt import ensure_packages
from smartbus.services.base import Service
from smartbus.services.process import live_pid, port_accepts, run_checked, terminate, wait_until


@dataclass(frozen=True)
class RedisPaths:
    data_dir: Path
    pidfile: Path
    logfile: Path


def render_redis_conf(paths: RedisPaths, host: str, port: int) -> str:
    """redis.conf for a loopback-only, durable (AOF every second) server that daemonizes itself."""
    return "\n".join(
        [
            "# Written by `smartbus services`; edits are overwritten at the next start.",
            f"bind {host}",
            f"port {port}",
            # Loopback only, so no password; protected mode stays on as a second guard.
            "protected-mode yes",
            "daemonize yes",
            f"pidfile {paths.pidfile}",
            f"logfile {paths.logfile}",
            f"dir {paths.data_dir}",
            # Operators' notices must survive a restart: append-only file, fsynced once a second. The live state
            # and tracker snapshots are left out of it (their scripts set redis.set_repl(redis.REPL_NONE)).
            "appendonly yes",
            "appendfsync everysec",
            # No RDB snapshots besides: Redis starts from the append-only file, and under load the snapshot rules
            # forked a full dump every minute (smartbus/live/redis_store.py's docstring has the figures).
            'save ""',
            "maxclients 1000",
            "",
        ]
    )


class RedisService(Service):
    name = "redis"
    startup_timeout_seconds = 30.0
    stop_grace_seconds = 30.0

    def __init__(self, services_dir: Path, host: str, port: int) -> None:
        super().__init__(services_dir)
        self.host = host
        self.port = port

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def paths(self) -> RedisPaths:
        return RedisPaths(data_dir=self.home / "data", pidfile=self.home / "redis.pid", logfile=self.home / "redis.log")

    @property
    def log_path(self) -> Path:
        return self.paths.logfile

    @property
    def config_path(self) -> Path:
        return self.home / "redis.conf"

    def install(self) -> None:
        if shutil.which("redis-server") is None:
            ensure_packages(["redis-server"])

    def pid(self) -> int | None:
        return live_pid(self.paths.pidfile, "redis-server")

    def probe(self) -> str | None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        if not port_accepts(self.host, self.port):
            return None
        # One honest attempt: the client's default retries with backoff would make every check take seconds.
        client = redis.Redis(
            host=self.host, port=self.port, socket_connect_timeout=1.0, socket_timeout=2.0, retry=Retry(NoBackoff(), 0)
        )
        try:
            if not client.ping():
                return None
            info = client.info("server")
            return str(info.get("redis_version", "?"))
        except redis.RedisError:
            return None
        finally:
            client.close()

    def launch(self) -> None:
        self.paths.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(render_redis_conf(self.paths, self.host, self.port))
        run_checked(["redis-server", str(self.config_path)], "starting redis-server")

    def config_is_stale(self) -> bool:
        return self.config_path.exists() and self.config_path.read_text() != render_redis_conf(
            self.paths, self.host, self.port
        )

    def stop(self) -> None:
        pid = self.pid()
        if pid is None:
            return
        # SIGTERM makes Redis flush the append-only file and exit cleanly.
        terminate(pid, "redis-server", self.stop_grace_seconds)
        wait_until(lambda: not self.paths.pidfile.exists() or self.pid() is None, 5.0)
