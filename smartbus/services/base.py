"""What every managed service provides, so the command can treat Kafka, PostgreSQL and Redis alike."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path


class Service(ABC):
    """One server process that we install, configure, start and stop under `<services_dir>/<name>`."""

    name: str
    startup_timeout_seconds: float = 60.0
    stop_grace_seconds: float = 30.0

    def __init__(self, services_dir: Path) -> None:
        self.home = services_dir / self.name

    @property
    @abstractmethod
    def endpoint(self) -> str:
        """Where clients connect, e.g. 127.0.0.1:16379."""

    @abstractmethod
    def install(self) -> None:
        """Make the binaries available (apt packages, Maven jars); a no-op when they already are."""

    @abstractmethod
    def pid(self) -> int | None:
        """Pid of the server we started, verified to still be that program; None otherwise."""

    @abstractmethod
    def probe(self) -> str | None:
        """The server's version when it answers a real request on our port, else None."""

    @abstractmethod
    def launch(self) -> None:
        """Write the configuration and start the server; may return before it answers."""

    def prepare(self) -> None:
        """Idempotent set-up once the server answers (topics, roles, databases)."""
        return None

    def config_is_stale(self) -> bool:
        """True when the running server was started with a configuration other than the wanted one."""
        return False

    @property
    @abstractmethod
    def log_path(self) -> Path:
        """The server's own log, shown when it fails to start."""

    @abstractmethod
    def stop(self) -> None:
        """Stop the server we started: gracefully, then forcefully."""
