"""Client and server stream connections wired back to back, no sockets (RFC 6120 §4-§7)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from xmpp_sansio.errors import RemoteProtocolError, StanzaErrorCondition, StreamErrorCondition
from xmpp_sansio.jid import JID
from xmpp_sansio.stream.config import ClientConfig, Limits, ServerConfig
from xmpp_sansio.stream.connection import ClientConnection, ServerConnection, State
from xmpp_sansio.stream.events import (
    Authenticated,
    AuthenticationFailed,
    CredentialsRequested,
    DerivationRequested,
    NegotiationFailed,
    RegistrationRequested,
    ResourceBound,
    StanzaReceived,
    StreamClosed,
    StreamErrorReceived,
    TLSRequested,
)
from xmpp_sansio.testing import ConnectionPair, derive, make_credentials, seeded_rng

PASSWORDS = {"juliet": "r0m30myr0m30", "romeo": "s3cr3t"}
HEADER = (
    b"<?xml version='1.0'?><stream:stream to='capulet.example' version='1.0' "
    b"xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
)

# Every ConnectionPair transcript runs over TCP and RFC 7395 WebSocket framing.
pytestmark = pytest.mark.usefixtures("any_framing")


def server_config(**kw: object) -> ServerConfig:
    return ServerConfig(rng=seeded_rng(0), domains=frozenset({"capulet.example"}), **kw)  # type: ignore[arg-type]


def make_pair(
    *,
    jid: str = "juliet@capulet.example/balcony",
    password: str = "r0m30myr0m30",
    chunk: int | None = None,
    client_kw: dict[str, object] | None = None,
    server_kw: dict[str, object] | None = None,
    direct_tls: bool = False,
) -> ConnectionPair:
    client = ClientConnection(
        ClientConfig(rng=seeded_rng(0), jid=JID.parse(jid), password=password, **(client_kw or {})),  # type: ignore[arg-type]
        tls_active=direct_tls,
    )
    server = ServerConnection(server_config(**(server_kw or {})), tls_active=direct_tls)
    pair = ConnectionPair(client, server, make_credentials(PASSWORDS), chunk=chunk)
    client.start()
    return pair


def of_type(events: list[object], kind: type) -> list[object]:
    return [e for e in events if isinstance(e, kind)]


def wire_condition(data: bytes) -> str | None:
    """The stream error condition in bytes a server sent, if any."""
    marker = b"urn:ietf:params:xml:ns:xmpp-streams"
    if marker not in data:
        return None
    start = data.index(b"<stream:error>") + len(b"<stream:error><")
    return data[start:].split(b" ")[0].split(b"/")[0].decode()


@pytest.mark.parametrize("chunk", [None, 1, 7])
def test_client_and_server_negotiate_tls_scram_plus_and_bind(chunk: int | None) -> None:
    pair = make_pair(chunk=chunk)
    pair.pump()
    assert pair.client_error is None and pair.server_error is None
    assert [e.mechanism for e in of_type(pair.server_events, Authenticated)] == [
        "SCRAM-SHA-256-PLUS"
    ]  # type: ignore[attr-defined]
    bound = of_type(pair.client_events, ResourceBound)
    assert [str(e.jid) for e in bound] == ["juliet@capulet.example/balcony"]  # type: ignore[attr-defined]
    assert pair.client.state is State.READY and pair.server.state is State.READY
    assert len(of_type(pair.client_events, TLSRequested)) == 1


def test_stanzas_flow_both_ways_once_ready() -> None:
    pair = make_pair()
    pair.pump()
    msg = ET.Element("{jabber:client}message", {"to": "romeo@montague.example", "type": "chat"})
    ET.SubElement(msg, "{jabber:client}body").text = "Wherefore art thou? <&>"
    pair.client.send(msg)
    pair.pump()
    received = of_type(pair.server_events, StanzaReceived)
    assert len(received) == 1
    assert received[0].element.findtext("{jabber:client}body") == "Wherefore art thou? <&>"  # type: ignore[attr-defined]
    pair.server.send(ET.Element("{jabber:client}presence", {"from": "romeo@montague.example/x"}))
    pair.pump()
    assert of_type(pair.client_events, StanzaReceived)[0].element.tag == "{jabber:client}presence"  # type: ignore[attr-defined]


def test_without_channel_binding_plain_scram_sha_256_is_used() -> None:
    pair = make_pair()
    pair.channel_binding = None
    pair.pump()
    assert [e.mechanism for e in of_type(pair.server_events, Authenticated)] == ["SCRAM-SHA-256"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "mechanism", ["SCRAM-SHA-1", "SCRAM-SHA-256", "PLAIN", "SCRAM-SHA-256-PLUS"]
)
def test_each_mechanism_authenticates(mechanism: str) -> None:
    pair = make_pair(client_kw={"mechanisms": (mechanism,)})
    pair.pump()
    assert [e.mechanism for e in of_type(pair.server_events, Authenticated)] == [mechanism]  # type: ignore[attr-defined]
    assert pair.client.state is State.READY


def test_direct_tls_skips_starttls() -> None:
    pair = make_pair(direct_tls=True)
    pair.pump()
    assert not of_type(pair.client_events, TLSRequested)
    assert pair.client.state is State.READY


def test_wrong_password_gets_not_authorized_on_both_sides() -> None:
    pair = make_pair(password="wrong")
    pair.pump()
    client_fail = of_type(pair.client_events, AuthenticationFailed)
    server_fail = of_type(pair.server_events, AuthenticationFailed)
    assert [e.condition for e in client_fail] == ["not-authorized"]  # type: ignore[attr-defined]
    assert [e.condition for e in server_fail] == ["not-authorized"]  # type: ignore[attr-defined]
    assert not of_type(pair.server_events, Authenticated)


def test_unknown_user_gets_not_authorized() -> None:
    pair = make_pair(jid="nobody@capulet.example")
    pair.pump()
    assert [e.condition for e in of_type(pair.client_events, AuthenticationFailed)] == [
        "not-authorized"
    ]  # type: ignore[attr-defined]


def test_server_generates_a_resource_when_none_is_requested() -> None:
    pair = make_pair(jid="romeo@capulet.example", password="s3cr3t")
    pair.pump()
    (bound,) = of_type(pair.client_events, ResourceBound)
    assert bound.jid.bare == JID.parse("romeo@capulet.example")  # type: ignore[attr-defined]
    assert bound.jid.resource  # type: ignore[attr-defined]


def test_client_refuses_to_continue_without_tls() -> None:
    pair = make_pair(server_kw={"tls_available": False, "require_tls": False})
    pair.pump()
    assert of_type(pair.client_events, NegotiationFailed)
    assert not of_type(pair.server_events, CredentialsRequested)


def test_client_without_required_tls_never_uses_plain_in_clear() -> None:
    pair = make_pair(
        server_kw={"tls_available": False, "require_tls": False},
        client_kw={"require_tls": False, "mechanisms": ("PLAIN",)},
    )
    pair.pump()
    assert of_type(pair.client_events, NegotiationFailed)
    assert not of_type(pair.server_events, CredentialsRequested)


def server_transcript(data: bytes, **kw: object) -> tuple[ServerConnection, bytes, list[object]]:
    server = ServerConnection(server_config(**kw))
    server.receive_data(data)
    events: list[object] = []
    try:
        while (event := server.next_event()) is not None:
            events.append(event)
    except RemoteProtocolError as exc:
        events.append(exc)
    return server, server.data_to_send(), events


def test_plain_before_tls_is_refused_with_encryption_required() -> None:
    _, out, events = server_transcript(
        HEADER
        + b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGp1bGlldABy</auth>"
    )
    assert b"<encryption-required/>" in out
    assert not of_type(events, CredentialsRequested)


def test_features_before_tls_offer_only_required_starttls() -> None:
    _, out, _ = server_transcript(HEADER)
    assert b'<starttls xmlns="urn:ietf:params:xml:ns:xmpp-tls"><required/></starttls>' in out
    assert b"mechanism" not in out


def test_stanza_before_authentication_is_not_authorized() -> None:
    server, out, events = server_transcript(HEADER + b"<message to='romeo@capulet.example'/>")
    assert wire_condition(out) == "not-authorized"
    assert out.endswith(b"</stream:stream>")
    assert isinstance(events[-1], RemoteProtocolError)
    assert server.state is State.ERROR


def test_wrong_content_namespace_is_invalid_namespace_after_our_header() -> None:
    _, out, _ = server_transcript(HEADER.replace(b"jabber:client", b"jabber:server"))
    assert out.startswith(b"<?xml version='1.0'?><stream:stream")
    assert wire_condition(out) == "invalid-namespace"


def test_stream_prefix_other_than_stream_is_bad_namespace_prefix() -> None:
    header = (
        b"<s:stream to='capulet.example' version='1.0' xmlns='jabber:client' "
        b"xmlns:s='http://etherx.jabber.org/streams'>"
    )
    _, out, _ = server_transcript(header)
    assert wire_condition(out) == "bad-namespace-prefix"


def test_unknown_domain_is_host_unknown() -> None:
    _, out, _ = server_transcript(HEADER.replace(b"capulet.example", b"montague.example"))
    assert wire_condition(out) == "host-unknown"


def test_old_version_is_unsupported_version() -> None:
    _, out, _ = server_transcript(
        HEADER.replace(b"to='capulet.example' version='1.0'", b"to='capulet.example'")
    )
    assert wire_condition(out) == "unsupported-version"


def test_plaintext_after_starttls_is_rejected_as_injection() -> None:
    server, out, events = server_transcript(
        HEADER + b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><message/>"
    )
    assert wire_condition(out) == "policy-violation"
    assert not of_type(events, TLSRequested) or server.state is State.ERROR


def test_client_rejects_plaintext_after_proceed() -> None:
    client = ClientConnection(
        ClientConfig(rng=seeded_rng(0), jid=JID.parse("juliet@capulet.example"), password="x")
    )
    client.start()
    client.data_to_send()
    client.receive_data(
        b"<stream:stream from='capulet.example' id='1' version='1.0' xmlns='jabber:client' "
        b"xmlns:stream='http://etherx.jabber.org/streams'><stream:features>"
        b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>"
    )
    assert client.next_event() is not None  # StreamOpened
    client.receive_data(
        b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><stream:features><mechanisms "
        b"xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms>"
        b"</stream:features>"
    )
    with pytest.raises(RemoteProtocolError) as info:
        while client.next_event() is not None:
            pass
    assert info.value.condition is StreamErrorCondition.POLICY_VIOLATION


def test_spoofed_from_is_invalid_from() -> None:
    pair = make_pair()
    pair.pump()
    pair.client.send(
        ET.Element("{jabber:client}message", {"from": "romeo@capulet.example/x", "to": "a@b"})
    )
    pair.pump()
    assert pair.server_error is not None
    assert pair.server_error.condition is StreamErrorCondition.INVALID_FROM
    assert [e.condition for e in of_type(pair.client_events, StreamErrorReceived)] == [  # type: ignore[attr-defined]
        StreamErrorCondition.INVALID_FROM
    ]


def test_own_full_or_bare_from_is_accepted() -> None:
    pair = make_pair()
    pair.pump()
    for sender in ("juliet@capulet.example/balcony", "Juliet@capulet.example"):
        pair.client.send(ET.Element("{jabber:client}message", {"from": sender, "to": "a@b"}))
    pair.pump()
    assert len(of_type(pair.server_events, StanzaReceived)) == 2


def test_client_close_is_answered_with_server_close() -> None:
    pair = make_pair()
    pair.pump()
    pair.client.close()
    assert pair.client.state is State.CLOSING
    pair.pump()
    assert of_type(pair.server_events, StreamClosed)
    assert of_type(pair.client_events, StreamClosed)
    assert pair.client.state is State.CLOSED and pair.server.state is State.CLOSED


def test_server_close_with_error_reaches_client() -> None:
    pair = make_pair()
    pair.pump()
    pair.server.close(StreamErrorCondition.CONFLICT, "replaced by a new session")
    pair.pump()
    (err,) = of_type(pair.client_events, StreamErrorReceived)
    assert err.condition is StreamErrorCondition.CONFLICT  # type: ignore[attr-defined]
    assert err.text == "replaced by a new session"  # type: ignore[attr-defined]
    assert pair.client.should_close


def test_too_many_failed_attempts_close_the_stream_with_policy_violation() -> None:
    server = ServerConnection(server_config(limits=Limits(max_auth_attempts=2)), tls_active=True)
    auth = b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGp1bGlldAB4</auth>"
    server.receive_data(HEADER + auth)
    lookup = make_credentials(PASSWORDS)
    events: list[object] = []
    with pytest.raises(RemoteProtocolError) as info:
        for _ in range(10):
            event = server.next_event()
            events.append(event)
            if isinstance(event, CredentialsRequested):
                server.provide_credentials(lookup(event.username, event.hash_name))
            elif isinstance(event, DerivationRequested):
                server.provide_derived(derive(event))
            if event is None:
                server.receive_data(auth)
    assert info.value.condition is StreamErrorCondition.POLICY_VIOLATION
    assert len(of_type(events, AuthenticationFailed)) == 2


def test_anonymous_login_gets_a_random_account_when_enabled() -> None:
    server = ServerConnection(server_config(allow_anonymous=True), tls_active=True)
    server.receive_data(
        HEADER + b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'>=</auth>"
    )
    events = []
    while (event := server.next_event()) is not None:
        events.append(event)
    (auth,) = of_type(events, Authenticated)
    assert auth.jid.domain == "capulet.example" and auth.jid.local  # type: ignore[attr-defined]


def test_anonymous_is_refused_by_default() -> None:
    server = ServerConnection(server_config(), tls_active=True)
    server.receive_data(
        HEADER + b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/>"
    )
    assert b"<invalid-mechanism/>" in server.data_to_send()


def test_negotiation_restart_with_pipelined_bytes_fed_whole() -> None:
    """The client's new header arrives glued to its SASL response: the server must parse
    it with the new parser (RFC 6120 §4.3.3)."""
    pair = make_pair(direct_tls=True, client_kw={"mechanisms": ("PLAIN",)})
    pair.pump()
    assert pair.server.state is State.READY


def test_negotiation_deadline_closes_with_connection_timeout() -> None:
    server = ServerConnection(server_config())
    server.start_timer(100.0, 30.0)
    assert server.next_deadline() == 130.0
    server.handle_timer(129.9)
    assert server.data_to_send() == b""
    server.handle_timer(130.0)
    out = server.data_to_send()
    assert wire_condition(out) == "connection-timeout"
    assert server.should_close and server.next_deadline() is None


def test_ready_stream_has_no_deadline() -> None:
    pair = make_pair()
    pair.server.start_timer(0.0, 30.0)
    pair.pump()
    assert pair.server.next_deadline() is None
    pair.server.handle_timer(1e9)
    assert pair.server.state is State.READY


REGISTER_SET = (
    b"<iq type='set' id='reg1'><query xmlns='jabber:iq:register'>"
    b"<username>Benvolio</username><password>m0ntague-c0usin</password></query></iq>"
)


def registration_server(**kw: object) -> ServerConnection:
    server = ServerConnection(server_config(allow_registration=True, **kw), tls_active=True)
    server.receive_data(HEADER)
    server.next_event()
    return server


def test_registration_is_not_offered_by_default() -> None:
    _, out, _ = server_transcript(HEADER)
    assert b"iq-register" not in out
    server = ServerConnection(server_config(), tls_active=True)
    server.receive_data(HEADER + REGISTER_SET)
    with pytest.raises(RemoteProtocolError) as info:
        while server.next_event() is not None:
            pass
    assert info.value.condition is StreamErrorCondition.NOT_AUTHORIZED


def test_registration_is_not_offered_before_tls_when_tls_is_required() -> None:
    server = ServerConnection(server_config(allow_registration=True))
    server.receive_data(HEADER)
    assert b"iq-register" not in server.data_to_send()


def test_registration_form_then_account_creation() -> None:
    server = registration_server()
    assert b'<register xmlns="http://jabber.org/features/iq-register"/>' in server.data_to_send()
    server.receive_data(b"<iq type='get' id='reg0'><query xmlns='jabber:iq:register'/></iq>")
    form = server.data_to_send()
    assert b'type="result"' in form and b"<username/>" in form and b"<password/>" in form
    server.receive_data(REGISTER_SET)
    (event,) = [e for e in iter(server.next_event, None)]
    assert event == RegistrationRequested("benvolio", "m0ntague-c0usin")
    assert server.data_to_send() == b""
    server.registration_result(None)
    assert server.data_to_send() == b'<iq type="result" id="reg1"/>'
    assert server.state is State.NEGOTIATING


def test_registration_of_an_existing_account_is_a_conflict() -> None:
    server = registration_server()
    server.data_to_send()
    server.receive_data(REGISTER_SET)
    list(iter(server.next_event, None))
    server.registration_result(StanzaErrorCondition.CONFLICT)
    out = server.data_to_send()
    assert b'type="error"' in out and b"<conflict" in out and b'type="cancel"' in out


def test_registration_without_password_is_not_acceptable() -> None:
    server = registration_server()
    server.data_to_send()
    server.receive_data(
        b"<iq type='set' id='r'><query xmlns='jabber:iq:register'><username>x</username>"
        b"</query></iq>"
    )
    assert not list(iter(server.next_event, None))
    assert b"<not-acceptable" in server.data_to_send()


def test_a_stanza_then_broken_xml_in_one_read_gives_the_stanza_then_the_stream_error() -> None:
    """The parse error after a good stanza is held until that stanza is
    pulled; the reading loop still raises it in the same read (RFC 6120
    §4.9.3.13 not-well-formed)."""
    pair = make_pair()
    pair.pump()
    pair.server.data_to_send()
    read = b"<message to='romeo@montague.example'><body>hi</body></message><a></b>"
    if pair.server.framing.message_based:  # RFC 7395: one element a message
        pytest.skip("TCP framing only")
    pair.server.receive_data(read)
    event = pair.server.next_event()
    assert isinstance(event, StanzaReceived)
    assert wire_condition(pair.server.data_to_send()) == "not-well-formed"
    with pytest.raises(RemoteProtocolError):
        pair.server.next_event()


def test_the_servers_stanza_event_is_an_ordinary_frozen_stanza_received() -> None:
    """ServerConnection builds StanzaReceived without its __init__ (the hot
    path): the event still compares, hashes, prints and refuses writes as
    one built the ordinary way."""
    import dataclasses

    pair = make_pair()
    pair.pump()
    pair.client.send(ET.Element("{jabber:client}message", {"to": "romeo@montague.example"}))
    pair.pump()
    (event,) = of_type(pair.server_events, StanzaReceived)
    assert type(event) is StanzaReceived
    element = event.element  # type: ignore[attr-defined]
    assert element.get("to") == "romeo@montague.example"
    ordinary = StanzaReceived(element)
    assert event == ordinary and hash(event) == hash(ordinary) and repr(event) == repr(ordinary)
    assert [getattr(event, f.name) for f in dataclasses.fields(event)] == [element]  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.element = None  # type: ignore[attr-defined]
    match event:
        case StanzaReceived(element=matched):
            assert matched is element
