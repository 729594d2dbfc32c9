"""The client side of the modern login, sans I/O: SASL2 (XEP-0388) with the
XEPs' element shapes, Bind2 (XEP-0386) with inline SM enable and resume,
FAST (XEP-0484: token request, HT login, rotation, a refused token dropped
for the password on the same stream), XEP-0480 upgrade tasks through
``<continue/>``, XEP-0474 downgrade detection, XEP-0440 channel binding
choice; and the client role against our server role in pairs (hypothesis)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from xml.etree.ElementTree import Element

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xmpp_sansio.errors import RemoteProtocolError
from xmpp_sansio.jid import JID
from xmpp_sansio.sasl import ChannelBinding, choose_channel_binding
from xmpp_sansio.sasl.ht_client import HTClient
from xmpp_sansio.sm import SMState
from xmpp_sansio.stream.client_sasl2 import check_downgrade_hash
from xmpp_sansio.stream.config import ClientConfig, ServerConfig
from xmpp_sansio.stream.connection import ClientConnection, ServerConnection, State, TLSInfo
from xmpp_sansio.stream.events import (
    Authenticated,
    AuthenticationFailed,
    Event,
    ResourceBound,
    ResumeFailed,
    StreamManagementEnabled,
    StreamOpened,
    StreamResumed,
)
from xmpp_sansio.stream.login_options import (
    FastTokenAccepted,
    FastTokenGranted,
    FastTokenInvalidated,
    FastTokenRejected,
    LoginOptions,
    SavedFastToken,
)
from xmpp_sansio.testing import ConnectionPair, make_credentials, seeded_rng
from xmpp_sansio.xml.parser import StreamParser

S2 = "urn:xmpp:sasl:2"
UA = "d4565fa7-4d72-4749-b3d3-740edbf87770"  # XEP-0388 §2.3
ENDP = ChannelBinding("tls-server-end-point", b"\x07" * 32)
UNIQ = ChannelBinding("tls-unique", b"\x09" * 12)
SERVER_HEADER = (
    "<stream:stream from='example.org' id='s1' version='1.0' xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams'>"
)
PASSWORD = "pencil"


def q(ns: str, local: str) -> str:
    return "{" + ns + "}" + local


class Scripted:
    """Our client against a server played from the XEPs' examples."""

    def __init__(self, *, resume: SMState | None = None, **login: object) -> None:
        options = LoginOptions(user_agent_id=UA, software="AwesomeXMPP", **login)  # type: ignore[arg-type]
        self.client = ClientConnection(
            ClientConfig(
                rng=seeded_rng(1),
                jid=JID.parse("user@example.org"),
                password=PASSWORD,
                login=options,
            ),
            tls_active=True,
            tls_info=TLSInfo(channel_binding=ENDP),
            sm_state=resume,
        )
        self.parser = StreamParser()
        self.events: list[Event] = []
        self.error: RemoteProtocolError | None = None
        self.client.start()
        self.sent()  # the header
        self.client.receive_data(SERVER_HEADER.encode())

    def recv(self, xml: str) -> list[Element]:
        self.client.receive_data(xml.encode())
        try:
            while (event := self.client.next_event()) is not None:
                self.events.append(event)
        except RemoteProtocolError as exc:
            self.error = exc
        return self.sent()

    def sent(self) -> list[Element]:
        self.parser.feed(self.client.data_to_send())
        out = []
        while (event := self.parser.next_event()) is not None:
            if isinstance(event, Element):
                out.append(event)
        return out


def features(*, inline: str = "", mechanisms: tuple[str, ...] = ("PLAIN",), extra: str = "") -> str:
    mechs = "".join(f"<mechanism>{m}</mechanism>" for m in mechanisms)
    return (
        "<stream:features><authentication xmlns='urn:xmpp:sasl:2'>"
        f"{mechs}<inline>{inline}</inline>{extra}</authentication></stream:features>"
    )


# XEP-0386 §2.1 and XEP-0484 §2 (the server's inline features)
BIND2_INLINE = (
    "<bind xmlns='urn:xmpp:bind:0'><inline><feature var='urn:xmpp:carbons:2'/>"
    "<feature var='urn:xmpp:csi:0'/><feature var='urn:xmpp:sm:3'/></inline></bind>"
    "<sm xmlns='urn:xmpp:sm:3'/>"
)
FAST_INLINE = (
    "<fast xmlns='urn:xmpp:fast:0' tls-0rtt='true'><mechanism>HT-SHA-256-ENDP</mechanism>"
    "<mechanism>HT-SHA-256-EXPR</mechanism><mechanism>HT-SHA-256-NONE</mechanism></fast>"
)
POST_FEATURES = (
    "<stream:features><sm xmlns='urn:xmpp:sm:3'/><csi xmlns='urn:xmpp:csi:0'/></stream:features>"
)


def only(elements: list[Element]) -> Element:
    assert len(elements) == 1, elements
    return elements[0]


def test_password_login_requests_bind2_sm_carbons_and_a_fast_token_like_the_xeps() -> None:
    s = Scripted(carbons=True, inactive=True)
    auth = only(s.recv(features(inline=BIND2_INLINE + FAST_INLINE)))
    assert auth.tag == q(S2, "authenticate") and auth.get("mechanism") == "PLAIN"
    assert base64.b64decode(auth.findtext(q(S2, "initial-response")) or "") == b"\0user\0pencil"
    agent = auth.find(q(S2, "user-agent"))
    assert agent is not None and agent.get("id") == UA
    assert agent.findtext(q(S2, "software")) == "AwesomeXMPP"
    bind = auth.find(q("urn:xmpp:bind:0", "bind"))
    assert bind is not None and bind.findtext(q("urn:xmpp:bind:0", "tag")) == "AwesomeXMPP"
    assert [child.tag for child in bind][1:] == [
        q("urn:xmpp:sm:3", "enable"),
        q("urn:xmpp:carbons:2", "enable"),
        q("urn:xmpp:csi:0", "inactive"),
    ]
    assert bind.find(q("urn:xmpp:sm:3", "enable")).get("resume") == "true"  # type: ignore[union-attr]
    # the connection has tls-server-end-point only: ENDP (EXPR needs the exporter)
    request = auth.find(q("urn:xmpp:fast:0", "request-token"))
    assert request is not None and request.get("mechanism") == "HT-SHA-256-ENDP"
    # XEP-0386 §2.2 and XEP-0484 §3.2: success with bound, enabled and the token
    assert not s.recv(
        "<success xmlns='urn:xmpp:sasl:2'>"
        "<authorization-identifier>user@example.org/AwesomeXMPP.4232f4d4</authorization-identifier>"
        "<bound xmlns='urn:xmpp:bind:0'><metadata xmlns='urn:xmpp:mam:2'>"
        "<start id='YWxwaGEg' timestamp='2008-08-22T21:09:04Z'/></metadata>"
        "<enabled xmlns='urn:xmpp:sm:3' id='sm-1' resume='true'/></bound>"
        "<token xmlns='urn:xmpp:fast:0' expiry='2020-03-12T14:36:15Z'"
        " token='WXZzciBwYmFmdmZnZiBqdmd1IGp2eXFhcmZm'/>"
        "</success>"
    )
    assert s.client.state is State.AWAIT_FEATURES  # no restart: the features follow
    assert not s.recv(POST_FEATURES)  # nothing more to send: one round trip
    jid = JID.parse("user@example.org/AwesomeXMPP.4232f4d4")
    assert [e for e in s.events if not isinstance(e, StreamOpened)] == [
        FastTokenGranted(
            SavedFastToken(
                mechanism="HT-SHA-256-ENDP",
                token="WXZzciBwYmFmdmZnZiBqdmd1IGp2eXFhcmZm",
                expiry="2020-03-12T14:36:15Z",
            )
        ),
        Authenticated(JID.parse("user@example.org"), "PLAIN"),
        ResourceBound(jid),
        StreamManagementEnabled("sm-1", True, None, None),
    ]
    assert s.client.state is State.READY and s.client.jid == jid
    assert s.client.sm is not None and s.client.sm.resume and s.client.csi_offered


def test_a_jid_with_a_resource_binds_classically_after_sasl2_to_keep_it() -> None:
    s = Scripted()
    s.client.config = ClientConfig(
        rng=seeded_rng(1),
        jid=JID.parse("user@example.org/balcony"),
        password=PASSWORD,
        login=s.client.config.login,
    )
    auth = only(s.recv(features(inline=BIND2_INLINE)))
    assert auth.find(q("urn:xmpp:bind:0", "bind")) is None
    s.recv(
        "<success xmlns='urn:xmpp:sasl:2'>"
        "<authorization-identifier>user@example.org</authorization-identifier></success>"
    )
    iq = only(
        s.recv(
            "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>"
        )
    )
    assert (
        iq.findtext(
            "{urn:ietf:params:xml:ns:xmpp-bind}bind/{urn:ietf:params:xml:ns:xmpp-bind}resource"
        )
        == "balcony"
    )


def ht(token: str, label: bytes, cb: bytes = b"") -> bytes:
    return hmac.new(token.encode(), label + cb, hashlib.sha256).digest()


TOKEN = SavedFastToken(
    mechanism="HT-SHA-256-NONE", token="WXZzciBwYmFmdmZnZiBqdmd1IGp2eXFhcmZm", count=4
)


def test_a_fast_login_is_one_ht_exchange_with_count_and_bind2() -> None:
    s = Scripted(fast_token=TOKEN)
    auth = only(s.recv(features(inline=BIND2_INLINE + FAST_INLINE)))
    assert auth.get("mechanism") == "HT-SHA-256-NONE"
    initial = base64.b64decode(auth.findtext(q(S2, "initial-response")) or "")
    assert initial == b"user\0" + ht(TOKEN.token, b"Initiator")
    fast = auth.find(q("urn:xmpp:fast:0", "fast"))
    assert fast is not None and fast.get("count") == "5"
    assert auth.find(q("urn:xmpp:fast:0", "request-token")) is None
    proof = base64.b64encode(ht(TOKEN.token, b"Responder")).decode()
    s.recv(
        f"<success xmlns='urn:xmpp:sasl:2'><additional-data>{proof}</additional-data>"
        "<authorization-identifier>user@example.org/AwesomeXMPP.1</authorization-identifier>"
        "<bound xmlns='urn:xmpp:bind:0'/></success>"
    )
    s.recv(POST_FEATURES)
    assert (
        FastTokenAccepted(SavedFastToken(mechanism=TOKEN.mechanism, token=TOKEN.token, count=5))
        in s.events
    )
    assert s.client.state is State.READY


def test_a_rotated_token_replaces_the_used_one() -> None:
    s = Scripted(fast_token=TOKEN)
    s.recv(features(inline=FAST_INLINE))
    proof = base64.b64encode(ht(TOKEN.token, b"Responder")).decode()
    s.recv(
        f"<success xmlns='urn:xmpp:sasl:2'><additional-data>{proof}</additional-data>"
        "<authorization-identifier>user@example.org</authorization-identifier>"
        "<token xmlns='urn:xmpp:fast:0' expiry='2020-03-31T14:36:15Z'"
        " token='R3VyIHpiZmcgbnl2aXIgdmYgZ3VyIGp2eXFyZmcu'/></success>"
    )
    (issued,) = [e for e in s.events if isinstance(e, FastTokenGranted)]
    assert issued.token.mechanism == "HT-SHA-256-NONE"
    assert issued.token.token == "R3VyIHpiZmcgbnl2aXIgdmYgZ3VyIGp2eXFyZmcu"


def test_a_refused_token_is_dropped_and_the_password_logs_in_on_the_same_stream() -> None:
    s = Scripted(fast_token=TOKEN)
    s.recv(features(inline=BIND2_INLINE + FAST_INLINE))
    retry = only(
        s.recv(
            "<failure xmlns='urn:xmpp:sasl:2'>"
            "<not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/></failure>"
        )
    )
    assert FastTokenRejected("HT-SHA-256-NONE", "not-authorized") in s.events
    assert retry.get("mechanism") == "PLAIN"
    request = retry.find(q("urn:xmpp:fast:0", "request-token"))
    assert request is not None  # a fresh token for next time
    assert s.client.config.login.fast_token is None
    assert not any(isinstance(e, AuthenticationFailed) for e in s.events)


def test_invalidating_the_token_logs_in_once_more_and_forgets_it() -> None:
    s = Scripted(fast_token=TOKEN, invalidate_token=True)
    auth = only(s.recv(features(inline=FAST_INLINE)))
    fast = auth.find(q("urn:xmpp:fast:0", "fast"))
    assert fast is not None and fast.get("invalidate") == "true"  # XEP-0484 §3.5
    assert auth.find(q("urn:xmpp:fast:0", "request-token")) is None
    proof = base64.b64encode(ht(TOKEN.token, b"Responder")).decode()
    s.recv(
        f"<success xmlns='urn:xmpp:sasl:2'><additional-data>{proof}</additional-data>"
        "<authorization-identifier>user@example.org</authorization-identifier></success>"
    )
    assert FastTokenInvalidated("HT-SHA-256-NONE") in s.events
    assert not any(isinstance(e, FastTokenAccepted) for e in s.events)


def test_a_server_that_cannot_prove_the_token_is_not_trusted() -> None:
    s = Scripted(fast_token=TOKEN)
    s.recv(features(inline=FAST_INLINE))
    wrong = base64.b64encode(ht("another", b"Responder")).decode()
    s.recv(
        f"<success xmlns='urn:xmpp:sasl:2'><additional-data>{wrong}</additional-data>"
        "<authorization-identifier>user@example.org</authorization-identifier></success>"
    )
    assert any(
        isinstance(e, AuthenticationFailed) and e.condition == "server-not-verified"
        for e in s.events
    )
    assert not s.client.authenticated and s.client.state is not State.READY


def test_a_token_for_a_mechanism_no_longer_offered_is_not_used() -> None:
    s = Scripted(fast_token=TOKEN)
    auth = only(
        s.recv(
            features(
                inline="<fast xmlns='urn:xmpp:fast:0'><mechanism>HT-SHA-256-ENDP</mechanism></fast>"
            )
        )
    )
    assert auth.get("mechanism") == "PLAIN"


def resumable() -> SMState:
    sm = SMState(jid=JID.parse("user@example.org/AwesomeXMPP.1"))
    sm.id, sm.resume, sm.inbound = "124", True, 7
    return sm


def test_resume_goes_inline_and_a_resumed_session_is_ready_in_one_round_trip() -> None:
    s = Scripted(resume=resumable())
    auth = only(s.recv(features(inline=BIND2_INLINE)))
    resume = auth.find(q("urn:xmpp:sm:3", "resume"))
    assert resume is not None and resume.get("previd") == "124" and resume.get("h") == "7"
    assert auth.find(q("urn:xmpp:bind:0", "bind")) is not None  # used if resume fails
    # XEP-0388 §2.6.1, "Successful re-authentication and resumption"
    s.recv(
        "<success xmlns='urn:xmpp:sasl:2'>"
        "<authorization-identifier>user@example.org</authorization-identifier>"
        "<resumed xmlns='urn:xmpp:sm:3' h='0' previd='124'/></success>"
    )
    assert not s.recv(POST_FEATURES)
    assert s.client.state is State.READY
    assert any(isinstance(e, StreamResumed) for e in s.events)


def test_a_failed_inline_resume_falls_back_to_the_inline_bind() -> None:
    s = Scripted(resume=resumable())
    s.recv(features(inline=BIND2_INLINE))
    s.recv(
        "<success xmlns='urn:xmpp:sasl:2'>"
        "<authorization-identifier>user@example.org/AwesomeXMPP.2</authorization-identifier>"
        "<failed xmlns='urn:xmpp:sm:3'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"
        "<bound xmlns='urn:xmpp:bind:0'/></success>"
    )
    s.recv(POST_FEATURES)
    kinds = [type(e) for e in s.events]
    assert ResumeFailed in kinds and ResourceBound in kinds
    assert s.client.state is State.READY


def test_the_xep_failure_example_fails_the_login() -> None:
    s = Scripted()
    s.recv(features())
    s.recv(
        "<failure xmlns='urn:xmpp:sasl:2'><aborted xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
        "<optional-application-specific xmlns='urn:something:else'/>"
        "<text>This is a terrible example.</text></failure>"
    )
    assert AuthenticationFailed("aborted", "This is a terrible example.") in s.events


def test_success_for_another_account_is_a_stream_error() -> None:
    s = Scripted()
    s.recv(features())
    s.recv(
        "<success xmlns='urn:xmpp:sasl:2'>"
        "<authorization-identifier>mallory@example.org</authorization-identifier></success>"
    )
    assert s.error is not None and not s.client.authenticated


def test_an_upgrade_task_answers_the_salt_with_the_salted_password() -> None:
    s = Scripted()
    auth = only(
        s.recv(
            features(
                extra="<upgrade xmlns='urn:xmpp:sasl:upgrade:0'>UPGR-SCRAM-SHA-256</upgrade>"
                "<upgrade xmlns='urn:xmpp:sasl:upgrade:0'>UPGR-BLOOP2</upgrade>"
            )
        )
    )
    assert [u.text for u in auth.iterfind(q("urn:xmpp:sasl:upgrade:0", "upgrade"))] == [
        "UPGR-SCRAM-SHA-256"
    ]
    # XEP-0480 §4, the SCRAM hash upgrade example
    nxt = only(
        s.recv(
            "<continue xmlns='urn:xmpp:sasl:2'><tasks><task>UPGR-SCRAM-SHA-256</task></tasks></continue>"
        )
    )
    assert nxt.tag == q(S2, "next") and nxt.get("task") == "UPGR-SCRAM-SHA-256"
    salt = "QV9TWENSWFE2c2VrOGJmX1o="
    data = only(
        s.recv(
            "<task-data xmlns='urn:xmpp:sasl:2'><salt xmlns='urn:xmpp:scram-upgrade:0'"
            f" iterations='4096'>{salt}</salt></task-data>"
        )
    )
    expected = hashlib.pbkdf2_hmac("sha256", b"pencil", base64.b64decode(salt), 4096)
    assert base64.b64decode(data.findtext(q("urn:xmpp:scram-upgrade:0", "hash")) or "") == expected
    s.recv(
        "<success xmlns='urn:xmpp:sasl:2'>"
        "<authorization-identifier>user@example.org</authorization-identifier></success>"
    )
    assert any(isinstance(e, Authenticated) for e in s.events)


def test_an_unknown_task_is_aborted() -> None:
    s = Scripted()
    s.recv(features())
    abort = only(
        s.recv(
            "<continue xmlns='urn:xmpp:sasl:2'><tasks><task>TOTP-EXAMPLE</task></tasks></continue>"
        )
    )
    assert abort.tag == q(S2, "abort")
    assert any(isinstance(e, AuthenticationFailed) and e.condition == "aborted" for e in s.events)


# XEP-0474 §4: 'SCRAM-SHA-1\x1eSCRAM-SHA-1-PLUS\x1ftls-exporter\x1etls-server-end-point'
SERVER_FIRST = (
    b"r=12C4CD5C-E38E-4A98-8F6D-15C38F51CCC6a09117a6-ac50-4f2f-93f1-93799c2bddf6,"
    b"s=QSXCR+Q6sek8bf92,i=4096,h=G6k/rBLDqgOhRRaCuuatSDFkJ08="
)


def test_the_downgrade_hash_of_the_xep_example_matches() -> None:
    mechanisms = ["SCRAM-SHA-1", "SCRAM-SHA-1-PLUS"]
    cbs = frozenset({"tls-exporter", "tls-server-end-point"})
    assert check_downgrade_hash("SCRAM-SHA-1-PLUS", SERVER_FIRST, mechanisms, cbs) is None


@pytest.mark.parametrize(
    ("mechanisms", "cbs"),
    [
        (["SCRAM-SHA-1"], frozenset({"tls-exporter", "tls-server-end-point"})),  # -PLUS stripped
        (["SCRAM-SHA-1", "SCRAM-SHA-1-PLUS"], frozenset({"tls-server-end-point"})),  # cb stripped
        (["SCRAM-SHA-1", "SCRAM-SHA-1-PLUS"], None),  # XEP-0440 stripped
    ],
)
def test_a_stripped_offer_is_detected(mechanisms: list[str], cbs: frozenset[str] | None) -> None:
    assert check_downgrade_hash("SCRAM-SHA-1", SERVER_FIRST, mechanisms, cbs) is not None


def test_a_stripped_offer_aborts_a_scram_login_on_the_stream() -> None:
    s = Scripted()
    # the MITM stripped SCRAM-SHA-256-PLUS; the server's hash covers it
    s.recv(features(mechanisms=("SCRAM-SHA-256",)))
    honest = hashlib.sha256(b"SCRAM-SHA-256\x1eSCRAM-SHA-256-PLUS").digest()
    first = b"r=x,s=QSXCR+Q6sek8bf92,i=4096,h=" + base64.b64encode(honest)
    s.recv(f"<challenge xmlns='urn:xmpp:sasl:2'>{base64.b64encode(first).decode()}</challenge>")
    assert any(
        isinstance(e, AuthenticationFailed)
        and e.condition == "server-not-verified"
        and "0474" in (e.text or "")
        for e in s.events
    )


def test_the_client_picks_the_strongest_binding_both_sides_have() -> None:
    both = (ENDP, UNIQ)
    assert choose_channel_binding(both, frozenset({"tls-unique", "tls-server-end-point"})) == UNIQ
    assert choose_channel_binding(both, frozenset({"tls-server-end-point"})) == ENDP
    assert choose_channel_binding(both, frozenset({"tls-exporter"})) is None
    assert choose_channel_binding(both, None) == ENDP
    assert choose_channel_binding((), None) is None
    only_endp = ("tls-server-end-point",)
    assert (
        choose_channel_binding(both, frozenset({"tls-unique", "tls-server-end-point"}), only_endp)
        == ENDP
    )
    assert choose_channel_binding((UNIQ,), None, only_endp) is None
    assert choose_channel_binding((UNIQ,), None) == UNIQ


def test_ht_client_refuses_a_missing_binding() -> None:
    with pytest.raises(ValueError):
        HTClient("HT-SHA-256-ENDP", username="user", token="t")
    with pytest.raises(ValueError):
        HTClient("HT-SHA-256-ENDP", username="user", token="t", channel_binding=UNIQ)
    client = HTClient("HT-SHA-256-ENDP", username="user", token="t", channel_binding=ENDP)
    assert client.initial_response() == b"user\0" + ht("t", b"Initiator", ENDP.data)


# -- client role <-> server role ---------------------------------------------


def pair(
    *,
    server_sasl2: bool,
    client_sasl2: bool = True,
    bindings: tuple[ChannelBinding, ...] = (ENDP,),
    mechanisms: tuple[str, ...] | None = None,
    framing: str = "tcp",
) -> ConnectionPair:
    client = ClientConnection(
        ClientConfig(
            rng=seeded_rng(3),
            jid=JID.parse("juliet@capulet.example"),
            password="r0m30myr0m30",
            mechanisms=mechanisms,
            login=LoginOptions(sasl2=client_sasl2, user_agent_id=UA),
        )
    )
    server = ServerConnection(
        ServerConfig(rng=seeded_rng(4), domains=frozenset({"capulet.example"}), sasl2=server_sasl2)
    )
    p = ConnectionPair(
        client, server, make_credentials({"juliet": "r0m30myr0m30"}), framing=framing
    )
    p.channel_binding = bindings[0] if bindings else None
    client.start()
    p.pump()
    return p


def test_against_our_server_with_sasl2_the_client_uses_it_and_binds() -> None:
    p = pair(server_sasl2=True)
    (auth,) = [e for e in p.server_events if isinstance(e, Authenticated)]
    assert auth.user_agent is not None and auth.user_agent.id == UA  # only SASL2 carries it
    assert p.client.state is State.READY


def test_against_our_server_without_sasl2_the_client_falls_back_to_rfc6120() -> None:
    p = pair(server_sasl2=False)
    (auth,) = [e for e in p.server_events if isinstance(e, Authenticated)]
    assert auth.user_agent is None and p.client.state is State.READY


def test_with_tls_unique_on_both_sides_the_client_binds_to_it() -> None:
    client = ClientConnection(
        ClientConfig(
            rng=seeded_rng(3), jid=JID.parse("juliet@capulet.example"), password="r0m30myr0m30"
        )
    )
    server = ServerConnection(
        ServerConfig(rng=seeded_rng(4), domains=frozenset({"capulet.example"}))
    )
    p = ConnectionPair(client, server, make_credentials({"juliet": "r0m30myr0m30"}))
    info = TLSInfo(channel_binding=ENDP, more_channel_bindings=(UNIQ,))
    p._tls_ready = lambda: False  # type: ignore[method-assign]
    client.start()
    for _ in range(20):  # TLS by hand, both sides with both bindings
        p.pump()
        if client.state is State.TLS_PENDING:
            server.tls_established(info)
            client.tls_established(info)
    (auth,) = [e for e in p.server_events if isinstance(e, Authenticated)]
    assert auth.mechanism == "SCRAM-SHA-256-PLUS"
    assert client._mechanism is not None and client._mechanism._cbind_input.startswith(
        b"p=tls-unique,"
    )  # type: ignore[attr-defined]


@settings(max_examples=30, deadline=None)
@given(
    server_sasl2=st.booleans(),
    client_sasl2=st.booleans(),
    mechanisms=st.sampled_from(
        [None, ("PLAIN",), ("SCRAM-SHA-1",), ("SCRAM-SHA-256-PLUS",), ("SCRAM-SHA-512",)]
    ),
    framing=st.sampled_from(["tcp", "websocket"]),
)
def test_any_client_and_server_choice_logs_in_and_binds(
    server_sasl2: bool, client_sasl2: bool, mechanisms: tuple[str, ...] | None, framing: str
) -> None:
    p = pair(
        server_sasl2=server_sasl2, client_sasl2=client_sasl2, mechanisms=mechanisms, framing=framing
    )
    assert p.client_error is None and p.server_error is None
    assert p.client.state is State.READY
    (auth,) = [e for e in p.server_events if isinstance(e, Authenticated)]
    assert (auth.user_agent is not None) == (server_sasl2 and client_sasl2)
    assert [e.jid.bare for e in p.client_events if isinstance(e, ResourceBound)] == [
        JID.parse("juliet@capulet.example")
    ]


# -- bad input: a defined answer, never a traceback --------------------------

_B64 = st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode())
_TEXT = st.sampled_from(["", "!!", "user@example.org", "user@example.org/r", "@", "x" * 30])
_SERVER_ELEMENTS = st.one_of(
    _B64.map(lambda d: f"<challenge xmlns='urn:xmpp:sasl:2'>{d}</challenge>"),
    st.tuples(_B64, _TEXT, st.booleans(), st.booleans()).map(
        lambda t: (
            "<success xmlns='urn:xmpp:sasl:2'>"
            f"<additional-data>{t[0]}</additional-data>"
            f"<authorization-identifier>{t[1]}</authorization-identifier>"
            + (
                "<bound xmlns='urn:xmpp:bind:0'><enabled xmlns='urn:xmpp:sm:3'/></bound>"
                if t[2]
                else ""
            )
            + ("<resumed xmlns='urn:xmpp:sm:3' h='x'/>" if t[3] else "")
            + "</success>"
        )
    ),
    _TEXT.map(lambda t: f"<failure xmlns='urn:xmpp:sasl:2'><text>{t}</text></failure>"),
    _TEXT.map(
        lambda t: f"<continue xmlns='urn:xmpp:sasl:2'><tasks><task>{t}</task></tasks></continue>"
    ),
    st.tuples(_B64, st.sampled_from(["4096", "-1", "x", "99999999999"])).map(
        lambda t: (
            "<task-data xmlns='urn:xmpp:sasl:2'><salt xmlns='urn:xmpp:scram-upgrade:0'"
            f" iterations='{t[1]}'>{t[0]}</salt></task-data>"
        )
    ),
    st.just(POST_FEATURES),
    st.just("<stream:features/>"),
)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["PLAIN", "SCRAM-SHA-256"]),
    st.booleans(),
    st.lists(_SERVER_ELEMENTS, min_size=1, max_size=5),
)
def test_any_server_answer_during_sasl2_gets_a_defined_outcome(
    mechanism: str, with_token: bool, answers: list[str]
) -> None:
    s = Scripted(fast_token=TOKEN if with_token else None, resume=resumable())
    s.recv(
        features(
            mechanisms=(mechanism,),
            inline=BIND2_INLINE + FAST_INLINE,
            extra="<upgrade xmlns='urn:xmpp:sasl:upgrade:0'>UPGR-SCRAM-SHA-256</upgrade>",
        )
    )
    for answer in answers:
        if s.error is not None or s.client.state in (State.CLOSED, State.ERROR):
            break
        s.recv(answer)  # raises nothing but RemoteProtocolError (caught in recv)
    if s.client.state is State.READY:  # only a checked success makes it ready
        assert s.client.authenticated and s.client.jid is not None and s.client.jid.resource
