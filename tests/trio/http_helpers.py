"""Raw HTTP/1.1 and WebSocket on loopback for the HTTP listener's wire tests:
bytes exactly as written, the response as the server sent it."""

from __future__ import annotations

import base64
import os
import ssl
from dataclasses import dataclass

import trio
from wsproto import ConnectionType
from wsproto.connection import Connection
from wsproto.events import BytesMessage, CloseConnection, TextMessage

WAIT = 15.0


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    rest: bytes  # bytes after the response (e.g. WebSocket frames)


async def open_stream(port: int, context: ssl.SSLContext | None = None) -> trio.abc.Stream:
    stream: trio.abc.Stream = await trio.open_tcp_stream("127.0.0.1", port)
    if context is not None:
        tls = trio.SSLStream(stream, context, server_hostname="localhost")
        await tls.do_handshake()
        stream = tls
    return stream


async def read_response(
    stream: trio.abc.Stream, buffer: bytes = b"", *, head: bool = False
) -> Response:
    """One response (head, and a body by Content-Length); the server may
    close right after it."""
    with trio.fail_after(WAIT):
        while b"\r\n\r\n" not in buffer:
            data = await stream.receive_some(65536)
            assert data, f"closed before a response: {buffer!r}"
            buffer += data
        top, _, rest = buffer.partition(b"\r\n\r\n")
        lines = top.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = 0 if head else int(headers.get("content-length", "0"))
        while len(rest) < length:
            data = await stream.receive_some(65536)
            assert data, "closed inside a body"
            rest += data
        return Response(status, headers, rest[:length], rest[length:])


async def exchange(
    port: int, raw: bytes, context: ssl.SSLContext | None = None, *, head: bool = False
) -> Response:
    stream = await open_stream(port, context)
    try:
        await stream.send_all(raw)
        return await read_response(stream, head=head)
    finally:
        await trio.aclose_forcefully(stream)


async def closed_by_server(stream: trio.abc.Stream) -> bool:
    """Whether the server closes the connection (reads until EOF)."""
    with trio.fail_after(WAIT):
        try:
            while await stream.receive_some(65536):
                pass
        except trio.BrokenResourceError:
            pass
    return True


def get(path: str, *headers: str, host: str = "localhost") -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def upgrade(
    *,
    protocol: str | None = "xmpp",
    origin: str | None = None,
    key: str | None = None,
    path: str = "/xmpp-websocket",
) -> bytes:
    headers = [
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key or base64.b64encode(os.urandom(16)).decode()}",
        "Sec-WebSocket-Version: 13",
    ]
    if protocol is not None:
        headers.append(f"Sec-WebSocket-Protocol: {protocol}")
    if origin is not None:
        headers.append(f"Origin: {origin}")
    return get(path, *headers)


class RawWebSocket:
    """The client side of an accepted WebSocket: frames as written, messages
    and the close as received."""

    def __init__(self, stream: trio.abc.Stream, rest: bytes) -> None:
        self.stream = stream
        self.ws = Connection(ConnectionType.CLIENT, trailing_data=rest)
        self.messages: list[str] = []
        self.close_code: int | None = None

    async def send_text(self, text: str) -> None:
        await self.stream.send_all(self.ws.send(TextMessage(data=text)))

    async def send_bytes(self, data: bytes) -> None:
        await self.stream.send_all(self.ws.send(BytesMessage(data=data)))

    def _pump(self) -> None:
        parts: list[str] = []
        for event in self.ws.events():
            if isinstance(event, TextMessage):
                parts.append(event.data)
                if event.message_finished:
                    self.messages.append("".join(parts))
                    parts = []
            elif isinstance(event, CloseConnection):
                self.close_code = event.code

    async def receive(self) -> str | None:
        """The next text message, None once closed."""
        with trio.fail_after(WAIT):
            while True:
                self._pump()
                if self.messages:
                    return self.messages.pop(0)
                if self.close_code is not None:
                    return None
                try:
                    data = await self.stream.receive_some(65536)
                except trio.BrokenResourceError:
                    data = b""
                if not data:
                    return None
                self.ws.receive_data(data)

    async def until(self, fragment: str) -> list[str]:
        """Messages up to and including the first containing ``fragment``."""
        seen: list[str] = []
        while True:
            message = await self.receive()
            assert message is not None, f"closed before {fragment!r}; saw {seen}"
            seen.append(message)
            if fragment in message:
                return seen


async def open_websocket(
    port: int, context: ssl.SSLContext | None = None, **kw: str | None
) -> tuple[RawWebSocket, Response]:
    stream = await open_stream(port, context)
    await stream.send_all(upgrade(**kw))  # type: ignore[arg-type]
    response = await read_response(stream)
    return RawWebSocket(stream, response.rest), response
