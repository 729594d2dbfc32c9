"""Security properties of xmpp_sansio, stated without I/O.

SASL downgrades (RFC 5802 §6, RFC 6120 §6.4, RFC 4616 §6), ``from`` checking and
stamping (RFC 6120 §8.1.2.1), and the limits whose exact boundary is best
checked here (the wire-level tests are in tests/trio/test_security.py; the
list of limits is docs/security.md).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element, SubElement

import pytest
from committing import CommittingRouter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xmpp_sansio.errors import RemoteProtocolError, StanzaErrorCondition, StreamErrorCondition
from xmpp_sansio.jid import JID, InvalidJID
from xmpp_sansio.sasl import ChannelBinding
from xmpp_sansio.server import Deliver, Router
from xmpp_sansio.server.blocking import BlockingService, MemoryBlockStorage
from xmpp_sansio.server.roster import MemoryRosterStorage, RosterService
from xmpp_sansio.stanza import parse_error
from xmpp_sansio.stream.config import ClientConfig, Limits, ServerConfig
from xmpp_sansio.stream.connection import ClientConnection, ServerConnection, State, TLSInfo
from xmpp_sansio.stream.events import (
    Authenticated,
    AuthenticationFailed,
    CredentialsRequested,
    DerivationRequested,
    Event,
    NegotiationFailed,
    StanzaReceived,
    TLSRequested,
)
from xmpp_sansio.testing import derive, make_credentials, seeded_rng
from xmpp_sansio.xml.writer import serialize

DOMAIN = "capulet.example"
PASSWORDS = {"juliet": "r0m30myr0m30"}
JULIET = JID.parse(f"juliet@{DOMAIN}/balcony")
BINDING = ChannelBinding("tls-server-end-point", b"\x01" * 32)
SERVER_HEADER = (
    f"<stream:stream from='{DOMAIN}' id='s1' version='1.0' xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams'>"
).encode()


def mechanisms_features(*names: str) -> bytes:
    inner = "".join(f"<mechanism>{n}</mechanism>" for n in names)
    return (
        b"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
        + inner.encode()
        + b"</mechanisms></stream:features>"
    )


def drain(
    conn: ClientConnection | ServerConnection,
) -> tuple[list[Event], RemoteProtocolError | None]:
    events: list[Event] = []
    try:
        while (event := conn.next_event()) is not None:
            events.append(event)
    except RemoteProtocolError as exc:
        return events, exc
    return events, None


# ---------------------------------------------------------------------------
# a client and a server wired back to back, with a man in the middle


@dataclass
class Wired:
    """Like :class:`xmpp_sansio.testing.ConnectionPair`, but each side has its own
    TLS channel binding (or none), and ``tamper`` rewrites what the server sends
    (an active attacker on the path, who cannot touch the TLS layer itself but
    plays the part of a server that offers less)."""

    client: ClientConnection
    server: ServerConnection
    client_tls: TLSInfo
    server_tls: TLSInfo
    tamper: Callable[[bytes], bytes] = lambda data: data
    credentials: Callable[[str, str], object] = field(
        default_factory=lambda: make_credentials(PASSWORDS)
    )
    from_client: bytearray = field(default_factory=bytearray)
    from_server: bytearray = field(default_factory=bytearray)
    client_events: list[Event] = field(default_factory=list)
    server_events: list[Event] = field(default_factory=list)

    def pump(self) -> None:
        for _ in range(100):
            progressed = False
            data = self.client.data_to_send()
            if data:
                self.from_client += data
                self.server.receive_data(data)
                progressed = True
            events, _ = drain(self.server)
            for event in events:
                if isinstance(event, CredentialsRequested):
                    self.server.provide_credentials(
                        self.credentials(event.username, event.hash_name)  # type: ignore[arg-type]
                    )
                elif isinstance(event, DerivationRequested):
                    self.server.provide_derived(derive(event))
            self.server_events += events
            data = self.server.data_to_send()
            if data:
                data = self.tamper(data)
                self.from_server += data
                self.client.receive_data(data)
                progressed = True
            self.client_events += drain(self.client)[0]
            if self.client.state is State.TLS_PENDING and self.server.state is State.TLS_PENDING:
                self.server.tls_established(self.server_tls)
                self.client.tls_established(self.client_tls)
                progressed = True
            if not progressed:
                return
        raise AssertionError("the connections did not go quiet")

    def auth_sent(self) -> tuple[str, bytes]:
        """The mechanism and decoded initial response of the client's <auth/>."""
        found = re.search(rb'<auth [^>]*mechanism="([^"]+)"[^>]*>([^<]*)</auth>', self.from_client)
        assert found is not None, bytes(self.from_client)
        return found.group(1).decode(), base64.b64decode(found.group(2))


def wired(
    *,
    client_binding: ChannelBinding | None,
    server_binding: ChannelBinding | None,
    tamper: Callable[[bytes], bytes] = lambda data: data,
    client_kw: dict[str, object] | None = None,
) -> Wired:
    client = ClientConnection(
        ClientConfig(
            rng=seeded_rng(0), jid=JULIET, password=PASSWORDS["juliet"], **(client_kw or {})
        )  # type: ignore[arg-type]
    )
    server = ServerConnection(ServerConfig(rng=seeded_rng(0), domains=frozenset({DOMAIN})))
    pair = Wired(client, server, TLSInfo(client_binding), TLSInfo(server_binding), tamper)
    client.start()
    return pair


def strip_plus(data: bytes) -> bytes:
    return re.sub(rb"<mechanism>[A-Z0-9-]+-PLUS</mechanism>", b"", data)


def test_stripped_plus_mechanisms_make_the_client_send_y_and_the_server_refuse_it() -> None:
    """RFC 5802 §6: a client that could bind but sees no -PLUS mechanism says so
    with the gs2 flag 'y'; a server that did offer -PLUS takes 'y' as proof that
    someone removed them, and refuses."""
    pair = wired(client_binding=BINDING, server_binding=BINDING, tamper=strip_plus)
    pair.pump()
    assert b"-PLUS</mechanism>" not in pair.from_server
    mechanism, initial = pair.auth_sent()
    assert mechanism == "SCRAM-SHA-256"
    assert initial.startswith(b"y,,n=juliet,r=")
    assert b"<not-authorized/>" in pair.from_server
    assert b"<success" not in pair.from_server
    (failed,) = [e for e in pair.server_events if isinstance(e, AuthenticationFailed)]
    assert failed.condition == "not-authorized"
    assert not [e for e in pair.server_events if isinstance(e, Authenticated)]
    assert any(isinstance(e, AuthenticationFailed) for e in pair.client_events)
    assert pair.client.state is not State.READY


def test_without_tampering_the_same_pair_binds_the_channel() -> None:
    pair = wired(client_binding=BINDING, server_binding=BINDING)
    pair.pump()
    mechanism, initial = pair.auth_sent()
    assert mechanism == "SCRAM-SHA-256-PLUS"
    assert initial.startswith(b"p=tls-server-end-point,,")
    assert pair.client.state is State.READY


def test_client_without_binding_data_sends_n_and_a_plus_server_accepts_it() -> None:
    """'n' (this client cannot bind) is not a downgrade: the server accepts it."""
    pair = wired(client_binding=None, server_binding=BINDING)
    pair.pump()
    assert b"SCRAM-SHA-256-PLUS</mechanism>" in pair.from_server
    mechanism, initial = pair.auth_sent()
    assert (mechanism, initial[:3]) == ("SCRAM-SHA-256", b"n,,")
    assert pair.client.state is State.READY


def test_client_with_binding_sends_y_and_a_server_without_plus_accepts_it() -> None:
    """'y' to a server that really offers no -PLUS (say it cannot export the
    binding data) is honest and succeeds."""
    pair = wired(client_binding=BINDING, server_binding=None)
    pair.pump()
    assert b"-PLUS</mechanism>" not in pair.from_server
    mechanism, initial = pair.auth_sent()
    assert (mechanism, initial[:3]) == ("SCRAM-SHA-256", b"y,,")
    assert pair.client.state is State.READY


def client_seeing(
    features: bytes, *, tls: bool, **config: object
) -> tuple[ClientConnection, list[Event], bytes]:
    """A client fed a server header and ``features``; what it did and said."""
    client = ClientConnection(
        ClientConfig(rng=seeded_rng(0), jid=JULIET, password=PASSWORDS["juliet"], **config),  # type: ignore[arg-type]
        tls_active=tls,
        tls_info=TLSInfo(BINDING if tls else None),
    )
    client.start()
    sent = client.data_to_send()
    client.receive_data(SERVER_HEADER + features)
    events, error = drain(client)
    assert error is None
    return client, events, sent + client.data_to_send()


@pytest.mark.parametrize("tls", [False, True], ids=["plaintext", "tls"])
def test_client_restricted_to_scram_refuses_a_server_offering_only_plain(tls: bool) -> None:
    """A server (or an attacker) stripped of SCRAM cannot make a SCRAM-only client
    fall back to PLAIN, with or without TLS."""
    client, events, sent = client_seeing(
        mechanisms_features("PLAIN"),
        tls=tls,
        require_tls=False,
        mechanisms=("SCRAM-SHA-512", "SCRAM-SHA-256", "SCRAM-SHA-1"),
    )
    (failed,) = [e for e in events if isinstance(e, NegotiationFailed)]
    assert "no acceptable SASL mechanism" in failed.reason
    assert b"<auth" not in sent and PASSWORDS["juliet"].encode() not in sent
    assert client.should_close


def test_client_never_sends_plain_in_the_clear_even_without_required_tls() -> None:
    """RFC 4616 §6 / RFC 6120 §6.4: PLAIN only over TLS, whatever the server offers."""
    _, events, sent = client_seeing(mechanisms_features("PLAIN"), tls=False, require_tls=False)
    assert [e for e in events if isinstance(e, NegotiationFailed)]
    assert b"<auth" not in sent
    assert base64.b64encode(b"\0juliet\0" + PASSWORDS["juliet"].encode()) not in sent


def test_client_requiring_tls_refuses_features_without_starttls() -> None:
    _, events, sent = client_seeing(mechanisms_features("SCRAM-SHA-256", "PLAIN"), tls=False)
    (failed,) = [e for e in events if isinstance(e, NegotiationFailed)]
    assert "STARTTLS" in failed.reason
    assert b"<auth" not in sent
    assert not [e for e in events if isinstance(e, TLSRequested)]


def test_server_never_offers_plain_or_accepts_auth_before_tls() -> None:
    server = ServerConnection(ServerConfig(rng=seeded_rng(0), domains=frozenset({DOMAIN})))
    server.receive_data(
        f"<stream:stream to='{DOMAIN}' version='1.0' xmlns='jabber:client' "
        "xmlns:stream='http://etherx.jabber.org/streams'>".encode()
        + b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>"
        + base64.b64encode(b"n,,n=juliet,r=abcdefgh")
        + b"</auth>"
    )
    events, _ = drain(server)
    out = server.data_to_send()
    assert b"<mechanism>" not in out  # nothing offered before TLS (require_tls)
    assert b"<encryption-required/>" in out
    assert not [e for e in events if isinstance(e, CredentialsRequested)]


@pytest.mark.parametrize(
    "authzid", [f"romeo@{DOMAIN}", f"juliet@{DOMAIN}/balcony", DOMAIN, "not a jid@@"]
)
def test_authorizing_as_anyone_but_oneself_is_invalid_authzid(authzid: str) -> None:
    """RFC 6120 §6.4.6: right credentials for Juliet, asking to act as someone else."""
    server = ServerConnection(
        ServerConfig(rng=seeded_rng(0), domains=frozenset({DOMAIN})), tls_active=True
    )
    lookup = make_credentials(PASSWORDS)
    initial = f"{authzid}\0juliet\0{PASSWORDS['juliet']}".encode()
    server.receive_data(
        f"<stream:stream to='{DOMAIN}' version='1.0' xmlns='jabber:client' "
        "xmlns:stream='http://etherx.jabber.org/streams'>".encode()
        + b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
        + base64.b64encode(initial)
        + b"</auth>"
    )
    events: list[Event] = []
    for _ in range(5):
        more, error = drain(server)
        assert error is None
        events += more
        for event in more:
            if isinstance(event, CredentialsRequested):
                server.provide_credentials(lookup(event.username, event.hash_name))
            elif isinstance(event, DerivationRequested):
                server.provide_derived(derive(event))
    out = server.data_to_send()
    assert b"<invalid-authzid/>" in out and b"<success" not in out
    assert not [e for e in events if isinstance(e, Authenticated)]
    assert server.authenticated_jid is None


def test_authorizing_as_oneself_is_accepted() -> None:
    server = ServerConnection(
        ServerConfig(rng=seeded_rng(0), domains=frozenset({DOMAIN})), tls_active=True
    )
    lookup = make_credentials(PASSWORDS)
    initial = f"juliet@{DOMAIN}\0juliet\0{PASSWORDS['juliet']}".encode()
    server.receive_data(
        f"<stream:stream to='{DOMAIN}' version='1.0' xmlns='jabber:client' "
        "xmlns:stream='http://etherx.jabber.org/streams'>".encode()
        + b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
        + base64.b64encode(initial)
        + b"</auth>"
    )
    for _ in range(5):
        for event in drain(server)[0]:
            if isinstance(event, CredentialsRequested):
                server.provide_credentials(lookup(event.username, event.hash_name))
            elif isinstance(event, DerivationRequested):
                server.provide_derived(derive(event))
    assert b"<success" in server.data_to_send()
    assert server.authenticated_jid == JULIET.bare


# ---------------------------------------------------------------------------
# 'from' checking (the stream) and stamping (the router), RFC 6120 §8.1.2.1


def ready_server() -> ServerConnection:
    pair = wired(client_binding=BINDING, server_binding=BINDING)
    pair.pump()
    assert pair.server.state is State.READY and pair.server.jid == JULIET
    return pair.server


FROMS = st.one_of(
    st.sampled_from(
        [
            f"juliet@{DOMAIN}/balcony",
            f"juliet@{DOMAIN}",
            f"Juliet@{DOMAIN.upper()}",  # the same bare JID once normalised
            f"juliet@{DOMAIN}/chamber",  # another resource of the same account
            f"romeo@{DOMAIN}",
            f"romeo@{DOMAIN}/orchard",
            DOMAIN,
            "montague.example",
            "",
            "@@@",
        ]
    ),
    st.text(st.characters(blacklist_categories=("Cs", "Cc", "Cn")), max_size=40),
)


def accepted_from(value: str) -> bool:
    try:
        claimed = JID.parse(value)
    except InvalidJID:
        return False
    return claimed in (JULIET, JULIET.bare)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(FROMS)
def test_server_accepts_only_the_sessions_own_from(value: str) -> None:
    server = ready_server()
    message = Element("{jabber:client}message", {"from": value, "to": f"romeo@{DOMAIN}"})
    server.receive_data(serialize(message))
    events, error = drain(server)
    if accepted_from(value):
        assert error is None
        assert [e for e in events if isinstance(e, StanzaReceived)]
    else:
        assert error is not None and error.condition is StreamErrorCondition.INVALID_FROM
        assert not [e for e in events if isinstance(e, StanzaReceived)]
        assert b"<invalid-from" in server.data_to_send()


def routing_world() -> Router:
    router = CommittingRouter(
        [DOMAIN], rng=seeded_rng(0), account_exists=lambda local, domain: True
    )
    router.bind(1, JULIET)
    router.bind(2, JID.parse(f"romeo@{DOMAIN}/orchard"))
    router.route(2, Element("{jabber:client}presence"))
    return router


@settings(max_examples=200, deadline=None)
@given(
    FROMS,
    st.sampled_from(
        [
            ("message", {"type": "chat"}),
            ("message", {"type": "normal"}),
            ("presence", {}),
            ("iq", {"type": "get", "id": "q"}),
        ]
    ),
    st.sampled_from([f"romeo@{DOMAIN}/orchard", f"romeo@{DOMAIN}"]),
)
def test_router_stamps_every_routed_stanza_with_the_senders_full_jid(
    value: str, kind: tuple[str, dict[str, str]], to: str
) -> None:
    """Whatever 'from' a stanza carries when it reaches the router, what any other
    session receives says it comes from the sending session's full JID."""
    name, attrs = kind
    stanza = Element(f"{{jabber:client}}{name}", {**attrs, "from": value, "to": to})
    if name == "iq":
        SubElement(stanza, "{urn:example:q}query")
    else:
        SubElement(stanza, "{jabber:client}status" if name == "presence" else "{jabber:client}body")
    delivered = [e for e in routing_world().route(1, stanza) if isinstance(e, Deliver)]
    for effect in delivered:
        if effect.session == 2:
            assert effect.element.get("from") == str(JULIET)
    if name != "iq" or to.endswith("/orchard"):
        assert any(e.session == 2 for e in delivered)


# ---------------------------------------------------------------------------
# limits at their exact boundary


def exact_message(size: int) -> bytes:
    head, tail = b"<message to='romeo@capulet.example'><body>", b"</body></message>"
    data = head + b"x" * (size - len(head) - len(tail)) + tail
    assert len(data) == size
    return data


@pytest.mark.parametrize(("extra", "accepted"), [(0, True), (1, False)], ids=["at", "over"])
def test_default_max_stanza_size_after_authentication(extra: int, accepted: bool) -> None:
    """Limits.max_stanza_size (262144 bytes) once authenticated."""
    server = ready_server()
    server.receive_data(exact_message(Limits().max_stanza_size + extra))
    events, error = drain(server)
    if accepted:
        assert error is None and [e for e in events if isinstance(e, StanzaReceived)]
    else:
        assert error is not None and error.condition is StreamErrorCondition.POLICY_VIOLATION
        assert not [e for e in events if isinstance(e, StanzaReceived)]


@pytest.mark.parametrize(
    ("extra", "condition"),
    [(0, StreamErrorCondition.NOT_AUTHORIZED), (1, StreamErrorCondition.POLICY_VIOLATION)],
    ids=["at", "over"],
)
def test_default_preauth_stanza_size_before_authentication(
    extra: int, condition: StreamErrorCondition
) -> None:
    """Limits.max_stanza_size_preauth (16384 bytes) until SASL succeeds: one byte
    over is policy-violation; at the limit the stanza is parsed, and refused for
    coming before authentication."""
    server = ServerConnection(
        ServerConfig(rng=seeded_rng(0), domains=frozenset({DOMAIN})), tls_active=True
    )
    server.receive_data(
        f"<stream:stream to='{DOMAIN}' version='1.0' xmlns='jabber:client' "
        "xmlns:stream='http://etherx.jabber.org/streams'>".encode()
        + exact_message(Limits().max_stanza_size_preauth + extra)
    )
    _, error = drain(server)
    assert error is not None and error.condition is condition


def test_default_max_auth_attempts_is_three() -> None:
    """Limits.max_auth_attempts is not in the TOML configuration: the server always
    uses the default, checked on the wire by test_security.py::
    test_repeated_failed_sasl_attempts_end_the_stream_with_policy_violation."""
    assert Limits().max_auth_attempts == 3


def blocking_router(max_items: int | None) -> tuple[Router, int]:
    service = (
        BlockingService(MemoryBlockStorage(), lambda contact, user: False)
        if max_items is None
        else BlockingService(MemoryBlockStorage(), lambda contact, user: False, max_items=max_items)
    )
    router = CommittingRouter(
        [DOMAIN], rng=seeded_rng(0), account_exists=lambda local, domain: True, services=[service]
    )
    router.bind(1, JULIET)
    return router, 1


def block_iq(jids: list[str]) -> Element:
    iq = Element("{jabber:client}iq", {"type": "set", "id": "b"})
    block = SubElement(iq, "{urn:xmpp:blocking}block")
    for jid in jids:
        SubElement(block, "{urn:xmpp:blocking}item", {"jid": jid})
    return iq


def test_blocklist_beyond_its_default_size_is_policy_violation() -> None:
    """BlockingService's max_items (1000, fixed: the server does not configure it)."""
    router, session = blocking_router(None)
    (answer,) = [
        e.element
        for e in router.route(session, block_iq([f"u{n}@{DOMAIN}" for n in range(1000)]))
        if isinstance(e, Deliver) and e.element.get("id") == "b"
    ]
    assert answer.get("type") == "result"
    (refused,) = [
        e.element
        for e in router.route(session, block_iq([f"one-more@{DOMAIN}"]))
        if isinstance(e, Deliver) and e.element.get("id") == "b"
    ]
    assert parse_error(refused).condition is StanzaErrorCondition.POLICY_VIOLATION


@pytest.mark.parametrize(
    ("item", "accepted"),
    [
        ("<item jid='romeo@capulet.example' name='{}'/>".format("n" * 1023), True),
        ("<item jid='romeo@capulet.example' name='{}'/>".format("n" * 1024), False),
        ("<item jid='romeo@capulet.example'><group>{}</group></item>".format("g" * 1024), False),
    ],
    ids=["name-at-limit", "name-over-limit", "group-over-limit"],
)
def test_roster_name_and_group_lengths_have_a_default_limit(item: str, accepted: bool) -> None:
    """RosterService's max_name_length / max_group_length (1023 characters, fixed:
    the server does not configure them; RFC 6121 §2.3.3 not-acceptable)."""
    from xml.etree.ElementTree import fromstring

    router = CommittingRouter(
        [DOMAIN],
        rng=seeded_rng(0),
        account_exists=lambda local, domain: True,
        services=[RosterService(MemoryRosterStorage())],
    )
    router.bind(1, JULIET)
    iq = fromstring(
        f"<iq xmlns='jabber:client' type='set' id='r'><query xmlns='jabber:iq:roster'>{item}"
        "</query></iq>"
    )
    (answer,) = [
        e.element
        for e in router.route(1, iq)
        if isinstance(e, Deliver) and e.element.get("id") == "r"
    ]
    if accepted:
        assert answer.get("type") == "result"
    else:
        assert parse_error(answer).condition is StanzaErrorCondition.NOT_ACCEPTABLE
