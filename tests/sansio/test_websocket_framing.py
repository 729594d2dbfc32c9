"""RFC 7395 WebSocket framing (stream/framing.py): one element per message,
``<open/>``/``<close/>`` in urn:ietf:params:xml:ns:xmpp-framing, restarts as a
new ``<open/>``, and the same negotiation above it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xmpp_sansio import testing
from xmpp_sansio.errors import LocalProtocolError, RemoteProtocolError, StreamErrorCondition
from xmpp_sansio.jid import JID
from xmpp_sansio.stream.config import ClientConfig, Limits, ServerConfig
from xmpp_sansio.stream.connection import (
    ClientConnection,
    ServerConnection,
    State,
    WebSocketFraming,
)
from xmpp_sansio.stream.events import ResourceBound, StanzaReceived, StreamClosed
from xmpp_sansio.testing import ConnectionPair, make_credentials, seeded_rng, x
from xmpp_sansio.xml.parser import parse_fragment

FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"
OPEN = b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='capulet.example' version='1.0'/>"
PASSWORDS = {"juliet": "r0m30myr0m30"}


def ws_server(**kw: object) -> ServerConnection:
    config = ServerConfig(rng=seeded_rng(0), domains=frozenset({"capulet.example"}), **kw)  # type: ignore[arg-type]
    return ServerConnection(config, tls_active=True, framing=WebSocketFraming())


def ws_pair() -> tuple[ConnectionPair, list[bytes], list[bytes]]:
    """A WebSocket pair (TLS is the WebSocket's: wss), with every message recorded."""
    client = ClientConnection(
        ClientConfig(
            rng=seeded_rng(0),
            jid=JID.parse("juliet@capulet.example/balcony"),
            password="r0m30myr0m30",
        ),
        tls_active=True,
        framing=WebSocketFraming(),
    )
    pair = ConnectionPair(client, ws_server(), make_credentials(PASSWORDS), framing="websocket")
    sent: tuple[list[bytes], list[bytes]] = ([], [])
    for conn, log in ((pair.client, sent[0]), (pair.server, sent[1])):
        original = conn.messages_to_send

        def spy(original: object = original, log: list[bytes] = log) -> list[bytes]:
            messages = original()  # type: ignore[operator]
            log.extend(messages)
            return messages  # type: ignore[no-any-return]

        conn.messages_to_send = spy  # type: ignore[method-assign]
    client.start()
    return pair, sent[0], sent[1]


def errors(conn: ServerConnection) -> RemoteProtocolError:
    with pytest.raises(RemoteProtocolError) as info:
        while conn.next_event() is not None:
            pass
    return info.value


def test_negotiation_over_websocket_sends_one_element_per_message() -> None:
    pair, client_sent, server_sent = ws_pair()
    pair.pump()
    assert any(isinstance(e, ResourceBound) for e in pair.client_events)
    assert pair.client.state is State.READY and pair.server.state is State.READY
    for message in client_sent + server_sent:
        assert b"<stream:stream" not in message and b"<?xml" not in message
        parse_fragment(message, "")  # each message is one element, namespaces declared
    # RFC 7395 §3.5: the restart after SASL is a new <open/> from each side.
    assert sum(m.startswith(b"<open ") for m in client_sent) == 2
    assert sum(m.startswith(b"<open ") for m in server_sent) == 2
    assert server_sent[0].startswith(f'<open xmlns="{FRAMING}"'.encode())
    assert server_sent[1].startswith(b'<stream:features xmlns:stream="http://etherx')


def test_stanzas_and_a_close_over_websocket() -> None:
    pair, client_sent, server_sent = ws_pair()
    pair.pump()
    pair.client.send(x("<message to='romeo@montague.example' id='m1'><body>hi</body></message>"))
    pair.pump()
    assert (
        b'<message xmlns="jabber:client" to="romeo@montague.example" id="m1">'
        b"<body>hi</body></message>"
    ) in client_sent  # then XEP-0198's <r/>, a message of its own
    assert [e for e in pair.server_events if isinstance(e, StanzaReceived)]
    pair.client.close()
    pair.pump()
    assert client_sent[-1] == f'<close xmlns="{FRAMING}"/>'.encode()
    assert server_sent[-1] == f'<close xmlns="{FRAMING}"/>'.encode()
    assert any(isinstance(e, StreamClosed) for e in pair.server_events)
    assert pair.server.state is State.CLOSED and pair.client.state is State.CLOSED


@pytest.mark.parametrize(
    ("message", "condition"),
    [
        (b"<iq type='get' id='1'/><iq type='get' id='2'/>", StreamErrorCondition.NOT_WELL_FORMED),
        (b"<iq type='get' id='1'>", StreamErrorCondition.NOT_WELL_FORMED),
        (b"", StreamErrorCondition.NOT_WELL_FORMED),
        (
            b"<open xmlns='jabber:client' to='capulet.example'/>",
            StreamErrorCondition.INVALID_NAMESPACE,
        ),
        (b"<iq id='1'>" + b"x" * 20_000 + b"</iq>", StreamErrorCondition.POLICY_VIOLATION),
    ],
)
def test_a_message_that_is_not_one_element_is_a_stream_error(
    message: bytes, condition: StreamErrorCondition
) -> None:
    """RFC 7395 §3.3.3: each message is exactly one complete element."""
    server = ws_server(limits=Limits(max_stanza_size_preauth=10_000))
    server.receive_message(OPEN)
    server.messages_to_send()
    server.receive_message(message)
    assert errors(server).condition is condition
    out = server.messages_to_send()
    assert out[-1] == f'<close xmlns="{FRAMING}"/>'.encode()
    assert out[-2].startswith(b'<stream:error xmlns:stream="http://etherx.jabber.org/streams">')
    assert server.state is State.ERROR


def test_a_stream_error_before_the_header_opens_first() -> None:
    """RFC 6120 §4.9.1.1 over RFC 7395: <open/>, the error, <close/>."""
    server = ws_server()
    server.receive_message(
        b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='elsewhere' version='1.0'/>"
    )
    assert errors(server).condition is StreamErrorCondition.HOST_UNKNOWN
    opening, error, closing = server.messages_to_send()
    assert opening.startswith(f'<open xmlns="{FRAMING}"'.encode())
    assert b"<host-unknown" in error and closing == f'<close xmlns="{FRAMING}"/>'.encode()


def test_messages_need_the_websocket_framing() -> None:
    server = ServerConnection(
        ServerConfig(rng=seeded_rng(0), domains=frozenset({"capulet.example"}))
    )
    with pytest.raises(LocalProtocolError):
        server.receive_message(OPEN)


def test_the_framing_is_chosen_before_the_stream_starts() -> None:
    client = ClientConnection(
        ClientConfig(rng=seeded_rng(0), jid=JID.parse("juliet@capulet.example"), password="x")
    )
    client.start()
    with pytest.raises(LocalProtocolError):
        client._set_framing(WebSocketFraming())


MESSAGES = [
    OPEN,
    b"<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>",
    b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGp1bGlldAB4</auth>",
    b"<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>",
    b"<message><body>hi</body></message>",
    b"<r xmlns='urn:xmpp:sm:3'/>",
    b"<stream:error xmlns:stream='http://etherx.jabber.org/streams'/>",
    b"<!-- c --><iq/>",
    b"<open/>",
    b"  ",
]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(st.sampled_from(MESSAGES), st.binary(max_size=40), st.text(max_size=40)),
        max_size=8,
    )
)
def test_any_messages_give_events_or_a_remote_protocol_error(messages: list[bytes | str]) -> None:
    """The fuzz invariant over WebSocket framing: nothing but RemoteProtocolError."""
    server = ws_server()
    for message in messages:
        server.receive_message(message)
        try:
            while server.next_event() is not None:
                pass
        except RemoteProtocolError:
            assert server.state is State.ERROR
        server.messages_to_send()


def test_framed_byte_transcripts_really_go_over_websocket(monkeypatch: pytest.MonkeyPatch) -> None:
    """testing.framed(), which the byte-level SASL suites use, cuts a TCP
    transcript into RFC 7395 messages and joins the answers."""
    monkeypatch.setattr(testing, "DEFAULT_FRAMING", "websocket")
    config = ServerConfig(rng=seeded_rng(0), domains=frozenset({"capulet.example"}))
    server = testing.framed(ServerConnection(config, tls_active=True))
    assert isinstance(server.framing, WebSocketFraming)
    server.receive_data(
        b"<?xml version='1.0'?><stream:stream to='capulet.example' version='1.0' "
        b"xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
    )
    out = server.data_to_send()
    assert out.startswith(f'<open xmlns="{FRAMING}"'.encode()) and b"<stream:stream" not in out
    server.receive_data(b"</stream:stream>")
    assert server.data_to_send() == f'<close xmlns="{FRAMING}"/>'.encode()
    assert server.state is State.CLOSED


def test_a_stanza_message_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """After the header, a stanza's message goes to the stream parser as it
    is (message mode), not through a validating parse first."""
    pair, _, _ = ws_pair()
    pair.pump()
    import xmpp_sansio.stream.framing as framing_module

    calls: list[bytes] = []
    real = framing_module.parse_fragment

    def counting(data: bytes | str, *args: object, **kw: object) -> object:
        calls.append(data if isinstance(data, bytes) else data.encode())
        return real(data, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(framing_module, "parse_fragment", counting)
    pair.server.receive_message(b"<message to='romeo@capulet.example'><body>hi</body></message>")
    (event,) = list(iter(pair.server.next_event, None))
    assert isinstance(event, StanzaReceived)
    assert event.element.findtext("{jabber:client}body") == "hi"
    assert calls == []


def test_nothing_of_a_message_with_two_stanzas_reaches_the_session() -> None:
    """RFC 7395 §3.3.3 on a ready stream: a stream error, no stanza event."""
    pair, _, _ = ws_pair()
    pair.pump()
    server = pair.server
    assert server.state is State.READY
    server.receive_message(
        b"<message to='romeo@capulet.example'><body>1</body></message>"
        b"<message to='romeo@capulet.example'><body>2</body></message>"
    )
    assert errors(server).condition is StreamErrorCondition.NOT_WELL_FORMED
    assert server.state is State.ERROR
