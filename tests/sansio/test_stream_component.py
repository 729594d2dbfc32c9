"""Component streams (XEP-0114, ``jabber:component:accept``), both roles, sans I/O:
the two roles talking to each other, the byte-level transcript of §3, and the
error cases (bad handshake, unknown domain, foreign ``from``)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xmpp_sansio.errors import LocalProtocolError, RemoteProtocolError, StreamErrorCondition
from xmpp_sansio.jid import JID
from xmpp_sansio.stanza import make_message, parse_stanza
from xmpp_sansio.stream.component import (
    COMPONENT_ACCEPT_SERVER,
    ComponentClientConnection,
    ComponentServerConnection,
)
from xmpp_sansio.stream.config import ComponentClientConfig, ComponentServerConfig, Limits
from xmpp_sansio.stream.events import (
    Authenticated,
    Event,
    StanzaReceived,
    StreamErrorReceived,
    StreamOpened,
)
from xmpp_sansio.stream.features import Stage
from xmpp_sansio.stream.features.handshake import HANDSHAKE, handshake_digest
from xmpp_sansio.stream.state import State
from xmpp_sansio.testing import seeded_rng
from xmpp_sansio.xml import ns

DOMAIN = "plays.shakespeare.lit"
SECRET = "s3cr3t"


def server_config(**secrets: str) -> ComponentServerConfig:
    return ComponentServerConfig(secrets=secrets or {DOMAIN: SECRET}, rng=seeded_rng(1))


def events_of(conn: ComponentServerConnection | ComponentClientConnection) -> list[Event]:
    out = []
    while (event := conn.next_event()) is not None:
        out.append(event)
    return out


@dataclass
class Pair:
    """A component and a server wired back to back in memory."""

    client: ComponentClientConnection
    server: ComponentServerConnection
    client_events: list[Event] = field(default_factory=list)
    server_events: list[Event] = field(default_factory=list)
    client_error: RemoteProtocolError | None = None
    server_error: RemoteProtocolError | None = None

    def pump(self) -> None:
        moved = True
        while moved:
            moved = False
            for source, target in ((self.client, self.server), (self.server, self.client)):
                data = source.data_to_send()
                if data:
                    target.receive_data(data)
                    moved = True
            for conn, out in ((self.client, self.client_events), (self.server, self.server_events)):
                try:
                    out.extend(events_of(conn))
                except RemoteProtocolError as exc:
                    if conn is self.client:
                        self.client_error = exc
                    else:
                        self.server_error = exc


def connect(secret: str = SECRET, domain: str = DOMAIN) -> Pair:
    pair = Pair(
        ComponentClientConnection(ComponentClientConfig(domain=domain, secret=secret)),
        ComponentServerConnection(server_config()),
    )
    pair.client.start()
    pair.pump()
    return pair


# --- both roles --------------------------------------------------------------------------


def test_a_component_and_a_server_complete_the_handshake_and_exchange_stanzas() -> None:
    pair = connect()
    assert pair.client.state is State.READY and pair.server.state is State.READY
    assert Authenticated(JID.parse(DOMAIN), HANDSHAKE) in pair.server_events
    assert Authenticated(JID.parse(DOMAIN), HANDSHAKE) in pair.client_events
    assert pair.client.stream_id == pair.server.stream_id

    pair.client.send(make_message("juliet@capulet.lit", "hi", from_=f"bot@{DOMAIN}/x"))
    pair.server.send(make_message(f"bot@{DOMAIN}", "hello", from_="juliet@capulet.lit/balcony"))
    pair.pump()
    (to_server,) = [e.element for e in pair.server_events if isinstance(e, StanzaReceived)]
    (to_client,) = [e.element for e in pair.client_events if isinstance(e, StanzaReceived)]
    # Both roles hand stanzas over in jabber:client, ready for parse_stanza and the router.
    assert to_server.tag == "{jabber:client}message"
    assert parse_stanza(to_server).body == "hi"
    assert str(parse_stanza(to_server).from_) == f"bot@{DOMAIN}/x"
    assert parse_stanza(to_client).body == "hello"


def test_stanzas_travel_in_the_component_namespace_on_the_wire() -> None:
    pair = connect()
    pair.server.send(make_message(f"bot@{DOMAIN}", "hello", from_="juliet@capulet.lit"))
    wire = pair.server.data_to_send()
    assert wire == (
        b'<message to="bot@plays.shakespeare.lit" from="juliet@capulet.lit" type="normal">'
        b"<body>hello</body></message>"
    )


def test_the_component_closes_cleanly() -> None:
    pair = connect()
    pair.client.close()
    pair.pump()
    assert pair.server.state is State.CLOSED
    assert pair.client.state is State.CLOSED


# --- the §3 transcript, byte by byte ------------------------------------------------------

HEADER = (
    b"<stream:stream xmlns='jabber:component:accept' "
    b"xmlns:stream='http://etherx.jabber.org/streams' to='plays.shakespeare.lit'>"
)


def opened_server(config: ComponentServerConfig | None = None) -> ComponentServerConnection:
    server = ComponentServerConnection(config or server_config())
    server.receive_data(HEADER)
    return server


def test_the_server_answers_the_header_with_its_own_and_a_stream_id() -> None:
    server = opened_server()
    out = server.data_to_send()
    assert out == (
        b"<?xml version='1.0'?><stream:stream from=\"plays.shakespeare.lit\" "
        b'id="' + (server.stream_id or "").encode() + b'" '
        b'xmlns="jabber:component:accept" xmlns:stream="http://etherx.jabber.org/streams">'
    )
    assert b"<stream:features" not in out  # XEP-0114 streams have no features
    assert server.state is State.NEGOTIATING
    assert events_of(server) == [StreamOpened(DOMAIN, None, None, None, None)]


def test_the_handshake_is_the_lowercase_hex_sha1_of_the_stream_id_and_secret() -> None:
    """XEP-0114 §3: SHA1(concat(sid, password)), hex, lowercase."""
    expected = hashlib.sha1(b"3BF96D32" + b"s3cr3t").hexdigest()
    assert handshake_digest("3BF96D32", "s3cr3t") == expected == expected.lower()
    assert len(expected) == 40


def test_a_right_handshake_gets_an_empty_handshake_and_a_ready_stream() -> None:
    server = opened_server()
    server.data_to_send()
    assert server.stream_id is not None
    digest = handshake_digest(server.stream_id, SECRET).encode()
    server.receive_data(b"<handshake>" + digest + b"</handshake>")
    assert server.data_to_send() == b"<handshake/>"
    assert server.state is State.READY


def test_the_component_sends_the_handshake_after_the_servers_header() -> None:
    client = ComponentClientConnection(ComponentClientConfig(domain=DOMAIN, secret=SECRET))
    client.start()
    assert client.data_to_send() == (
        b"<?xml version='1.0'?><stream:stream to=\"plays.shakespeare.lit\" "
        b'xmlns="jabber:component:accept" xmlns:stream="http://etherx.jabber.org/streams">'
    )
    client.receive_data(
        b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' "
        b"xmlns='jabber:component:accept' from='plays.shakespeare.lit' id='3BF96D32'>"
    )
    digest = hashlib.sha1(b"3BF96D32s3cr3t").hexdigest().encode()
    assert client.data_to_send() == b"<handshake>" + digest + b"</handshake>"
    client.receive_data(b"<handshake/>")
    assert client.state is State.READY
    assert Authenticated(JID.parse(DOMAIN), HANDSHAKE) in events_of(client)


# --- errors ------------------------------------------------------------------------------


def assert_stream_error(
    conn: ComponentServerConnection | ComponentClientConnection, condition: StreamErrorCondition
) -> bytes:
    with pytest.raises(RemoteProtocolError) as info:
        events_of(conn)
    assert info.value.condition is condition
    assert conn.state is State.ERROR
    out = conn.data_to_send()
    assert (
        b"<" + condition.value.encode() + b' xmlns="urn:ietf:params:xml:ns:xmpp-streams"/>' in out
    )
    assert out.endswith(b"</stream:stream>")
    return out


def test_a_wrong_secret_is_not_authorized_on_both_sides() -> None:
    pair = connect(secret="wrong")
    assert pair.server_error is not None
    assert pair.server_error.condition is StreamErrorCondition.NOT_AUTHORIZED
    assert pair.server.state is State.ERROR
    assert StreamErrorReceived(StreamErrorCondition.NOT_AUTHORIZED, "bad handshake") in (
        pair.client_events
    )
    assert pair.client.state is State.CLOSED
    with pytest.raises(LocalProtocolError):
        pair.client.send(make_message(f"x@{DOMAIN}", "no"))


def test_a_handshake_with_children_is_not_authorized() -> None:
    server = opened_server()
    server.data_to_send()
    server.receive_data(b"<handshake><x xmlns='urn:example'/></handshake>")
    assert_stream_error(server, StreamErrorCondition.NOT_AUTHORIZED)


def test_an_unknown_component_domain_is_host_unknown() -> None:
    server = ComponentServerConnection(server_config())
    server.receive_data(HEADER.replace(b"plays.shakespeare.lit", b"other.shakespeare.lit"))
    out = assert_stream_error(server, StreamErrorCondition.HOST_UNKNOWN)
    assert out.startswith(b"<?xml version='1.0'?><stream:stream ")  # RFC 6120 §4.9.1.1


@pytest.mark.parametrize(
    "to", [b"", b" to='juliet@plays.shakespeare.lit'", b" to='plays.shakespeare.lit/r'"]
)
def test_a_header_without_a_bare_component_domain_is_host_unknown(to: bytes) -> None:
    server = ComponentServerConnection(server_config())
    server.receive_data(
        b"<stream:stream xmlns='jabber:component:accept' "
        b"xmlns:stream='http://etherx.jabber.org/streams'" + to + b">"
    )
    assert_stream_error(server, StreamErrorCondition.HOST_UNKNOWN)


def test_a_client_namespace_header_is_invalid_namespace() -> None:
    server = ComponentServerConnection(server_config())
    server.receive_data(HEADER.replace(b"jabber:component:accept", b"jabber:client"))
    assert_stream_error(server, StreamErrorCondition.INVALID_NAMESPACE)


def test_a_stanza_before_the_handshake_is_not_authorized() -> None:
    server = opened_server()
    server.data_to_send()
    server.receive_data(b"<message to='a@b.lit' from='bot@plays.shakespeare.lit'/>")
    assert_stream_error(server, StreamErrorCondition.NOT_AUTHORIZED)


def ready_server() -> ComponentServerConnection:
    server = opened_server()
    assert server.stream_id is not None
    server.receive_data(
        b"<handshake>" + handshake_digest(server.stream_id, SECRET).encode() + b"</handshake>"
    )
    server.data_to_send()
    events_of(server)
    return server


@pytest.mark.parametrize(
    "sender", ["plays.shakespeare.lit", "bot@plays.shakespeare.lit", "a@plays.shakespeare.lit/r"]
)
def test_any_from_at_the_component_domain_is_accepted(sender: str) -> None:
    server = ready_server()
    server.receive_data(f"<presence to='juliet@capulet.lit' from='{sender}'/>".encode())
    (event,) = events_of(server)
    assert isinstance(event, StanzaReceived)
    assert event.element.tag == "{jabber:client}presence"
    assert event.element.get("from") == sender


@pytest.mark.parametrize("sender", ["capulet.lit", "juliet@capulet.lit", "x.plays.shakespeare.lit"])
def test_a_from_outside_the_component_domain_is_invalid_from(sender: str) -> None:
    server = ready_server()
    server.receive_data(f"<message to='juliet@capulet.lit' from='{sender}'/>".encode())
    assert_stream_error(server, StreamErrorCondition.INVALID_FROM)


def test_a_stanza_without_from_is_stamped_with_the_component_domain() -> None:
    server = ready_server()
    server.receive_data(b"<message to='juliet@capulet.lit'><body>x</body></message>")
    (event,) = events_of(server)
    assert isinstance(event, StanzaReceived)
    assert event.element.get("from") == DOMAIN
    assert event.element.find("{jabber:client}body") is not None


def test_a_stanza_without_to_gets_bad_request() -> None:
    server = ready_server()
    server.receive_data(
        b"<iq type='get' id='q1' from='bot@plays.shakespeare.lit'><q xmlns='x'/></iq>"
    )
    assert events_of(server) == []
    assert server.data_to_send() == (
        b'<iq type="error" id="q1" to="bot@plays.shakespeare.lit"><error type="modify">'
        b'<bad-request xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/>'
        b"<text xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\">no 'to'</text></error></iq>"
    )
    assert server.state is State.READY


def test_a_client_namespace_stanza_on_a_component_stream_is_invalid_namespace() -> None:
    server = ready_server()
    server.receive_data(b"<message xmlns='jabber:client' to='a@b.lit'/>")
    assert_stream_error(server, StreamErrorCondition.INVALID_NAMESPACE)


def test_stanzas_may_grow_to_the_post_handshake_limit() -> None:
    limits = Limits(max_stanza_size_preauth=1024, max_stanza_size=8192)
    config = ComponentServerConfig(secrets={DOMAIN: SECRET}, rng=seeded_rng(1), limits=limits)
    server = opened_server(config)
    assert server.stream_id is not None
    server.receive_data(
        b"<handshake>" + handshake_digest(server.stream_id, SECRET).encode() + b"</handshake>"
    )
    events_of(server)
    body = b"y" * 4000
    server.receive_data(b"<message to='a@b.lit'><body>" + body + b"</body></message>")
    (event,) = [e for e in events_of(server) if isinstance(e, StanzaReceived)]
    assert parse_stanza(event.element).body == body.decode()


NO_ID_HEADER = (
    b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' "
    b"xmlns='jabber:component:accept' from='plays.shakespeare.lit'>"
)


def test_a_server_header_without_an_id_then_an_element_fails_the_component() -> None:
    client = ComponentClientConnection(ComponentClientConfig(domain=DOMAIN, secret=SECRET))
    client.start()
    client.data_to_send()
    client.receive_data(NO_ID_HEADER)
    assert client.data_to_send() == b""  # no handshake without the stream id
    client.receive_data(b"<handshake/>")
    assert_stream_error(client, StreamErrorCondition.BAD_FORMAT)


def test_a_refusal_without_a_stream_id_is_read_as_the_servers_stream_error() -> None:
    """RFC 6120 §4.9.1.1: a header (Prosody's has no id), the error, the footer."""
    client = ComponentClientConnection(ComponentClientConfig(domain=DOMAIN, secret=SECRET))
    client.start()
    client.data_to_send()
    client.receive_data(
        NO_ID_HEADER + b"<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
        b"</stream:error></stream:stream>"
    )
    assert StreamErrorReceived(StreamErrorCondition.HOST_UNKNOWN, None) in events_of(client)
    assert client.state is State.CLOSED


def test_the_component_profile_is_the_handshake_plug_in_alone() -> None:
    claims = COMPONENT_ACCEPT_SERVER.claims(server_config())
    assert {tag: type(f).__name__ for tag, f in claims[Stage.BEFORE_AUTH].items()} == {
        ns.HANDSHAKE_TAG: "HandshakeFeature"
    }
    assert claims[Stage.BIND] == {} and claims[Stage.READY] == {}
    # Nothing is offered: XEP-0114 streams have no <stream:features/>.
    assert len(COMPONENT_ACCEPT_SERVER.features(ready_server(), authenticated=False)) == 0


@settings(max_examples=100, deadline=None)
@given(secret=st.text(min_size=1, max_size=20), chunk=st.integers(1, 64))
def test_the_handshake_completes_for_any_secret_fed_in_any_chunks(secret: str, chunk: int) -> None:
    client = ComponentClientConnection(ComponentClientConfig(domain=DOMAIN, secret=secret))
    server = ComponentServerConnection(server_config(**{DOMAIN: secret}))
    client.start()
    for _ in range(4):
        for source, target in ((client, server), (server, client)):
            data = source.data_to_send()
            for i in range(0, len(data), chunk):
                target.receive_data(data[i : i + chunk])
    assert client.state is State.READY and server.state is State.READY


_PIECES = [
    HEADER,
    b"<handshake>",
    b"</handshake>",
    b"<handshake/>",
    b"<message to='a@b.lit' from='bot@plays.shakespeare.lit'><body>x</body></message>",
    b"<message from='x@elsewhere.lit'/>",
    b"<iq type='get' id='1'/>",
    b"<presence xmlns='jabber:client'/>",
    b"<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
    b"</stream:stream>",
    b"<x xmlns='urn:example'/>",
    b"<<>>&;",
    b"\x00\xff",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_PIECES) | st.binary(max_size=8), max_size=8))
def test_any_input_gets_events_or_a_stream_error_never_a_traceback(pieces: list[bytes]) -> None:
    """Bad input gets the protocol's answer (RFC 6120 §4.9), on both roles."""
    for conn in (
        ComponentServerConnection(server_config()),
        ComponentClientConnection(ComponentClientConfig(domain=DOMAIN, secret=SECRET)),
    ):
        if isinstance(conn, ComponentClientConnection):
            conn.start()
        for piece in pieces:
            conn.receive_data(piece)
            try:
                events_of(conn)
            except RemoteProtocolError:
                assert conn.state is State.ERROR
                assert conn.data_to_send().endswith(b"</stream:stream>")
                break
        conn.receive_eof()
        events_of(conn)
        assert conn.state in (State.CLOSED, State.ERROR)


def test_a_component_that_does_not_handshake_in_time_gets_connection_timeout() -> None:
    server = opened_server()
    server.data_to_send()
    server.start_timer(100.0, 60.0)
    assert server.next_deadline() == 160.0
    server.handle_timer(159.9)
    assert server.state is State.NEGOTIATING
    server.handle_timer(160.0)
    assert server.state is State.ERROR
    assert b"<connection-timeout " in server.data_to_send()


def test_a_ready_component_stream_has_no_negotiation_deadline() -> None:
    server = ready_server()
    server.start_timer(0.0, 1.0)
    assert server.next_deadline() is None


def test_more_than_the_pre_handshake_limit_before_the_handshake_is_a_policy_violation() -> None:
    limits = Limits(max_stanza_size_preauth=1024, max_stanza_size=8192)
    config = ComponentServerConfig(secrets={DOMAIN: SECRET}, rng=seeded_rng(1), limits=limits)
    server = opened_server(config)
    server.data_to_send()
    server.receive_data(b"<handshake>" + b"a" * 2000 + b"</handshake>")
    assert_stream_error(server, StreamErrorCondition.POLICY_VIOLATION)
