"""The JSON channel's translation (xmpp_sansio/http/json_channel.py), sans I/O:
objects to stream XML and elements to objects (docs/json-channel.md)."""

from __future__ import annotations

import json
from xml.etree.ElementTree import Element, SubElement

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_objects import objects, over_the_wire

from xmpp_sansio.errors import StreamErrorCondition
from xmpp_sansio.http.json_channel import SCHEMA_VERSION, JsonFraming, element_to_object
from xmpp_sansio.objects import StanzaObject, object_from_dict, object_from_element
from xmpp_sansio.stream.framing import FramingError
from xmpp_sansio.xml import ns
from xmpp_sansio.xml.parser import parse_fragment

LIMIT = 65536


def decoded(obj: object) -> Element:
    raw = JsonFraming().decode(json.dumps(obj), max_size=LIMIT)
    return parse_fragment(raw, ns.CLIENT, max_size=LIMIT)


@given(objects)
def test_a_stanza_object_frame_becomes_the_same_stanza(obj: StanzaObject) -> None:
    assert object_from_element(over_the_wire(decoded(obj.to_dict()))) == obj


@given(objects)
def test_a_sent_stanza_becomes_its_object(obj: StanzaObject) -> None:
    frame = JsonFraming().element(obj.to_element(), ns.CLIENT)
    assert object_from_dict(json.loads(frame)) == obj


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)
kinds = st.sampled_from(["message", "presence", "iq", "auth", "response", "bind", "sm", "x"])


@given(st.text(max_size=40) | json_values.map(json.dumps))
def test_any_text_is_xml_or_a_framing_error(text: str) -> None:
    try:
        JsonFraming().decode(text, max_size=LIMIT)
    except FramingError as exc:
        assert exc.condition in {
            StreamErrorCondition.NOT_WELL_FORMED,
            StreamErrorCondition.BAD_FORMAT,
            StreamErrorCondition.UNSUPPORTED_STANZA_TYPE,
        }


@given(kinds, st.dictionaries(st.sampled_from(["type", "id", "to", "body", "data", "mechanism",
                                               "name", "attrs", "payload", "show"]),
                              json_values, max_size=4))  # fmt: skip
def test_objects_of_known_kinds_with_any_fields_are_xml_or_a_framing_error(
    kind: str, fields: dict[str, object]
) -> None:
    try:
        raw = JsonFraming().decode(json.dumps({**fields, "kind": kind}), max_size=LIMIT)
    except FramingError:
        return
    assert parse_fragment(raw, ns.CLIENT, max_size=LIMIT) is not None  # one element


def test_an_oversized_frame_is_a_policy_violation() -> None:
    with pytest.raises(FramingError) as caught:
        JsonFraming().decode('{"kind":"presence","status":"' + "a" * 200 + '"}', max_size=100)
    assert caught.value.condition is StreamErrorCondition.POLICY_VIOLATION


def test_open_and_close_frames_are_the_stream_header_and_footer() -> None:
    framing = JsonFraming()
    header = framing.decode('{"kind": "open", "to": "example.org"}', max_size=LIMIT)
    assert header.startswith(b"<stream:stream") and b"to='example.org'" in header.replace(
        b'"', b"'"
    )
    assert framing.decode('{"kind": "close"}', max_size=LIMIT) == b"</stream:stream>"
    opened = json.loads(framing.header({"from": "example.org", "id": "s1", "version": "1.0"}, ""))
    assert opened == {"kind": "open", "schema": SCHEMA_VERSION, "from": "example.org",
                      "id": "s1", "version": "1.0"}  # fmt: skip
    assert json.loads(framing.footer()) == {"kind": "close", "event": "closed"}


def test_sasl_frames_carry_the_mechanism_and_base64() -> None:
    auth = decoded({"kind": "auth", "mechanism": "SCRAM-SHA-256", "data": "biwsbj1y"})
    assert auth.tag == f"{{{ns.SASL}}}auth" and auth.get("mechanism") == "SCRAM-SHA-256"
    assert auth.text == "biwsbj1y"
    assert decoded({"kind": "response", "data": ""}).text == "="  # RFC 6120 §6.4.2
    challenge = Element(f"{{{ns.SASL}}}challenge")
    challenge.text = "cj1h"
    assert element_to_object(challenge) == {"kind": "challenge", "data": "cj1h"}
    failure = Element(f"{{{ns.SASL}}}failure")
    SubElement(failure, f"{{{ns.SASL}}}not-authorized")
    assert element_to_object(failure) == {"kind": "failure", "condition": "not-authorized"}


def test_bind_and_bound() -> None:
    iq = decoded({"kind": "bind", "id": "b1", "resource": "web"})
    assert (
        iq.get("type") == "set" and iq.findtext(f"{{{ns.BIND}}}bind/{{{ns.BIND}}}resource") == "web"
    )
    result = Element(f"{{{ns.CLIENT}}}iq", {"type": "result", "id": "b1"})
    SubElement(SubElement(result, f"{{{ns.BIND}}}bind"), f"{{{ns.BIND}}}jid").text = "a@b/web"
    assert element_to_object(result) == {"kind": "bound", "id": "b1", "jid": "a@b/web"}


def test_features_and_stream_errors_are_objects() -> None:
    features = Element(f"{{{ns.STREAMS}}}features")
    mechanisms = SubElement(features, f"{{{ns.SASL}}}mechanisms")
    SubElement(mechanisms, f"{{{ns.SASL}}}mechanism").text = "SCRAM-SHA-256"
    assert element_to_object(features) == {"kind": "features", "mechanisms": ["SCRAM-SHA-256"]}
    error = Element(f"{{{ns.STREAMS}}}error")
    streams = "urn:ietf:params:xml:ns:xmpp-streams"
    SubElement(error, f"{{{streams}}}policy-violation")
    SubElement(error, f"{{{streams}}}text").text = "too big"
    assert element_to_object(error) == {
        "kind": "stream-error", "condition": "policy-violation", "text": "too big"
    }  # fmt: skip


def test_stream_management_round_trips() -> None:
    el = decoded({"kind": "sm", "name": "enable", "attrs": {"resume": "true"}})
    assert el.tag == f"{{{ns.SM}}}enable" and el.get("resume") == "true"
    assert element_to_object(el) == {"kind": "sm", "name": "enable", "attrs": {"resume": "true"}}
