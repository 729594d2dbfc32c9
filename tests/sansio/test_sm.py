"""Stream Management (XEP-0198) and Client State Indication (XEP-0352), sans I/O.

The pure state (counters, the unacked queue, wrap-around at 2**32, nonza
codecs) is tested alone; the protocol is tested on client and server
connections wired back to back (``ConnectionPair``), and on the server alone
with exact transcripts where the client would not misbehave on its own.
"""

from __future__ import annotations

import base64
import itertools
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xmpp_sansio.errors import LocalProtocolError, RemoteProtocolError, StreamErrorCondition
from xmpp_sansio.jid import JID
from xmpp_sansio.sm import (
    MODULUS,
    Ack,
    AckRequest,
    AckRequestPolicy,
    Enable,
    Enabled,
    Failed,
    HandledCountTooHigh,
    PresenceHold,
    Resume,
    Resumed,
    SMParseError,
    SMState,
    build_nonza,
    parse_nonza,
)
from xmpp_sansio.stream.config import ClientConfig, ServerConfig
from xmpp_sansio.stream.connection import ClientConnection, ServerConnection, State
from xmpp_sansio.stream.events import (
    ClientStateChanged,
    CredentialsRequested,
    DerivationRequested,
    ResourceBound,
    ResumeFailed,
    ResumeRequested,
    StanzaReceived,
    StanzasAcknowledged,
    StreamManagementEnabled,
    StreamManagementFailed,
    StreamResumed,
)
from xmpp_sansio.testing import ConnectionPair, derive, make_credentials, seeded_rng
from xmpp_sansio.xml.writer import serialize

PASSWORDS = {"juliet": "r0m30myr0m30"}
LOOKUP = make_credentials(PASSWORDS)
DOMAIN = "capulet.example"
JULIET = "juliet@capulet.example/balcony"
SM = "urn:xmpp:sm:3"
HEADER = (
    b"<?xml version='1.0'?><stream:stream to='capulet.example' version='1.0' "
    b"xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
)

# Every ConnectionPair transcript runs over TCP and RFC 7395 WebSocket framing.
pytestmark = pytest.mark.usefixtures("any_framing")


# -- helpers ---------------------------------------------------------------------------


#: each config its own rng: SM-IDs and nonces differ between streams
_SEEDS = itertools.count()


def server_config(**kw: object) -> ServerConfig:
    kw.setdefault("sm_resume_timeout", 300.0)
    return ServerConfig(rng=seeded_rng(next(_SEEDS)), domains=frozenset({DOMAIN}), **kw)  # type: ignore[arg-type]


def client_config(**kw: object) -> ClientConfig:
    return ClientConfig(
        rng=seeded_rng(next(_SEEDS)), jid=JID.parse(JULIET), password=PASSWORDS["juliet"], **kw
    )  # type: ignore[arg-type]


def make_pair(
    *,
    chunk: int | None = None,
    sm_state: SMState | None = None,
    client_kw: dict[str, object] | None = None,
    server_kw: dict[str, object] | None = None,
) -> ConnectionPair:
    client = ClientConnection(client_config(**(client_kw or {})), sm_state=sm_state)
    server = ServerConnection(server_config(**(server_kw or {})))
    pair = ConnectionPair(client, server, LOOKUP, chunk=chunk)
    client.start()
    return pair


def ready_pair(**kw: object) -> ConnectionPair:
    pair = make_pair(**kw)  # type: ignore[arg-type]
    pair.pump()
    assert pair.client_error is None and pair.server_error is None
    return pair


def record(conn: ClientConnection | ServerConnection) -> list[bytes]:
    """Record everything ``conn`` sends from now on."""
    sent: list[bytes] = []
    original = conn.data_to_send

    def spy() -> bytes:
        data = original()
        if data:
            sent.append(data)
        return data

    original_messages = conn.messages_to_send

    def spy_messages() -> list[bytes]:  # the WebSocket framing sends messages
        messages = original_messages()
        sent.extend(messages)
        return messages

    conn.data_to_send = spy  # type: ignore[method-assign]
    conn.messages_to_send = spy_messages  # type: ignore[method-assign]
    return sent


def of_type(events: Sequence[object], kind: type) -> list[object]:
    return [e for e in events if isinstance(e, kind)]


def message(body: str, **attrs: str) -> ET.Element:
    msg = ET.Element("{jabber:client}message", {"type": "chat", **attrs})
    ET.SubElement(msg, "{jabber:client}body").text = body
    return msg


def presence(sender: str, status: str | None = None, type_: str | None = None) -> ET.Element:
    attrs = {"from": sender}
    if type_ is not None:
        attrs["type"] = type_
    pres = ET.Element("{jabber:client}presence", attrs)
    if status is not None:
        ET.SubElement(pres, "{jabber:client}status").text = status
    return pres


def bodies(events: Sequence[object]) -> list[str]:
    return [
        e.element.findtext("{jabber:client}body") or ""  # type: ignore[attr-defined]
        for e in of_type(events, StanzaReceived)
        if e.element.tag == "{jabber:client}message"  # type: ignore[attr-defined]
    ]


def statuses(events: Sequence[object]) -> list[str]:
    return [
        e.element.findtext("{jabber:client}status") or ""  # type: ignore[attr-defined]
        for e in of_type(events, StanzaReceived)
        if e.element.tag == "{jabber:client}presence"  # type: ignore[attr-defined]
    ]


def drain(conn: ServerConnection) -> list[object]:
    events: list[object] = []
    try:
        while (event := conn.next_event()) is not None:
            events.append(event)
            if isinstance(event, CredentialsRequested):
                conn.provide_credentials(LOOKUP(event.username, event.hash_name))
            elif isinstance(event, DerivationRequested):
                conn.provide_derived(derive(event))
    except RemoteProtocolError as exc:
        events.append(exc)
    return events


def feed(conn: ServerConnection, data: bytes) -> tuple[bytes, list[object]]:
    conn.receive_data(data)
    events = drain(conn)
    return conn.data_to_send(), events


def authenticated_server(**kw: object) -> ServerConnection:
    """A server over direct TLS that authenticated juliet with PLAIN and sent its
    post-authentication features: it waits for bind (or resume)."""
    server = ServerConnection(server_config(**kw), tls_active=True)
    feed(server, HEADER)
    token = base64.b64encode(b"\0juliet\0" + PASSWORDS["juliet"].encode())
    out, _ = feed(
        server,
        b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + token + b"</auth>",
    )
    assert b"<success" in out
    out, _ = feed(server, HEADER)
    assert b"<bind" in out
    return server


BIND = (
    b"<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
    b"<resource>balcony</resource></bind></iq>"
)


def bound_server(**kw: object) -> ServerConnection:
    server = authenticated_server(**kw)
    _, events = feed(server, BIND)
    assert of_type(events, ResourceBound) and server.state is State.READY
    return server


def wire_condition(data: bytes) -> str | None:
    found = re.search(
        rb'<stream:error><([a-z-]+) xmlns="urn:ietf:params:xml:ns:xmpp-streams"', data
    )
    return found.group(1).decode() if found else None


# -- the pure state ------------------------------------------------------------------------


def test_counters_and_queue() -> None:
    state = SMState()
    stanzas = [message(str(i)) for i in range(4)]
    for i, stanza in enumerate(stanzas, 1):
        assert state.record_outbound(stanza) == i
    assert state.acked == 0 and state.unacked == tuple(stanzas)
    assert state.ack(3) == tuple(stanzas[:3])
    assert state.acked == 3 and state.unacked == (stanzas[3],)
    assert state.ack(3) == ()  # the same h again acknowledges nothing new
    assert state.count_inbound() == 1 and state.inbound == 1


def test_counters_wrap_at_2_to_the_32() -> None:
    """XEP-0198 §4: h goes from 2**32 - 1 back to zero, not to 2**32."""
    state = SMState(inbound=MODULUS - 1, outbound=MODULUS - 2)
    assert state.count_inbound() == 0
    sent = [message(str(i)) for i in range(4)]
    assert [state.record_outbound(s) for s in sent] == [MODULUS - 1, 0, 1, 2]
    assert state.acked == MODULUS - 2
    assert state.ack(MODULUS - 1) == (sent[0],)
    assert state.ack(1) == tuple(sent[1:3])
    assert state.ack(2) == (sent[3],)
    assert not state.queue and state.acked == 2


def test_h_too_high_and_h_going_backwards_are_errors_that_keep_the_queue() -> None:
    state = SMState(outbound=MODULUS - 1)
    state.record_outbound(message("a"))
    state.record_outbound(message("b"))  # sent: MODULUS-1 + 2 = 1 (mod 2**32)
    with pytest.raises(HandledCountTooHigh) as info:
        state.ack(2)
    assert (info.value.h, info.value.send_count) == (2, 1)
    with pytest.raises(HandledCountTooHigh):
        state.ack(MODULUS - 2)  # below the last acknowledged: "too high" mod 2**32
    with pytest.raises(HandledCountTooHigh):
        state.ack(MODULUS)
    assert len(state.queue) == 2
    assert len(state.ack(1)) == 2


def test_state_validates_counters() -> None:
    with pytest.raises(ValueError):
        SMState(inbound=MODULUS)
    with pytest.raises(ValueError):
        SMState(outbound=-1)


def test_take_unacked_empties_the_queue() -> None:
    state = SMState()
    state.record_outbound(message("x"))
    (taken,) = state.take_unacked()
    assert taken.findtext("{jabber:client}body") == "x"
    assert not state.queue and state.acked == state.outbound == 1


def test_receipts_are_confirmed_when_their_stanzas_are_acknowledged() -> None:
    state = SMState(outbound=MODULUS - 1)  # across the wrap too
    sent = [message(str(i)) for i in range(4)]
    for stanza in sent:
        state.record_outbound(stanza)
    state.attach_receipt(sent[1], "r1")
    state.attach_receipt(sent[3], "r3")
    state.ack(0)  # the first stanza only
    assert state.take_confirmed() == []
    state.ack(1)
    assert state.take_confirmed() == ["r1"]
    assert state.take_confirmed() == []
    (_, last) = state.take_unacked()
    assert state.take_receipt(last) == "r3"  # the caller keeps it from being routed again
    assert state.take_receipt(last) is None


@given(st.lists(st.booleans(), max_size=30), st.lists(st.integers(0, 30), max_size=10))
def test_every_receipt_is_confirmed_once_in_order_or_left_with_its_stanza(
    marks: list[bool], acks: list[int]
) -> None:
    state = SMState()
    stanzas = [message(str(i)) for i in range(len(marks))]
    for i, (stanza, marked) in enumerate(zip(stanzas, marks, strict=True)):
        state.record_outbound(stanza)
        if marked:
            state.attach_receipt(stanza, i)
    confirmed: list[object] = []
    for h in sorted(min(a, len(marks)) for a in acks):
        state.ack(h)
        confirmed.extend(state.take_confirmed())
    left = [state.take_receipt(s) for s in state.take_unacked()]
    expected = [i for i, marked in enumerate(marks) if marked]
    assert confirmed + [r for r in left if r is not None] == expected


def test_request_policy() -> None:
    policy = AckRequestPolicy(every=3, on_flush=False)
    state = SMState()
    state.record_outbound(message("1"))
    assert not policy.due(state, flushing=True)
    state.record_outbound(message("2"))
    state.record_outbound(message("3"))
    assert policy.due(state, flushing=False)
    state.mark_requested()
    assert not policy.due(state, flushing=False)
    state.record_outbound(message("4"))
    assert AckRequestPolicy(every=3).due(state, flushing=True)
    state.ack(state.outbound)  # everything acknowledged: nothing to ask about
    assert not AckRequestPolicy(every=1).due(state, flushing=True)
    with pytest.raises(ValueError):
        AckRequestPolicy(every=0)


NONZAS = [
    Enable(),
    Enable(resume=True, max=60),
    Enabled(),
    Enabled("some-long-sm-id", True, 300, "[2001:41D0:1:A49b::1]:9222"),
    Resume("some-long-sm-id", 7),
    Resumed("some-long-sm-id", MODULUS - 1),
    Failed("item-not-found", 3),
    Failed("unexpected-request"),
    Failed(),
    AckRequest(),
    Ack(0),
]


@pytest.mark.parametrize("nonza", NONZAS, ids=repr)
def test_nonzas_round_trip(nonza: object) -> None:
    assert parse_nonza(build_nonza(nonza)) == nonza  # type: ignore[arg-type]


def test_nonza_wire_forms() -> None:
    assert (
        serialize(build_nonza(Enable(resume=True)))
        == b'<enable xmlns="urn:xmpp:sm:3" resume="true"/>'
    )
    assert serialize(build_nonza(Ack(5))) == b'<a xmlns="urn:xmpp:sm:3" h="5"/>'
    assert serialize(build_nonza(Failed("item-not-found", 2))) == (
        b'<failed xmlns="urn:xmpp:sm:3" h="2">'
        b'<item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></failed>'
    )


@pytest.mark.parametrize(
    "xml",
    [
        "<a xmlns='urn:xmpp:sm:3'/>",
        "<a xmlns='urn:xmpp:sm:3' h='-1'/>",
        "<a xmlns='urn:xmpp:sm:3' h='4294967296'/>",
        "<a xmlns='urn:xmpp:sm:3' h='1e3'/>",
        "<a xmlns='urn:xmpp:sm:3' h='&#x663;'/>",
        "<resume xmlns='urn:xmpp:sm:3' h='1'/>",
        "<resumed xmlns='urn:xmpp:sm:3' previd='x'/>",
        "<enable xmlns='urn:xmpp:sm:3' resume='yes'/>",
        "<nonsense xmlns='urn:xmpp:sm:3'/>",
        "<a xmlns='urn:xmpp:sm:2' h='1'/>",
    ],
)
def test_malformed_nonzas_are_rejected(xml: str) -> None:
    with pytest.raises(SMParseError):
        parse_nonza(ET.fromstring(xml))


def test_boolean_forms_are_xs_boolean() -> None:
    assert parse_nonza(ET.fromstring("<enable xmlns='urn:xmpp:sm:3' resume='1'/>")) == Enable(True)
    assert parse_nonza(ET.fromstring("<enabled xmlns='urn:xmpp:sm:3' resume='0'/>")) == Enabled()


def test_presence_hold_keeps_the_latest_update_per_sender() -> None:
    hold = PresenceHold()
    assert hold.offer(presence("a@x/1", "one")) == []
    msg = message("never held")
    assert hold.offer(msg) == [msg]
    assert hold.offer(presence("b@x/1", "b")) == []
    assert hold.offer(presence("a@x/1", "two")) == []
    assert len(hold) == 2
    subscribe = presence("b@x", type_="subscribe")
    assert hold.offer(subscribe) == [subscribe]  # another sender: nothing released
    error = presence("b@x/1", type_="error")
    released = hold.offer(error)
    assert [p.findtext("{jabber:client}status") for p in released] == ["b", None]
    assert [p.findtext("{jabber:client}status") for p in hold.flush()] == ["two"]
    assert hold.flush() == []


# -- enabling -------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [None, 1, 7])
def test_client_enables_resumable_sm_after_binding(chunk: int | None) -> None:
    pair = make_pair(chunk=chunk)
    client_out = record(pair.client)
    server_out = record(pair.server)
    pair.pump()
    assert b'<sm xmlns="urn:xmpp:sm:3"/>' in b"".join(server_out)
    assert b'<csi xmlns="urn:xmpp:csi:0"/>' in b"".join(server_out)
    assert b'<enable xmlns="urn:xmpp:sm:3" resume="true"/>' in b"".join(client_out)
    (server_enabled,) = of_type(pair.server_events, StreamManagementEnabled)
    (client_enabled,) = of_type(pair.client_events, StreamManagementEnabled)
    assert server_enabled == client_enabled
    assert client_enabled.resume and client_enabled.max == 300  # type: ignore[attr-defined]
    assert len(client_enabled.id) == 32  # type: ignore[attr-defined]  # 128 random bits
    assert pair.client.sm_enabled and pair.server.sm_enabled
    assert pair.client.sm is not None and pair.client.sm.jid == JID.parse(JULIET)
    assert pair.server.sm is not None and pair.server.sm.id == pair.client.sm.id
    assert of_type(pair.client_events, ResourceBound)


def test_sm_ids_are_not_reused() -> None:
    ids = {ready_pair().client.sm.id for _ in range(3)}  # type: ignore[union-attr]
    assert len(ids) == 3


def test_without_resumption_the_server_enables_plain_acking() -> None:
    pair = ready_pair(server_kw={"sm_resume_timeout": 0})
    (enabled,) = of_type(pair.client_events, StreamManagementEnabled)
    assert enabled == StreamManagementEnabled(None, False, None, None)
    assert pair.server.sm is not None and not pair.server.sm.resume


def test_client_max_preference_shortens_the_resumption_time() -> None:
    pair = ready_pair(client_kw={"sm_max": 60})
    (enabled,) = of_type(pair.server_events, StreamManagementEnabled)
    assert enabled.max == 60  # type: ignore[attr-defined]


def test_client_can_turn_sm_off() -> None:
    pair = ready_pair(client_kw={"stream_management": False})
    assert pair.client.sm is None and pair.server.sm is None
    assert not of_type(pair.client_events, StreamManagementEnabled)


def test_server_without_sm_does_not_offer_it() -> None:
    pair = make_pair(server_kw={"stream_management": False})
    out = record(pair.server)
    pair.pump()
    assert b"urn:xmpp:sm:3" not in b"".join(out)
    assert pair.client.sm is None and pair.client.state is State.READY


def test_enable_twice_is_unexpected_request() -> None:
    server = bound_server()
    out, events = feed(server, b"<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
    assert out.startswith(b'<enabled xmlns="urn:xmpp:sm:3" id="')
    assert of_type(events, StreamManagementEnabled)
    out, events = feed(server, b"<enable xmlns='urn:xmpp:sm:3'/>")
    assert out == (
        b'<failed xmlns="urn:xmpp:sm:3">'
        b'<unexpected-request xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></failed>'
    )
    assert server.state is State.READY and not events


def test_enable_before_binding_is_unexpected_request() -> None:
    server = authenticated_server()
    out, events = feed(server, b"<enable xmlns='urn:xmpp:sm:3'/>")
    assert b"<unexpected-request" in out and server.sm is None
    out, events = feed(server, BIND)  # binding still works
    assert of_type(events, ResourceBound)


@pytest.mark.parametrize("tag", [b"enable", b"resume"])
def test_sm_before_authentication_is_unexpected_request(tag: bytes) -> None:
    server = ServerConnection(server_config(), tls_active=True)
    out, events = feed(server, HEADER + b"<" + tag + b" xmlns='urn:xmpp:sm:3' previd='x' h='0'/>")
    assert b"<failed" in out and b"<unexpected-request" in out
    assert not of_type(events, ResumeRequested) and server.state is State.NEGOTIATING


def test_enable_with_bad_attributes_is_bad_request() -> None:
    server = bound_server()
    out, _ = feed(server, b"<enable xmlns='urn:xmpp:sm:3' resume='maybe'/>")
    assert b"<bad-request" in out and server.sm is None


@pytest.mark.parametrize("any_framing", ["tcp"], indirect=True)  # a byte-level transcript
def test_client_reports_failed_enable_and_goes_on_without_sm() -> None:
    pair = make_pair()
    original = pair.client.data_to_send
    enable = b'<enable xmlns="urn:xmpp:sm:3" resume="true"/>'

    def refused() -> bytes:  # the server refuses <enable/> (we answer in its place)
        data = original()
        if enable in data:
            pair.client.receive_data(
                b"<failed xmlns='urn:xmpp:sm:3'><internal-server-error "
                b"xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"
            )
            data = data.replace(enable, b"")
        return data

    pair.client.data_to_send = refused  # type: ignore[method-assign]
    pair.pump()
    assert of_type(pair.client_events, StreamManagementFailed) == [
        StreamManagementFailed("internal-server-error")
    ]
    assert pair.client.sm is None and pair.client.state is State.READY
    pair.client.send(message("still works"))
    pair.pump()
    assert bodies(pair.server_events) == ["still works"]


# -- acking -----------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [None, 1])
def test_stanzas_are_counted_and_acknowledged_both_ways(chunk: int | None) -> None:
    pair = ready_pair(chunk=chunk)
    for i in range(3):
        pair.client.send(message(f"c{i}", to="romeo@montague.example"))
    for i in range(2):
        pair.server.send(message(f"s{i}", **{"from": "romeo@montague.example/x"}))
    pair.pump()
    c, s = pair.client.sm, pair.server.sm
    assert c is not None and s is not None
    assert (c.outbound, s.inbound) == (3, 3)
    assert (s.outbound, c.inbound) == (2, 2)
    assert not c.queue and not s.queue  # <r/> on flush got them all acknowledged
    acked = [len(e.stanzas) for e in of_type(pair.client_events, StanzasAcknowledged)]  # type: ignore[attr-defined]
    assert sum(acked) == 3
    assert bodies(pair.server_events) == ["c0", "c1", "c2"]


def test_request_is_answered_with_the_handled_count() -> None:
    server = bound_server()
    feed(server, b"<enable xmlns='urn:xmpp:sm:3'/>")
    out, events = feed(
        server, b"<message to='romeo@montague.example'/><presence/><r xmlns='urn:xmpp:sm:3'/>"
    )
    assert out == b'<a xmlns="urn:xmpp:sm:3" h="2"/>'
    assert len(of_type(events, StanzaReceived)) == 2


def test_stanzas_the_server_answers_itself_are_counted_too() -> None:
    server = bound_server()
    feed(server, b"<enable xmlns='urn:xmpp:sm:3'/>")
    out, _ = feed(
        server,
        b"<iq type='set' id='s'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>"
        b"<r xmlns='urn:xmpp:sm:3'/>",
    )
    assert out == (
        b'<iq type="result" id="s"/><a xmlns="urn:xmpp:sm:3" h="1"/><r xmlns="urn:xmpp:sm:3"/>'
    )
    assert server.sm is not None and server.sm.outbound == 1


def test_request_policy_every_n_stanzas() -> None:
    pair = ready_pair(client_kw={"sm_ack_requests": AckRequestPolicy(every=3, on_flush=False)})
    out = record(pair.client)
    pair.client.send(message("1"))
    pair.client.send(message("2"))
    pair.pump()
    assert b"<r " not in b"".join(out)
    pair.client.send(message("3"))
    pair.pump()
    assert b"".join(out).count(b'<r xmlns="urn:xmpp:sm:3"/>') == 1
    assert pair.client.sm is not None and not pair.client.sm.queue


def test_explicit_request_and_ack() -> None:
    pair = ready_pair(
        client_kw={"sm_ack_requests": AckRequestPolicy(every=100, on_flush=False)},
        server_kw={"sm_ack_requests": AckRequestPolicy(every=100, on_flush=False)},
    )
    pair.server.send(message("x", **{"from": "romeo@montague.example/x"}))
    pair.pump()
    assert pair.server.sm is not None and len(pair.server.sm.queue) == 1
    pair.client.send_ack()
    pair.pump()
    assert not pair.server.sm.queue
    pair.client.send(message("y"))
    pair.pump()
    assert pair.client.sm is not None and len(pair.client.sm.queue) == 1
    pair.client.request_ack()
    pair.pump()
    assert not pair.client.sm.queue


def test_request_and_ack_need_sm() -> None:
    pair = ready_pair(client_kw={"stream_management": False})
    with pytest.raises(LocalProtocolError):
        pair.client.request_ack()
    with pytest.raises(LocalProtocolError):
        pair.client.send_ack()


def test_h_too_high_is_an_undefined_condition_stream_error() -> None:
    """XEP-0198 §6: <handled-count-too-high/> in an undefined-condition stream error."""
    server = bound_server()
    feed(server, b"<enable xmlns='urn:xmpp:sm:3'/>")
    server.send(message("1", **{"from": "romeo@montague.example/x"}))
    server.send(message("2", **{"from": "romeo@montague.example/x"}))
    server.data_to_send()
    out, events = feed(server, b"<a xmlns='urn:xmpp:sm:3' h='10'/>")
    assert wire_condition(out) == "undefined-condition"
    assert b'<handled-count-too-high xmlns="urn:xmpp:sm:3" h="10" send-count="2"/>' in out
    assert b"You acknowledged 10 stanzas, but I only sent you 2 so far." in out
    assert out.endswith(b"</stream:stream>")
    assert isinstance(events[-1], RemoteProtocolError)
    assert events[-1].condition is StreamErrorCondition.UNDEFINED_CONDITION
    assert server.state is State.ERROR and not server.sm_resumable
    assert server.sm is not None and len(server.sm.queue) == 2


def test_client_detects_h_too_high_from_the_server() -> None:
    pair = ready_pair()
    pair.client.send(message("1"))
    pair.client.data_to_send()  # lost
    pair.client.receive_data(b"<a xmlns='urn:xmpp:sm:3' h='2'/>")
    with pytest.raises(RemoteProtocolError) as info:
        while pair.client.next_event() is not None:
            pass
    assert info.value.condition is StreamErrorCondition.UNDEFINED_CONDITION
    assert b"handled-count-too-high" in pair.client.data_to_send()


@pytest.mark.parametrize(
    ("data", "condition"),
    [
        (b"<a xmlns='urn:xmpp:sm:3'/>", "bad-format"),
        (b"<a xmlns='urn:xmpp:sm:3' h='x'/>", "bad-format"),
        (b"<enabled xmlns='urn:xmpp:sm:3'/>", "unsupported-stanza-type"),
        (b"<foo xmlns='urn:xmpp:sm:3'/>", "bad-format"),
    ],
)
def test_malformed_or_misplaced_acks_are_stream_errors(data: bytes, condition: str) -> None:
    server = bound_server()
    feed(server, b"<enable xmlns='urn:xmpp:sm:3'/>")
    out, _ = feed(server, data)
    assert wire_condition(out) == condition


@pytest.mark.parametrize(
    "data", [b"<r xmlns='urn:xmpp:sm:3'/>", b"<a xmlns='urn:xmpp:sm:3' h='0'/>"]
)
def test_acks_before_enable_are_unsupported(data: bytes) -> None:
    server = bound_server()
    out, _ = feed(server, data)
    assert wire_condition(out) == "unsupported-stanza-type"


@pytest.mark.parametrize("any_framing", ["tcp"], indirect=True)  # a byte-level transcript
def test_clean_close_sends_a_final_ack() -> None:
    """XEP-0198 §4: RECOMMENDED <a/> right before a graceful close."""
    lazy = AckRequestPolicy(every=100, on_flush=False)
    pair = ready_pair(server_kw={"sm_ack_requests": lazy})
    pair.server.send(message("x", **{"from": "romeo@montague.example/x"}))
    pair.server.send(message("y", **{"from": "romeo@montague.example/x"}))
    pair.pump()
    assert pair.server.sm is not None and len(pair.server.sm.queue) == 2  # never requested
    out = record(pair.client)
    pair.client.close()
    pair.pump()
    assert out[0] == b'<a xmlns="urn:xmpp:sm:3" h="2"/></stream:stream>'
    assert not pair.server.sm.queue
    assert not pair.server.sm_resumable  # a clean close ends the session


def test_too_many_unacked_stanzas_close_the_stream() -> None:
    server = bound_server(sm_max_unacked=3)
    feed(server, b"<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
    for i in range(4):
        server.send(message(str(i), **{"from": "romeo@montague.example/x"}))
    out = server.data_to_send()
    assert wire_condition(out) == "resource-constraint"
    assert server.should_close and not server.sm_resumable
    assert server.sm is not None and len(server.sm.queue) == 4  # for the I/O layer to reroute


def test_a_burst_past_the_limit_asks_for_an_ack_and_is_closed_only_past_the_burst_allowance() -> (
    None
):
    """sm_unacked_burst: a client cannot ack stanzas before they arrive, so one
    burst may go past sm_max_unacked (the stream asks for an ack as it crosses
    it); past sm_unacked_burst times the limit, it is resource-constraint."""
    server = bound_server(sm_max_unacked=10, sm_unacked_burst=3)
    feed(server, b"<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
    romeo = {"from": "romeo@montague.example/x"}
    for i in range(11):  # the 11th crosses the limit: an <r/> right after it
        server.send(message(str(i), **romeo))
    out = server.data_to_send()
    assert not server.should_close
    assert out.endswith(b'<body>10</body></message><r xmlns="urn:xmpp:sm:3"/>'), out[-200:]
    # The client acks what it got: the queue is back under the limit.
    feed(server, b"<a xmlns='urn:xmpp:sm:3' h='11'/>")
    assert server.sm is not None and len(server.sm.queue) == 0
    for i in range(30):  # a burst of 30 = 3 x 10: still allowed
        server.send(message(f"b{i}", **romeo))
    assert not server.should_close
    server.send(message("one too many", **romeo))
    assert wire_condition(server.data_to_send()) == "resource-constraint"
    assert server.should_close and len(server.sm.queue) == 31


@given(
    limit=st.integers(1, 20),
    burst=st.integers(1, 5),
    sends=st.lists(st.integers(1, 40), min_size=1, max_size=6),
)
def test_unacked_queue_never_exceeds_the_burst_allowance_and_acks_keep_the_stream(
    limit: int, burst: int, sends: list[int]
) -> None:
    """Whatever the bursts and however the client acks between them, the
    stream stays open exactly while each burst keeps the queue within
    ``burst * limit``, and the queue never holds more than one stanza past it."""
    server = bound_server(sm_max_unacked=limit, sm_unacked_burst=burst)
    feed(server, b"<enable xmlns='urn:xmpp:sm:3'/>")
    sent = 0
    for count in sends:
        for _ in range(count):
            server.send(message(str(sent)))
            sent += 1
            assert server.sm is not None and len(server.sm.queue) <= burst * limit + 1
            if server.should_close:
                break
        server.data_to_send()
        if count > burst * limit:
            assert server.should_close
            return
        assert not server.should_close
        feed(server, f"<a xmlns='urn:xmpp:sm:3' h='{sent}'/>".encode())


# -- resumption -----------------------------------------------------------------------------


def break_transport(pair: ConnectionPair) -> tuple[SMState, SMState]:
    """The TCP connection dies: nothing more gets through, both sides see EOF."""
    pair.client.data_to_send()
    pair.server.data_to_send()
    pair.client.receive_eof()
    pair.server.receive_eof()
    assert pair.server.sm_resumable
    assert pair.client.sm is not None and pair.server.sm is not None
    return pair.client.sm, pair.server.sm


@pytest.mark.parametrize("chunk", [None, 1])
def test_resume_retransmits_unacknowledged_stanzas_exactly_once(chunk: int | None) -> None:
    pair = ready_pair()
    romeo = {"from": "romeo@montague.example/x"}
    pair.server.send(message("seen", **romeo))
    pair.client.send(message("handled"))
    pair.pump()  # delivered and acknowledged both ways
    pair.server.send(message("lost-1", **romeo))
    pair.server.send(message("lost-2", **romeo))
    pair.client.send(message("unsent"))
    client_state, server_state = break_transport(pair)
    assert (client_state.inbound, len(client_state.queue)) == (1, 1)
    assert (server_state.inbound, len(server_state.queue)) == (1, 2)

    pair2 = make_pair(chunk=chunk, sm_state=client_state)
    client_out = record(pair2.client)
    server_out = record(pair2.server)
    pair2.pump()
    (request,) = of_type(pair2.server_events, ResumeRequested)
    assert request == ResumeRequested(server_state.id, 1, JID.parse("juliet@capulet.example"))  # type: ignore[arg-type]
    assert pair2.server.state is State.AWAIT_RESUME
    assert b"<bind" not in b"".join(client_out)
    pair2.server.resume_accepted(server_state)
    pair2.pump()
    wire = b"".join(server_out)
    assert f'<resumed xmlns="urn:xmpp:sm:3" previd="{server_state.id}" h="1"/>'.encode() in wire
    assert wire.count(b"lost-1") == 1 and wire.count(b"lost-2") == 1
    assert b"<enable" not in b"".join(client_out)  # the session has SM already

    (resumed,) = of_type(pair2.client_events, StreamResumed)
    assert resumed.jid == JID.parse(JULIET)  # type: ignore[attr-defined]
    assert [m.findtext("{jabber:client}body") for m in resumed.retransmitted] == ["unsent"]  # type: ignore[attr-defined]
    assert not of_type(pair2.client_events, ResourceBound)
    assert bodies(pair2.client_events) == ["lost-1", "lost-2"]
    assert bodies(pair2.server_events) == ["unsent"]
    assert {pair2.client.state, pair2.server.state} == {State.READY}
    assert pair2.server.jid == JID.parse(JULIET)
    # Counters carried over and agree; everything is acknowledged now.
    assert pair2.client.sm is client_state and pair2.server.sm is server_state
    assert (client_state.outbound, server_state.inbound) == (2, 2)
    assert (server_state.outbound, client_state.inbound) == (3, 3)
    assert not client_state.queue and not server_state.queue
    # And stanzas keep flowing on the resumed stream.
    pair2.client.send(message("after"))
    pair2.pump()
    assert bodies(pair2.server_events) == ["unsent", "after"]
    assert server_state.inbound == 3


def test_resume_with_counters_about_to_wrap() -> None:
    pair = ready_pair()
    client_state, server_state = break_transport(pair)
    client_state.inbound = server_state.outbound = MODULUS - 1
    client_state.outbound = server_state.inbound = MODULUS - 1
    client_state.requested = server_state.requested = MODULUS - 1
    server_state.record_outbound(message("wraps", **{"from": "romeo@montague.example/x"}))
    assert server_state.outbound == 0

    pair2 = make_pair(sm_state=client_state)
    pair2.pump()
    pair2.server.resume_accepted(server_state)
    pair2.pump()
    assert bodies(pair2.client_events) == ["wraps"]
    assert client_state.inbound == 0 and not server_state.queue
    pair2.client.send(message("also wraps"))
    pair2.pump()
    assert client_state.outbound == server_state.inbound == 0


def test_resume_of_an_unknown_session_fails_and_the_client_binds() -> None:
    pair = ready_pair()
    pair.client.send(message("maybe lost"))
    client_state, _ = break_transport(pair)

    pair2 = make_pair(sm_state=client_state)
    out = record(pair2.server)
    pair2.pump()
    assert of_type(pair2.server_events, ResumeRequested)
    pair2.server.resume_failed()
    pair2.pump()
    assert (
        b'<failed xmlns="urn:xmpp:sm:3"><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/>'
        b"</failed>" in b"".join(out)
    )
    (failed,) = of_type(pair2.client_events, ResumeFailed)
    assert failed.condition == "item-not-found" and failed.h is None  # type: ignore[attr-defined]
    assert [m.findtext("{jabber:client}body") for m in failed.unacked] == ["maybe lost"]  # type: ignore[attr-defined]
    assert of_type(pair2.client_events, ResourceBound)
    (enabled,) = of_type(pair2.client_events, StreamManagementEnabled)
    assert enabled.id != client_state.id  # type: ignore[attr-defined]  # a fresh session
    assert pair2.client.sm is not client_state


def resuming_client(unacked: int) -> tuple[ConnectionPair, SMState]:
    """A client that sent ``<resume/>`` for a session with ``unacked`` stanzas."""
    pair = ready_pair()
    for i in range(unacked):
        pair.client.send(message(f"m{i}"))
    client_state, _ = break_transport(pair)
    pair2 = make_pair(sm_state=client_state)
    pair2.pump()
    assert pair2.client.state is State.RESUMING
    return pair2, client_state


def client_events_after(pair: ConnectionPair, data: bytes) -> list[object]:
    pair.client.receive_data(data)
    events: list[object] = []
    try:
        while (event := pair.client.next_event()) is not None:
            events.append(event)
    except RemoteProtocolError as exc:
        events.append(exc)
    return events


def test_failed_with_h_drops_what_the_server_handled() -> None:
    pair, _ = resuming_client(3)
    events = client_events_after(
        pair,
        b"<failed xmlns='urn:xmpp:sm:3' h='2'><item-not-found "
        b"xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>",
    )
    (failed,) = of_type(events, ResumeFailed)
    assert failed.h == 2  # type: ignore[attr-defined]
    assert [m.findtext("{jabber:client}body") for m in failed.unacked] == ["m2"]  # type: ignore[attr-defined]
    assert pair.client.state is State.BINDING


def test_client_rejects_a_resumed_for_another_session() -> None:
    pair, _ = resuming_client(0)
    events = client_events_after(pair, b"<resumed xmlns='urn:xmpp:sm:3' previd='nope' h='0'/>")
    assert isinstance(events[-1], RemoteProtocolError)
    assert pair.client.state is State.ERROR


def test_client_detects_h_too_high_in_resumed() -> None:
    pair, state = resuming_client(1)
    events = client_events_after(
        pair, f"<resumed xmlns='urn:xmpp:sm:3' previd='{state.id}' h='2'/>".encode()
    )
    assert isinstance(events[-1], RemoteProtocolError)
    assert b"handled-count-too-high" in pair.client.data_to_send()


def test_server_without_resumption_says_feature_not_implemented() -> None:
    pair = ready_pair()
    client_state, _ = break_transport(pair)
    pair2 = make_pair(sm_state=client_state, server_kw={"sm_resume_timeout": 0})
    pair2.pump()
    assert not of_type(pair2.server_events, ResumeRequested)
    (failed,) = of_type(pair2.client_events, ResumeFailed)
    assert failed.condition == "feature-not-implemented"  # type: ignore[attr-defined]
    assert pair2.client.state is State.READY


def test_server_without_sm_cannot_resume() -> None:
    pair = ready_pair()
    pair.client.send(message("x"))
    client_state, _ = break_transport(pair)
    pair2 = make_pair(sm_state=client_state, server_kw={"stream_management": False})
    pair2.pump()
    (failed,) = of_type(pair2.client_events, ResumeFailed)
    assert failed.condition == "feature-not-implemented"  # type: ignore[attr-defined]
    assert len(failed.unacked) == 1  # type: ignore[attr-defined]
    assert pair2.client.state is State.READY and pair2.client.sm is None


def test_a_non_resumable_previous_state_reports_its_unacked_stanzas() -> None:
    pair = ready_pair(server_kw={"sm_resume_timeout": 0})
    pair.client.send(message("x"))
    pair.client.data_to_send()  # lost with the connection
    client_state = pair.client.sm
    assert client_state is not None and not client_state.resume
    pair2 = make_pair(sm_state=client_state)
    pair2.pump()
    (failed,) = of_type(pair2.client_events, ResumeFailed)
    assert [m.findtext("{jabber:client}body") for m in failed.unacked] == ["x"]  # type: ignore[attr-defined]


def test_resume_after_binding_is_unexpected_request() -> None:
    server = bound_server()
    out, events = feed(server, b"<resume xmlns='urn:xmpp:sm:3' previd='x' h='0'/>")
    assert b"<unexpected-request" in out
    assert not of_type(events, ResumeRequested) and server.state is State.READY


def test_second_resume_attempt_is_unexpected_request() -> None:
    server = authenticated_server()
    _, events = feed(server, b"<resume xmlns='urn:xmpp:sm:3' previd='guess1' h='0'/>")
    assert of_type(events, ResumeRequested)
    server.resume_failed()
    out, events = feed(server, b"<resume xmlns='urn:xmpp:sm:3' previd='guess2' h='0'/>")
    assert b"<unexpected-request" in out and not of_type(events, ResumeRequested)


def test_malformed_resume_is_bad_request() -> None:
    server = authenticated_server()
    out, events = feed(server, b"<resume xmlns='urn:xmpp:sm:3' h='0'/>")
    assert b"<bad-request" in out and not events


def test_resume_of_another_accounts_session_is_refused_by_the_connection() -> None:
    server = authenticated_server()
    feed(server, b"<resume xmlns='urn:xmpp:sm:3' previd='s1' h='0'/>")
    romeos = SMState(id="s1", resume=True, jid=JID.parse("romeo@capulet.example/x"))
    with pytest.raises(LocalProtocolError):
        server.resume_accepted(romeos)
    with pytest.raises(LocalProtocolError):
        server.resume_accepted(SMState(id="s2", resume=True, jid=JID.parse(JULIET)))
    server.resume_failed()
    with pytest.raises(LocalProtocolError):
        server.resume_failed()


def test_resume_with_h_too_high_is_a_stream_error_and_keeps_the_state() -> None:
    server = authenticated_server()
    feed(server, b"<resume xmlns='urn:xmpp:sm:3' previd='s1' h='5'/>")
    state = SMState(id="s1", resume=True, jid=JID.parse(JULIET))
    state.record_outbound(message("kept"))
    server.resume_accepted(state)
    events = drain(server)
    assert isinstance(events[-1], RemoteProtocolError)
    assert b"handled-count-too-high" in server.data_to_send()
    assert server.state is State.ERROR and len(state.queue) == 1


def test_sm_resumable_only_after_an_unclean_end() -> None:
    pair = ready_pair()
    assert pair.server.sm_resumable  # ready: would be kept if the transport broke now
    pair.client.close()
    pair.pump()
    assert not pair.server.sm_resumable
    pair = ready_pair()
    pair.server.close(StreamErrorCondition.CONFLICT)
    assert not pair.server.sm_resumable
    pair = ready_pair(client_kw={"sm_resume": False})
    pair.server.receive_eof()
    assert not pair.server.sm_resumable


# -- client state indication ------------------------------------------------------------------


def test_inactive_client_gets_messages_at_once_and_only_the_latest_presence_later() -> None:
    pair = ready_pair()
    pair.client.set_client_state(False)
    pair.pump()
    assert of_type(pair.server_events, ClientStateChanged) == [ClientStateChanged(False)]
    assert not pair.server.client_active
    pair.server.send(presence("romeo@montague.example/x", "one"))
    pair.server.send(message("urgent", **{"from": "romeo@montague.example/x"}))
    pair.server.send(presence("benvolio@montague.example/y", "b"))
    pair.server.send(presence("romeo@montague.example/x", "two"))
    pair.pump()
    assert bodies(pair.client_events) == ["urgent"]
    assert statuses(pair.client_events) == []
    pair.client.set_client_state(True)
    pair.pump()
    assert statuses(pair.client_events) == ["b", "two"]
    assert of_type(pair.server_events, ClientStateChanged)[-1] == ClientStateChanged(True)
    # SM counted only what was sent, and everything was acknowledged.
    assert pair.server.sm is not None and pair.server.sm.outbound == 3
    assert not pair.server.sm.queue


def test_repeated_state_is_not_an_event() -> None:
    pair = ready_pair()
    pair.client.set_client_state(True)
    pair.pump()
    assert not of_type(pair.server_events, ClientStateChanged)


def test_csi_needs_the_server_feature() -> None:
    pair = ready_pair(server_kw={"csi": False})
    assert not pair.client.csi_offered
    with pytest.raises(LocalProtocolError):
        pair.client.set_client_state(False)


def test_held_presence_can_be_taken_over_and_resumed_streams_start_active() -> None:
    pair = ready_pair()
    pair.client.set_client_state(False)
    pair.pump()
    pair.server.send(presence("romeo@montague.example/x", "held"))
    client_state, server_state = break_transport(pair)
    (held,) = pair.server.take_held_presences()
    assert held.findtext("{jabber:client}status") == "held"
    assert len(server_state.queue) == 0  # held, never sent: not in the SM queue
    pair2 = make_pair(sm_state=client_state)
    pair2.pump()
    pair2.server.resume_accepted(server_state)
    pair2.pump()
    assert pair2.server.client_active  # XEP-0352 §5.2
    pair2.server.send(held)
    pair2.pump()
    assert statuses(pair2.client_events) == ["held"]


# -- the unacknowledged queue in bytes (issue 10) --------------------------------------------


@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("send"), st.integers(0, 300_000)),
            st.tuples(st.just("ack"), st.integers(0, 20)),
            st.tuples(st.just("take"), st.just(0)),
        ),
        max_size=60,
    )
)
def test_queued_bytes_is_the_size_of_what_is_still_unacknowledged(
    steps: list[tuple[str, int]],
) -> None:
    state = SMState()
    sizes: list[int] = []
    for op, value in steps:
        if op == "send":
            state.record_outbound(message("x"), value)
            sizes.append(value)
        elif op == "ack":
            acked = min(value, len(sizes))
            state.ack((state.acked + acked) % MODULUS)
            del sizes[:acked]
        else:
            state.take_unacked()
            sizes.clear()
        assert state.queued_bytes == sum(sizes)
        assert len(state.queue) == len(sizes)


def test_too_many_unacked_bytes_close_the_stream() -> None:
    """sm_max_unacked_bytes: a client holding few but large stanzas is closed
    like one holding too many (resource-constraint)."""
    server = bound_server(sm_max_unacked_bytes=5000)
    feed(server, b"<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
    romeo = {"from": "romeo@montague.example/x"}
    server.send(message("a" * 3000, **romeo))
    server.data_to_send()
    assert not server.should_close
    server.send(message("b" * 3000, **romeo))
    out = server.data_to_send()
    assert wire_condition(out) == "resource-constraint"
    assert server.should_close and server.sm is not None and len(server.sm.queue) == 2
    assert server.sm.queued_bytes > 5000
