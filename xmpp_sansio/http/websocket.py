"""XMPP over WebSocket (RFC 7395) beneath the XMPP stream: the handshake
checks and the frames, on wsproto.

The stream itself (``<open/>``, one element per message, ``<close/>``) is
:class:`~xmpp_sansio.stream.framing.WebSocketFraming`; this module only
turns its messages into WebSocket frames and back (RFC 6455 §5):
:func:`text_frame` wraps each unit the framing emits (a server's frames are
not masked, §5.1), and :class:`WebSocketStream` reassembles the client's
text messages, answers pings and closes.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Final
from xml.etree.ElementTree import Element

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage
from wsproto.frame_protocol import CloseReason
from wsproto.utilities import generate_accept_token

from ..xml import ns
from ..xml.writer import serialize

__all__ = [
    "SUBPROTOCOL",
    "HandshakeRefusal",
    "WebSocketStream",
    "check_handshake",
    "see_other_messages",
    "text_frame",
]

#: RFC 7395 §3.1: the subprotocol a client must offer and the server selects.
SUBPROTOCOL: Final = "xmpp"


class HandshakeRefusal(Exception):
    """Why a WebSocket handshake is refused: the HTTP status and a reason."""

    def __init__(self, status: int, reason: str, headers: tuple[tuple[str, str], ...] = ()):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers


def _tokens(value: str) -> list[str]:
    return [t.strip().lower() for t in value.split(",") if t.strip()]


def check_handshake(
    headers: Mapping[str, str],
    *,
    allowed_origins: tuple[str, ...],
    subprotocol: str = SUBPROTOCOL,
) -> tuple[str, str]:
    """Check an opening handshake (RFC 6455 §4.2.1, RFC 7395 §3.1); return
    ``(Sec-WebSocket-Accept, subprotocol)``.

    Raises:
        HandshakeRefusal: 426 without an upgrade to ``websocket`` or with
            another version than 13, 400 without a key or without the ``xmpp``
            subprotocol, 403 for an ``Origin`` not in ``allowed_origins``.
    """
    if "websocket" not in _tokens(headers.get("upgrade", "")) or "upgrade" not in _tokens(
        headers.get("connection", "")
    ):
        raise HandshakeRefusal(
            426, "a WebSocket upgrade is required here", (("upgrade", "websocket"),)
        )
    if headers.get("sec-websocket-version", "").strip() != "13":
        raise HandshakeRefusal(
            426, "only WebSocket version 13 is supported", (("sec-websocket-version", "13"),)
        )
    key = headers.get("sec-websocket-key", "").strip()
    if not key:
        raise HandshakeRefusal(400, "Sec-WebSocket-Key is missing")
    if subprotocol not in _tokens(headers.get("sec-websocket-protocol", "")):
        raise HandshakeRefusal(400, f"the {subprotocol!r} subprotocol (RFC 7395 §3.1) is required")
    origin = headers.get("origin")
    if origin is not None and allowed_origins and origin not in allowed_origins:
        raise HandshakeRefusal(403, "this origin may not open XMPP streams here")
    return generate_accept_token(key.encode("ascii", "replace")).decode(), subprotocol


def text_frame(payload: bytes) -> bytes:
    """One unmasked, final text frame holding ``payload`` (RFC 6455 §5.2;
    the server's frames, §5.1). ``payload`` is the framing's UTF-8 output."""
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 1 << 16:
        return struct.pack("!BBH", 0x81, 126, size) + payload
    return struct.pack("!BBQ", 0x81, 127, size) + payload


def see_other_messages(uri: str) -> tuple[bytes, bytes]:
    """What answers a client's first ``<open/>`` when streams are sent
    elsewhere: our ``<open/>`` and ``<close see-other-uri=.../>`` (RFC 7395
    §3.6.1), the client must not follow it to a lower security context."""
    opened = serialize(Element(ns.OPEN_TAG, {"version": "1.0"}), "")
    return opened, serialize(Element(ns.CLOSE_TAG, {"see-other-uri": uri}), "")


class WebSocketStream:
    """The frames of an accepted WebSocket connection, server side.

    Feed :meth:`receive_data` (``b""`` at end of file), take complete text
    messages from :meth:`next_message` (``None``: more input needed), write
    :meth:`data_to_send` (pongs, close frames). :attr:`closed` is set once
    the peer closed, broke the framing or sent binary data: the messages
    before it have been handed over, and a close frame is queued.

    Args:
        max_message_size: the largest message kept whole; a longer one is cut
            to one byte more than this, for the XMPP framing to refuse with
            ``policy-violation`` (RFC 7395 §3.3.3 and the stream's limits).
        trailing_data: bytes after the handshake, already read.
    """

    def __init__(self, *, max_message_size: int, trailing_data: bytes = b"") -> None:
        self._ws = Connection(ConnectionType.SERVER, trailing_data=trailing_data)
        self._max = max_message_size
        self._parts: list[str] = []
        self._size = 0
        self._messages: list[bytes] = []
        self._out = bytearray()
        self.closed = False
        #: the close code the peer sent, or the one we chose (RFC 6455 §7.4)
        self.close_code: int | None = None
        self._pump()

    def receive_data(self, data: bytes) -> None:
        if self.closed:
            return
        if not data:
            self.closed = True
            return
        self._ws.receive_data(data)
        self._pump()

    def next_message(self) -> bytes | None:
        """The next complete text message, UTF-8 encoded."""
        return self._messages.pop(0) if self._messages else None

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def close(self, code: int = CloseReason.NORMAL_CLOSURE) -> bytes:
        """Our close frame, if one may still be sent (RFC 6455 §5.5.1)."""
        self.closed = True
        if self._ws.state is not ConnectionState.OPEN:
            return b""
        self.close_code = code
        return self._ws.send(CloseConnection(code=code))

    def _pump(self) -> None:
        for event in self._ws.events():
            if isinstance(event, TextMessage):
                if self._size <= self._max:
                    self._parts.append(event.data)
                    self._size += len(event.data)
                if event.message_finished:
                    data = "".join(self._parts).encode("utf-8")
                    self._messages.append(data[: self._max + 1])
                    self._parts.clear()
                    self._size = 0
            elif isinstance(event, Ping):
                self._out += self._ws.send(event.response())
            elif isinstance(event, BytesMessage):
                # RFC 7395 §3.2: XMPP messages are text frames only.
                self._out += self.close(CloseReason.UNSUPPORTED_DATA)
                return
            elif isinstance(event, CloseConnection):
                self.close_code = event.code
                if self._ws.state is ConnectionState.REMOTE_CLOSING:
                    self._out += self._ws.send(event.response())
                elif self._ws.state is ConnectionState.OPEN:  # the framing broke
                    self._out += self._ws.send(CloseConnection(code=event.code))
                self.closed = True
                return
