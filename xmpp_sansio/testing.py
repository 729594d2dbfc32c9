"""Helpers for testing code built on xmpp_sansio: wire a client and a server
connection back to back with no sockets (h11's ``ConnectionPair`` idea).

TLS is simulated: when both sides ask for it, both are told it is established,
with the same channel binding data, as a real TLS session would give them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar
from xml.etree.ElementTree import Element, fromstring

from .errors import RemoteProtocolError
from .sasl import ChannelBinding, NeedDerivation
from .sasl.credentials import ScramCredentials, derive_scram_credentials, salted_password
from .stream.answers import (
    CredentialsProvided,
    DerivationProvided,
    TLSEstablished,
    UpgradeTasksNeeded,
)
from .stream.connection import ClientConnection, ServerConnection, TLSInfo
from .stream.events import (
    CredentialsRequested,
    DerivationRequested,
    Event,
    TLSRequested,
    UpgradeTasksRequested,
)
from .stream.framing import WebSocketFraming
from .xml import ns
from .xml.parser import StreamEnd, StreamHeader, StreamParser, XMLStreamError
from .xml.writer import serialize

__all__ = [
    "DEFAULT_FRAMING",
    "ConnectionPair",
    "derive",
    "framed",
    "make_credentials",
    "seeded_rng",
    "x",
]

#: The framing a :class:`ConnectionPair` puts its connections on unless told:
#: ``"tcp"`` or ``"websocket"`` (RFC 7395, in memory). Test suites switch it
#: to run the same transcripts over both (tests/sansio/conftest.py).
DEFAULT_FRAMING = "tcp"


_Conn = TypeVar("_Conn", ClientConnection, ServerConnection)


def framed(conn: _Conn) -> _Conn:
    """Put a fresh connection on :data:`DEFAULT_FRAMING` for byte-level tests.

    With ``"websocket"``, ``conn`` gets :class:`WebSocketFraming` and keeps its
    byte API for the test: ``receive_data`` cuts an RFC 6120 transcript into
    RFC 7395 messages (a header becomes ``<open/>``, each element a message,
    the footer ``<close/>``; bytes that do not parse go as one message, for
    the connection to refuse) and ``data_to_send`` joins the messages sent.
    """
    if DEFAULT_FRAMING == "tcp":
        return conn
    conn._set_framing(WebSocketFraming())
    splitter: list[StreamParser] = []

    def receive_data(data: bytes | bytearray) -> None:
        if not data:
            conn.receive_eof()
            return
        if not splitter or bytes(data).lstrip().startswith((b"<?xml", b"<stream:stream")):
            splitter[:] = [StreamParser(max_stanza_size=1 << 24, max_depth=1000)]
        parser = splitter[0]
        messages: list[bytes] = []
        try:
            parser.feed(data)
            while (item := parser.next_event()) is not None:
                if isinstance(item, StreamHeader):
                    attrs = {k: v for k, v in item.attrs.items() if v is not None}
                    messages.append(serialize(Element(ns.OPEN_TAG, attrs), ""))
                elif isinstance(item, StreamEnd):
                    messages.append(serialize(Element(ns.CLOSE_TAG), ""))
                else:
                    messages.append(serialize(item, ""))
        except XMLStreamError:
            messages.append(parser.take_unparsed() or bytes(data))
        for message in messages:
            conn.receive_message(message)

    def data_to_send() -> bytes:
        return b"".join(conn.messages_to_send())

    conn.receive_data = receive_data  # type: ignore[method-assign]
    conn.data_to_send = data_to_send  # type: ignore[method-assign]
    return conn


def seeded_rng(seed: int | bytes) -> Callable[[int], bytes]:
    """A deterministic ``rng(n) -> n bytes`` for configs and trackers in tests
    (SHA-256 in counter mode; no ``random``/``secrets``), so transcripts with
    stream ids and nonces are reproducible. Never for real connections."""
    key = seed if isinstance(seed, bytes) else seed.to_bytes(16, "big", signed=True)
    counter = 0

    def rng(n: int) -> bytes:
        nonlocal counter
        out = b""
        while len(out) < n:
            counter += 1
            out += hashlib.sha256(key + counter.to_bytes(8, "big")).digest()
        return out[:n]

    return rng


def x(text: str) -> Element:
    """Parse a stanza written without the namespace declaration
    (``x("<message to='a@b'/>")`` is in ``jabber:client``)."""
    return fromstring(re.sub(r"^<(\w+)", r"<\1 xmlns='jabber:client'", text, count=1))


def derive(request: DerivationRequested | NeedDerivation) -> bytes:
    """Answer a :class:`DerivationRequested` the simple way (on the caller's thread)."""
    return salted_password(request.password, request.hash_name, request.salt, request.iterations)


def make_credentials(
    passwords: dict[str, str], *, iterations: int = 4096
) -> Callable[[str, str], ScramCredentials | None]:
    """A credential lookup ``(username, hash_name) -> credentials`` over a dict of
    passwords, deriving salted credentials once per (user, hash)."""
    cache: dict[tuple[str, str], ScramCredentials] = {}

    def lookup(username: str, hash_name: str) -> ScramCredentials | None:
        if username not in passwords:
            return None
        key = (username, hash_name)
        if key not in cache:
            cache[key] = derive_scram_credentials(
                passwords[username],
                hash_name,
                salt=username.encode() + b"-salt",
                iterations=iterations,
            )
        return cache[key]

    return lookup


@dataclass
class ConnectionPair:
    """A client and a server connection exchanging bytes in memory."""

    client: ClientConnection
    server: ServerConnection
    credentials: Callable[[str, str], ScramCredentials | None]
    channel_binding: ChannelBinding | None = field(
        default_factory=lambda: ChannelBinding("tls-server-end-point", b"\x01" * 32)
    )
    client_events: list[Event] = field(default_factory=list)
    server_events: list[Event] = field(default_factory=list)
    client_error: RemoteProtocolError | None = None
    server_error: RemoteProtocolError | None = None
    chunk: int | None = None  # feed this many bytes at a time (None: whole)
    framing: str = field(default_factory=lambda: DEFAULT_FRAMING)

    def __post_init__(self) -> None:
        if self.framing == "websocket":
            self.client._set_framing(WebSocketFraming())
            self.server._set_framing(WebSocketFraming())
        elif self.framing != "tcp":
            raise ValueError(f"unknown framing {self.framing!r}")

    def _transfer(
        self,
        source: ClientConnection | ServerConnection,
        target: ClientConnection | ServerConnection,
    ) -> bool:
        """Move what ``source`` queued to ``target``: bytes, or whole messages."""
        if self.framing == "websocket":
            messages = source.messages_to_send()
            for message in messages:
                target.receive_message(message)
            return bool(messages)
        data = source.data_to_send()
        if data:
            self._feed(target, data)
        return bool(data)

    def _feed(self, conn: ClientConnection | ServerConnection, data: bytes) -> None:
        if self.chunk is None:
            conn.receive_data(data)
        else:
            for i in range(0, len(data), self.chunk):
                conn.receive_data(data[i : i + self.chunk])

    def _drain(self, conn: ClientConnection | ServerConnection, out: list[Event]) -> bool:
        progressed = False
        while True:
            try:
                event = conn.next_event()
            except RemoteProtocolError as exc:
                if conn is self.client:
                    self.client_error = exc
                else:
                    self.server_error = exc
                return True
            if event is None:
                return progressed
            progressed = True
            out.append(event)
            if isinstance(event, CredentialsRequested) and conn is self.server:
                credentials = self.credentials(event.username, event.hash_name)
                self.server.send(CredentialsProvided(credentials))
            elif isinstance(event, DerivationRequested) and conn is self.server:
                self.server.send(DerivationProvided(derive(event)))
            elif isinstance(event, UpgradeTasksRequested) and conn is self.server:
                user = event.jid.local or ""  # XEP-0480: the hashes the account lacks
                lacking = tuple(h for h in event.hashes if self.credentials(user, h) is None)
                self.server.send(UpgradeTasksNeeded(lacking))

    def pump(self, limit: int = 100) -> None:
        """Move bytes both ways until neither side has anything more to say."""
        for _ in range(limit):
            progressed = self._transfer(self.client, self.server)
            progressed |= self._drain(self.server, self.server_events)
            progressed |= self._transfer(self.server, self.client)
            progressed |= self._drain(self.client, self.client_events)
            if self._tls_ready():
                info = TLSInfo(channel_binding=self.channel_binding)
                self.server.send(TLSEstablished(info))
                self.client.send(TLSEstablished(info))
                progressed = True
            if not progressed:
                return
        raise AssertionError("connections did not go quiet")

    def _tls_ready(self) -> bool:
        from .stream.connection import State

        return (
            self.client.state is State.TLS_PENDING
            and self.server.state is State.TLS_PENDING
            and any(isinstance(e, TLSRequested) for e in self.client_events)
        )
