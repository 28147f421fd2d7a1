"""One encoded websocket frame written to many connections, as `websockets.broadcast` does.

A stop board's update is the same bytes for every rider watching it in one language: a server's frames are
unmasked and, with per-message compression off, carry the text as it is. So the frame is encoded once per
change and written straight to each connection's transport, without a task wake-up and a pass through the
ASGI stack per rider, which is most of what a message costs there.

This reaches into the server's connection object, so it is feature-detected: `frame_writer` knows uvicorn's
websockets-sansio protocol as it is from uvicorn 0.52.1 on (with write flow control); for any other server,
implementation or version, or a connection that negotiated compression, it answers None and the caller sends
the ordinary ASGI way.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final, Protocol

from starlette.types import ASGIApp, Receive, Scope, Send
from websockets.frames import Frame, Opcode
from websockets.protocol import State

try:
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
except ImportError:  # an older uvicorn, or none: every connection takes the ordinary path
    WebSocketsSansIOProtocol = None  # type: ignore[assignment,misc]

SERVER_SEND: Final = "smartbus.server_send"  # scope key: the server's own `send`, before middleware wraps it


def text_frame(text: str) -> bytes:
    """`text` as one final, unmasked, uncompressed text frame: what a server sends for it."""
    return Frame(Opcode.TEXT, text.encode()).serialize(mask=False)


class FrameWriter(Protocol):
    def ready(self) -> bool:
        """Open, and taking data: its transport's buffer is below the high-water mark."""

    def write(self, frame: bytes) -> None: ...


class _SansIOWriter:
    """A connection of uvicorn's websockets-sansio implementation."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: Any) -> None:
        self._protocol = protocol

    def ready(self) -> bool:
        p = self._protocol
        # `writable` is cleared by the transport's pause_writing: a client that stopped reading is not written
        # to any more, and its own sender then waits for it (and drops it after its timeout) the ordinary way.
        return not p.close_sent and p.conn.state is State.OPEN and p.writable.is_set() and not p.transport.is_closing()

    def write(self, frame: bytes) -> None:
        self._protocol.transport.write(frame)


def frame_writer(scope: Scope) -> FrameWriter | None:
    """A direct writer for this websocket's connection, or None where only the ASGI path is known to be right."""
    protocol = getattr(scope.get(SERVER_SEND), "__self__", None)
    if WebSocketsSansIOProtocol is None or not isinstance(protocol, WebSocketsSansIOProtocol):
        return None
    conn = getattr(protocol, "conn", None)
    transport = getattr(protocol, "transport", None)  # uvloop's transports are not asyncio.Transport instances
    if (
        not isinstance(getattr(protocol, "writable", None), asyncio.Event)  # flow control: uvicorn >= 0.52.1
        or not callable(getattr(transport, "write", None))
        or not callable(getattr(transport, "is_closing", None))
        or not isinstance(getattr(protocol, "close_sent", None), bool)
        or getattr(conn, "extensions", None) != []  # compression would make every connection's frame its own
    ):
        return None
    return _SansIOWriter(protocol)


class ServerSendMiddleware:
    """Keeps each websocket's server-side `send` in its scope for `frame_writer` (middleware may wrap `send`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            scope[SERVER_SEND] = send
        await self.app(scope, receive, send)
