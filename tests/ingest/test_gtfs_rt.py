"""The GTFS-realtime poller against a VehiclePositions feed served over HTTP on this machine."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from google.transit import gtfs_realtime_pb2

from ingest.edge import IngestEdge
from ingest.gtfs_rt import GtfsRtPoller
from smartbus import messages
from smartbus.bus.memory import MemoryBus
from smartbus.errors import FeedError
from smartbus.messages import Ping, RejectedPing

NOW = 1_790_000_000


def _feed(positions: list[tuple[str, int, float, float]]) -> bytes:
    message = gtfs_realtime_pb2.FeedMessage()
    message.header.gtfs_realtime_version = "2.0"
    message.header.timestamp = NOW
    for vehicle_id, ts, lat, lon in positions:
        entity = message.entity.add()
        entity.id = f"e-{vehicle_id}"
        entity.vehicle.vehicle.id = vehicle_id
        entity.vehicle.timestamp = ts
        entity.vehicle.position.latitude = lat
        entity.vehicle.position.longitude = lon
        entity.vehicle.position.speed = 8.5
        entity.vehicle.trip.trip_id = "T1"
        entity.vehicle.trip.route_id = "R1"
        entity.vehicle.trip.direction_id = 1
    alert = message.entity.add()  # not a vehicle: ignored
    alert.id = "alert"
    alert.alert.header_text.translation.add().text = "detour"
    body: bytes = message.SerializeToString()
    return body


class _Served:
    body = b""


@pytest.fixture
def feed_url() -> Iterator[tuple[str, type[_Served]]]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.end_headers()
            self.wfile.write(_Served.body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/vehiclepositions.pb", _Served
    finally:
        server.shutdown()
        server.server_close()


async def _published(bus: MemoryBus, topic: str) -> list[messages.Message]:
    return [messages.decode(r.value) for r in await bus.consumer([topic], "t").getmany(0.01, 1000)]


async def test_vehicles_of_a_served_feed_become_pings_namespaced_by_feed(
    feed_url: tuple[str, type[_Served]],
) -> None:
    url, served = feed_url
    served.body = _feed([("bus7", NOW - 10, -16.92, 145.77), ("bus8", NOW - 5, 200.0, 145.77)])
    bus = MemoryBus()
    poller = GtfsRtPoller(url, "cairns", IngestEdge(bus.producer(), clock=lambda: NOW, source="gtfs-rt"))

    result = await poller.poll_once()

    assert result.accepted == 1 and [r["reason"] for r in result.rejected] == ["latitude_out_of_range"]
    (ping,) = await _published(bus, messages.TOPIC_PINGS)
    assert isinstance(ping, Ping)
    assert (ping.vehicle_id, ping.timestamp, ping.trip_id, ping.route_id, ping.direction_id) == (
        "cairns:bus7", NOW - 10, "T1", "R1", 1
    )
    assert ping.speed == pytest.approx(8.5)
    (rejected,) = await _published(bus, messages.TOPIC_PINGS_REJECTED)
    assert isinstance(rejected, RejectedPing) and "cairns:bus8" in rejected.payload


async def test_a_position_the_feed_repeats_is_sent_once(feed_url: tuple[str, type[_Served]]) -> None:
    url, served = feed_url
    bus = MemoryBus()
    poller = GtfsRtPoller(url, "cairns", IngestEdge(bus.producer(), clock=lambda: NOW))
    served.body = _feed([("bus7", NOW - 10, -16.92, 145.77)])
    assert (await poller.poll_once()).accepted == 1
    assert (await poller.poll_once()).accepted == 0  # same timestamp: the feed had nothing new
    served.body = _feed([("bus7", NOW - 1, -16.921, 145.771)])
    assert (await poller.poll_once()).accepted == 1


async def test_a_body_that_is_not_protobuf_is_a_feed_error(feed_url: tuple[str, type[_Served]]) -> None:
    url, served = feed_url
    served.body = b"<html>maintenance</html>"
    poller = GtfsRtPoller(url, "cairns", IngestEdge(MemoryBus().producer(), clock=lambda: NOW))
    with pytest.raises(FeedError):
        await poller.poll_once()
