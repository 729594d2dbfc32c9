"""Whitespace between top-level elements during negotiation, sans I/O.

RFC 6120 §5.3.3 and §6.3.5 tell senders not to put whitespace between elements
during STARTTLS and SASL negotiation; clients do anyway (go-sendxmpp writes
``<starttls/>\\n`` and ``</auth>\\n``). Whitespace-only leftovers after
``<starttls/>``/``<proceed/>`` are dropped and a restarted stream skips the old
stream's whitespace before its header; anything else after ``<starttls/>`` is
still an injection (``policy-violation``). The property over whole
negotiations is in fuzz/fuzz_negotiation_whitespace.py.
"""

from __future__ import annotations

import base64

import pytest

from xmpp_sansio.errors import RemoteProtocolError, StreamErrorCondition
from xmpp_sansio.jid import JID
from xmpp_sansio.stream.config import ClientConfig, Limits, ServerConfig
from xmpp_sansio.stream.connection import ClientConnection, ServerConnection, State
from xmpp_sansio.stream.events import (
    Authenticated,
    CredentialsRequested,
    DerivationRequested,
    Event,
    StreamOpened,
    TLSRequested,
)
from xmpp_sansio.testing import derive, make_credentials, seeded_rng
from xmpp_sansio.xml.parser import StreamHeader, StreamParser, XMLStreamError

HEADER = (
    b"<?xml version='1.0'?><stream:stream to='capulet.example' version='1.0' "
    b"xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
)
STARTTLS = b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
PROCEED = b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
SERVER_HEADER = (
    b"<stream:stream from='capulet.example' id='1' version='1.0' xmlns='jabber:client' "
    b"xmlns:stream='http://etherx.jabber.org/streams'>"
)
TLS_FEATURES = (
    b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/>"
    b"</starttls></stream:features>"
)
AUTH = (
    b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
    + base64.b64encode(b"\0juliet\0r0m30myr0m30")
    + b"</auth>"
)
LOOKUP = make_credentials({"juliet": "r0m30myr0m30"})


class Driven:
    """A server connection fed chunk by chunk, answering credential lookups."""

    def __init__(self, *, tls_active: bool = False, preauth: int = 16384) -> None:
        self.server = ServerConnection(
            ServerConfig(
                rng=seeded_rng(0),
                domains=frozenset({"capulet.example"}),
                limits=Limits(max_stanza_size_preauth=preauth),
            ),
            tls_active=tls_active,
        )
        self.events: list[Event] = []
        self.error: RemoteProtocolError | None = None
        self.out = b""

    def feed(self, *chunks: bytes) -> Driven:
        for chunk in chunks:
            self.server.receive_data(chunk)
            try:
                while (event := self.server.next_event()) is not None:
                    self.events.append(event)
                    if isinstance(event, CredentialsRequested):
                        self.server.provide_credentials(LOOKUP(event.username, event.hash_name))
                    elif isinstance(event, DerivationRequested):
                        self.server.provide_derived(derive(event))
            except RemoteProtocolError as exc:
                self.error = exc
            self.out += self.server.data_to_send()
        return self

    @property
    def condition(self) -> StreamErrorCondition | None:
        return None if self.error is None else self.error.condition


@pytest.mark.parametrize("space", [b"\n", b"\r\n", b" \t"])
def test_server_drops_whitespace_after_starttls_in_the_same_read(space: bytes) -> None:
    driven = Driven().feed(HEADER + STARTTLS + space)
    assert driven.condition is None
    assert driven.server.state is State.TLS_PENDING
    assert driven.out.endswith(b'<proceed xmlns="urn:ietf:params:xml:ns:xmpp-tls"/>')
    driven.server.tls_established()
    driven.feed(HEADER)
    assert driven.condition is None and b"<mechanisms" in driven.out


def test_server_drops_whitespace_read_while_tls_is_pending() -> None:
    driven = Driven().feed(HEADER + STARTTLS, b"\n", b" \r\n\t")
    assert driven.condition is None
    assert driven.server.state is State.TLS_PENDING


def test_whitespace_flood_while_tls_is_pending_is_policy_violation() -> None:
    driven = Driven(preauth=1024).feed(HEADER + STARTTLS, *[b" " * 512] * 3)
    assert driven.condition is StreamErrorCondition.POLICY_VIOLATION


@pytest.mark.parametrize(
    "after",
    [b"\n<message/>", b" \n" + AUTH, b"\nx"],
    ids=["stanza", "auth", "text"],
)
def test_text_after_whitespace_after_starttls_is_still_injection(after: bytes) -> None:
    driven = Driven().feed(HEADER + STARTTLS + after)
    assert driven.condition is StreamErrorCondition.POLICY_VIOLATION
    assert not [e for e in driven.events if isinstance(e, Authenticated)]


def test_text_read_after_whitespace_while_tls_is_pending_is_still_injection() -> None:
    driven = Driven().feed(HEADER + STARTTLS, b"\n", b"\n<iq type='get' id='x'/>")
    assert driven.condition is StreamErrorCondition.POLICY_VIOLATION


@pytest.mark.parametrize(
    "chunks",
    [
        [HEADER, AUTH + b"\n" + HEADER],
        [HEADER, AUTH, b"\n", HEADER],
        [HEADER, AUTH + b"\r\n", b"\t" + HEADER[:10], HEADER[10:]],
        [HEADER + b"\n" + AUTH + b" \n " + HEADER],
    ],
    ids=["one-read", "own-read", "split-header", "all-in-one"],
)
def test_whitespace_after_auth_precedes_the_restarted_header(chunks: list[bytes]) -> None:
    driven = Driven(tls_active=True).feed(*chunks)
    assert driven.condition is None, driven.out
    assert [type(e) for e in driven.events if isinstance(e, (StreamOpened, Authenticated))] == [
        StreamOpened,
        Authenticated,
        StreamOpened,
    ]
    assert driven.out.endswith(b"</stream:features>") and b"urn:ietf:params:xml:ns:xmpp-bind" in (
        driven.out
    )


def test_text_after_auth_before_the_restarted_header_is_not_well_formed() -> None:
    driven = Driven(tls_active=True).feed(HEADER, AUTH + b"\nhello" + HEADER)
    assert driven.condition is StreamErrorCondition.NOT_WELL_FORMED


def client_after_starttls() -> ClientConnection:
    client = ClientConnection(
        ClientConfig(rng=seeded_rng(0), jid=JID.parse("juliet@capulet.example"), password="x")
    )
    client.start()
    client.data_to_send()
    client.receive_data(SERVER_HEADER + TLS_FEATURES)
    while client.next_event() is not None:
        pass
    assert client.data_to_send() == b'<starttls xmlns="urn:ietf:params:xml:ns:xmpp-tls"/>'
    return client


@pytest.mark.parametrize("chunks", [[PROCEED + b"\n"], [PROCEED, b"\r\n"]], ids=["same", "own"])
def test_client_drops_whitespace_after_proceed(chunks: list[bytes]) -> None:
    client = client_after_starttls()
    events = []
    for chunk in chunks:
        client.receive_data(chunk)
        while (event := client.next_event()) is not None:
            events.append(event)
    assert [type(e) for e in events] == [TLSRequested]
    assert client.state is State.TLS_PENDING
    client.tls_established()
    assert client.data_to_send().startswith(b"<?xml version='1.0'?><stream:stream")


def test_client_still_rejects_text_after_whitespace_after_proceed() -> None:
    client = client_after_starttls()
    client.receive_data(PROCEED + b"\n" + TLS_FEATURES)
    with pytest.raises(RemoteProtocolError) as info:
        while client.next_event() is not None:
            pass
    assert info.value.condition is StreamErrorCondition.POLICY_VIOLATION


# -- the parser of a restarted stream (RFC 6120 §4.3.3) -------------------------


def events_of(parser: StreamParser, *chunks: bytes) -> list[object]:
    found: list[object] = []
    for chunk in chunks:
        parser.feed(chunk)
        while (event := parser.next_event()) is not None:
            found.append(event)
    return found


@pytest.mark.parametrize("size", [1, 2, 5, 1000])
def test_restarted_parser_skips_whitespace_before_the_xml_declaration(size: int) -> None:
    data = b" \r\n\t\n" + HEADER
    chunks = [data[i : i + size] for i in range(0, len(data), size)]
    found = events_of(StreamParser(hold=True, restarted=True), *chunks)
    assert [type(e) for e in found] == [StreamHeader]


def test_first_stream_still_refuses_whitespace_before_the_xml_declaration() -> None:
    with pytest.raises(XMLStreamError) as info:
        events_of(StreamParser(hold=True), b"\n" + HEADER)
    assert info.value.condition is StreamErrorCondition.NOT_WELL_FORMED


def test_restarted_parser_still_refuses_text_before_the_header() -> None:
    with pytest.raises(XMLStreamError) as info:
        events_of(StreamParser(hold=True, restarted=True), b"\n", b"x" + HEADER)
    assert info.value.condition is StreamErrorCondition.NOT_WELL_FORMED


def test_whitespace_before_a_restarted_header_is_bounded_by_max_stanza_size() -> None:
    parser = StreamParser(hold=True, restarted=True, max_stanza_size=1024)
    assert events_of(parser, b" " * 1000) == []
    assert parser.take_unparsed() == b""  # dropped, not buffered
    with pytest.raises(XMLStreamError) as info:
        events_of(parser, b" " * 100)
    assert info.value.condition is StreamErrorCondition.POLICY_VIOLATION
