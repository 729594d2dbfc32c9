"""Bind 2 (XEP-0386) and XEP-0198 inline in SASL2 (XEP-0388), on the server
stream, sans I/O, with the XEPs' element shapes: the ``<inline/>`` offer,
``<bind/>`` with ``<tag/>`` and carbons, SM and CSI requests, the held
``<success/>`` carrying the full JID and ``<bound/>`` (with ``<enabled/>``),
the features after it, ``<resume/>`` answered inside ``<success/>``, and
nothing processed for a failed exchange."""

from __future__ import annotations

from xml.etree.ElementTree import Element, SubElement, fromstring

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_auth_counters_sansio import drain
from test_sasl2_sansio import PASSWORD, SASL, SASL2, answer_all, authenticate

from xmpp_sansio.sasl import ChannelBinding
from xmpp_sansio.sm import SMState
from xmpp_sansio.stream.config import ServerConfig
from xmpp_sansio.stream.connection import ServerConnection, TLSInfo
from xmpp_sansio.stream.events import (
    BindRequested,
    ClientStateChanged,
    Event,
    ResourceBound,
    ResumeRequested,
    StreamManagementEnabled,
    StreamResumed,
)
from xmpp_sansio.stream.features.bind2 import Bind2Request, InlineRequest, parse_inline
from xmpp_sansio.stream.state import State
from xmpp_sansio.testing import framed, seeded_rng

BIND2 = "urn:xmpp:bind:0"
SM = "urn:xmpp:sm:3"
HEADER = (
    b"<?xml version='1.0'?><stream:stream to='capulet.example' version='1.0' "
    b"xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
)
# XEP-0386 §3.2, "Client provides a resource bind request, additionally
# requesting some session features"
BIND_ALL = (
    f"<bind xmlns='{BIND2}'><tag>AwesomeXMPP</tag>"
    "<enable xmlns='urn:xmpp:carbons:2'/><enable xmlns='urn:xmpp:sm:3' resume='true'/>"
    "<inactive xmlns='urn:xmpp:csi:0'/></bind>"
)
PLAIN = b"\x00juliet\x00" + PASSWORD.encode()

pytestmark = pytest.mark.usefixtures("any_framing")


def server(*, ask_before_bind: bool = False, seed: int = 0) -> ServerConnection:
    config = ServerConfig(
        rng=seeded_rng(seed),
        domains=frozenset({"capulet.example"}),
        decoy_iterations=4096,
        sasl2=True,
        ask_before_bind=ask_before_bind,
        sm_resume_timeout=300,
    )
    tls = TLSInfo(channel_binding=ChannelBinding("tls-server-end-point", b"\x01" * 32))
    conn = framed(ServerConnection(config, tls_active=True, tls_info=tls))
    conn.receive_data(HEADER)
    drain(conn)
    return conn


def split(out: bytes) -> tuple[Element, bytes]:
    """``<success/>`` (or ``<failure/>``) and what follows it."""
    for name in (b"</success>", b"</failure>"):
        if name in out:
            end = out.index(name) + len(name)
            return fromstring(out[:end]), out[end:]
    raise AssertionError(out)


def test_inline_features_are_offered_as_in_the_xeps_examples() -> None:
    out = server().data_to_send()
    start = out.index(b"<stream:features") + len(b"<stream:features>")
    features = fromstring(b"<f>" + out[start : out.rindex(b"</stream:features>")] + b"</f>")
    authentication = features.find(f"{{{SASL2}}}authentication")
    assert authentication is not None
    bind = authentication.find(f"{{{SASL2}}}inline/{{{BIND2}}}bind")
    assert bind is not None
    assert {f.get("var") for f in bind.iterfind(f"{{{BIND2}}}inline/{{{BIND2}}}feature")} == {
        "urn:xmpp:carbons:2",
        "urn:xmpp:csi:0",
        SM,
    }
    assert authentication.find(f"{{{SASL2}}}inline/{{{SM}}}sm") is not None


def test_bind_with_tag_carbons_sm_and_csi_in_one_round_trip() -> None:
    conn = server()
    conn.data_to_send()
    conn.receive_data(authenticate("PLAIN", PLAIN, BIND_ALL))
    events = answer_all(conn)
    [bound] = [e for e in events if isinstance(e, ResourceBound)]
    assert bound.carbons
    assert str(bound.jid).startswith("juliet@capulet.example/AwesomeXMPP/")
    assert len(bound.jid.resource or "") > len("AwesomeXMPP/")
    [enabled] = [e for e in events if isinstance(e, StreamManagementEnabled)]
    assert enabled.resume and enabled.id
    assert ClientStateChanged(False) in events
    order = [type(e) for e in events]
    assert order.index(ResourceBound) < order.index(StreamManagementEnabled)
    success, rest = split(conn.data_to_send())
    assert success.tag == f"{{{SASL2}}}success"
    assert success.findtext(f"{{{SASL2}}}authorization-identifier") == str(bound.jid)
    sm_enabled = success.find(f"{{{BIND2}}}bound/{{{SM}}}enabled")
    assert sm_enabled is not None and sm_enabled.get("id") == enabled.id
    assert sm_enabled.get("resume") in ("true", "1")
    # XEP-0388 §2.6.1: features follow, without what is done already.
    assert b"features" in rest and b"xmpp-bind" not in rest and b"urn:xmpp:sm:3" not in rest
    assert conn.state is State.READY and not conn.client_active and conn.sm_enabled
    conn.receive_data(
        b"<iq type='get' id='p1' to='capulet.example'><ping xmlns='urn:xmpp:ping'/></iq>"
    )
    drain(conn)
    conn.receive_data(f"<r xmlns='{SM}'/>".encode())
    assert b"h=" in conn.data_to_send()  # the iq was counted: SM is on


def test_bind_without_tag_gets_a_server_resource_and_no_carbons() -> None:
    conn = server()
    conn.data_to_send()
    conn.receive_data(authenticate("PLAIN", PLAIN, f"<bind xmlns='{BIND2}'/>"))
    [bound] = [e for e in answer_all(conn) if isinstance(e, ResourceBound)]
    assert not bound.carbons and bound.jid.resource and "/" not in bound.jid.resource
    success, rest = split(conn.data_to_send())
    assert success.find(f"{{{BIND2}}}bound") is not None
    assert b"urn:xmpp:sm:3" in rest  # SM was not asked for: still offered


def test_ask_before_bind_holds_success_until_accepted_or_refused() -> None:
    conn = server(ask_before_bind=True)
    conn.data_to_send()
    conn.receive_data(authenticate("PLAIN", PLAIN, BIND_ALL))
    events = answer_all(conn)
    [asked] = [e for e in events if isinstance(e, BindRequested)]
    assert b"success" not in conn.data_to_send()  # held
    conn.bind_accepted()
    [bound] = [e for e in drain(conn) if isinstance(e, ResourceBound)]
    assert bound.jid == asked.jid
    success, _ = split(conn.data_to_send())
    assert success.findtext(f"{{{SASL2}}}authorization-identifier") == str(asked.jid)

    conn = server(ask_before_bind=True)
    conn.data_to_send()
    conn.receive_data(authenticate("PLAIN", PLAIN, BIND_ALL))
    answer_all(conn)
    conn.bind_refused()
    assert not [e for e in drain(conn) if isinstance(e, ResourceBound)]
    success, rest = split(conn.data_to_send())
    assert success.find(f"{{{BIND2}}}bound") is None
    assert success.findtext(f"{{{SASL2}}}authorization-identifier") == "juliet@capulet.example"
    assert b"xmpp-bind" in rest and conn.state is State.NEGOTIATING  # bind the classic way


def test_failed_authentication_processes_no_inline_request() -> None:
    conn = server()
    conn.data_to_send()
    conn.receive_data(authenticate("PLAIN", b"\x00juliet\x00wrong", BIND_ALL))
    events = answer_all(conn)
    assert not [e for e in events if isinstance(e, (ResourceBound, StreamManagementEnabled))]
    failure, _ = split(conn.data_to_send())
    assert failure.find(f"{{{SASL}}}not-authorized") is not None
    assert conn.jid is None and conn.sm is None


def _session_to_resume() -> SMState:
    conn = server()
    conn.data_to_send()
    conn.receive_data(authenticate("PLAIN", PLAIN, BIND_ALL))
    answer_all(conn)
    conn.data_to_send()
    conn.send(
        fromstring(
            "<message xmlns='jabber:client' to='juliet@capulet.example'><body>hi</body></message>"
        )
    )
    state = conn.sm
    assert state is not None and state.unacked
    return state


def test_inline_resume_answers_inside_success_and_skips_the_bind() -> None:
    state = _session_to_resume()
    conn = server(seed=1)
    conn.data_to_send()
    resume = f"<resume xmlns='{SM}' previd='{state.id}' h='0'/>"
    conn.receive_data(authenticate("PLAIN", PLAIN, resume + BIND_ALL))
    [asked] = [e for e in answer_all(conn) if isinstance(e, ResumeRequested)]
    assert asked.previd == state.id and str(asked.jid) == "juliet@capulet.example"
    assert b"success" not in conn.data_to_send()
    conn.resume_accepted(state)
    events = drain(conn)
    assert not [e for e in events if isinstance(e, ResourceBound)]
    [resumed_event] = [e for e in events if isinstance(e, StreamResumed)]
    out = conn.data_to_send()
    success, rest = split(out)
    resumed = success.find(f"{{{SM}}}resumed")
    assert resumed is not None and resumed.get("previd") == state.id
    assert success.find(f"{{{BIND2}}}bound") is None
    assert b"features" in rest and rest.index(b"features") < rest.index(b"<body>hi</body>")
    assert resumed_event.jid == state.jid and conn.state is State.READY


def test_inline_resume_that_fails_is_reported_and_the_bind_proceeds() -> None:
    conn = server()
    conn.data_to_send()
    resume = f"<resume xmlns='{SM}' previd='gone' h='0'/>"
    conn.receive_data(authenticate("PLAIN", PLAIN, resume + BIND_ALL))
    answer_all(conn)
    conn.resume_failed()
    events = drain(conn)
    assert [e for e in events if isinstance(e, ResourceBound)]
    success, _ = split(conn.data_to_send())
    assert (
        success.find(f"{{{SM}}}failed/{{urn:ietf:params:xml:ns:xmpp-stanzas}}item-not-found")
        is not None
    )
    assert success.find(f"{{{BIND2}}}bound/{{{SM}}}enabled") is not None


def test_a_malformed_inline_resume_is_a_malformed_request() -> None:
    conn = server()
    conn.data_to_send()
    conn.receive_data(authenticate("PLAIN", PLAIN, f"<resume xmlns='{SM}' previd='x'/>"))
    events: list[Event] = drain(conn)
    assert events and getattr(events[0], "condition", None) == "malformed-request"


def test_parse_inline_of_the_xep_example() -> None:
    el = fromstring(authenticate("PLAIN", b"x", BIND_ALL))
    request = parse_inline(el)
    assert request.bind == Bind2Request(
        "AwesomeXMPP", request.bind.sm_enable if request.bind else None, True, False
    )
    assert request.bind is not None and request.bind.sm_enable is not None
    assert parse_inline(fromstring(authenticate("PLAIN", b"x", ""))) == InlineRequest()


@given(
    st.text(max_size=80),
    st.text(max_size=12),
    st.sampled_from(["resume", "enable"]),
    st.text(max_size=8),
)
def test_any_inline_request_parses_or_raises_value_error(
    tag: str, count: str, nonza: str, h: str
) -> None:
    el = fromstring(authenticate("PLAIN", b"x", ""))
    bind = SubElement(el, f"{{{BIND2}}}bind")
    SubElement(bind, f"{{{BIND2}}}tag").text = tag
    SubElement(bind if nonza == "enable" else el, f"{{{SM}}}{nonza}", previd="p", h=h)
    SubElement(el, "{urn:xmpp:fast:0}fast", count=count)
    try:
        request = parse_inline(el)
    except ValueError:
        return
    assert request.bind is not None and len(request.bind.tag or "") <= 64
    assert request.fast is not None and (request.fast.count is None or request.fast.count > 0)
