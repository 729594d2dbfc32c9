"""The BOSH session state machine (XEP-0124/0206), sans I/O: the rid window,
holds, waits, pauses, inactivity, the units of the stream's framing turned
into bodies; properties for the parser and the window."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xmpp_sansio.http.bosh import (
    NS_HTTPBIND,
    BoshError,
    BoshSession,
    BoshSettings,
    frame_unit,
    parse_body,
)

FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"


def body(rid: int, inner: str = "", **attrs: str) -> ET.Element:
    extra = "".join(f" {k}='{v}'" for k, v in attrs.items())
    return parse_body(
        f"<body xmlns='{NS_HTTPBIND}' rid='{rid}'{extra}>{inner}</body>".encode(), 65536
    )


def opened(hold: int = 1, settings: BoshSettings | None = None) -> BoshSession:
    """A session whose creation request (rid 10) was answered."""
    session = BoshSession(
        "s1",
        body(10, to="localhost", wait="30", hold=str(hold)),
        settings or BoshSettings(),
        now=0.0,
        secure=True,
    )
    session.receive(body(10, to="localhost"), 0.0)
    session.receive_output(
        frame_unit(f'<open xmlns="{FRAMING}" id="abc" from="localhost"/>'.encode())
    )
    session.receive_output(frame_unit(b"<stream:features/>"))
    assert list(session.responses(0.0)) == [10]
    return session


def test_the_creation_response_carries_the_negotiated_attributes() -> None:
    settings = BoshSettings(max_wait=20, max_hold=2)
    session = BoshSession(
        "s1", body(1, to="localhost", wait="99", hold="7"), settings, now=0.0, secure=True
    )
    receipt = session.receive(body(1, to="localhost"), 0.0)
    assert receipt.messages[0].startswith(f'<open xmlns="{FRAMING}" to="localhost"'.encode())
    assert session.responses(0.0) == {}  # nothing before the stream's header
    session.receive_output(
        frame_unit(f'<open xmlns="{FRAMING}" id="abc" from="localhost"/>'.encode())
    )
    session.receive_output(frame_unit(b"<features/>"))
    answer = ET.fromstring(session.responses(0.0)[1])
    assert answer.get("sid") == "s1" and answer.get("authid") == "abc"
    assert (
        answer.get("wait") == "20" and answer.get("hold") == "2" and answer.get("requests") == "3"
    )
    assert [c.tag.rsplit("}", 1)[-1] for c in answer] == ["features"]


def test_missing_rid_or_to_is_bad_request() -> None:
    with pytest.raises(BoshError) as failed:
        BoshSession("s", body(1), BoshSettings(), now=0.0, secure=True)
    assert failed.value.condition == "bad-request"
    with pytest.raises(BoshError):
        parse_body(b"<body xmlns='x'/>", 100)


@given(st.permutations([11, 12]))
def test_rids_inside_the_window_are_processed_in_order(order: list[int]) -> None:
    """§14.3: whatever order rids within ``requests`` arrive in, their
    contents reach the stream in rid order."""
    session = opened(hold=1)
    messages: list[bytes] = []
    for rid in order:
        messages += session.receive(
            body(rid, f"<m xmlns='jabber:client' n='{rid}'/>"), 1.0
        ).messages
    assert [ET.fromstring(m).get("n") for m in messages] == ["11", "12"]


@given(st.integers(min_value=0, max_value=50))
def test_rids_outside_the_window_end_the_session_or_get_the_cache(rid: int) -> None:
    session = opened(hold=1)
    if rid == 10:
        assert session.receive(body(rid), 1.0).cached is not None
    elif 11 <= rid < 13:
        assert session.receive(body(rid), 1.0).cached is None
    else:
        with pytest.raises(BoshError) as failed:
            session.receive(body(rid), 1.0)
        assert failed.value.condition == "item-not-found"


def test_a_second_request_releases_the_held_one_and_wait_answers_empty() -> None:
    session = opened(hold=1)
    session.receive(body(11), 1.0)
    assert session.responses(1.0) == {}
    assert session.deadline == 31.0
    session.receive(body(12), 2.0)
    assert list(session.responses(2.0)) == [11]
    assert session.responses(31.9) == {}
    answer = session.responses(32.0)
    assert list(answer) == [12] and ET.fromstring(answer[12]).get("type") is None


def test_output_goes_to_the_oldest_held_request_and_close_terminates_all() -> None:
    session = opened(hold=1)
    session.receive(body(11), 1.0)
    session.receive_output(frame_unit(b"<message xmlns='jabber:client'/>"))
    answer = session.responses(1.0)
    assert [c.tag for c in ET.fromstring(answer[11])] == ["{jabber:client}message"]
    session.receive(body(12), 2.0)
    session.receive_output(
        frame_unit(b'<stream:error xmlns:stream="http://etherx.jabber.org/streams"/>')
        + frame_unit(f'<close xmlns="{FRAMING}"/>'.encode())
    )
    ended = ET.fromstring(session.responses(2.0)[12])
    assert ended.get("type") == "terminate" and ended.get("condition") == "remote-stream-error"
    assert session.ended


def test_inactivity_and_pause() -> None:
    session = opened(hold=1, settings=BoshSettings(inactivity=40, max_pause=100))
    assert session.deadline == 40.0 and not session.expired(39.0) and session.expired(40.0)
    session.receive(body(11, pause="90"), 5.0)
    assert list(session.responses(5.0)) == [11]  # §10: answered at once
    assert session.deadline == 95.0
    with pytest.raises(BoshError) as failed:
        session.receive(body(12, pause="101"), 6.0)
    assert failed.value.condition == "policy-violation"


def test_restart_and_terminate_become_framing_messages() -> None:
    session = opened(hold=1)
    restart = session.receive(
        body(11, **{"xmlns:xmpp": "urn:xmpp:xbosh", "xmpp:restart": "true"}), 1.0
    )
    assert restart.messages[-1].startswith(f'<open xmlns="{FRAMING}"'.encode())
    end = session.receive(
        body(12, "<presence xmlns='jabber:client' type='unavailable'/>", type="terminate"), 1.0
    )
    assert end.messages[0].startswith(b"<presence")
    assert end.messages[-1] == f'<close xmlns="{FRAMING}"/>'.encode()


def test_unqualified_children_are_jabber_client() -> None:
    session = opened(hold=1)
    got = session.receive(body(11, "<message to='a@b'><body>hi</body></message>"), 1.0)
    el = ET.fromstring(got.messages[0])
    assert el.tag == "{jabber:client}message" and el.find("{jabber:client}body") is not None


@given(st.binary(max_size=200))
def test_parse_body_answers_bad_request_or_a_body(data: bytes) -> None:
    try:
        el = parse_body(data, 1000)
    except BoshError as exc:
        assert exc.condition == "bad-request"
    else:
        assert el.tag == "{" + NS_HTTPBIND + "}body"
