"""A GTFS-realtime VehiclePositions poller: any agency's live feed into the same edge as device batches.

Each poll fetches the feed (protobuf), turns every vehicle entity into a ping dict with GTFS-rt field
names and hands them to the IngestEdge (validation, rejects with reasons, Kafka). Vehicle ids are
namespaced `<feed>:<id>`, so several agencies share a deployment. Feeds repeat a vehicle's last position
until it sends a new one: a vehicle whose timestamp has not moved since the last poll is skipped, not
rejected.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any

from google.protobuf.message import DecodeError  # type: ignore[import-untyped]
from google.transit import gtfs_realtime_pb2

from ingest.edge import MAX_BATCH, BatchResult, IngestEdge
from ingest.tokens import namespaced
from smartbus import metrics
from smartbus.errors import FeedError

log = logging.getLogger(__name__)

Fetch = Callable[[str], Awaitable[bytes]]
MAX_FEED_BYTES = 50_000_000


async def fetch_url(url: str, timeout_s: float = 20.0) -> bytes:
    def get() -> bytes:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 (operator-given URL)
            body: bytes = response.read(MAX_FEED_BYTES + 1)
        if len(body) > MAX_FEED_BYTES:
            raise FeedError(url, f"feed over {MAX_FEED_BYTES} bytes")
        return body

    return await asyncio.to_thread(get)


def vehicle_pings(body: bytes, feed: str) -> list[dict[str, Any]]:
    """Ping dicts of a VehiclePositions FeedMessage's vehicles that carry a position."""
    message = gtfs_realtime_pb2.FeedMessage()
    try:
        message.ParseFromString(body)
    except DecodeError as exc:
        raise FeedError("VehiclePositions", f"not a GTFS-realtime FeedMessage: {exc}") from exc
    header_ts = message.header.timestamp if message.header.HasField("timestamp") else None
    pings: list[dict[str, Any]] = []
    for entity in message.entity:
        if not entity.HasField("vehicle") or not entity.vehicle.HasField("position"):
            continue
        vp = entity.vehicle
        raw_id = vp.vehicle.id or vp.vehicle.label or entity.id
        ping: dict[str, Any] = {
            "vehicle_id": namespaced(feed, raw_id) if raw_id else None,
            "timestamp": vp.timestamp if vp.HasField("timestamp") else header_ts,
            "latitude": vp.position.latitude,
            "longitude": vp.position.longitude,
        }
        if vp.position.HasField("bearing"):
            ping["bearing"] = vp.position.bearing
        if vp.position.HasField("speed"):
            ping["speed"] = vp.position.speed
        if vp.HasField("trip"):
            trip = vp.trip
            for name in ("trip_id", "route_id", "start_date", "start_time"):
                if trip.HasField(name):
                    ping[name] = getattr(trip, name)
            if trip.HasField("direction_id"):
                ping["direction_id"] = trip.direction_id
        pings.append(ping)
    return pings


class GtfsRtPoller:
    def __init__(self, url: str, feed: str, edge: IngestEdge, fetch: Fetch = fetch_url) -> None:
        self.url = url
        self.feed = feed
        self._edge = edge
        self._fetch = fetch
        self._last_seen: dict[str, float] = {}  # vehicle -> timestamp already sent

    async def poll_once(self) -> BatchResult:
        pings = vehicle_pings(await self._fetch(self.url), self.feed)
        fresh = []
        for ping in pings:
            vid, ts = ping.get("vehicle_id"), ping.get("timestamp")
            if isinstance(vid, str) and ts is not None and self._last_seen.get(vid) == ts:
                continue  # the feed repeats a vehicle's last position until it reports again
            fresh.append(ping)
        total = BatchResult()
        for start in range(0, len(fresh), MAX_BATCH):
            result = await self._edge.accept_batch(list(fresh[start : start + MAX_BATCH]))
            total.accepted += result.accepted
            total.rejected += [{**r, "index": r["index"] + start} for r in result.rejected]
        bad = {r["index"] for r in total.rejected}
        for index, ping in enumerate(fresh):
            if index not in bad and isinstance(ping.get("vehicle_id"), str):
                self._last_seen[ping["vehicle_id"]] = ping["timestamp"]
        return total

    async def run(self, stop: asyncio.Event, interval_s: float) -> None:
        while not stop.is_set():
            try:
                result = await self.poll_once()
                log.info("%s: %d pings accepted, %d rejected", self.feed, result.accepted, len(result.rejected))
            except Exception as exc:  # a bad poll costs one interval, never the poller
                metrics.PINGS_REJECTED.labels("gtfs_rt_poll_failed").inc()
                log.warning("%s: polling %s failed: %s", self.feed, self.url, exc)
            try:
                await asyncio.wait_for(stop.wait(), interval_s)
            except TimeoutError:
                pass
