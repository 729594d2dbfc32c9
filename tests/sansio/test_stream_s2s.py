"""Server-to-server streams (xmpp_sansio/stream/s2s.py), both roles, in memory:
STARTTLS, SASL EXTERNAL with certificate facts (RFC 6120 §13.7, XEP-0178),
Server Dialback with the authoritative check (XEP-0220, XEP-0185 keys),
piggybacked domain pairs, and the defined answers to bad input, asserted on
the bytes each side sends."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from xml.etree.ElementTree import Element

import pytest

from xmpp_sansio.errors import (
    LocalProtocolError,
    RemoteProtocolError,
    StanzaErrorCondition,
    StreamErrorCondition,
)
from xmpp_sansio.stream.events import (
    Event,
    NegotiationFailed,
    StanzaReceived,
    StreamErrorReceived,
    TLSRequested,
)
from xmpp_sansio.stream.s2s import DIALBACK, S2SInitiatingConnection, S2SReceivingConnection
from xmpp_sansio.stream.s2s_events import (
    DialbackVerdict,
    DialbackVerifyRequested,
    DialbackVerifyResult,
    DomainPairAuthenticated,
    DomainPairRejected,
    S2SConfig,
    S2STLSEstablished,
)
from xmpp_sansio.stream.s2s_identity import PeerCertificate, dialback_key
from xmpp_sansio.stream.state import State
from xmpp_sansio.testing import seeded_rng

Conn = S2SInitiatingConnection | S2SReceivingConnection


def cert(*domains: str, valid: bool = True) -> PeerCertificate:
    return PeerCertificate(chain_valid=valid, srv_ids=tuple("_xmpp-server." + d for d in domains))


@dataclass
class Server:
    """One server: its domains, its dialback secret, and the certificate it presents."""

    domains: tuple[str, ...]
    secret: bytes
    certificate: PeerCertificate | None
    require_valid_certificate: bool = False
    events: list[tuple[Conn, Event]] = field(default_factory=list)

    def config(self) -> S2SConfig:
        return S2SConfig(
            domains=frozenset(self.domains),
            secret=self.secret,
            rng=seeded_rng(self.secret),
            require_valid_certificate=self.require_valid_certificate,
        )


def pump(pairs: list[tuple[Conn, Server, Conn, Server]], wire: list[bytes] | None = None) -> None:
    """Move bytes both ways and answer TLS and dialback requests until nothing moves."""
    for _ in range(200):
        moved = False
        for a, sa, b, sb in pairs:
            for src, dst, peer in ((a, b, sa), (b, a, sb)):
                data = src.data_to_send()
                if data:
                    moved = True
                    if wire is not None:
                        wire.append(data)
                    dst.receive_data(data)
                    _drain(dst, pairs, peer)
        if not moved:
            return
    raise AssertionError("no quiescence")


def _owner(conn: Conn, pairs: list[tuple[Conn, Server, Conn, Server]]) -> tuple[Server, Server]:
    for a, sa, b, sb in pairs:
        if conn is a:
            return sa, sb
        if conn is b:
            return sb, sa
    raise AssertionError


def _drain(conn: Conn, pairs: list[tuple[Conn, Server, Conn, Server]], _: Server) -> None:
    me, peer = _owner(conn, pairs)
    while True:
        try:
            event = conn.next_event()
        except RemoteProtocolError:
            continue
        if event is None:
            return
        me.events.append((conn, event))
        if isinstance(event, TLSRequested):
            conn.send(S2STLSEstablished(peer.certificate))


def link(
    origin: Server, target: Server, local: str, remote: str
) -> tuple[S2SInitiatingConnection, S2SReceivingConnection]:
    out = S2SInitiatingConnection(origin.config(), local, remote)
    inn = S2SReceivingConnection(target.config())
    out.start()
    return out, inn


def of(server: Server, kind: type) -> list[object]:
    return [e for _, e in server.events if isinstance(e, kind)]


def answer_dialback(
    receiving_server: Server, authoritative: Server, conn: S2SReceivingConnection
) -> list[bytes]:
    """Do what the I/O layer does for DialbackVerifyRequested: a verify-only
    stream to the authoritative server, then the verdict on ``conn``."""
    wire: list[bytes] = []
    for _, event in list(receiving_server.events):
        if not isinstance(event, DialbackVerifyRequested):
            continue
        receiving_server.events.remove((conn, event))
        check = S2SInitiatingConnection(
            receiving_server.config(), event.receiving, event.originating, verify_only=True
        )
        auth_side = S2SReceivingConnection(authoritative.config())
        check.start()
        check.verify(event.originating, event.receiving, event.stream_id, event.key)
        pump([(check, receiving_server, auth_side, authoritative)], wire)
        results = [e for c, e in receiving_server.events if c is check]
        (result,) = [e for e in results if isinstance(e, DialbackVerifyResult)]
        conn.send(DialbackVerdict(event.originating, event.receiving, result.valid))
    return wire


def message(sender: str, to: str, body: str = "hi") -> Element:
    el = Element("{jabber:client}message", {"from": sender, "to": to, "type": "chat"})
    body_el = Element("{jabber:client}body")
    body_el.text = body
    el.append(body_el)
    return el


A = Server(("a.example", "chat.a.example"), b"secret-a", cert("a.example"))
B = Server(("b.example",), b"secret-b", cert("b.example"))


def fresh(server: Server, **kw: object) -> Server:
    return Server(
        server.domains,
        server.secret,
        kw.get("certificate", server.certificate),  # type: ignore[arg-type]
        bool(kw.get("require_valid_certificate", False)),
    )


def test_valid_certificates_authenticate_with_sasl_external_after_starttls() -> None:
    a, b = fresh(A), fresh(B)
    out, inn = link(a, b, "a.example", "b.example")
    wire: list[bytes] = []
    pump([(out, a, inn, b)], wire)
    sent = b"".join(wire)
    assert b"<starttls" in sent and b"<proceed" in sent
    assert b'mechanism="EXTERNAL"' in sent and b"<success" in sent
    assert b"db:result" not in sent and b"}result" not in sent
    assert out.state is State.READY and inn.state is State.READY
    assert of(a, DomainPairAuthenticated) == [
        DomainPairAuthenticated("a.example", "b.example", "EXTERNAL")
    ]
    assert of(b, DomainPairAuthenticated) == [
        DomainPairAuthenticated("b.example", "a.example", "EXTERNAL")
    ]
    out.send(message("romeo@a.example/x", "juliet@b.example"))
    wire.clear()
    pump([(out, a, inn, b)], wire)
    assert wire[0].startswith(b"<message ") and b"jabber:client" not in wire[0]
    (received,) = of(b, StanzaReceived)
    assert isinstance(received, StanzaReceived)
    assert received.element.tag == "{jabber:client}message"
    assert received.element.findtext("{jabber:client}body") == "hi"


def test_direct_tls_skips_starttls_and_authenticates_with_external() -> None:
    """XEP-0368: a stream over direct TLS has no STARTTLS; the certificate
    facts given at construction decide EXTERNAL as after STARTTLS."""
    a, b = fresh(A), fresh(B)
    out = S2SInitiatingConnection(a.config(), "a.example", "b.example", direct_tls=b.certificate)
    inn = S2SReceivingConnection(b.config(), direct_tls=a.certificate)
    out.start()
    wire: list[bytes] = []
    pump([(out, a, inn, b)], wire)
    sent = b"".join(wire)
    assert b"starttls" not in sent and b'mechanism="EXTERNAL"' in sent
    assert out.state is State.READY and inn.state is State.READY
    assert of(b, DomainPairAuthenticated) == [
        DomainPairAuthenticated("b.example", "a.example", "EXTERNAL")
    ]


def test_direct_tls_without_a_client_certificate_falls_back_to_dialback() -> None:
    a, b = fresh(A), fresh(B)
    out = S2SInitiatingConnection(a.config(), "a.example", "b.example", direct_tls=b.certificate)
    inn = S2SReceivingConnection(b.config(), direct_tls=PeerCertificate(False))
    out.start()
    pump([(out, a, inn, b)])
    answer_dialback(b, a, inn)
    pump([(out, a, inn, b)])
    assert inn.pairs == {("b.example", "a.example")}
    assert of(a, DomainPairAuthenticated) == [
        DomainPairAuthenticated("a.example", "b.example", DIALBACK)
    ]


def test_the_header_declares_the_dialback_namespace_and_jabber_server() -> None:
    a, b = fresh(A), fresh(B)
    out, _ = link(a, b, "a.example", "b.example")
    first = out.data_to_send()
    assert b'xmlns="jabber:server"' in first
    assert b'xmlns:db="jabber:server:dialback"' in first
    assert b'from="a.example"' in first and b'to="b.example"' in first


def test_untrusted_certificate_falls_back_to_dialback_with_the_authoritative_check() -> None:
    a = fresh(A, certificate=cert("a.example", valid=False))
    b = fresh(B)
    out, inn = link(a, b, "a.example", "b.example")
    wire: list[bytes] = []
    pump([(out, a, inn, b)], wire)
    assert b"EXTERNAL" not in b"".join(wire)
    assert b"urn:xmpp:features:dialback" in b"".join(wire)
    assert out.state is State.NEGOTIATING and inn.state is State.NEGOTIATING
    verify_wire = answer_dialback(b, a, inn)
    assert b'type="valid"' in b"".join(verify_wire)
    pump([(out, a, inn, b)], wire)
    assert out.state is State.READY and inn.state is State.READY
    assert DomainPairAuthenticated("a.example", "b.example", DIALBACK) in of(
        a, DomainPairAuthenticated
    )
    out.send(message("romeo@a.example", "juliet@b.example"))
    pump([(out, a, inn, b)])
    assert len(of(b, StanzaReceived)) == 1


def test_a_wrong_dialback_key_is_invalid_and_no_stanza_flows() -> None:
    impostor = Server(A.domains, b"not-the-secret", cert("a.example", valid=False))
    real_a = fresh(A)
    b = fresh(B)
    out, inn = link(impostor, b, "a.example", "b.example")
    wire: list[bytes] = []
    pump([(out, impostor, inn, b)], wire)
    verify_wire = answer_dialback(b, real_a, inn)
    assert b'type="invalid"' in b"".join(verify_wire)
    pump([(out, impostor, inn, b)], wire)
    assert any(w.startswith(b"<result") and b'type="invalid"' in w for w in wire)
    assert of(impostor, DomainPairRejected) == [DomainPairRejected("a.example", "b.example", None)]
    assert isinstance(of(impostor, NegotiationFailed)[0], NegotiationFailed)
    assert inn.pairs == set()
    # A stanza on the unauthenticated stream: not-authorized, nothing delivered.
    inn2 = S2SReceivingConnection(b.config())
    out2 = S2SInitiatingConnection(impostor.config(), "a.example", "b.example")
    out2.start()
    pump([(out2, impostor, inn2, b)])
    inn2.receive_data(b"<message from='a.example' to='b.example'/>")
    with pytest.raises(RemoteProtocolError) as info:
        while inn2.next_event() is not None:
            pass
    assert info.value.condition is StreamErrorCondition.NOT_AUTHORIZED
    assert b"not-authorized" in inn2.data_to_send()


def test_a_wrong_dialback_key_on_a_new_stream_closes_it_not_authorized() -> None:
    """XEP-0220 §2.4: no other pair on the stream: result "invalid", then the
    stream MUST be closed."""
    impostor = Server(A.domains, b"not-the-secret", cert("a.example", valid=False))
    b = fresh(B)
    out, inn = link(impostor, b, "a.example", "b.example")
    pump([(out, impostor, inn, b)])
    answer_dialback(b, fresh(A), inn)
    sent = inn.data_to_send()
    assert b'type="invalid"' in sent
    assert b"<not-authorized" in sent and sent.endswith(b"</stream:stream>")
    assert sent.index(b'type="invalid"') < sent.index(b"<not-authorized")
    assert inn.should_close and inn.pairs == set()


def test_a_wrong_key_for_a_piggybacked_pair_is_forbidden_and_the_stream_stays() -> None:
    """XEP-0220 §2.4/§2.5: other pairs are valid: the bogus one gets a
    <forbidden/> error; stanzas of the valid pair still flow."""
    a, b = fresh(A), fresh(B)
    out, inn = link(a, b, "a.example", "b.example")
    pump([(out, a, inn, b)])
    out.authorize("chat.a.example")
    pump([(out, a, inn, b)])
    answer_dialback(b, Server(A.domains, b"not-the-secret", A.certificate), inn)
    sent = inn.data_to_send()
    assert b'type="error"' in sent and b"<forbidden" in sent
    assert not inn.should_close
    assert inn.pairs == {("b.example", "a.example")}
    out.receive_data(sent)
    while out.next_event() is not None:
        pass
    out.send(message("romeo@a.example/x", "juliet@b.example"))
    pump([(out, a, inn, b)])
    assert len(of(b, StanzaReceived)) == 1


def test_a_spoofed_from_domain_closes_the_stream_with_invalid_from() -> None:
    a, b = fresh(A), fresh(B)
    out, inn = link(a, b, "a.example", "b.example")
    pump([(out, a, inn, b)])
    assert inn.state is State.READY
    inn.receive_data(b"<message from='mallory@evil.example' to='juliet@b.example'/>")
    with pytest.raises(RemoteProtocolError) as info:
        while (event := inn.next_event()) is not None:
            assert not isinstance(event, StanzaReceived)
    assert info.value.condition is StreamErrorCondition.INVALID_FROM
    sent = inn.data_to_send()
    assert b"<invalid-from" in sent and sent.endswith(b"</stream:stream>")


def test_piggybacked_domains_need_their_own_dialback() -> None:
    a, b = fresh(A), fresh(B)
    out, inn = link(a, b, "a.example", "b.example")
    pump([(out, a, inn, b)])
    with pytest.raises(LocalProtocolError):
        out.send(message("room@chat.a.example", "juliet@b.example"))
    out.authorize("chat.a.example")
    pump([(out, a, inn, b)])
    # The certificate names a.example only: the authoritative server is asked.
    assert len(of(b, DialbackVerifyRequested)) == 1
    answer_dialback(b, a, inn)
    pump([(out, a, inn, b)])
    assert ("chat.a.example", "b.example") in out.pairs
    assert ("b.example", "chat.a.example") in inn.pairs
    out.send(message("room@chat.a.example/n", "juliet@b.example"))
    pump([(out, a, inn, b)])
    assert len(of(b, StanzaReceived)) == 1


def test_dialback_for_a_domain_the_certificate_names_needs_no_callback() -> None:
    """XEP-0344: the certificate already proves the domain."""
    a = fresh(A, certificate=cert("a.example", "chat.a.example"))
    b = fresh(B)
    out, inn = link(a, b, "a.example", "b.example")
    pump([(out, a, inn, b)])
    out.authorize("chat.a.example")
    pump([(out, a, inn, b)])
    assert of(b, DialbackVerifyRequested) == []
    assert ("chat.a.example", "b.example") in out.pairs


def test_require_valid_certificate_refuses_dialback_on_an_untrusted_one() -> None:
    a = fresh(A, certificate=cert("a.example", valid=False))
    b = fresh(B, require_valid_certificate=True)
    out, inn = link(a, b, "a.example", "b.example")
    wire: list[bytes] = []
    pump([(out, a, inn, b)], wire)
    assert any(b'type="error"' in w and b"<not-authorized" in w for w in wire)
    assert of(b, DialbackVerifyRequested) == []
    (rejected,) = of(a, DomainPairRejected)
    assert isinstance(rejected, DomainPairRejected)
    assert rejected.condition is StanzaErrorCondition.NOT_AUTHORIZED


def test_an_initiator_requiring_valid_certificates_gives_up_on_an_untrusted_peer() -> None:
    a = fresh(A, require_valid_certificate=True)
    b = fresh(B, certificate=cert("b.example", valid=False))
    out, inn = link(a, b, "a.example", "b.example")
    pump([(out, a, inn, b)])
    (failed,) = of(a, NegotiationFailed)
    assert isinstance(failed, NegotiationFailed) and "certificate" in failed.reason
    assert out.state is State.CLOSED


def test_a_header_to_a_domain_we_do_not_host_is_host_unknown() -> None:
    inn = S2SReceivingConnection(fresh(B).config())
    inn.receive_data(
        b"<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'"
        b" xmlns:db='jabber:server:dialback' from='a.example' to='c.example' version='1.0'>"
    )
    with pytest.raises(RemoteProtocolError) as info:
        while inn.next_event() is not None:
            pass
    assert info.value.condition is StreamErrorCondition.HOST_UNKNOWN
    assert b"<host-unknown" in inn.data_to_send()


def test_dialback_before_starttls_is_a_policy_violation() -> None:
    inn = S2SReceivingConnection(fresh(B).config())
    inn.receive_data(
        b"<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'"
        b" xmlns:db='jabber:server:dialback' from='a.example' to='b.example' version='1.0'>"
        b"<db:result from='a.example' to='b.example'>abc</db:result>"
    )
    with pytest.raises(RemoteProtocolError) as info:
        while inn.next_event() is not None:
            pass
    assert info.value.condition is StreamErrorCondition.POLICY_VIOLATION
    out = inn.data_to_send()
    assert b"<required" in out and b"<policy-violation" in out


def test_the_authoritative_server_answers_db_verify_from_its_key() -> None:
    a = fresh(A)
    inn = S2SReceivingConnection(a.config())
    inn.receive_data(
        b"<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'"
        b" xmlns:db='jabber:server:dialback' from='b.example' to='a.example' version='1.0'>"
    )
    inn.data_to_send()
    inn._state = State.NEGOTIATING  # test-only: skip TLS to reach the verify handler
    inn.tls_active = True
    good = dialback_key(a.secret, "b.example", "a.example", "S1")
    inn.receive_data(
        f"<db:verify from='b.example' to='a.example' id='S1'>{good}</db:verify>"
        "<db:verify from='b.example' to='a.example' id='S1'>0123</db:verify>"
        "<db:verify from='b.example' to='x.example' id='S1'>0123</db:verify>".encode()
    )
    out = inn.data_to_send()
    assert out.count(b'type="valid"') == 1 and out.count(b'type="invalid"') == 1
    assert b"<item-not-found" in out


def test_a_stanza_on_the_initiating_stream_is_unsupported() -> None:
    a, b = fresh(A), fresh(B)
    out, inn = link(a, b, "a.example", "b.example")
    pump([(out, a, inn, b)])
    out.receive_data(b"<message from='juliet@b.example' to='romeo@a.example'/>")
    with pytest.raises(RemoteProtocolError) as info:
        while out.next_event() is not None:
            pass
    assert info.value.condition is StreamErrorCondition.UNSUPPORTED_STANZA_TYPE


def test_an_initiator_refuses_a_peer_without_starttls_when_tls_is_required() -> None:
    a = fresh(A)
    plain_b = S2SConfig(
        domains=frozenset({"b.example"}), secret=b"x", rng=seeded_rng(1), tls_available=False
    )
    out = S2SInitiatingConnection(a.config(), "a.example", "b.example")
    inn = S2SReceivingConnection(plain_b)
    out.start()
    b = fresh(B)
    pump([(out, a, inn, b)])
    (failed,) = of(a, NegotiationFailed)
    assert isinstance(failed, NegotiationFailed) and "STARTTLS" in failed.reason


def test_stream_error_from_the_peer_is_reported() -> None:
    a = fresh(A)
    out = S2SInitiatingConnection(a.config(), "a.example", "b.example")
    out.start()
    out.receive_data(
        b"<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'"
        b" from='b.example' id='x' version='1.0'><stream:error>"
        b"<host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"
    )
    events = []
    while (event := out.next_event()) is not None:
        events.append(event)
    assert StreamErrorReceived(StreamErrorCondition.HOST_UNKNOWN, None) in events


def test_a_stream_authenticated_by_external_can_piggyback_when_the_peer_offers_dialback() -> None:
    """XEP-0220 §2.6: the initiator may add a local domain to a ready stream
    when the peer offered dialback (kept across the EXTERNAL restart), and
    only while the stream has room for another pair."""
    a, b = fresh(A), fresh(B)
    out, inn = link(a, b, "a.example", "b.example")
    assert not out.can_piggyback  # not ready yet
    pump([(out, a, inn, b)])
    assert out.can_piggyback
    out.authorize("chat.a.example")
    pump([(out, a, inn, b)])
    answer_dialback(b, a, inn)
    pump([(out, a, inn, b)])
    assert out.pairs == {("a.example", "b.example"), ("chat.a.example", "b.example")}


def test_no_piggybacking_without_dialback_at_the_peer_or_room_for_a_pair() -> None:
    a, b = fresh(A), fresh(B)
    out = S2SInitiatingConnection(a.config(), "a.example", "b.example")
    inn = S2SReceivingConnection(replace(b.config(), allow_dialback=False))
    out.start()
    pump([(out, a, inn, b)])
    assert out.state is State.READY and not out.can_piggyback
    full = S2SInitiatingConnection(
        replace(a.config(), max_domain_pairs=1), "a.example", "b.example"
    )
    inn = S2SReceivingConnection(b.config())
    full.start()
    pump([(full, a, inn, b)])
    assert full.state is State.READY and not full.can_piggyback


def bidi_link(
    origin: Server, target: Server, *, ask: bool = True, offer: bool = True
) -> tuple[S2SInitiatingConnection, S2SReceivingConnection]:
    out = S2SInitiatingConnection(replace(origin.config(), bidi=ask), "a.example", "b.example")
    inn = S2SReceivingConnection(replace(target.config(), bidi=offer))
    out.start()
    return out, inn


def test_a_bidirectional_stream_carries_stanzas_back_for_the_authenticated_pair() -> None:
    """XEP-0288: the feature after TLS, the request before EXTERNAL (no
    answer), then the receiving server sends b.example -> a.example on the
    same stream and the initiating server takes it."""
    a, b = fresh(A), fresh(B)
    out, inn = bidi_link(a, b)
    wire: list[bytes] = []
    pump([(out, a, inn, b)], wire)
    sent = b"".join(wire)
    assert b'<bidi xmlns="urn:xmpp:features:bidi"' in sent
    assert b'<bidi xmlns="urn:xmpp:bidi"' in sent
    assert sent.index(b'<bidi xmlns="urn:xmpp:bidi"') < sent.index(b'mechanism="EXTERNAL"')
    assert out.bidi and inn.bidi and inn.state is State.READY
    inn.send(message("juliet@b.example/x", "romeo@a.example", "back"))
    pump([(out, a, inn, b)])
    (received,) = [e for c, e in a.events if c is out and isinstance(e, StanzaReceived)]
    assert isinstance(received, StanzaReceived)
    assert received.element.findtext("{jabber:client}body") == "back"
    # Only the inverse of an authenticated pair goes back (XEP-0288 §2.3).
    with pytest.raises(LocalProtocolError):
        inn.send(message("juliet@b.example/x", "romeo@chat.a.example"))


def test_without_the_request_the_stream_stays_one_way() -> None:
    for ask, offer in ((False, True), (True, False)):
        a, b = fresh(A), fresh(B)
        out, inn = bidi_link(a, b, ask=ask, offer=offer)
        wire: list[bytes] = []
        pump([(out, a, inn, b)], wire)
        assert b'<bidi xmlns="urn:xmpp:bidi"' not in b"".join(wire)
        assert not out.bidi and not inn.bidi and inn.state is State.READY
        with pytest.raises(LocalProtocolError):
            inn.send(message("juliet@b.example/x", "romeo@a.example"))


def test_a_spoofed_from_back_on_a_bidirectional_stream_is_invalid_from() -> None:
    a, b = fresh(A), fresh(B)
    out, inn = bidi_link(a, b)
    pump([(out, a, inn, b)])
    out.receive_data(b"<message from='mallory@evil.example' to='romeo@a.example'/>")
    with pytest.raises(RemoteProtocolError) as info:
        while (event := out.next_event()) is not None:
            assert not isinstance(event, StanzaReceived)
    assert info.value.condition is StreamErrorCondition.INVALID_FROM
