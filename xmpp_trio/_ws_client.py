"""The client side of XMPP over WebSocket (RFC 7395): a Trio stream that
speaks WebSocket on wsproto, one XMPP message per frame.

:func:`connect_websocket` runs the opening handshake (RFC 6455 §4.1, the
``xmpp`` subprotocol of RFC 7395 §3.1) over TCP or TLS (``wss``) and returns
a :class:`WebSocketClientStream`: :meth:`~WebSocketClientStream.receive_some`
returns one complete text message per call (the client feeds it to
``ClientConnection.receive_message``), and :meth:`~WebSocketClientStream.send_all`
takes what the connection queued, already framed by :meth:`~WebSocketClientStream.frame`
(the ``wrap`` of its :class:`~xmpp_sansio.stream.framing.WebSocketFraming`:
client frames are masked, RFC 6455 §5.3).
"""

from __future__ import annotations

import ssl
from urllib.parse import urlsplit

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

from xmpp_sansio.http import SUBPROTOCOL

__all__ = ["WebSocketClientStream", "connect_websocket"]

_READ = 65536


class WebSocketClientStream(trio.abc.Stream):
    """An XMPP WebSocket connection, client side (see the module docstring)."""

    def __init__(self, inner: trio.abc.Stream, ws: WSConnection) -> None:
        self.inner = inner
        self._ws = ws
        self._messages: list[bytes] = []
        self._parts: list[str] = []
        self._control = bytearray()  # pongs, sent before our next frames
        self._eof = False
        self._sending = False  # a send_all is under way

    def frame(self, payload: bytes) -> bytes:
        """One masked text frame holding ``payload`` (the framing's ``wrap``);
        nothing once the WebSocket is closing (RFC 6455 §5.5.1)."""
        if self._ws.state is not ConnectionState.OPEN:
            return b""
        return self._ws.send(TextMessage(data=payload.decode("utf-8")))

    def _pump(self) -> None:
        for event in self._ws.events():
            if isinstance(event, TextMessage):
                self._parts.append(event.data)
                if event.message_finished:
                    self._messages.append("".join(self._parts).encode("utf-8"))
                    self._parts.clear()
            elif isinstance(event, Ping):
                self._control += self._ws.send(event.response())
            elif isinstance(event, CloseConnection):
                if self._ws.state is ConnectionState.REMOTE_CLOSING:
                    self._control += self._ws.send(event.response())
                self._eof = True
            elif isinstance(event, BytesMessage):  # RFC 7395 §3.2: text only
                self._eof = True

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """The next complete text message; ``b""`` at the end."""
        while True:
            if self._messages:
                await trio.lowlevel.checkpoint()
                return self._messages.pop(0)
            if self._eof:
                await trio.lowlevel.checkpoint()
                return b""
            data = await self.inner.receive_some(_READ)
            if not data:
                self._eof = True
                continue
            self._ws.receive_data(bytes(data))
            self._pump()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self._control:
            data = bytes(self._control) + bytes(data)
            self._control.clear()
        self._sending = True
        try:
            await self.inner.send_all(data)
        finally:
            self._sending = False

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        """Close the WebSocket (our close frame, RFC 6455 §5.5.1), then the
        stream. Forcefully (``trio.aclose_forcefully``, a lost network in
        tests) or in the middle of a write, no close frame is sent."""
        try:
            forced = trio.current_effective_deadline() == float("-inf")
            if self._ws.state is ConnectionState.OPEN and not forced and not self._sending:
                with trio.move_on_after(2):
                    await self.inner.send_all(self._ws.send(CloseConnection(code=1000)))
        except (trio.BrokenResourceError, trio.ClosedResourceError, ssl.SSLError, OSError):
            pass
        finally:
            await self.inner.aclose()


async def connect_websocket(
    url: str, ssl_context: ssl.SSLContext
) -> tuple[WebSocketClientStream, bool]:
    """Open ``url`` (``ws://`` or ``wss://``) with the ``xmpp`` subprotocol;
    return the stream and whether it runs over TLS.

    Raises:
        ConnectionError: the server refused the handshake or did not select
            the ``xmpp`` subprotocol (RFC 7395 §3.1: the client must close).
        OSError, ssl.SSLError: the connection or TLS failed.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ValueError(f"not a WebSocket URL: {url!r}")
    secure = parts.scheme == "wss"
    port = parts.port or (443 if secure else 80)
    stream: trio.abc.Stream = await trio.open_tcp_stream(parts.hostname, port)
    try:
        if secure:
            tls = trio.SSLStream(stream, ssl_context, server_hostname=parts.hostname)
            await tls.do_handshake()
            stream = tls
        ws = WSConnection(ConnectionType.CLIENT)
        host = parts.netloc.rsplit("@", 1)[-1]
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        await stream.send_all(
            ws.send(Request(host=host, target=target, subprotocols=[SUBPROTOCOL]))
        )
        while True:
            data = await stream.receive_some(_READ)
            if not data:
                raise ConnectionError("the server closed the connection during the handshake")
            ws.receive_data(bytes(data))
            for event in ws.events():
                if isinstance(event, AcceptConnection):
                    if event.subprotocol != SUBPROTOCOL:
                        raise ConnectionError("the server did not select the xmpp subprotocol")
                    client = WebSocketClientStream(stream, ws)
                    client._pump()  # frames that came with the handshake
                    return client, secure
                if isinstance(event, RejectConnection | RejectData):
                    status = getattr(event, "status_code", "?")
                    raise ConnectionError(f"WebSocket handshake refused (HTTP {status})")
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
