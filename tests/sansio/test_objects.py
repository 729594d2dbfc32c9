"""Typed stanza objects: round trips through elements, the wire and JSON dicts, and
agreement with the validated views they are built from (one stanza model)."""

from __future__ import annotations

import json
import re
from xml.etree.ElementTree import Element

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xmpp_sansio.jid import JID
from xmpp_sansio.objects import (
    CAPS_NS,
    CHATSTATES_NS,
    ChatState,
    IqObject,
    MessageObject,
    Ping,
    PresenceObject,
    StanzaObject,
    object_from_dict,
    object_from_element,
    parse_fragment,
    serialize_fragment,
)
from xmpp_sansio.stanza import (
    Iq,
    IqType,
    Message,
    MessageType,
    Presence,
    PresenceShow,
    PresenceType,
    StanzaValueError,
    UnknownStanza,
    parse_stanza,
)
from xmpp_sansio.xml import ns
from xmpp_sansio.xml.element import elements_equal
from xmpp_sansio.xml.parser import StreamParser
from xmpp_sansio.xml.writer import serialize, stream_header

# --- strategies ------------------------------------------------------------------

# XML 1.0 Char (RFC 6120 §11.1) without surrogates and the non-characters.
xml_text = st.text(
    st.characters(codec="utf-8", min_codepoint=0x9, exclude_characters="\ufffe\uffff").filter(
        lambda c: c in "\t\n\r" or c >= " "
    ),
    max_size=20,
)
# Names starting with "xml" are reserved (XML 1.0 §2.3, and "xmlns" declares namespaces).
names = st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=6).filter(
    lambda n: not n.startswith("xml")
)
opt = st.none

jids = st.builds(
    lambda local, domain, resource: JID.parse(
        (f"{local}@" if local else "") + domain + (f"/{resource}" if resource else "")
    ),
    st.none() | names,
    st.sampled_from(["localhost", "example.org", "conference.example.org"]),
    st.none() | st.text("abcXYZ0189 .-_@/é", min_size=1, max_size=8).filter(str.strip),
)


def extension_elements(depth: int = 2) -> st.SearchStrategy[Element]:
    """Elements in namespaces the objects do not model, nested up to ``depth``."""

    def build(
        namespace: str | None,
        local: str,
        attrs: dict[str, str],
        text: str | None,
        children: list[tuple[Element, str | None]],
    ) -> Element:
        el = Element(f"{{{namespace}}}{local}" if namespace else local, attrs)
        el.text = text
        for child, tail in children:
            child.tail = tail
            el.append(child)
        return el

    attr_names = names | names.map(lambda n: f"{{urn:example:attrs}}{n}")
    children = (
        st.lists(st.tuples(extension_elements(depth - 1), opt() | xml_text), max_size=3)
        if depth > 0
        else st.just([])
    )
    return st.builds(
        build,
        st.sampled_from(["urn:example:a", "urn:example:b", "jabber:x:oob"]),
        names,
        st.dictionaries(attr_names, xml_text, max_size=3),
        opt() | xml_text,
        children,
    )


def _error_element(condition: str, text: str | None) -> Element:
    error = Element("{jabber:client}error", {"type": "cancel"})
    error.append(Element(f"{{{ns.STANZA_ERRORS}}}{condition}"))
    if text is not None:
        text_el = Element(f"{{{ns.STANZA_ERRORS}}}text")
        text_el.text = text
        error.append(text_el)
    return error


errors = st.builds(
    _error_element,
    st.sampled_from(["service-unavailable", "item-not-found", "bad-request"]),
    opt() | xml_text,
)


# Unknown payloads, and <error/> children in the stanza namespace (error stanzas).
extensions = st.lists(extension_elements(depth=1) | errors, max_size=2).map(tuple)
ids = opt() | st.text("abcdef0123456789-", min_size=1, max_size=10)
langs = opt() | st.sampled_from(["en", "de", "fr-CA"])

messages = st.builds(
    MessageObject,
    to=opt() | jids,
    from_=opt() | jids,
    type=st.sampled_from(MessageType),
    id=ids,
    lang=langs,
    body=opt() | xml_text,
    subject=opt() | xml_text,
    thread=opt() | xml_text,
    chat_state=opt() | st.sampled_from(ChatState),
    extensions=extensions,
).flatmap(
    lambda m: st.builds(
        lambda parent, delay: _replace_message(m, parent, delay),
        opt() if m.thread is None else opt() | names,
        opt() | st.tuples(xml_text, opt() | jids, opt() | xml_text.filter(bool)),
    )
)


def _replace_message(
    m: MessageObject, parent: str | None, delay: tuple[str, JID | None, str | None] | None
) -> MessageObject:
    import dataclasses

    stamp, delay_from, reason = delay if delay is not None else (None, None, None)
    return dataclasses.replace(
        m, thread_parent=parent, delay=stamp, delay_from=delay_from, delay_reason=reason
    )


presences = st.builds(
    PresenceObject,
    to=opt() | jids,
    from_=opt() | jids,
    type=st.sampled_from(PresenceType),
    id=ids,
    lang=langs,
    show=opt() | st.sampled_from(PresenceShow),
    status=opt() | xml_text,
    priority=opt() | st.integers(-128, 127),
    caps_node=opt() | st.just("https://gajim.org"),
    caps_ver=opt() | st.text("abcXYZ019+/=", min_size=1, max_size=12),
    caps_hash=opt() | st.sampled_from(["sha-1", "sha-256"]),
    extensions=extensions,
)


payloads = st.just(Ping()) | extension_elements(1)


@st.composite
def iqs(draw: st.DrawFn) -> IqObject:
    type_ = draw(st.sampled_from(IqType))
    payload = draw(payloads) if type_ in (IqType.GET, IqType.SET) else draw(opt() | payloads)
    return IqObject(
        to=draw(opt() | jids),
        from_=draw(opt() | jids),
        type=type_,
        id=draw(st.text("abcdef0123456789-", min_size=1, max_size=10)),
        lang=draw(langs),
        payload=payload,
        error=draw(errors) if type_ is IqType.ERROR else None,
    )


objects: st.SearchStrategy[StanzaObject] = messages | presences | iqs()


def over_the_wire(el: Element) -> Element:
    """Serialise ``el`` in a client stream and parse it back."""
    parser = StreamParser()
    parser.feed(stream_header({"to": "localhost", "version": "1.0"}) + serialize(el))
    header = parser.next_event()
    assert header is not None
    parsed = parser.next_event()
    assert isinstance(parsed, Element)
    return parsed


# --- properties ------------------------------------------------------------------


@given(objects)
def test_element_round_trip_gives_an_equal_object(obj: StanzaObject) -> None:
    assert type(obj).from_element(obj.to_element()) == obj
    assert object_from_element(obj.to_element()) == obj


@given(objects)
def test_wire_round_trip_gives_an_equal_object(obj: StanzaObject) -> None:
    assert object_from_element(over_the_wire(obj.to_element())) == obj


@given(objects)
def test_dict_round_trip_through_json_gives_an_equal_object(obj: StanzaObject) -> None:
    data = obj.to_dict()
    assert type(obj).from_dict(data) == obj
    assert object_from_dict(json.loads(json.dumps(data))) == obj


@given(objects)
def test_equal_objects_hash_equal(obj: StanzaObject) -> None:
    copy = object_from_element(obj.to_element())
    assert hash(copy) == hash(obj)


@given(objects)
def test_server_namespace_stanzas_read_like_client_ones(obj: StanzaObject) -> None:
    assert object_from_element(obj.to_element(ns.SERVER)) == obj
    server_el = obj.to_element(ns.SERVER)
    assert all(
        not child.tag.startswith("{jabber:client}") for child in server_el.iter() if child.tag
    )


@given(extension_elements())
def test_serialized_fragments_parse_back_to_the_same_element(el: Element) -> None:
    assert elements_equal(parse_fragment(serialize_fragment(el)), el)


# --- examples --------------------------------------------------------------------


def parse(xml: str) -> Element:
    return over_the_wire(parse_fragment(xml))


def test_message_fields_are_read_from_the_wire_form() -> None:
    msg = MessageObject.from_element(
        parse(
            "<message xmlns='jabber:client' to='juliet@localhost' from='romeo@localhost/orchard' "
            "type='chat' id='m1' xml:lang='en'>"
            "<body xml:lang='de'>Hallo</body><body>Hello</body><subject>Hi</subject>"
            "<thread parent='p1'>t1</thread>"
            f"<composing xmlns='{CHATSTATES_NS}'/>"
            "<delay xmlns='urn:xmpp:delay' from='localhost' stamp='2002-09-10T23:08:25Z'>"
            "Offline Storage</delay>"
            "<x xmlns='jabber:x:oob'><url>https://example.org</url></x>"
            "</message>"
        )
    )
    assert msg.to == JID.parse("juliet@localhost")
    assert msg.from_ == JID.parse("romeo@localhost/orchard")
    assert (msg.type, msg.id, msg.lang) == (MessageType.CHAT, "m1", "en")
    assert (msg.body, msg.subject, msg.thread, msg.thread_parent) == ("Hello", "Hi", "t1", "p1")
    assert msg.chat_state is ChatState.COMPOSING
    assert msg.delay == "2002-09-10T23:08:25Z"
    assert msg.delay_from == JID.parse("localhost")
    assert msg.delay_reason == "Offline Storage"
    # The German body and the unknown payload are kept verbatim.
    assert [serialize_fragment(e) for e in msg.extensions] == [
        '<body xmlns="jabber:client" xml:lang="de">Hallo</body>',
        '<x xmlns="jabber:x:oob"><url>https://example.org</url></x>',
    ]


def test_message_dict_is_plain_json_with_xml_strings_for_extensions() -> None:
    msg = MessageObject.from_element(
        parse(
            "<message xmlns='jabber:client' to='romeo@localhost' type='chat'>"
            "<body>Hi</body><x xmlns='urn:example:x' a='1'/></message>"
        )
    )
    assert msg.to_dict() == {
        "kind": "message",
        "type": "chat",
        "to": "romeo@localhost",
        "body": "Hi",
        "extensions": ['<x xmlns="urn:example:x" a="1"/>'],
    }


def test_message_without_type_is_normal() -> None:
    msg = MessageObject.from_element(
        parse("<message xmlns='jabber:client'><body>x</body></message>")
    )
    assert msg.type is MessageType.NORMAL
    assert msg.to_element().get("type") == "normal"


def test_unusual_modelled_extensions_are_kept_verbatim_instead() -> None:
    msg = MessageObject.from_element(
        parse(
            "<message xmlns='jabber:client'>"
            f"<active xmlns='{CHATSTATES_NS}' extra='1'/>"
            "<delay xmlns='urn:xmpp:delay'/>"  # no stamp
            "</message>"
        )
    )
    assert msg.chat_state is None and msg.delay is None
    assert len(msg.extensions) == 2


def test_error_message_exposes_its_parsed_error() -> None:
    msg = MessageObject.from_element(
        parse(
            "<message xmlns='jabber:client' type='error' from='romeo@localhost'>"
            "<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
            "</error></message>"
        )
    )
    assert msg.error is not None and msg.error.condition == "item-not-found"


def test_presence_fields_are_read_from_the_wire_form() -> None:
    presence = PresenceObject.from_element(
        parse(
            "<presence xmlns='jabber:client' from='romeo@localhost/orchard'>"
            "<show>away</show><status>Out</status><priority>-1</priority>"
            f"<c xmlns='{CAPS_NS}' hash='sha-1' node='https://gajim.org' ver='abc='/>"
            "</presence>"
        )
    )
    assert presence.type is PresenceType.AVAILABLE
    assert (presence.show, presence.status, presence.priority) == (PresenceShow.AWAY, "Out", -1)
    assert (presence.caps_node, presence.caps_ver, presence.caps_hash) == (
        "https://gajim.org",
        "abc=",
        "sha-1",
    )
    assert presence.extensions == ()
    assert presence.to_element().get("type") is None


def test_invalid_presence_raises_stanza_value_error() -> None:
    with pytest.raises(StanzaValueError):
        PresenceObject.from_element(
            parse("<presence xmlns='jabber:client'><show>busy</show></presence>")
        )


def test_ping_iq_has_a_typed_payload() -> None:
    iq = IqObject.from_element(
        parse(
            "<iq xmlns='jabber:client' type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"
        )
    )
    assert iq.payload == Ping()
    assert iq.to_dict() == {
        "kind": "iq",
        "type": "get",
        "id": "p1",
        "to": "localhost",
        "payload": {"kind": "ping"},
    }


def test_error_iq_keeps_its_error_and_payload() -> None:
    iq = IqObject.from_element(
        parse(
            "<iq xmlns='jabber:client' type='error' id='q1'>"
            "<query xmlns='urn:example:q'/>"
            "<error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
            "</error></iq>"
        )
    )
    assert isinstance(iq.payload, Element) and iq.payload.tag == "{urn:example:q}query"
    assert iq.stanza_error is not None and iq.stanza_error.condition == "service-unavailable"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"type": IqType.GET, "id": "x"}, "needs a payload"),
        ({"type": IqType.RESULT, "id": ""}, "non-empty id"),
        ({"type": IqType.ERROR, "id": "x"}, "error element"),
    ],
)
def test_invalid_iq_objects_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        IqObject(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"kind": "message", "bogus": 1}, "'bogus'"),
        ({"kind": "message", "to": "@@"}, "'to'"),
        ({"kind": "message", "type": "shouting"}, "'type'"),
        ({"kind": "message", "body": 3}, "'body'"),
        ({"kind": "message", "extensions": ["<a><b></a>"]}, "'extensions[0]'"),
        ({"kind": "presence", "priority": 500}, "'priority'"),
        ({"kind": "presence", "priority": True}, "'priority'"),
        ({"kind": "iq", "type": "get", "id": "1", "payload": {"kind": "pong"}}, "'payload'"),
        ({"kind": "iq", "id": "1"}, "'type'"),
        ({"kind": "stanza"}, "'kind'"),
    ],
)
def test_bad_dicts_are_refused_naming_the_key(data: dict[str, object], key: str) -> None:
    with pytest.raises(ValueError, match=re.escape(key)):
        object_from_dict(data)


def test_non_stanzas_are_refused() -> None:
    with pytest.raises(UnknownStanza):
        object_from_element(Element("{urn:example}message"))


@pytest.mark.parametrize(
    "text", ["", "text", "<a/><b/>", "<a/>tail", "<!-- c --><a/>", "<a>&ent;</a>", "<a>"]
)
def test_parse_fragment_refuses_anything_but_one_element(text: str) -> None:
    with pytest.raises(ValueError):
        parse_fragment(text)


def test_objects_do_not_alias_the_element_they_were_read_from() -> None:
    el = parse("<message xmlns='jabber:client'><x xmlns='urn:example:x'>a</x></message>")
    msg = MessageObject.from_element(el)
    el[0].text = "changed"
    assert msg.extensions[0].text == "a"


def test_iq_with_an_empty_id_is_a_bad_request() -> None:
    with pytest.raises(StanzaValueError) as info:
        IqObject.from_element(parse("<iq xmlns='jabber:client' type='result' id=''/>"))
    assert info.value.condition == "bad-request"


# --- one model: views validate, objects are built from them ---------------------------


def assert_agree(view: Message | Presence | Iq, obj: StanzaObject) -> None:
    """Every attribute both models expose reads the same."""
    assert (view.to, view.from_, view.type, view.id, view.lang) == (
        obj.to,
        obj.from_,
        obj.type,
        obj.id,
        obj.lang,
    )
    if isinstance(view, Message):
        assert isinstance(obj, MessageObject)
        assert (view.body, view.subject) == (obj.body, obj.subject)
        if obj.thread is not None:
            assert view.thread == obj.thread
        assert view.error == obj.error
    elif isinstance(view, Presence):
        assert isinstance(obj, PresenceObject)
        assert (view.show, view.status) == (obj.show, obj.status)
        assert view.priority == (0 if obj.priority is None else obj.priority)
        assert view.error == obj.error
    else:
        assert isinstance(obj, IqObject)
        assert view.error == obj.stanza_error
        assert (view.payload is None) == (obj.payload is None)


@given(objects)
def test_element_object_element_round_trip_gives_the_same_element(obj: StanzaObject) -> None:
    el = obj.to_element()
    again = object_from_element(el).to_element()
    assert elements_equal(again, el)


@given(objects)
def test_dict_object_dict_round_trip_gives_the_same_dict(obj: StanzaObject) -> None:
    data = obj.to_dict()
    assert object_from_dict(data).to_dict() == data


@given(objects, st.sampled_from([ns.CLIENT, ns.SERVER]))
def test_views_and_objects_agree_on_generated_stanzas(obj: StanzaObject, namespace: str) -> None:
    el = obj.to_element(namespace)
    assert_agree(parse_stanza(el), object_from_element(el))


def _in_lang(
    obj: MessageObject | PresenceObject, lang: str | None, **children: list[tuple[str, str | None]]
) -> Element:
    """``obj``'s element in ``lang``, with extra children ``{local: [(text, xml:lang)]}``."""
    el = obj.to_element()
    el.attrib.pop(ns.XML_LANG, None)
    if lang is not None:
        el.set(ns.XML_LANG, lang)
    for local, texts in children.items():
        el.extend(_text_el(ns.CLIENT, local, text, lang_) for text, lang_ in texts)
    return el


def _text_el(namespace: str, local: str, text: str, lang: str | None) -> Element:
    el = Element(f"{{{namespace}}}{local}", {} if lang is None else {ns.XML_LANG: lang})
    el.text = text
    return el


langs = st.none() | st.sampled_from(["en", "de", "fr"])
# Several bodies/subjects/statuses in several languages: the RFC 6121 §5.2.3 choice.
texts = st.lists(st.tuples(xml_text, langs), max_size=3)


@given(messages, langs, texts, texts)
def test_views_and_objects_choose_the_same_body_and_subject_among_languages(
    base: MessageObject,
    lang: str | None,
    bodies: list[tuple[str, str | None]],
    subjects: list[tuple[str, str | None]],
) -> None:
    el = _in_lang(base, lang, body=bodies, subject=subjects)
    obj = MessageObject.from_element(el)
    assert_agree(Message.from_element(el), obj)
    assert elements_equal(
        MessageObject.from_element(obj.to_element()).to_element(), obj.to_element()
    )


@given(presences, langs, texts)
def test_views_and_objects_choose_the_same_status_among_languages(
    base: PresenceObject, lang: str | None, statuses: list[tuple[str, str | None]]
) -> None:
    el = _in_lang(base, lang, status=statuses)
    assert_agree(Presence.from_element(el), PresenceObject.from_element(el))


@given(iqs())
def test_iq_view_and_object_share_the_error_element(obj: IqObject) -> None:
    el = obj.to_element()
    view = Iq.from_element(el)
    assert (view.error_element is None) == (obj.error is None)
    if obj.error is not None:
        assert view.error_element is not None
        assert elements_equal(view.error_element, obj.error)
