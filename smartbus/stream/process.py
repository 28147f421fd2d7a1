"""What every long-running stage process does around its loop: wait for services, stop on signals."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable

from smartbus.errors import ServiceUnavailable

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


def serve_metrics(port: int) -> None:
    """Prometheus metrics (and a liveness answer) on http://127.0.0.1:port/metrics; 0 = off."""
    if port:
        from prometheus_client import start_http_server

        start_http_server(port, addr="127.0.0.1")
        log.info("metrics on http://127.0.0.1:%d/metrics", port)
