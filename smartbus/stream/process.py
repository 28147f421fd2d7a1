"""What every long-running stage process does around its loop: wait for services, stop on signals."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import threading
from collections.abc import Awaitable, Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from smartbus.errors import ServiceUnavailable
from smartbus.stream.health import HEALTH

if TYPE_CHECKING:
    from smartbus.settings import Settings

log = logging.getLogger(__name__)


def stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


async def start_with_retry(what: str, start: Callable[[], Awaitable[None]], stop: asyncio.Event) -> bool:
    """Start a client, retrying while its service is unavailable. False if asked to stop first."""
    delay = 0.5
    while not stop.is_set():
        try:
            await start()
            return True
        except ServiceUnavailable as exc:
            log.warning("%s not available yet (%s); retrying in %.1f s", what, exc, delay)
            try:
                await asyncio.wait_for(stop.wait(), delay)
            except TimeoutError:
                pass
            delay = min(delay * 2, 5.0)
    return False


def serve_metrics(port: int, host: str = "127.0.0.1") -> None:
    """Prometheus metrics on /metrics, liveness on /healthz and readiness on /readyz (0 = off).

    A plain threaded HTTP server: it answers even while the event loop is busy with a batch, which is when
    a scraper most wants the figures.
    """
    if not port:
        return
    server = ThreadingHTTPServer((host, port), _OpsHandler)
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
    log.info("metrics on http://%s:%d/metrics (health: /healthz, /readyz)", host, port)


class _OpsHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (the http.server API)
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._send(200, CONTENT_TYPE_LATEST, generate_latest())
        elif path in ("/healthz", "/readyz"):
            ok, detail = HEALTH.live() if path == "/healthz" else HEALTH.ready()
            body = json.dumps({"ok": ok, **detail}).encode()
            self._send(200 if ok else 503, "application/json", body)
        else:
            self._send(404, "text/plain", b"not found\n")

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # scrapes every few seconds would drown the log


def configure_logging(json_logs: bool, level: int = logging.INFO) -> None:
    """Plain text for a terminal; one JSON object per line for a log collector (--json-logs)."""
    handler = logging.StreamHandler()
    plain = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler.setFormatter(_JsonFormatter() if json_logs else plain)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, object] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": record.process,
        }
        if record.exc_info:
            body["exc"] = self.formatException(record.exc_info)
        return json.dumps(body, ensure_ascii=False)


async def ensure_topics_with_retry(settings: Settings, stop: asyncio.Event) -> bool:
    """Create the deployment's topics once Kafka answers. False if asked to stop first."""
    from smartbus.bus.kafka import ensure_topics
    from smartbus.messages import ALL_TOPICS

    async def make() -> None:
        await ensure_topics(
            settings.kafka_bootstrap, ALL_TOPICS, settings.kafka_partitions, topic_prefix=settings.kafka_topic_prefix
        )

    return await start_with_retry("Kafka topics", make, stop)
