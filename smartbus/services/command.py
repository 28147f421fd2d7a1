"""`smartbus services up|down|status|start|stop [NAME ...]`: the real Kafka, PostgreSQL and Redis on loopback."""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from smartbus.errors import SmartbusError
from smartbus.services.base import Service
from smartbus.services.endpoints import database_from_url, kafka_address, redis_address
from smartbus.services.kafka_broker import KafkaService
from smartbus.services.postgres_server import PLAIN_PATH, PostgresService
from smartbus.services.redis_server import RedisService

# Kafka first: its JVM boots while PostgreSQL and Redis start, which takes them a second or two.
SERVICE_NAMES = ("kafka", "postgres", "redis")
DAEMONIZE_GRACE_SECONDS = 3.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    descriptions = {
        "up": "install what is missing and start the services (all, or those named); a no-op for running ones",
        "start": "same as up",
        "down": "stop the services we started (all, or those named)",
        "stop": "same as down, without --purge",
        "status": "show each service's pid, whether it answers, and its version; exit 0 only if all answer",
    }
    for action, text in descriptions.items():
        sub = actions.add_parser(action, help=text, description=text)
        sub.add_argument("names", nargs="*", metavar="NAME", help=f"any of {', '.join(SERVICE_NAMES)} (default: all)")
        if action in ("up", "start"):
            sub.add_argument(
                "--no-timescale",
                action="store_true",
                help="use the plain PostgreSQL path even when TimescaleDB is installed",
            )
        if action == "down":
            sub.add_argument("--purge", action="store_true", help="also delete their data, logs and jars")


def run(args: argparse.Namespace) -> int:
    from smartbus.messages import ALL_TOPICS
    from smartbus.settings import Settings

    settings = Settings()
    unknown = sorted(set(args.names) - set(SERVICE_NAMES))
    if unknown:
        print(f"unknown service {', '.join(unknown)}: choose from {', '.join(SERVICE_NAMES)}")
        return 2
    services_dir = settings.services_dir.absolute()
    allow_timescale = not (settings.services_no_timescale or getattr(args, "no_timescale", False))
    services: list[Service] = []
    for name in selected(args.names):
        if name == "kafka":
            host, port = kafka_address(settings.kafka_bootstrap)
            topics = [settings.kafka_topic_prefix + topic for topic in ALL_TOPICS]
            services.append(KafkaService(services_dir, host, port, settings.kafka_partitions, topics))
        elif name == "postgres":
            database = database_from_url(settings.database_url)
            services.append(PostgresService(services_dir, database, allow_timescale=allow_timescale))
        else:
            services.append(RedisService(services_dir, *redis_address(settings.redis_url)))
    if args.action == "status":
        return status(services)
    with exclusive(services_dir):
        if args.action in ("up", "start"):
            return up(services)
        return down(services, services_dir, purge=getattr(args, "purge", False))


@contextlib.contextmanager
def exclusive(services_dir: Path) -> Iterator[None]:
    """One `up`/`down` at a time per services directory: two racing starts would both launch a server,
    and the loser's pidfile would hide the winner from `down`."""
    lock_path = services_dir.parent / f".{services_dir.name}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for another `smartbus services` on {services_dir} ...", flush=True)
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def selected(names: list[str]) -> tuple[str, ...]:
    """The named services in start order; all of them when none is named."""
    return tuple(name for name in SERVICE_NAMES if name in names) if names else SERVICE_NAMES


def up(services: list[Service]) -> int:
    failures = 0
    launched: list[tuple[Service, float]] = []
    for service in services:
        try:
            service.install()
            if isinstance(service, PostgresService):
                say_storage_path(service)
            if service.probe() is not None:
                if service.pid() is not None and service.config_is_stale():
                    print(f"{service.name}: configuration changed, restarting", flush=True)
                    service.stop()
                else:
                    service.prepare()
                    _report_running(service, "already running")
                    continue
            started_at = time.monotonic()
            if service.pid() is None:  # else: ours, still starting from an earlier call; just wait for it
                service.launch()
            launched.append((service, started_at))
        except SmartbusError as exc:
            print(f"{service.name}: FAILED: {exc}", flush=True)
            failures += 1
    # Wait for each server in its own thread, so a slow probe (Kafka's) never delays noticing another.
    if launched:
        with ThreadPoolExecutor(max_workers=len(launched)) as pool:
            outcomes = list(pool.map(lambda pair: _wait_for(*pair), launched))
        failures += outcomes.count(False)
    return 1 if failures else 0


def _wait_for(service: Service, started_at: float) -> bool:
    """Wait until a launched server answers, dies or runs out of time; report which. True when it answers."""
    while (outcome := _settle(service, started_at)) is None:
        time.sleep(0.2)
    return outcome


def _settle(service: Service, started_at: float) -> bool | None:
    """Check on a starting server once: None while it may still come up, else whether it came up (reported)."""
    answers = service.probe() is not None
    elapsed = time.monotonic() - started_at
    if answers:
        try:
            service.prepare()
        except SmartbusError as exc:
            print(f"{service.name}: FAILED after it started: {exc}", flush=True)
            return False
        _report_running(service, f"started in {elapsed:.1f} s")
        return True
    # Redis daemonizes, so its pidfile appears a moment after the launch returned.
    died = elapsed > DAEMONIZE_GRACE_SECONDS and service.pid() is None
    if not died and elapsed < service.startup_timeout_seconds:
        return None
    print(
        f"{service.name}: FAILED: {'exited' if died else 'still not answering'} after {elapsed:.0f} s "
        f"(nothing on {service.endpoint}); last lines of {service.log_path}:\n{_tail(service.log_path)}",
        flush=True,
    )
    return False


def _tail(path: Path, lines: int = 15) -> str:
    """The log's last lines; Java stack traces bury the reason, so its last ERROR lines come first."""
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    errors = [line for line in text if " ERROR " in line or " FATAL " in line][-3:]
    return "\n".join([*errors, "...", *text[-lines:]] if errors else text[-lines:])


def say_storage_path(service: PostgresService) -> None:
    installed = service.installed_timescale()
    if installed is None:
        print(f"postgres: TimescaleDB not installed: {PLAIN_PATH}", flush=True)
    elif service.allow_timescale:
        print(f"postgres: TimescaleDB {installed} found: hypertables in use", flush=True)
    else:
        print(f"postgres: TimescaleDB {installed} installed but turned off (--no-timescale): {PLAIN_PATH}", flush=True)


def _report_running(service: Service, how: str) -> None:
    pid = service.pid()
    owner = f"pid {pid}" if pid is not None else "not started by us"
    print(f"{service.name}: {how}; {service.probe() or '?'} on {service.endpoint} ({owner})", flush=True)


def down(services: list[Service], services_dir: Path, purge: bool) -> int:
    for service in services:
        pid = service.pid()
        if pid is None:
            print(f"{service.name}: no process of ours to stop", flush=True)
        else:
            started_at = time.monotonic()
            service.stop()
            print(f"{service.name}: stopped pid {pid} in {time.monotonic() - started_at:.1f} s", flush=True)
        if purge and service.home.exists():
            shutil.rmtree(service.home)
            print(f"{service.name}: deleted {service.home}", flush=True)
    # Only ever delete our own service directories, then the parent if that left it empty: a mistyped
    # services_dir must not be able to take anything else with it.
    if purge and services_dir.exists() and not any(services_dir.iterdir()):
        services_dir.rmdir()
    return 0


def status(services: list[Service]) -> int:
    all_answer = True
    print(f"{'service':<10}{'endpoint':<18}{'pid':<9}{'answers':<9}version", flush=True)
    for service in services:
        pid = service.pid()
        version = service.probe()
        all_answer = all_answer and version is not None
        answers = "yes" if version is not None else "no"
        print(f"{service.name:<10}{service.endpoint:<18}{pid or '-'!s:<9}{answers:<9}{version or '-'}", flush=True)
    return 0 if all_answer else 1
