"""`smartbus services up|down|status|start|stop [NAME ...]`: the real Kafka, PostgreSQL and Redis on loopback."""

from __future__ import annotations

import argparse
import functools
import shutil
import time
from pathlib import Path

from smartbus.errors import SmartbusError
from smartbus.services.base import Service
from smartbus.services.endpoints import database_from_url, kafka_address, redis_address
from smartbus.services.kafka_broker import KafkaService
from smartbus.services.postgres_server import TIMESCALE_FALLBACK_NOTE, PostgresService
from smartbus.services.process import wait_until
from smartbus.services.redis_server import RedisService

# Kafka first: its JVM boots while PostgreSQL and Redis start, which takes them a second or two.
SERVICE_NAMES = ("kafka", "postgres", "redis")
# Redis daemonizes: its pidfile appears a moment after the launch returns.
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
    if args.action in ("up", "start"):
        return up(services)
    if args.action in ("down", "stop"):
        return down(services, services_dir, purge=getattr(args, "purge", False))
    return status(services)


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
                _say_storage_path(service)
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
    for service, started_at in launched:
        try:
            settled = functools.partial(_answers_or_died, service, started_at)
            if not wait_until(settled, service.startup_timeout_seconds, 0.5) or service.probe() is None:
                gone = "exited" if service.pid() is None else "still not answering"
                print(
                    f"{service.name}: FAILED: {gone} after {time.monotonic() - started_at:.0f} s "
                    f"(not answering on {service.endpoint}); last lines of {service.log_path}:\n"
                    f"{_tail(service.log_path)}",
                    flush=True,
                )
                failures += 1
                continue
            elapsed = time.monotonic() - started_at
            service.prepare()
            _report_running(service, f"started in {elapsed:.1f} s")
        except SmartbusError as exc:
            print(f"{service.name}: FAILED: {exc}", flush=True)
            failures += 1
    return 1 if failures else 0


def _answers_or_died(service: Service, started_at: float) -> bool:
    """Stop waiting once it answers, or once its process is gone (after a moment for daemons to fork)."""
    if service.probe() is not None:
        return True
    return time.monotonic() - started_at > DAEMONIZE_GRACE_SECONDS and service.pid() is None


def _tail(path: Path, lines: int = 15) -> str:
    """The log's last lines; Java stack traces bury the reason, so its last ERROR lines come first."""
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    errors = [line for line in text if " ERROR " in line or " FATAL " in line][-3:]
    return "\n".join([*errors, "...", *text[-lines:]] if errors else text[-lines:])


def _say_storage_path(service: PostgresService) -> None:
    version = service.timescale()
    if version is not None:
        print(f"postgres: TimescaleDB {version} found: hypertables in use", flush=True)
    else:
        print(f"postgres: {TIMESCALE_FALLBACK_NOTE}", flush=True)


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
