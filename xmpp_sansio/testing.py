"""Helpers for testing code built on xmpp_sansio: wire a client and a server
connection back to back with no sockets (h11's ``ConnectionPair`` idea).

TLS is simulated: when both sides ask for it, both are told it is established,
with the same channel binding data, as a real TLS session would give them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import RemoteProtocolError
from .sasl import ChannelBinding, NeedDerivation
from .sasl.credentials import ScramCredentials, derive_scram_credentials, salted_password
from .stream.answers import CredentialsProvided, DerivationProvided, TLSEstablished
from .stream.connection import ClientConnection, ServerConnection, TLSInfo
from .stream.events import CredentialsRequested, DerivationRequested, Event, TLSRequested

__all__ = ["ConnectionPair", "derive", "make_credentials"]


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

    def pump(self, limit: int = 100) -> None:
        """Move bytes both ways until neither side has anything more to say."""
        for _ in range(limit):
            progressed = False
            data = self.client.data_to_send()
            if data:
                self._feed(self.server, data)
                progressed = True
            progressed |= self._drain(self.server, self.server_events)
            data = self.server.data_to_send()
            if data:
                self._feed(self.client, data)
                progressed = True
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
