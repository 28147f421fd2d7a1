from __future__ import annotations

from httpx import ASGITransport, AsyncClient

from ingest.edge import IngestEdge
from ingest.http_app import create_ingest_app
from smartbus import messages
from smartbus.bus.memory import MemoryBus
from smartbus.messages import Ping, RejectedPing

NOW = 1_790_000_000.0


async def _read_all(bus: MemoryBus, topic: str) -> list[messages.Message]:
    consumer = bus.consumer([topic], "test")
    records = await consumer.getmany(0.01, 10_000)
    return [messages.decode(r.value) for r in records]


async def test_a_batch_splits_into_valid_pings_and_counted_rejects() -> None:
    bus = MemoryBus()
    app = create_ingest_app(IngestEdge(bus.producer(), clock=lambda: NOW))
    batch = {
        "pings": [
            {"vehicle_id": "b1", "timestamp": NOW - 5, "latitude": 21.18, "longitude": 106.07, "trip_id": "T1"},
            {"vehicle_id": "b2", "timestamp": NOW - 5, "latitude": 200, "longitude": 106.07},
            {"timestamp": NOW - 5, "latitude": 21.18, "longitude": 106.07},
            "not an object",
            {"vehicle_id": "b3", "timestamp": NOW + 7200, "latitude": 21.18, "longitude": 106.07},
        ]
    }
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://ingest") as client:
        response = await client.post("/v1/pings", json=batch)
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 1
    assert [(r["index"], r["reason"]) for r in body["rejected"]] == [
        (1, "latitude_out_of_range"),
        (2, "missing_vehicle_id"),
        (3, "not_an_object"),
        (4, "timestamp_in_future"),
    ]
    pings = await _read_all(bus, messages.TOPIC_PINGS)
    assert pings == [Ping("b1", NOW - 5, 21.18, 106.07, trip_id="T1", received_at=NOW)]
    rejected = await _read_all(bus, messages.TOPIC_PINGS_REJECTED)
    assert all(isinstance(r, RejectedPing) for r in rejected)
    assert [r.reason for r in rejected if isinstance(r, RejectedPing)][0] == "latitude_out_of_range"
    assert '"latitude": 200' in rejected[0].payload  # type: ignore[union-attr]


async def test_hostile_bodies_get_clear_errors() -> None:
    app = create_ingest_app(IngestEdge(MemoryBus().producer(), clock=lambda: NOW))
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://ingest") as client:
        not_json = await client.post("/v1/pings", content=b"{{{")
        wrong_shape = await client.post("/v1/pings", json=[1, 2])
        too_big = await client.post("/v1/pings", content=b"[" + b" " * 1_100_000 + b"]")
    assert (not_json.status_code, not_json.json()["error"]) == (400, "body is not valid JSON")
    assert wrong_shape.status_code == 400
    assert too_big.status_code == 413
