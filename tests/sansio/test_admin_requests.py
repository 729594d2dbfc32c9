"""The admin socket's requests and the stanzas of the admin operations (sans-IO)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from xmpp_sansio.errors import StreamErrorCondition
from xmpp_sansio.jid import JID
from xmpp_sansio.server.admin import (
    MAX_REQUEST_SIZE,
    AccountChanged,
    AdminRequestError,
    Announce,
    Disable,
    Kick,
    Motd,
    Status,
    announcement,
    encode_error,
    encode_result,
    parse_request,
    with_text,
)
from xmpp_sansio.server.effects import Deliver, Disconnect
from xmpp_sansio.server.sessions import CloseStream


def test_requests_parse_into_their_operations() -> None:
    assert parse_request(b'{"op": "status"}') == Status()
    assert parse_request(b'{"op": "kick", "jid": "a@b", "reason": "bye"}') == Kick(
        JID.parse("a@b"), "bye"
    )
    assert parse_request(b'{"op": "kick", "jid": "a@b"}') == Kick(JID.parse("a@b"), None)
    assert parse_request(b'{"op": "announce", "text": "hi"}') == Announce("hi")
    assert parse_request(
        b'{"op": "account_changed", "jid": "a@b", "change": "deleted"}'
    ) == AccountChanged(JID.parse("a@b"), "deleted")


@settings(deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_parse_or_are_refused_with_a_message(line: bytes) -> None:
    try:
        parse_request(line)
    except AdminRequestError as exc:
        assert str(exc)


@settings(deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["op", "jid", "reason", "text", "change"]),
        st.none() | st.integers() | st.text(max_size=20),
    )
)
def test_any_json_object_parses_or_is_refused_with_a_message(request: dict[str, object]) -> None:
    try:
        parse_request(json.dumps(request).encode())
    except AdminRequestError as exc:
        assert str(exc)


def test_an_oversized_request_is_refused() -> None:
    line = json.dumps({"op": "announce", "text": "x" * MAX_REQUEST_SIZE}).encode()
    try:
        parse_request(line)
    except AdminRequestError as exc:
        assert "longer than" in str(exc)
    else:
        raise AssertionError("accepted")


def test_answers_are_one_json_line() -> None:
    assert json.loads(encode_result({"a": 1})) == {"ok": True, "result": {"a": 1}}
    assert json.loads(encode_error("no")) == {"ok": False, "error": "no"}
    assert encode_error("x\ny").count(b"\n") == 1


def test_a_kick_reason_becomes_the_stream_errors_text() -> None:
    other = Deliver(3, announcement("d", "x", [JID.parse("a@d/r")])[0])
    effects = [Disconnect(1, StreamErrorCondition.POLICY_VIOLATION), other]
    assert with_text(effects, "spam") == [
        CloseStream(1, StreamErrorCondition.POLICY_VIOLATION, "spam"),
        other,
    ]
    assert with_text(effects, None) == effects


def test_an_announcement_is_a_headline_from_the_domain_to_each_session() -> None:
    [one, two] = announcement(
        "example.org", "hi", [JID.parse("a@example.org/r"), JID.parse("b@example.org/s")]
    )
    assert one.tag == "{jabber:client}message"
    assert one.attrib == {"from": "example.org", "to": "a@example.org/r", "type": "headline"}
    assert one.findtext("{jabber:client}body") == "hi"
    assert two.get("to") == "b@example.org/s"


def test_disable_enable_and_motd_requests() -> None:
    assert parse_request(b'{"op": "disable", "jid": "a@b"}') == Disable(JID.parse("a@b"), True)
    assert parse_request(b'{"op": "enable", "jid": "a@b"}') == Disable(JID.parse("a@b"), False)
    assert parse_request(b'{"op": "motd", "text": "hi"}') == Motd("hi")
    assert parse_request(b'{"op": "motd"}') == Motd(None)
    try:
        parse_request(b'{"op": "disable", "jid": "b"}')
    except AdminRequestError as exc:
        assert "bare JID" in str(exc)
    else:
        raise AssertionError("a JID without a localpart was accepted")
