"""Websockets as a browser sees them: a snapshot on connect, then rate-limited, coalesced updates."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import anyio
import pytest
from starlette.testclient import TestClient, WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from api.app import create_app, serve
from api.clients import CLOSE_TOO_SLOW, FleetClient
from eta.network import Network
from smartbus.errors import ServiceUnavailable
from smartbus.live.memory_store import MemoryLiveStore
from smartbus.messages import StopEvent
from tests.api.conftest import NOW
from tests.api.test_rest import STOP, TRIP, bus, predictions


def receive(ws: WebSocketTestSession, within_s: float = 5.0) -> dict[str, Any]:
    """The next message, failing the test (not hanging it) if none comes."""

    async def next_message() -> Any:
        with anyio.fail_after(within_s):
            return await ws._send_rx.receive()

    message = ws.portal.call(next_message)
    ws._raise_on_close(message)
    return json.loads(message["text"])  # type: ignore[no-any-return]


def test_stop_socket_sends_snapshot_then_updates_unasked(client: TestClient, live: MemoryLiveStore) -> None:
    client.portal.call(live.put_predictions, [predictions("V1", (STOP, NOW + 600, "blend"))])  # type: ignore[union-attr]
    with client.websocket_connect(f"/ws/stops/{STOP}") as ws:
        snapshot = receive(ws)
        assert (snapshot["type"], snapshot["stop_id"], snapshot["server_time"]) == ("snapshot", STOP, NOW)
        assert [(a["vehicle_id"], a["predicted_arrival"]) for a in snapshot["arrivals"]] == [("V1", NOW + 600)]

        client.portal.call(live.put_predictions, [predictions("V1", (STOP, NOW + 240, "recent"))])  # type: ignore[union-attr]
        update = receive(ws)
        assert update["type"] == "update"
        [arrival] = update["arrivals"]
        assert (arrival["trip_id"], arrival["predicted_arrival"], arrival["method"]) == (TRIP, NOW + 240, "recent")
        assert arrival["route_short_name"] == "110"

        arrived = StopEvent("V1", TRIP, "20140601", STOP, 2, NOW, None, False)
        client.portal.call(live.put_stop_events, [arrived])  # type: ignore[union-attr]
        assert receive(ws)["arrivals"] == []


def test_unknown_stop_socket_closes_with_4404(client: TestClient) -> None:
    with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect("/ws/stops/nope") as ws:
        receive(ws)
    assert closed.value.code == 4404


def test_fleet_socket_snapshot_then_moves_with_route_filter(client: TestClient, live: MemoryLiveStore) -> None:
    client.portal.call(live.put_states, [bus("A", -16.92, 145.77), bus("B", -16.9, 145.7, "other")])  # type: ignore[union-attr]
    with client.websocket_connect("/ws/fleet?route_id=110-423") as ws:
        snapshot = receive(ws)
        assert snapshot["type"] == "snapshot"
        assert [v["vehicle_id"] for v in snapshot["vehicles"]] == ["A"]

        moved = bus("A", -16.95, 145.78, timestamp=NOW)
        client.portal.call(live.put_states, [moved, bus("B", -16.8, 145.7, "other")])  # type: ignore[union-attr]
        update = receive(ws)
        assert update["type"] == "update"
        assert [(v["vehicle_id"], v["latitude"]) for v in update["vehicles"]] == [("A", -16.95)]


def test_quick_changes_coalesce_into_one_message(client: TestClient, live: MemoryLiveStore) -> None:
    with client.websocket_connect("/ws/fleet") as ws:
        assert receive(ws)["vehicles"] == []
        client.portal.call(live.put_states, [bus("A", -16.90, 145.77)])  # type: ignore[union-attr]
        assert [v["vehicle_id"] for v in receive(ws)["vehicles"]] == ["A"]

        async def two_quick_changes() -> None:
            await live.put_states([bus("A", -16.91, 145.77, timestamp=NOW)])
            await live.put_states([bus("B", -16.80, 145.70)])

        client.portal.call(two_quick_changes)  # type: ignore[union-attr]
        merged = receive(ws, within_s=2.0)  # the rate limit holds it back at most one interval
        assert [(v["vehicle_id"], v["latitude"]) for v in merged["vehicles"]] == [("A", -16.91), ("B", -16.80)]


def test_readiness_fails_when_the_store_does_not_answer(client: TestClient, live: MemoryLiveStore) -> None:
    async def silent() -> bool:
        return False

    live.ping = silent  # type: ignore[method-assign]
    response = client.get("/readyz")
    assert response.status_code == 503


class _StuckSocket:
    """A client whose network never takes another byte."""

    def __init__(self) -> None:
        self.closed_with: int | None = None

    async def send_text(self, text: str) -> None:
        await asyncio.Event().wait()

    async def receive(self) -> dict[str, Any]:
        await asyncio.Event().wait()
        raise AssertionError

    async def close(self, code: int, reason: str) -> None:
        self.closed_with = code


class _QuickSocket(_StuckSocket):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[dict[str, Any]] = []
        self.got_update = asyncio.Event()

    async def send_text(self, text: str) -> None:
        self.sent.append(json.loads(text))
        if len(self.sent) >= 2:
            self.got_update.set()


async def test_a_slow_client_is_dropped_without_holding_up_others() -> None:
    stuck, quick = _StuckSocket(), _QuickSocket()
    slow_client = FleetClient(stuck, None, min_interval_s=0.0, send_timeout_s=0.05)  # type: ignore[arg-type]
    fast_client = FleetClient(quick, None, min_interval_s=0.0, send_timeout_s=0.05)  # type: ignore[arg-type]

    async def snapshot() -> dict[str, Any]:
        return {"type": "snapshot", "vehicles": []}

    async def update_of(client: FleetClient) -> dict[str, Any]:
        return {"type": "update", "vehicles": client.take_pending()}

    slow = asyncio.create_task(serve(slow_client, snapshot, lambda: update_of(slow_client)))
    fast = asyncio.create_task(serve(fast_client, snapshot, lambda: update_of(fast_client)))
    async with asyncio.timeout(5):
        await slow  # returns once the stuck client has been dropped
        for client in (slow_client, fast_client):
            client.offer([{"vehicle_id": "A", "route_id": None}])
        await quick.got_update.wait()
    fast.cancel()

    assert stuck.closed_with == CLOSE_TOO_SLOW
    assert quick.sent[1] == {"type": "update", "vehicles": [{"vehicle_id": "A", "route_id": None}]}


def test_fleet_clients_are_told_when_a_vehicle_expires(network: Network) -> None:
    store_clock = [0.0]
    live = MemoryLiveStore(vehicle_ttl_s=60.0, clock=lambda: store_clock[0])
    app = create_app(live, network, clock=lambda: NOW, timetable=False, min_interval_s=0.0, expiry_sweep_s=0.05)
    with TestClient(app) as client:
        client.portal.call(live.put_states, [bus("A", -16.9, 145.7), bus("B", -16.8, 145.7)])  # type: ignore[union-attr]
        with client.websocket_connect("/ws/fleet") as ws:
            assert [v["vehicle_id"] for v in receive(ws)["vehicles"]] == ["A", "B"]
            client.portal.call(app.state.hub.sweep_once)  # type: ignore[union-attr]  # the sweeper learns who is alive
            store_clock[0] = 30.0
            client.portal.call(live.put_states, [bus("B", -16.7, 145.7)])  # type: ignore[union-attr]  # B keeps reporting
            assert [v["vehicle_id"] for v in receive(ws)["vehicles"]] == ["B"]
            store_clock[0] = 70.0  # A's last report is now older than its time to live
            message = receive(ws)
            assert message["type"] == "update" and message["removed"] == ["A"] and message["vehicles"] == []


def test_fleet_clients_get_a_fresh_snapshot_after_the_subscription_comes_back(network: Network) -> None:
    live = MemoryLiveStore()
    original = live.subscribe
    broken = asyncio.Event()
    calls = [0]

    async def flaky(channels: Sequence[str]) -> AsyncIterator[tuple[str, bytes]]:
        calls[0] += 1
        if calls[0] == 1:
            await broken.wait()
            raise ServiceUnavailable("redis went away")
        async for message in original(channels):
            yield message

    live.subscribe = flaky  # type: ignore[method-assign]
    app = create_app(live, network, clock=lambda: NOW, timetable=False, min_interval_s=0.0)
    with TestClient(app) as client:
        with client.websocket_connect("/ws/fleet") as ws:
            assert receive(ws) == {"type": "snapshot", "route_id": None, "vehicles": [], "server_time": NOW}
            # While the subscription is down a bus appears, and nobody publishes it to us again.
            client.portal.call(live.put_states, [bus("A", -16.9, 145.7)])  # type: ignore[union-attr]
            client.portal.call(broken.set)  # type: ignore[union-attr]
            message = receive(ws)
            while message["type"] != "snapshot":  # the direct publish may or may not have made it first
                message = receive(ws)
            assert [v["vehicle_id"] for v in message["vehicles"]] == ["A"]


def test_riders_watching_one_stop_share_one_reading_of_its_board(client: TestClient, live: MemoryLiveStore) -> None:
    reads = []
    original = live.stop_arrivals

    async def counted(stop_id: str, now: float) -> Any:
        reads.append(stop_id)
        return await original(stop_id, now)

    live.stop_arrivals = counted  # type: ignore[method-assign]
    with (
        client.websocket_connect(f"/ws/stops/{STOP}") as a,
        client.websocket_connect(f"/ws/stops/{STOP}") as b,
        client.websocket_connect(f"/ws/stops/{STOP}") as c,
    ):
        for ws in (a, b, c):
            assert receive(ws)["type"] == "snapshot"
        assert len(reads) == 3  # each snapshot is the rider's own
        client.portal.call(live.put_predictions, [predictions("V1", (STOP, NOW + 240, "recent"))])  # type: ignore[union-attr]
        updates = [receive(ws) for ws in (a, b, c)]
        assert all(u["arrivals"][0]["predicted_arrival"] == NOW + 240 for u in updates)
        assert len(reads) == 4  # one read for the three updates


def test_a_full_server_turns_new_sockets_away_with_try_again_later(live: MemoryLiveStore, network: Network) -> None:
    with TestClient(create_app(live, network, clock=lambda: NOW, timetable=False, max_websockets=1)) as client:
        with client.websocket_connect(f"/ws/stops/{STOP}") as first:
            assert receive(first)["type"] == "snapshot"
            with client.websocket_connect("/ws/fleet") as second, pytest.raises(WebSocketDisconnect) as closed:
                receive(second)
            assert closed.value.code == 1013


# Around central Cairns: bus "A" at -16.92,145.77 is inside, "B" at -16.80,145.70 is not.
CITY_BOX = "145.75,-16.95,145.80,-16.90"


def test_fleet_socket_box_shows_the_vehicles_inside_and_says_when_one_leaves(network: Network) -> None:
    live = MemoryLiveStore()
    with TestClient(create_app(live, network, clock=lambda: NOW, timetable=False, min_interval_s=0.0)) as client:
        client.portal.call(live.put_states, [bus("A", -16.92, 145.77), bus("B", -16.80, 145.70, "other")])  # type: ignore[union-attr]
        with client.websocket_connect(f"/ws/fleet?bbox={CITY_BOX}") as ws:
            snapshot = receive(ws)
            assert snapshot["bbox"] == [145.75, -16.95, 145.80, -16.90]
            assert [v["vehicle_id"] for v in snapshot["vehicles"]] == ["A"]

            client.portal.call(live.put_states, [bus("B", -16.93, 145.78, "other", timestamp=NOW)])  # type: ignore[union-attr]  # B drives in
            assert [v["vehicle_id"] for v in receive(ws)["vehicles"]] == ["B"]

            client.portal.call(live.put_states, [bus("A", -16.85, 145.77, timestamp=NOW)])  # type: ignore[union-attr]  # A drives out
            left = receive(ws)
            assert (left["vehicles"], left["removed"]) == ([], ["A"])

            client.portal.call(live.put_states, [bus("A", -16.84, 145.77, timestamp=NOW + 1)])  # type: ignore[union-attr]  # still out
            client.portal.call(live.put_states, [bus("B", -16.94, 145.78, "other", timestamp=NOW + 1)])  # type: ignore[union-attr]
            update = receive(ws)  # only B: a vehicle that stays outside is not mentioned again
            assert [v["vehicle_id"] for v in update["vehicles"]] == ["B"] and "removed" not in update


def test_fleet_socket_route_filter_takes_off_a_bus_that_changes_route(network: Network) -> None:
    live = MemoryLiveStore()
    with TestClient(create_app(live, network, clock=lambda: NOW, timetable=False, min_interval_s=0.0)) as client:
        client.portal.call(live.put_states, [bus("A", -16.92, 145.77)])  # type: ignore[union-attr]
        with client.websocket_connect("/ws/fleet?route_id=110-423") as ws:
            assert [v["vehicle_id"] for v in receive(ws)["vehicles"]] == ["A"]
            client.portal.call(live.put_states, [bus("A", -16.92, 145.77, "other", timestamp=NOW)])  # type: ignore[union-attr]
            assert receive(ws)["removed"] == ["A"]


@pytest.mark.parametrize("bbox", ["1,2,3", "a,b,c,d", "145.8,-16.9,145.7,-16.95", "nan,0,1,1", "1," * 200 + "1"])
def test_fleet_socket_with_a_bad_box_closes_with_4400_and_a_reason(client: TestClient, bbox: str) -> None:
    with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect(f"/ws/fleet?bbox={bbox}") as ws:
        receive(ws)
    assert closed.value.code == 4400
    assert "bbox" in closed.value.reason


def test_vehicle_socket_follows_one_bus_and_its_arrivals(network: Network) -> None:
    live = MemoryLiveStore()
    with TestClient(create_app(live, network, clock=lambda: NOW, timetable=False, min_interval_s=0.0)) as client:
        client.portal.call(live.put_states, [bus("A", -16.92, 145.77), bus("B", -16.80, 145.70)])  # type: ignore[union-attr]
        client.portal.call(live.put_predictions, [predictions("A", (STOP, NOW + 600, "blend"))])  # type: ignore[union-attr]
        with client.websocket_connect("/ws/vehicles/A") as ws:
            snapshot = receive(ws)
            assert (snapshot["type"], snapshot["vehicle_id"], snapshot["vehicle"]["latitude"]) == (
                "snapshot",
                "A",
                -16.92,
            )
            assert snapshot["vehicle"]["route_short_name"] == "110"
            assert [(a["stop_id"], a["predicted_arrival"]) for a in snapshot["arrivals"]] == [(STOP, NOW + 600)]

            # B's moves are not A's follower's business; A's move comes with the arrivals predicted from it.
            client.portal.call(live.put_states, [bus("B", -16.81, 145.70, timestamp=NOW)])  # type: ignore[union-attr]
            client.portal.call(live.put_predictions, [predictions("A", (STOP, NOW + 420, "recent"))])  # type: ignore[union-attr]
            client.portal.call(live.put_states, [bus("A", -16.93, 145.77, timestamp=NOW)])  # type: ignore[union-attr]
            update = receive(ws)
            assert (update["type"], update["vehicle"]["vehicle_id"], update["vehicle"]["latitude"]) == (
                "update",
                "A",
                -16.93,
            )
            assert [a["predicted_arrival"] for a in update["arrivals"]] == [NOW + 420]


def test_vehicle_socket_waits_for_a_bus_not_yet_in_service_and_says_when_it_goes(network: Network) -> None:
    store_clock = [0.0]
    live = MemoryLiveStore(vehicle_ttl_s=60.0, clock=lambda: store_clock[0])
    app = create_app(live, network, clock=lambda: NOW, timetable=False, min_interval_s=0.0, expiry_sweep_s=0.05)
    with TestClient(app) as client, client.websocket_connect("/ws/vehicles/A") as ws:
        assert receive(ws) == {
            "type": "snapshot",
            "vehicle_id": "A",
            "vehicle": None,
            "arrivals": [],
            "server_time": NOW,
        }
        client.portal.call(live.put_states, [bus("A", -16.92, 145.77)])  # type: ignore[union-attr]
        assert receive(ws)["vehicle"]["vehicle_id"] == "A"
        client.portal.call(app.state.hub.sweep_once)  # type: ignore[union-attr]
        store_clock[0] = 70.0  # A stopped reporting longer ago than its time to live
        gone = receive(ws)
        assert (gone["type"], gone["vehicle"], gone["arrivals"]) == ("update", None, [])


def test_vehicle_socket_with_an_absurd_id_closes_with_4400(client: TestClient) -> None:
    with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect("/ws/vehicles/" + "v" * 500) as ws:
        receive(ws)
    assert closed.value.code == 4400


def test_vehicle_followers_count_towards_the_socket_limit(live: MemoryLiveStore, network: Network) -> None:
    with TestClient(create_app(live, network, clock=lambda: NOW, timetable=False, max_websockets=1)) as client:
        with client.websocket_connect("/ws/vehicles/A") as first:
            assert receive(first)["type"] == "snapshot"
            with client.websocket_connect("/ws/fleet") as second, pytest.raises(WebSocketDisconnect) as closed:
                receive(second)
            assert closed.value.code == 1013
