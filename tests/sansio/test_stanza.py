"""Tests for xmpp_sansio.stanza: views, builders and error stanzas."""

from __future__ import annotations

from xml.etree.ElementTree import Element, SubElement, fromstring, tostring

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xmpp_sansio.errors import StanzaErrorCondition, StanzaErrorType, StreamErrorCondition
from xmpp_sansio.jid import JID
from xmpp_sansio.stanza import (
    Iq,
    IqType,
    Message,
    MessageType,
    Presence,
    PresenceShow,
    PresenceType,
    StanzaKind,
    StanzaValueError,
    UnknownStanza,
    can_reply_with_error,
    error_reply,
    iq_result,
    make_iq,
    make_message,
    make_presence,
    parse_error,
    parse_stanza,
    retag_stanza,
    stanza_kind,
    stream_error_element,
    with_attrs,
)
from xmpp_sansio.xml import ns

C = "{jabber:client}"
S = "{urn:ietf:params:xml:ns:xmpp-stanzas}"


def x(text: str) -> Element:
    return fromstring(text)


def snapshot(el: Element) -> bytes:
    return tostring(el)


# ---------------------------------------------------------------------------
# Message


def test_message_view_reads_addresses_type_id_and_lang() -> None:
    el = x(
        "<message xmlns='jabber:client' to='Juliet@Example.com/balcony' "
        "from='romeo@example.net/orchard' type='chat' id='m1' xml:lang='en'>"
        "<body>hi</body></message>"
    )
    msg = Message.from_element(el)
    assert msg.to == JID.parse("juliet@example.com/balcony")
    assert msg.from_ == JID.parse("romeo@example.net/orchard")
    assert msg.type is MessageType.CHAT
    assert msg.id == "m1"
    assert msg.lang == "en"
    assert msg.body == "hi"
    assert msg.element is el


def test_message_without_type_is_normal() -> None:
    assert Message.from_element(x("<message xmlns='jabber:client'/>")).type is MessageType.NORMAL


def test_message_with_unknown_type_is_treated_as_normal() -> None:
    # RFC 6121 §5.2.2: an unknown type MUST be considered "normal".
    msg = Message.from_element(x("<message xmlns='jabber:client' type='bogus'/>"))
    assert msg.type is MessageType.NORMAL


def test_message_body_prefers_stanza_language_or_no_language() -> None:
    el = x(
        "<message xmlns='jabber:client' xml:lang='en'>"
        "<body xml:lang='de'>Hallo</body><body>Hello</body><body xml:lang='fr'>Salut</body>"
        "</message>"
    )
    assert Message.from_element(el).body == "Hello"
    el = x(
        "<message xmlns='jabber:client' xml:lang='fr'>"
        "<body xml:lang='de'>Hallo</body><body xml:lang='fr'>Salut</body></message>"
    )
    assert Message.from_element(el).body == "Salut"


def test_message_body_falls_back_to_first_body_and_is_none_without_one() -> None:
    el = x(
        "<message xmlns='jabber:client' xml:lang='en'><body xml:lang='de'>Hallo</body></message>"
    )
    assert Message.from_element(el).body == "Hallo"
    assert Message.from_element(x("<message xmlns='jabber:client'/>")).body is None
    assert Message.from_element(x("<message xmlns='jabber:client'><body/></message>")).body == ""


def test_message_body_in_other_namespace_is_ignored() -> None:
    el = x("<message xmlns='jabber:client'><body xmlns='urn:other'>no</body></message>")
    assert Message.from_element(el).body is None


def test_message_in_jabber_server_namespace_is_parsed() -> None:
    el = x("<message xmlns='jabber:server' from='a@b' to='c@d'><body>s2s</body></message>")
    msg = parse_stanza(el)
    assert isinstance(msg, Message)
    assert msg.body == "s2s"


@pytest.mark.parametrize("attr", ["to", "from"])
@pytest.mark.parametrize("value", ["", "@example.com", "a@b@c", "user@/res", "example.com/"])
def test_malformed_address_is_jid_malformed(attr: str, value: str) -> None:
    el = Element(f"{C}message", {attr: value})
    with pytest.raises(StanzaValueError) as info:
        parse_stanza(el)
    assert info.value.condition is StanzaErrorCondition.JID_MALFORMED


# ---------------------------------------------------------------------------
# Presence


def test_presence_without_type_is_available_with_default_priority() -> None:
    pres = Presence.from_element(x("<presence xmlns='jabber:client'/>"))
    assert pres.type is PresenceType.AVAILABLE
    assert pres.priority == 0
    assert pres.show is None
    assert pres.status is None


def test_presence_reads_show_status_priority() -> None:
    el = x(
        "<presence xmlns='jabber:client' xml:lang='en'><show>dnd</show>"
        "<status xml:lang='cs'>Nerušit</status><status>Busy</status>"
        "<priority> -5 </priority></presence>"
    )
    pres = Presence.from_element(el)
    assert pres.show is PresenceShow.DND
    assert pres.status == "Busy"
    assert pres.priority == -5


@pytest.mark.parametrize("value", ["-128", "127", "+3", "0"])
def test_presence_priority_accepts_byte_range(value: str) -> None:
    el = x(f"<presence xmlns='jabber:client'><priority>{value}</priority></presence>")
    assert Presence.from_element(el).priority == int(value)


@pytest.mark.parametrize("value", ["128", "-129", "1.5", "high", "", "\uff11", "1_0"])
def test_presence_invalid_priority_is_bad_request(value: str) -> None:
    el = x(f"<presence xmlns='jabber:client'><priority>{value}</priority></presence>")
    with pytest.raises(StanzaValueError) as info:
        Presence.from_element(el)
    assert info.value.condition is StanzaErrorCondition.BAD_REQUEST


def test_presence_invalid_show_is_bad_request() -> None:
    el = x("<presence xmlns='jabber:client'><show>sleeping</show></presence>")
    with pytest.raises(StanzaValueError) as info:
        Presence.from_element(el)
    assert info.value.condition is StanzaErrorCondition.BAD_REQUEST


@pytest.mark.parametrize("show", ["<show/>", "<show></show>", "<show> </show>"])
def test_presence_empty_show_reads_as_no_show(show: str) -> None:
    """go-sendxmpp sends <show></show> in its initial presence."""
    el = x(f"<presence xmlns='jabber:client'>{show}<status></status></presence>")
    assert Presence.from_element(el).show is None


@pytest.mark.parametrize("value", ["available", "online", ""])
def test_presence_unknown_type_is_bad_request(value: str) -> None:
    el = Element(f"{C}presence", {"type": value})
    with pytest.raises(StanzaValueError) as info:
        Presence.from_element(el)
    assert info.value.condition is StanzaErrorCondition.BAD_REQUEST


@pytest.mark.parametrize(
    "ptype",
    [t for t in PresenceType if t is not PresenceType.AVAILABLE],
)
def test_presence_known_types_parse(ptype: PresenceType) -> None:
    assert Presence.from_element(Element(f"{C}presence", {"type": ptype.value})).type is ptype


def test_subscription_types_are_flagged() -> None:
    assert {t for t in PresenceType if t.is_subscription} == {
        PresenceType.SUBSCRIBE,
        PresenceType.SUBSCRIBED,
        PresenceType.UNSUBSCRIBE,
        PresenceType.UNSUBSCRIBED,
    }


# ---------------------------------------------------------------------------
# Iq


def test_iq_get_with_one_payload() -> None:
    el = x(
        "<iq xmlns='jabber:client' type='get' id='p1' to='example.com'><ping xmlns='urn:xmpp:ping'/></iq>"
    )
    iq = Iq.from_element(el)
    assert iq.type is IqType.GET
    assert iq.id == "p1"
    assert iq.payload is not None
    assert iq.payload.tag == "{urn:xmpp:ping}ping"
    assert iq.is_request


@pytest.mark.parametrize("itype", ["get", "set"])
@pytest.mark.parametrize("children", ["", "<a xmlns='x'/><b xmlns='x'/>"])
def test_iq_request_without_exactly_one_child_is_bad_request(itype: str, children: str) -> None:
    el = x(f"<iq xmlns='jabber:client' type='{itype}' id='1'>{children}</iq>")
    with pytest.raises(StanzaValueError) as info:
        Iq.from_element(el)
    assert info.value.condition is StanzaErrorCondition.BAD_REQUEST


def test_iq_without_id_is_bad_request() -> None:
    el = x("<iq xmlns='jabber:client' type='get'><q xmlns='x'/></iq>")
    with pytest.raises(StanzaValueError) as info:
        Iq.from_element(el)
    assert info.value.condition is StanzaErrorCondition.BAD_REQUEST


@pytest.mark.parametrize("attrs", ["", "type='fetch'", "type=''"])
def test_iq_with_missing_or_unknown_type_is_bad_request(attrs: str) -> None:
    el = x(f"<iq xmlns='jabber:client' id='1' {attrs}><q xmlns='x'/></iq>")
    with pytest.raises(StanzaValueError) as info:
        Iq.from_element(el)
    assert info.value.condition is StanzaErrorCondition.BAD_REQUEST


def test_iq_result_may_be_empty_but_not_have_two_children() -> None:
    assert Iq.from_element(x("<iq xmlns='jabber:client' type='result' id='1'/>")).payload is None
    with pytest.raises(StanzaValueError):
        Iq.from_element(x("<iq xmlns='jabber:client' type='result' id='1'><a/><b/></iq>"))


def test_iq_error_payload_is_not_the_error_element() -> None:
    el = x(
        "<iq xmlns='jabber:client' type='error' id='1'><q xmlns='x'/>"
        "<error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
        "</error></iq>"
    )
    iq = Iq.from_element(el)
    assert iq.payload is not None and iq.payload.tag == "{x}q"
    assert not iq.is_request
    with pytest.raises(StanzaValueError):
        Iq.from_element(x("<iq xmlns='jabber:client' type='error' id='1'/>"))


# ---------------------------------------------------------------------------
# dispatch


def test_parse_stanza_dispatches_on_local_name() -> None:
    assert isinstance(parse_stanza(x("<message xmlns='jabber:client'/>")), Message)
    assert isinstance(parse_stanza(x("<presence xmlns='jabber:client'/>")), Presence)
    iq = x("<iq xmlns='jabber:server' type='result' id='1'/>")
    assert isinstance(parse_stanza(iq), Iq)


@pytest.mark.parametrize(
    "text",
    [
        "<foo xmlns='jabber:client'/>",
        "<message xmlns='urn:other'/>",
        "<message/>",
        "<iq xmlns='jabber:component:accept' type='get' id='1'><q/></iq>",
    ],
)
def test_parse_stanza_rejects_other_elements_as_unknown(text: str) -> None:
    with pytest.raises(UnknownStanza):
        parse_stanza(x(text))
    assert stanza_kind(x(text)) is None


def test_view_from_wrong_element_is_unknown_stanza() -> None:
    with pytest.raises(UnknownStanza):
        Message.from_element(x("<iq xmlns='jabber:client' type='result' id='1'/>"))


def test_stanza_kind() -> None:
    assert stanza_kind(x("<iq xmlns='jabber:client'/>")) is StanzaKind.IQ
    assert stanza_kind(x("<presence xmlns='jabber:server'/>")) is StanzaKind.PRESENCE


_attr_text = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=30
)
_optional = (
    st.none()
    | _attr_text
    | st.sampled_from(["chat", "get", "set", "result", "error", "a@b/c", "unavailable"])
)


@given(
    local=st.sampled_from(["message", "presence", "iq", "foo"]),
    namespace=st.sampled_from([ns.CLIENT, ns.SERVER, "urn:other"]),
    to=_optional,
    from_=_optional,
    type_=_optional,
    id_=_optional,
    child_texts=st.lists(_optional, max_size=3),
    child_names=st.lists(
        st.sampled_from(["body", "priority", "show", "status", "error", "q"]), max_size=3
    ),
)
def test_parse_stanza_on_arbitrary_attributes_raises_only_stanza_errors(
    local: str,
    namespace: str,
    to: str | None,
    from_: str | None,
    type_: str | None,
    id_: str | None,
    child_texts: list[str | None],
    child_names: list[str],
) -> None:
    attrs = {
        k: v
        for k, v in {"to": to, "from": from_, "type": type_, "id": id_}.items()
        if v is not None
    }
    el = Element(f"{{{namespace}}}{local}", attrs)
    for name, text in zip(child_names, child_texts, strict=False):
        SubElement(el, f"{{{namespace}}}{name}").text = text
    before = snapshot(el)
    try:
        view = parse_stanza(el)
    except (StanzaValueError, UnknownStanza):
        pass
    else:
        assert view.element is el
        if isinstance(view, Message):
            _ = view.body, view.subject, view.thread
        if isinstance(view, Presence):
            _ = view.status
    assert snapshot(el) == before


# ---------------------------------------------------------------------------
# builders


def test_make_message_builds_client_message() -> None:
    el = make_message(JID.parse("juliet@example.com"), "hello", MessageType.CHAT, id="m1")
    assert el.tag == f"{C}message"
    assert el.attrib == {"to": "juliet@example.com", "type": "chat", "id": "m1"}
    msg = Message.from_element(el)
    assert msg.body == "hello"


def test_make_message_accepts_namespace_and_lang() -> None:
    el = make_message("a@b", None, from_="c@d", ns=ns.SERVER, lang="en")
    assert el.tag == "{jabber:server}message"
    assert el.get(ns.XML_LANG) == "en"
    assert el.get("from") == "c@d"
    assert el.get("type") == "normal"
    assert len(el) == 0


def test_make_presence_omits_type_for_available_and_round_trips() -> None:
    el = make_presence(show=PresenceShow.AWAY, status="out", priority=-1)
    assert "type" not in el.attrib
    pres = Presence.from_element(el)
    assert (pres.type, pres.show, pres.status, pres.priority) == (
        PresenceType.AVAILABLE,
        PresenceShow.AWAY,
        "out",
        -1,
    )
    unsub = make_presence("a@b", PresenceType.UNSUBSCRIBE, id="p")
    assert unsub.attrib == {"to": "a@b", "type": "unsubscribe", "id": "p"}


def test_make_iq_and_iq_result_swap_addresses_and_keep_id() -> None:
    ping = Element(f"{{{ns.PING}}}ping")
    req = make_iq(IqType.GET, "abc", ping, to="example.com", from_="u@example.com/r")
    assert Iq.from_element(req).payload is ping
    res = iq_result(req)
    assert res.attrib == {
        "type": "result",
        "id": "abc",
        "to": "u@example.com/r",
        "from": "example.com",
    }
    assert len(res) == 0
    payload = Element("{x}answer")
    assert list(iq_result(req, payload)) == [payload]


def test_iq_result_without_addresses_has_none() -> None:
    req = x("<iq xmlns='jabber:client' type='set' id='7'><q xmlns='x'/></iq>")
    assert iq_result(req).attrib == {"type": "result", "id": "7"}


def test_iq_result_refuses_non_requests() -> None:
    with pytest.raises(ValueError):
        iq_result(x("<iq xmlns='jabber:client' type='result' id='7'/>"))
    with pytest.raises(ValueError):
        iq_result(x("<message xmlns='jabber:client'/>"))


def test_with_attrs_copies_without_touching_original() -> None:
    el = x("<message xmlns='jabber:client' from='evil@x' to='a@b'>t<body>b</body></message>")
    before = snapshot(el)
    new = with_attrs(el, from_="me@example.com/r", to=None, type="chat")
    assert snapshot(el) == before
    assert new.attrib == {"from": "me@example.com/r", "type": "chat"}
    assert new.text == "t"
    assert [c.tag for c in new] == [f"{C}body"]
    new.append(Element("extra"))
    assert len(el) == 1


# ---------------------------------------------------------------------------
# stanza errors


def test_error_reply_to_message_swaps_addresses_and_keeps_children() -> None:
    el = x(
        "<message xmlns='jabber:client' from='romeo@example.net/orchard' "
        "to='juliet@example.com' type='chat' id='m1' xml:lang='en'><body>hi</body></message>"
    )
    before = snapshot(el)
    reply = error_reply(el, StanzaErrorCondition.SERVICE_UNAVAILABLE, text="nobody home")
    assert snapshot(el) == before
    assert reply.tag == f"{C}message"
    assert reply.get("to") == "romeo@example.net/orchard"
    assert reply.get("from") == "juliet@example.com"
    assert reply.get("type") == "error"
    assert reply.get("id") == "m1"
    assert reply.get(ns.XML_LANG) == "en"
    assert [c.tag for c in reply] == [f"{C}body", f"{C}error"]
    error = reply.find(f"{C}error")
    assert error is not None
    assert error.get("type") == "cancel"
    assert [c.tag for c in error] == [f"{S}service-unavailable", f"{S}text"]
    parsed = parse_error(reply)
    assert parsed.condition is StanzaErrorCondition.SERVICE_UNAVAILABLE
    assert parsed.type is StanzaErrorType.CANCEL
    assert parsed.text == "nobody home"
    assert parsed.app_condition is None


def test_error_reply_to_iq_omits_payload() -> None:
    el = x("<iq xmlns='jabber:client' type='get' id='q' from='a@b/c'><query xmlns='x'/></iq>")
    reply = error_reply(el, StanzaErrorCondition.FEATURE_NOT_IMPLEMENTED)
    assert reply.attrib == {"type": "error", "id": "q", "to": "a@b/c"}
    assert [c.tag for c in reply] == [f"{C}error"]
    iq = Iq.from_element(reply)
    assert iq.payload is None


def test_error_reply_explicit_type_and_by() -> None:
    el = x("<presence xmlns='jabber:client' from='a@b/c' to='d@e'/>")
    reply = error_reply(
        el, StanzaErrorCondition.RESOURCE_CONSTRAINT, type=StanzaErrorType.CANCEL, by="e"
    )
    parsed = parse_error(reply)
    assert parsed.type is StanzaErrorType.CANCEL
    assert parsed.by == "e"
    assert parsed.condition is StanzaErrorCondition.RESOURCE_CONSTRAINT


@pytest.mark.parametrize(
    "text",
    [
        "<message xmlns='jabber:client' type='error'/>",
        "<presence xmlns='jabber:client' type='error'/>",
        "<iq xmlns='jabber:client' type='error' id='1'/>",
        "<iq xmlns='jabber:client' type='result' id='1'/>",
    ],
)
def test_never_an_error_in_reply_to_an_error(text: str) -> None:
    el = x(text)
    assert not can_reply_with_error(el)
    with pytest.raises(ValueError):
        error_reply(el, StanzaErrorCondition.BAD_REQUEST)


@pytest.mark.parametrize(
    "text",
    [
        "<message xmlns='jabber:client'/>",
        "<message xmlns='jabber:client' type='chat'/>",
        "<presence xmlns='jabber:client' type='subscribe'/>",
        "<iq xmlns='jabber:client' type='set' id='1'><q xmlns='x'/></iq>",
    ],
)
def test_can_reply_with_error_to_non_errors(text: str) -> None:
    assert can_reply_with_error(x(text))


@given(
    condition=st.sampled_from(list(StanzaErrorCondition)),
    error_type=st.none() | st.sampled_from(list(StanzaErrorType)),
    kind=st.sampled_from(["message", "presence", "iq"]),
    text=st.none()
    | st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=20),
)
def test_error_reply_round_trips_through_parse_error(
    condition: StanzaErrorCondition,
    error_type: StanzaErrorType | None,
    kind: str,
    text: str | None,
) -> None:
    if kind == "iq":
        el = make_iq(IqType.GET, "i", Element("{x}q"), to="a@b", from_="c@d/e")
    elif kind == "message":
        el = make_message("a@b", "hi", MessageType.CHAT, from_="c@d/e")
    else:
        el = make_presence("a@b", PresenceType.SUBSCRIBE, from_="c@d/e")
    reply = error_reply(el, condition, type=error_type, text=text)
    parsed = parse_error(reply)
    assert parsed.condition is condition
    assert parsed.type is (condition.default_type if error_type is None else error_type)
    assert parsed.text == text
    view = parse_stanza(reply)
    assert view.to == JID.parse("c@d/e")
    assert view.from_ == JID.parse("a@b")
    assert not can_reply_with_error(reply)


def test_parse_error_unknown_condition_is_undefined_and_app_condition_kept() -> None:
    el = x(
        "<message xmlns='jabber:client' type='error'><error type='modify'>"
        "<made-up xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
        "<too-many-widgets xmlns='urn:example:app'/></error></message>"
    )
    parsed = parse_error(el)
    assert parsed.condition is StanzaErrorCondition.UNDEFINED_CONDITION
    assert parsed.type is StanzaErrorType.MODIFY
    assert parsed.app_condition is not None
    assert parsed.app_condition.tag == "{urn:example:app}too-many-widgets"


def test_parse_error_without_condition_or_type_falls_back() -> None:
    el = x("<iq xmlns='jabber:client' type='error' id='1'><error/></iq>")
    parsed = parse_error(el)
    assert parsed.condition is StanzaErrorCondition.UNDEFINED_CONDITION
    assert parsed.type is StanzaErrorType.CANCEL


def test_parse_error_accepts_the_error_element_itself() -> None:
    error = x(
        "<error xmlns='jabber:client' type='auth'>"
        "<forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>"
    )
    assert parse_error(error).condition is StanzaErrorCondition.FORBIDDEN


def test_parse_error_without_error_child_raises() -> None:
    with pytest.raises(StanzaValueError):
        parse_error(x("<message xmlns='jabber:client' type='error'/>"))


# ---------------------------------------------------------------------------
# stream errors


@pytest.mark.parametrize("condition", list(StreamErrorCondition))
def test_stream_error_element_round_trips(condition: StreamErrorCondition) -> None:
    el = stream_error_element(condition, "why")
    assert el.tag == "{http://etherx.jabber.org/streams}error"
    assert el[0].tag == f"{{urn:ietf:params:xml:ns:xmpp-streams}}{condition.value}"
    assert [child.text for child in el[1:]] == ["why"]
    assert el[1].tag == "{urn:ietf:params:xml:ns:xmpp-streams}text"
    assert len(stream_error_element(condition)) == 1
    # Parsing a received stream error is the connection's job:
    # tests/sansio/test_stream_state.py checks unknown conditions there.


_STANZA_NS = st.sampled_from([ns.CLIENT, ns.SERVER, ns.COMPONENT_ACCEPT])


@given(_STANZA_NS, _STANZA_NS, st.text("abc", max_size=5))
def test_retagging_a_stanza_moves_it_and_its_inherited_children_and_back(
    source: str, target: str, body: str
) -> None:
    """XEP-0114 streams carry stanzas in jabber:component:accept: the stanza and
    the children inheriting its namespace move, an embedded jabber:client
    stanza in another namespace (XEP-0297 forwarding) does not."""
    el = Element(f"{{{source}}}message", {"to": "a@b.lit"})
    SubElement(el, f"{{{source}}}body").text = body
    forwarded = SubElement(el, "{urn:xmpp:forward:0}forwarded")
    inner = SubElement(forwarded, f"{{{ns.CLIENT}}}message")
    moved = retag_stanza(el, target)
    assert moved.tag == f"{{{target}}}message" and moved.get("to") == "a@b.lit"
    assert moved[0].tag == f"{{{target}}}body" and moved[0].text == body
    assert moved[1] is forwarded and forwarded[0] is inner
    assert el.tag == f"{{{source}}}message"  # the original is unchanged
    assert tostring(retag_stanza(moved, source)) == tostring(el)
    assert (retag_stanza(el, source) is el) and (source != target or moved is el)


_ADDRESS = (
    st.none()
    | st.sampled_from(["a@b", "a@b/r", "b", "", "@b", "a@b@c", "a@/r", "b/", "A@B/R", "é@b"])
    | st.text(max_size=8)
)


@given(
    local=st.sampled_from(["message", "presence"]),
    namespace=st.sampled_from([ns.CLIENT, ns.SERVER]),
    to=_ADDRESS,
    from_=_ADDRESS,
    type_=st.none() | st.sampled_from(["chat", "headline", "error", "groupchat", "x"]),
)
def test_message_from_element_parses_addresses_as_the_rule_says(
    local: str, namespace: str, to: str | None, from_: str | None, type_: str | None
) -> None:
    """The message view's inline checks (the hot path): not a message is
    UnknownStanza; a bad ``from`` then a bad ``to`` is jid-malformed naming the
    attribute; otherwise each address is what JID.parse makes of it."""
    attrs = {k: v for k, v in (("to", to), ("from", from_), ("type", type_)) if v is not None}
    el = Element(f"{{{namespace}}}{local}", attrs)
    expected: object
    if local != "message":
        expected = UnknownStanza
    else:
        parsed: dict[str, JID | None] = {}
        expected = None
        for attr in ("from", "to"):
            value = attrs.get(attr)
            try:
                parsed[attr] = None if value is None else JID.parse(value)
            except ValueError as exc:
                expected = f"invalid '{attr}' address {value!r}: {exc}"
                break
    try:
        msg = Message.from_element(el)
    except UnknownStanza:
        assert expected is UnknownStanza
        return
    except StanzaValueError as exc:
        assert exc.condition is StanzaErrorCondition.JID_MALFORMED
        assert str(exc) == f"{StanzaErrorCondition.JID_MALFORMED}: {expected}"
        return
    assert expected is None
    assert (msg.to, msg.from_) == (parsed["to"], parsed["from"])
