"""Hypothesis fuzzing of the stream state machines (RFC 6120 negotiation).

Invariant (h11's): whatever bytes arrive, in whatever chunks, a connection
raises nothing but :class:`RemoteProtocolError` (from ``next_event``), and
once it has, it has queued a stream error and wants to be closed.
``FUZZ_EXAMPLES`` sets the number of examples (default 300).
"""

from __future__ import annotations

import hashlib
import os
import secrets

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xmpp_sansio.errors import RemoteProtocolError
from xmpp_sansio.jid import JID
from xmpp_sansio.stream.config import ClientConfig, ServerConfig
from xmpp_sansio.stream.connection import ClientConnection, ServerConnection, State
from xmpp_sansio.stream.events import CredentialsRequested, DerivationRequested, TLSRequested
from xmpp_sansio.testing import ConnectionPair, derive, make_credentials

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LOOKUP = make_credentials({"juliet": "pw"})


def server_config() -> ServerConfig:
    """A server whose randomness is a fixed sequence, so a recorded client
    transcript (with its SCRAM proof over the server nonce) replays exactly."""
    counter = iter(range(1 << 30))

    def rng(n: int) -> bytes:
        return hashlib.sha256(str(next(counter)).encode()).digest()[:n]

    return ServerConfig(domains=frozenset({"example.com"}), rng=rng, decoy_key=b"k" * 16)


def _record_client_transcript() -> list[bytes]:
    """The bytes a real client sends through a full negotiation over direct TLS
    (so that every byte is XMPP, none TLS records)."""
    client = ClientConnection(
        ClientConfig(rng=secrets.token_bytes, jid=JID.parse("juliet@example.com/a"), password="pw"),
        tls_active=True,
    )
    server = ServerConnection(server_config(), tls_active=True)
    pair = ConnectionPair(client, server, LOOKUP)
    sent: list[bytes] = []
    original = client.data_to_send

    def spy() -> bytes:
        data = original()
        if data:
            sent.append(data)
        return data

    client.data_to_send = spy  # type: ignore[method-assign]
    client.start()
    pair.pump()
    return sent


TRANSCRIPT = _record_client_transcript()


def drive_server(chunks: list[bytes], *, tls_active: bool = True) -> ServerConnection:
    """Feed chunks to a server, answering its requests like the I/O layer would."""
    server = ServerConnection(server_config(), tls_active=tls_active)
    for chunk in chunks:
        server.receive_data(chunk)
        while True:
            try:
                event = server.next_event()
            except RemoteProtocolError:
                assert server.state is State.ERROR
                assert server.should_close
                assert server.data_to_send().endswith(b"</stream:stream>")
                return server
            if event is None:
                break
            if isinstance(event, CredentialsRequested):
                server.provide_credentials(LOOKUP(event.username, event.hash_name))
            elif isinstance(event, DerivationRequested):
                server.provide_derived(derive(event))
            elif isinstance(event, TLSRequested) and server.state is State.TLS_PENDING:
                server.tls_established()
        server.data_to_send()
    return server


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, last = [], 0
    for p in points:
        pieces.append(data[last:p])
        last = p
    pieces.append(data[last:])
    return [p for p in pieces if p]


@FUZZ
@given(st.lists(st.binary(max_size=200), max_size=8))
def test_server_survives_arbitrary_bytes(chunks: list[bytes]) -> None:
    drive_server(chunks)


@FUZZ
@given(st.integers(0, len(TRANSCRIPT) - 1), st.binary(max_size=40), st.integers(0, 10_000))
def test_server_survives_mutated_client_transcript(index: int, junk: bytes, where: int) -> None:
    data = b"".join(TRANSCRIPT)
    where %= len(data) + 1
    mutated = data[:where] + junk + data[where + len(junk) // 2 :]
    drive_server([mutated])


@FUZZ
@given(st.lists(st.integers(0, 10_000), max_size=20))
def test_any_chunking_of_a_valid_negotiation_reaches_ready(cuts: list[int]) -> None:
    data = b"".join(TRANSCRIPT)
    server = drive_server(split(data, cuts))
    assert server.state is State.READY


@FUZZ
@given(st.lists(st.binary(max_size=200), max_size=8))
def test_client_survives_arbitrary_bytes(chunks: list[bytes]) -> None:
    client = ClientConnection(
        ClientConfig(rng=secrets.token_bytes, jid=JID.parse("juliet@example.com"), password="pw")
    )
    client.start()
    for chunk in chunks:
        client.receive_data(chunk)
        try:
            while client.next_event() is not None:
                pass
        except RemoteProtocolError:
            assert client.should_close
            return
        client.data_to_send()
