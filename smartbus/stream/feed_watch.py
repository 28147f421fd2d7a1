"""Watch the GTFS feed a worker runs on, and hand over a new version once it is compiled.

The running network keeps serving while the new one compiles in a thread; the stage switches between
two batches (see EtaStage.use_network), so there is no pause in processing. A new file that does not
compile is logged and ignored: a broken upload never takes the running feed down. Every row the stages
write carries the feed version (the feed's content hash) it was computed with.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from eta.network import Network
from eta.network.loader import feed_hash
from smartbus.errors import SmartbusError

log = logging.getLogger(__name__)

Load = Callable[[Path], Network]
OnNewFeed = Callable[[Network], None]


async def watch_feed(
    path: Path, current_hash: str, load: Load, on_new: OnNewFeed, stop: asyncio.Event, *, interval_s: float = 30.0
) -> None:
    """Check `path` every `interval_s`; on new content, compile it off the event loop and call `on_new`."""
    known = {current_hash}  # versions in use or that failed to compile: not retried until the file changes
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), interval_s)
            return
        except TimeoutError:
            pass
        try:
            version = await asyncio.to_thread(feed_hash, path)
        except (OSError, SmartbusError) as exc:
            log.warning("cannot read the feed %s: %s", path, exc)
            continue
        if version in known:
            continue
        known.add(version)
        log.info("new feed version %s at %s: compiling", version[:12], path)
        try:
            network = await asyncio.to_thread(load, path)
        except Exception as exc:  # noqa: BLE001 (any failure: keep serving the running version)
            log.error("feed version %s does not load, keeping the running one: %s", version[:12], exc)
            continue
        on_new(network)
        log.info("feed version %s ready; the stage switches at its next batch", network.feed_hash[:12])
