"""Stop boards through a real uvicorn server, where updates are written to riders as one shared frame.

The starlette test client (tests/api/test_websockets.py) has no connection to write frames to, so those
tests run the ordinary path: each rider's own sender. Here the same behaviour is checked on the direct
path, on the ordinary path of a real server that cannot take shared frames (compression negotiated), and
with the server options `smartbus api` uses (heartbeats, message-size limit).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
import uvicorn
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection, connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosedError
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader
from websockets.uri import parse_uri

from api.app import create_app, serve
from api.clients import CLOSE_TOO_SLOW, StopClient
from api.command import WEBSOCKET_OPTIONS
from api.frames import frame_writer, text_frame
from api.stop_boards import StopBoards
from eta.network import Network
from smartbus.live.memory_store import MemoryLiveStore
from tests.api.conftest import NOW
from tests.api.test_languages import arriving, bac_ninh  # noqa: F401 (a fixture)
from tests.api.test_rest import STOP, TRIP, predictions


@contextlib.asynccontextmanager
async def serving(app: FastAPI, **options: Any) -> AsyncIterator[str]:
    """`app` under uvicorn with the options `smartbus api` uses (and any given here); yields ws://host:port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **{**WEBSOCKET_OPTIONS, **options})
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    with anyio.fail_after(10):
        while not server.started:  # noqa: ASYNC110 (uvicorn offers no event for this)
            await asyncio.sleep(0.01)
    try:
        yield f"ws://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def receive(ws: ClientConnection) -> dict[str, Any]:
    with anyio.fail_after(5):  # fail the test, not hang it
        return json.loads(await ws.recv())  # type: ignore[no-any-return]


def boards_of(app: FastAPI) -> StopBoards:
    boards: StopBoards = app.state.hub.boards
    return boards


@pytest.mark.parametrize(
    ("compression", "direct"),
    [(None, True), ("deflate", False)],
    ids=["shared frames", "compressed: each rider's own sender"],
)
async def test_riders_get_the_snapshot_then_every_change(
    network: Network, compression: str | None, direct: bool
) -> None:
    live = MemoryLiveStore()
    await live.put_predictions([predictions("V1", (STOP, NOW + 600, "blend"))])
    app = create_app(live, network, clock=lambda: NOW, timetable=False, min_interval_s=0.0)
    async with (
        serving(app, ws_per_message_deflate=compression is not None) as base,
        connect(f"{base}/ws/stops/{STOP}", compression=compression) as first,
        connect(f"{base}/ws/stops/{STOP}", compression=compression) as second,
    ):
        for ws in (first, second):
            snapshot = await receive(ws)
            assert (snapshot["type"], snapshot["stop_id"], snapshot["server_time"]) == ("snapshot", STOP, NOW)
            assert [a["predicted_arrival"] for a in snapshot["arrivals"]] == [NOW + 600]

        await live.put_predictions([predictions("V1", (STOP, NOW + 240, "recent"))])
        for ws in (first, second):
            update = await receive(ws)
            assert (update["type"], update["stop_id"]) == ("update", STOP)
            [arrival] = update["arrivals"]
            assert (arrival["trip_id"], arrival["predicted_arrival"], arrival["method"]) == (TRIP, NOW + 240, "recent")

        await live.put_predictions([predictions("V1", (STOP, NOW + 180, "recent"))])
        for ws in (first, second):
            assert [a["predicted_arrival"] for a in (await receive(ws))["arrivals"]] == [NOW + 180]
        assert boards_of(app).written_directly == (4 if direct else 0)


async def test_changes_within_a_riders_interval_coalesce_into_the_latest_board(network: Network) -> None:
    live = MemoryLiveStore()
    app = create_app(live, network, clock=lambda: NOW, timetable=False, min_interval_s=1.0)
    async with serving(app) as base, connect(f"{base}/ws/stops/{STOP}") as ws:
        assert (await receive(ws))["arrivals"] == []
        await live.put_predictions([predictions("V1", (STOP, NOW + 600, "blend"))])
        assert [a["predicted_arrival"] for a in (await receive(ws))["arrivals"]] == [NOW + 600]

        for minutes in (9, 8, 7):  # within the interval: the rider is sent the last one only, when it has passed
            await live.put_predictions([predictions("V1", (STOP, NOW + 60 * minutes, "recent"))])
            await asyncio.sleep(0.05)  # time enough for the server to send each change, if it would
        assert [a["predicted_arrival"] for a in (await receive(ws))["arrivals"]] == [NOW + 420]
        assert boards_of(app).written_directly == 2


async def test_each_rider_gets_the_board_in_their_own_language(bac_ninh: Network) -> None:  # noqa: F811
    live = MemoryLiveStore()
    await live.put_predictions([arriving("V1", "01-east-0", "01", "CN", 2, NOW + 600)])
    app = create_app(live, bac_ninh, clock=lambda: NOW, timetable=False, min_interval_s=0.0)
    async with (
        serving(app) as base,
        connect(f"{base}/ws/stops/CN?lang=en") as english,
        connect(f"{base}/ws/stops/CN") as feed_text,
    ):
        assert [a["headsign"] for a in (await receive(english))["arrivals"]] == ["Pho Moi"]
        assert [a["headsign"] for a in (await receive(feed_text))["arrivals"]] == ["Phố Mới"]
        await live.put_predictions([arriving("V3", "01-east-2", "01", "CN", 2, NOW + 900)])
        assert [a["headsign"] for a in (await receive(english))["arrivals"]] == ["Pho Moi", "Pho Moi (last trip)"]
        assert [a["headsign"] for a in (await receive(feed_text))["arrivals"]] == ["Phố Mới", "Phố Mới"]
        assert boards_of(app).written_directly == 2


async def test_a_rider_whose_connection_died_silently_is_let_go(network: Network) -> None:
    """Heartbeats: the server pings every rider, and closes a connection that stops answering."""
    app = create_app(MemoryLiveStore(), network, clock=lambda: NOW, timetable=False)
    async with serving(app, ws_ping_interval=0.2, ws_ping_timeout=0.2) as base:
        host, port = base.removeprefix("ws://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        rider = ClientProtocol(parse_uri(f"{base}/ws/stops/{STOP}"))
        rider.send_request(rider.connect())
        writer.write(b"".join(rider.data_to_send()))  # the handshake; after it, this rider never answers a ping
        opcodes = []
        with anyio.fail_after(10):
            while data := await reader.read(65536):
                rider.receive_data(data)
                opcodes += [event.opcode for event in rider.events_received() if isinstance(event, Frame)]
        writer.close()
        assert opcodes[0] == Opcode.TEXT  # the snapshot
        assert Opcode.PING in opcodes
        assert rider.close_rcvd is not None and rider.close_rcvd.code == 1011  # "keepalive ping timeout"
        with anyio.fail_after(5):
            while app.state.hub.client_count:  # noqa: ASYNC110
                await asyncio.sleep(0.01)


async def test_a_rider_sending_a_huge_message_is_disconnected(network: Network) -> None:
    app = create_app(MemoryLiveStore(), network, clock=lambda: NOW, timetable=False)
    async with serving(app) as base, connect(f"{base}/ws/stops/{STOP}") as ws:
        assert (await receive(ws))["type"] == "snapshot"
        await ws.send("x" * (WEBSOCKET_OPTIONS["ws_max_size"] + 1))
        with pytest.raises(ConnectionClosedError) as closed:
            await receive(ws)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009  # message too big


# --- the direct path without a server ---------------------------------------------------------------------


def frame_payload(frame: bytes) -> str:
    """What a client makes of a frame the server wrote (websockets' own parser)."""
    reader = StreamReader()
    reader.feed_data(frame)
    reader.feed_eof()
    parser = Frame.parse(reader.read_exact, mask=False)
    with pytest.raises(StopIteration) as parsed:
        next(parser)
    frame_read: Frame = parsed.value.value
    assert (frame_read.opcode, frame_read.fin) == (Opcode.TEXT, True)
    return bytes(frame_read.data).decode()


@pytest.mark.parametrize("size", [10, 300, 70_000], ids=["short", "16-bit length", "64-bit length"])
def test_a_text_frame_reads_back_as_its_text(size: int) -> None:
    text = ("Bến xe Bắc Ninh " * size)[:size]
    assert frame_payload(text_frame(text)) == text


def test_a_connection_the_server_does_not_offer_gets_no_direct_writer() -> None:
    async def send(message: Any) -> None: ...

    assert frame_writer({"type": "websocket"}) is None
    assert frame_writer({"type": "websocket", "smartbus.server_send": send}) is None


class _Writer:
    def __init__(self, taking_data: bool) -> None:
        self.taking_data = taking_data
        self.frames: list[bytes] = []

    def ready(self) -> bool:
        return self.taking_data

    def write(self, frame: bytes) -> None:
        self.frames.append(frame)


class _Socket:
    """Takes the snapshot through the ASGI path, then (when `stuck`) never another byte."""

    def __init__(self, stuck: bool) -> None:
        self.stuck = stuck
        self.sent: list[str] = []
        self.closed_with: int | None = None

    async def send_text(self, text: str) -> None:
        if self.sent and self.stuck:
            await asyncio.Event().wait()
        self.sent.append(text)

    async def receive(self) -> dict[str, Any]:
        await asyncio.Event().wait()
        raise AssertionError

    async def close(self, code: int, reason: str) -> None:
        self.closed_with = code


async def test_a_rider_not_taking_data_is_dropped_while_the_others_get_shared_frames() -> None:
    boards_read = [0]

    async def render(stop_id: str, languages: Any) -> str:
        boards_read[0] += 1
        return json.dumps({"type": "update", "stop_id": stop_id, "read": boards_read[0]})

    boards = StopBoards(render)
    stuck_socket, quick_socket = _Socket(stuck=True), _Socket(stuck=False)
    stuck_writer, quick_writer = _Writer(taking_data=False), _Writer(taking_data=True)
    stuck = StopClient(stuck_socket, "S", 0.0, 0.05, (), stuck_writer)  # type: ignore[arg-type]
    quick = StopClient(quick_socket, "S", 0.0, 0.05, (), quick_writer)  # type: ignore[arg-type]

    async def snapshot() -> dict[str, Any]:
        return {"type": "snapshot"}

    def ride(client: StopClient) -> asyncio.Task[None]:
        boards.add(client)
        return asyncio.create_task(serve(client, snapshot, lambda: boards.next_update(client)))

    riders = [ride(stuck), ride(quick)]
    async with asyncio.timeout(5):
        while not (stuck.idle and quick.idle):  # noqa: ASYNC110 (both have their snapshot, and wait)
            await asyncio.sleep(0)
        boards.changed("S")
        await riders[0]  # returns once the stuck rider has been dropped
        boards.remove(stuck)
        boards.changed("S")
        while len(quick_writer.frames) < 2:  # noqa: ASYNC110 (a plain list is what a writer fills)
            await asyncio.sleep(0.01)
    riders[1].cancel()

    assert stuck_socket.closed_with == CLOSE_TOO_SLOW
    assert stuck_writer.frames == []
    assert [json.loads(frame_payload(f))["read"] for f in quick_writer.frames] == [1, 2]
    assert quick_socket.sent == ['{"type":"snapshot"}']  # everything after it went as shared frames
    assert boards.written_directly == 2
