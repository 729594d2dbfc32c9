"""Serialisation of elements and stream headers (RFC 6120 §4.7, §11)."""

from __future__ import annotations

import re
from xml.etree.ElementTree import Comment, Element, ProcessingInstruction, SubElement

import pytest
import writer_oracle
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xmpp_sansio.xml import ns
from xmpp_sansio.xml.element import canonical, element
from xmpp_sansio.xml.parser import StreamEnd, StreamHeader, StreamParser
from xmpp_sansio.xml.writer import (
    STREAM_FOOTER,
    Prewritten,
    attribute_text,
    serialize,
    shared_writes,
    stream_header,
)

CLIENT = "{" + ns.CLIENT + "}"
STREAMS = "{" + ns.STREAMS + "}"


def parse_stream(data: bytes) -> list[object]:
    parser = StreamParser()
    parser.feed(data)
    events: list[object] = []
    while (ev := parser.next_event()) is not None:
        events.append(ev)
    return events


def roundtrip(el: Element, default_ns: str = ns.CLIENT) -> Element:
    """Parse ``serialize(el)`` back as a stanza of a stream with ``default_ns``."""
    events = parse_stream(
        stream_header({"to": "example.com"}, default_ns) + serialize(el, default_ns)
    )
    assert isinstance(events[0], StreamHeader)
    [parsed] = events[1:]
    assert isinstance(parsed, Element)
    return parsed


# -- escaping ------------------------------------------------------------------


def test_text_escapes_markup_characters() -> None:
    el = element(CLIENT + "body", text="a<b>&c\"d'e")
    assert serialize(el) == b"<body>a&lt;b&gt;&amp;c\"d'e</body>"


def test_cdata_terminator_in_text_is_escaped() -> None:
    el = element(CLIENT + "body", text="x]]>y")
    assert b"]]>" not in serialize(el)
    assert roundtrip(el).text == "x]]>y"


def test_carriage_return_in_text_survives_line_end_normalisation() -> None:
    el = element(CLIENT + "body", text="a\r\nb\rc\td\ne")
    assert serialize(el) == b"<body>a&#13;\nb&#13;c\td\ne</body>"
    assert roundtrip(el).text == "a\r\nb\rc\td\ne"


def test_attribute_escapes_quotes_markup_and_whitespace() -> None:
    el = element(CLIENT + "message", {"a": "<&>\"'", "b": "x\ty\nz\rw"})
    out = serialize(el)
    assert out == b'<message a="&lt;&amp;&gt;&quot;\'" b="x&#9;y&#10;z&#13;w"/>'
    assert roundtrip(el).attrib == {"a": "<&>\"'", "b": "x\ty\nz\rw"}


def test_tails_are_escaped_and_own_tail_is_not_written() -> None:
    el = element(CLIENT + "body", text="a")
    child = SubElement(el, CLIENT + "b")
    child.text = "bold"
    child.tail = " & <more>"
    el.tail = "ignored"
    assert serialize(el) == b"<body>a<b>bold</b> &amp; &lt;more&gt;</body>"


def test_non_ascii_is_written_as_utf8() -> None:
    el = element(CLIENT + "body", {"x": "\u00e9"}, text="\u20ac \U0001f600")
    assert serialize(el) == '<body x="\u00e9">\u20ac \U0001f600</body>'.encode()


def test_empty_element_is_self_closing_and_empty_text_counts_as_none() -> None:
    assert serialize(element(CLIENT + "presence")) == b"<presence/>"
    assert serialize(element(CLIENT + "presence", text="")) == b"<presence/>"


@pytest.mark.parametrize(
    "bad", ["\x00", "\x01", "\x08", "\x0b", "\x0c", "\x1f", "\ud800", "\udfff", "\ufffe", "\uffff"]
)
def test_invalid_xml_characters_raise_value_error(bad: str) -> None:
    with pytest.raises(ValueError):
        serialize(element(CLIENT + "body", text="a" + bad))
    with pytest.raises(ValueError):
        serialize(element(CLIENT + "message", {"to": bad}))
    el = element(CLIENT + "body")
    SubElement(el, CLIENT + "b").tail = bad
    with pytest.raises(ValueError):
        serialize(el)
    with pytest.raises(ValueError):
        stream_header({"to": bad})


@pytest.mark.parametrize(
    "ok", ["\t", "\n", "\r", " ", "\ud7ff", "\ue000", "\ufffd", "\U00010000", "\U0010ffff"]
)
def test_valid_boundary_characters_are_accepted(ok: str) -> None:
    el = element(CLIENT + "body", {"a": ok}, text=ok)
    back = roundtrip(el)
    assert back.text == ok and back.attrib == {"a": ok}


@pytest.mark.parametrize("name", ["xmlns", "xmlns:foo"])
def test_literal_namespace_declaration_attributes_raise_value_error(name: str) -> None:
    # ElementTree-style Element("query", xmlns="...") would yield a duplicate
    # xmlns attribute (not well-formed): namespaces belong in the Clark tag.
    with pytest.raises(ValueError):
        serialize(element("query", {name: "jabber:iq:roster"}))
    assert serialize(element(CLIENT + "iq", {"xmlnsfoo": "1"})) == b'<iq xmlnsfoo="1"/>'


def test_comments_and_processing_instructions_cannot_be_sent() -> None:
    el = element(CLIENT + "message")
    el.append(Comment("hi"))
    with pytest.raises(ValueError):
        serialize(el)
    with pytest.raises(ValueError):
        serialize(ProcessingInstruction("php", "x"))  # type: ignore[arg-type]


# -- namespaces ----------------------------------------------------------------


def test_stream_default_namespace_is_inherited_not_repeated() -> None:
    el = element(CLIENT + "message", children=[element(CLIENT + "body", text="hi")])
    assert serialize(el) == b"<message><body>hi</body></message>"


def test_server_stream_default_namespace() -> None:
    el = element("{jabber:server}message", children=[element("{jabber:server}body")])
    assert serialize(el, ns.SERVER) == b"<message><body/></message>"
    assert serialize(el) == b'<message xmlns="jabber:server"><body/></message>'


def test_child_namespace_switch_declares_and_scopes_default_namespace() -> None:
    el = element(
        CLIENT + "iq",
        {"type": "set"},
        [
            element(
                "{urn:ietf:params:xml:ns:xmpp-bind}bind",
                children=[element("{urn:ietf:params:xml:ns:xmpp-bind}resource", text="r")],
            ),
            element(CLIENT + "error"),
        ],
    )
    assert serialize(el) == (
        b'<iq type="set"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"><resource>r</resource>'
        b"</bind><error/></iq>"
    )
    assert canonical(roundtrip(el)) == canonical(el)


def test_sibling_back_in_parent_namespace_after_switch() -> None:
    el = element(
        CLIENT + "message",
        children=[element("{urn:x}a", children=[element(CLIENT + "b")]), element(CLIENT + "c")],
    )
    out = serialize(el)
    assert out == b'<message><a xmlns="urn:x"><b xmlns="jabber:client"/></a><c/></message>'
    assert canonical(roundtrip(el)) == canonical(el)


def test_no_namespace_child_under_namespaced_parent_gets_empty_xmlns() -> None:
    el = element(CLIENT + "message", children=[element("plain", children=[element("inner")])])
    assert serialize(el) == b'<message><plain xmlns=""><inner/></plain></message>'
    assert canonical(roundtrip(el)) == canonical(el)


def test_no_namespace_top_level_element_gets_empty_xmlns() -> None:
    assert serialize(element("weird")) == b'<weird xmlns=""/>'
    assert serialize(element("weird"), "") == b"<weird/>"


def test_namespaced_attributes_get_declared_prefixes() -> None:
    el = element(
        CLIENT + "message",
        {"{urn:a}x": "1", "{urn:b}y": "2", "{urn:a}z": "3", "plain": "4"},
    )
    out = serialize(el)
    assert out.count(b"xmlns:") == 2
    back = roundtrip(el)
    assert back.attrib == el.attrib


def test_attribute_prefix_redeclared_on_child_scopes_correctly() -> None:
    el = element(
        "{urn:p}outer",
        {"{urn:a}x": "1"},
        [element("{urn:p}inner", {"{urn:b}x": "2", "{urn:a}y": "3"})],
    )
    assert canonical(roundtrip(el)) == canonical(el)


def test_xml_lang_uses_the_reserved_prefix() -> None:
    el = element(
        CLIENT + "message", {ns.XML_LANG: "fr"}, [element(CLIENT + "body", {ns.XML_LANG: "en"})]
    )
    out = serialize(el)
    assert out == b'<message xml:lang="fr"><body xml:lang="en"/></message>'
    assert b"xmlns:" not in out
    assert canonical(roundtrip(el)) == canonical(el)


def test_stream_namespace_elements_use_the_stream_prefix() -> None:
    features = element(
        STREAMS + "features",
        children=[
            element(
                "{urn:ietf:params:xml:ns:xmpp-tls}starttls",
                children=[element("{urn:ietf:params:xml:ns:xmpp-tls}required")],
            ),
            element(
                "{urn:ietf:params:xml:ns:xmpp-sasl}mechanisms",
                children=[element("{urn:ietf:params:xml:ns:xmpp-sasl}mechanism", text="PLAIN")],
            ),
        ],
    )
    out = serialize(features)
    assert out.startswith(b"<stream:features><starttls xmlns=")
    assert out.endswith(b"</stream:features>")
    assert canonical(roundtrip(features)) == canonical(features)


def test_stream_error_with_text_round_trips() -> None:
    errors = "{" + ns.STREAM_ERRORS + "}"
    err = element(
        STREAMS + "error",
        children=[
            element(errors + "host-unknown"),
            element(errors + "text", {ns.XML_LANG: "en"}, text="no such host"),
        ],
    )
    out = serialize(err)
    assert out == (
        b'<stream:error><host-unknown xmlns="urn:ietf:params:xml:ns:xmpp-streams"/>'
        b'<text xmlns="urn:ietf:params:xml:ns:xmpp-streams" xml:lang="en">no such host</text>'
        b"</stream:error>"
    )
    assert canonical(roundtrip(err)) == canonical(err)


def test_children_of_stream_elements_keep_the_content_namespace() -> None:
    el = element(STREAMS + "features", children=[element(CLIENT + "x"), element("y")])
    assert serialize(el) == b'<stream:features><x/><y xmlns=""/></stream:features>'
    assert canonical(roundtrip(el)) == canonical(el)


# -- the stream header ---------------------------------------------------------


def test_stream_header_is_parsed_back_by_the_stream_parser() -> None:
    header = stream_header(
        {
            "from": "example.com",
            "to": "juliet@example.com",
            "id": "++TR84Sm6A3hnt3Q065SnAbbk3Y=",
            "version": "1.0",
            ns.XML_LANG: "en",
            "skipped": None,
        }
    )
    assert header.startswith(b"<?xml version='1.0'?><stream:stream ")
    events = parse_stream(header + STREAM_FOOTER)
    assert events == [
        StreamHeader(
            STREAMS + "stream",
            {
                "from": "example.com",
                "to": "juliet@example.com",
                "id": "++TR84Sm6A3hnt3Q065SnAbbk3Y=",
                "version": "1.0",
                ns.XML_LANG: "en",
            },
            {"": ns.CLIENT, "stream": ns.STREAMS},
        ),
        StreamEnd(),
    ]


def test_stream_header_for_server_streams_without_declaration() -> None:
    header = stream_header(
        {"from": "a.example", "xml:lang": "de"}, ns.SERVER, xml_declaration=False
    )
    assert header.startswith(b"<stream:stream ")
    [ev] = parse_stream(header)
    assert isinstance(ev, StreamHeader)
    assert ev.namespaces[""] == ns.SERVER
    assert ev.attrs == {"from": "a.example", ns.XML_LANG: "de"}


def test_stream_header_escapes_attribute_values() -> None:
    header = stream_header({"id": "a\"<&>'\tb"})
    [ev] = parse_stream(header)
    assert isinstance(ev, StreamHeader)
    assert ev.attrs["id"] == "a\"<&>'\tb"


def test_stream_footer_closes_the_stream() -> None:
    events = parse_stream(
        stream_header({}) + serialize(element(CLIENT + "presence")) + STREAM_FOOTER
    )
    assert [type(e) for e in events] == [StreamHeader, Element, StreamEnd]


# -- round trip property -------------------------------------------------------

XML_CHARS = st.characters(
    exclude_categories=("Cs", "Cc"),
    include_characters="\t\n\r\x7f\x85",
    exclude_characters="\ufffe\uffff",
)
TEXT = st.text(XML_CHARS, max_size=12) | st.sampled_from(["", "<&>", "]]>", "\r\n", " \t ", "\"'"])
LOCAL = st.sampled_from(["message", "body", "x", "item", "\u00e9t\u00e9", "a-b.c_d", "\u4e2d"])
URIS = ["", ns.CLIENT, ns.SERVER, ns.STREAMS, "urn:a", "urn:b:\u00fc", "http://e.x/?q=1&r=<2>"]
TAG_URIS = st.sampled_from(URIS)
ATTR_NAMES = st.sampled_from(
    [
        "id",
        "to",
        "type",
        ns.XML_LANG,
        "{urn:a}x",
        "{urn:b:\u00fc}y",
        "{jabber:client}z",
        "{http://e.x/?q=1&r=<2>}w",
    ]
)


@st.composite
def trees(draw: st.DrawFn, depth: int = 0) -> Element:
    uri = draw(TAG_URIS)
    tag = ("{" + uri + "}" if uri else "") + draw(LOCAL)
    el = element(tag, draw(st.dictionaries(ATTR_NAMES, TEXT, max_size=4)), text=draw(TEXT) or None)
    if depth < 3:
        for child in draw(st.lists(trees(depth + 1), max_size=3)):
            child.tail = draw(TEXT) or None
            el.append(child)
    return el


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees(), st.sampled_from([ns.CLIENT, ns.SERVER, "urn:a", ""]))
def test_serialize_then_parse_round_trips(tree: Element, default_ns: str) -> None:
    assert canonical(roundtrip(tree, default_ns)) == canonical(tree)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=12))
def test_text_and_attributes_are_escaped_or_refused_whatever_the_characters(value: str) -> None:
    """The one-search fast path for plain values gives what the full check does."""
    valid = not re.search("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]", value)
    el = Element("{jabber:client}message", {"id": value})
    el.text = value
    if not valid:
        with pytest.raises(ValueError):
            serialize(el)
        return
    text_escapes = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"}
    attr_escapes = {**text_escapes, '"': "&quot;", "\t": "&#9;", "\n": "&#10;"}
    text = "".join(text_escapes.get(c, c) for c in value)
    attr = "".join(attr_escapes.get(c, c) for c in value)
    expected = f'<message id="{attr}">{text}</message>' if value else '<message id=""/>'
    assert serialize(el) == expected.encode()


def test_same_tag_is_written_for_its_parents_namespace_each_time() -> None:
    """The writer's per-tag cache is keyed by the parent's namespace too."""
    inner = Element("{urn:x}item")
    outer = Element("{urn:x}query")
    outer.append(Element("{urn:x}item"))
    for _ in range(2):
        assert serialize(inner) == b'<item xmlns="urn:x"/>'
        assert serialize(outer) == b'<query xmlns="urn:x"><item/></query>'
        assert serialize(Element("plain")) == b'<plain xmlns=""/>'
        assert serialize(Element("plain"), default_ns="") == b"<plain/>"


def test_many_distinct_tags_are_all_written_correctly() -> None:
    """More tags than the cache holds: the rest are written without it."""
    for i in range(5000):
        assert serialize(Element(f"{{urn:n{i}}}e{i}")) == f'<e{i} xmlns="urn:n{i}"/>'.encode()


# -- the attribute path against the writer it replaced ------------------------

PLAIN_NAMES = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_.\-]{0,6}", fullmatch=True)
ANY_NAMES = (
    PLAIN_NAMES
    | ATTR_NAMES
    | st.sampled_from(["from", "by", "xmlns", "xmlns:x", "xmlnsx", "a{b}", 'q"', "x>", "t\tu"])
)
# Each character the attribute path checks for, alone among plain ones or mixed.
_PLAIN_VALUE = st.text(alphabet="ab@/. x", max_size=3)
SPECIAL_VALUES = st.builds(
    lambda a, c, b: a + c + b, _PLAIN_VALUE, st.sampled_from("&<>\"'\t\n\r{}"), _PLAIN_VALUE
) | st.text(alphabet="ab@/&<>\"'\t\n\r{} x", max_size=6)
ANY_VALUES = (
    TEXT
    | SPECIAL_VALUES
    | st.text(max_size=8)
    | st.sampled_from(["a@b/c", "xmlns", "{x}", 'say "hi"'])
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(ANY_NAMES, ANY_VALUES, max_size=6), st.booleans())
def test_attributes_are_written_byte_for_byte_as_the_old_writer_wrote_them(
    attrib: dict[str, str], nested: bool
) -> None:
    """Any names and values, escaped or refused: the same bytes or the same ValueError
    as the writer before the one-string attribute path (tests/sansio/writer_oracle.py)."""
    el = Element("{jabber:client}message", attrib)
    if nested:
        el = element(CLIENT + "message", {"to": "a@b"}, [el])
    try:
        expected = writer_oracle.serialize(el)
    except ValueError:
        with pytest.raises(ValueError):
            serialize(el)
        with shared_writes(), pytest.raises(ValueError):
            serialize(el)
        return
    assert serialize(el) == expected
    with shared_writes():
        assert serialize(el) == expected


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(PLAIN_NAMES | ATTR_NAMES, TEXT | SPECIAL_VALUES, max_size=6))
def test_any_attributes_parse_back_to_the_same_element(attrib: dict[str, str]) -> None:
    """Plain, namespaced and xml:lang attributes, with characters to escape."""
    el = Element("{jabber:client}message", attrib)
    assert canonical(roundtrip(el)) == canonical(el)


# -- Prewritten: attributes written when the element was made -------------------

_SID = "{urn:xmpp:sid:0}stanza-id"


def _prewritten(items: list[tuple[str, str]]) -> Prewritten:
    (k1, v1), (k2, v2) = items
    el = Prewritten(_SID, dict(items))
    el.source = (k1, v1, k2, v2)
    el.attrs = attribute_text(k1, v1) + attribute_text(k2, v2)
    return el


def _change(el: Element, change: str) -> None:
    """Whatever a holder of the element might do to it after it was made."""
    (k1, v1), (k2, v2) = el.items()
    if change == "set":
        el.set(k2, v2 + "x")
    elif change == "add":
        el.set("extra", "1")
    elif change == "remove":
        del el.attrib[k1]
    elif change == "reorder":
        el.attrib.clear()
        el.set(k2, v2)
        el.set(k1, v1)
    elif change == "text":
        el.text = "t"
    elif change == "child":
        SubElement(el, "{urn:xmpp:sid:0}x")


_PRE_NAMES = PLAIN_NAMES.filter(lambda k: k != "xmlns")


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.tuples(_PRE_NAMES, ANY_VALUES), min_size=2, max_size=2, unique_by=lambda kv: kv[0]),
    st.sampled_from(["", "", "set", "add", "remove", "reorder", "text", "child"]),
    st.sampled_from([CLIENT + "message", "{urn:xmpp:sid:0}x", "{urn:xmpp:forward:0}forwarded"]),
    st.sampled_from([ns.CLIENT, ns.SERVER, ""]),
)
def test_a_prewritten_element_is_written_byte_for_byte_as_the_old_writer_wrote_it(
    items: list[tuple[str, str]], change: str, parent: str, default_ns: str
) -> None:
    """Any plain names and values (escaped, or refused by the whole output's
    check), under any parent, changed after it was made or not: the same
    bytes or the same ValueError as the old writer (tests/sansio/writer_oracle.py),
    inside and outside shared_writes() (a <stanza-id/>, XEP-0359)."""
    el = _prewritten(items)
    _change(el, change)
    msg = element(parent, {"to": "a@b", "id": "1"}, [element(CLIENT + "body", text="hi"), el])
    try:
        expected = writer_oracle.serialize(msg, default_ns)
    except ValueError:
        with pytest.raises(ValueError):
            serialize(msg, default_ns)
        with shared_writes(), pytest.raises(ValueError):
            serialize(msg, default_ns)
        return
    assert serialize(msg, default_ns) == expected
    assert serialize(el, default_ns) == writer_oracle.serialize(el, default_ns)
    with shared_writes():
        assert serialize(msg, default_ns) == expected
        assert serialize(msg, "") == writer_oracle.serialize(msg, "")


def test_a_prewritten_element_writes_what_it_was_made_with() -> None:
    # The fast path is taken: its attrs, not the attributes, are written
    # (here deliberately different, which no maker may do).
    el = _prewritten([("id", "1"), ("by", "a@b")])
    el.attrs = ' id="1" by="elsewhere"'
    assert serialize(el) == b'<stanza-id xmlns="urn:xmpp:sid:0" id="1" by="elsewhere"/>'
    el.set("by", "c@d")  # changed: written from its attributes
    assert serialize(el) == b'<stanza-id xmlns="urn:xmpp:sid:0" id="1" by="c@d"/>'


@pytest.mark.parametrize("name", ["xmlns", "xmlns:x", "{urn:x}a", "xml:lang", 'a"', "a b", ""])
def test_attribute_text_refuses_names_that_are_not_plain(name: str) -> None:
    with pytest.raises(ValueError):
        attribute_text(name, "v")
