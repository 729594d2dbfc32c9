"""The incremental XML stream parser (RFC 6120 §4.7, §11).

Every behaviour is checked in three feed modes (the whole input at once, one
byte at a time, and fixed pseudo-random chunkings) and in both parser modes
(``hold=False``, the fast path, and ``hold=True``, one ``>`` at a time).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xmpp_sansio.errors import StreamErrorCondition as C
from xmpp_sansio.xml import ns
from xmpp_sansio.xml.element import canonical, element
from xmpp_sansio.xml.parser import (
    StreamEnd,
    StreamHeader,
    StreamParser,
    XMLStreamError,
    parse_fragment,
)
from xmpp_sansio.xml.writer import STREAM_FOOTER, serialize, stream_header

STREAMS = "{" + ns.STREAMS + "}"
CLIENT = "{" + ns.CLIENT + "}"
HEADER = (
    b"<?xml version='1.0'?>"
    b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'"
    b" to='example.com' from='juliet@example.com' version='1.0' xml:lang='en'>"
)
BARE_HEADER = (
    b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
)

Chunker = Callable[[bytes], list[bytes]]
Event = StreamHeader | Element | StreamEnd


def whole(data: bytes) -> list[bytes]:
    return [data]


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def chunked(data: bytes) -> list[bytes]:
    """Deterministic pseudo-random chunk sizes from 1 to 97 bytes."""
    rng = random.Random(len(data))
    out, i = [], 0
    while i < len(data):
        n = rng.randint(1, 97)
        out.append(data[i : i + n])
        i += n
    return out


@dataclass
class Outcome:
    events: list[Event] = field(default_factory=list)
    error: XMLStreamError | None = None
    parser: StreamParser | None = None

    @property
    def condition(self) -> C | None:
        return None if self.error is None else self.error.condition

    @property
    def stanzas(self) -> list[Element]:
        return [e for e in self.events if isinstance(e, Element)]


def drive(parser: StreamParser, chunks: Iterable[bytes]) -> Outcome:
    """Feed ``chunks``, pulling every event after each; stop at the first error."""
    out = Outcome(parser=parser)
    try:
        for chunk in chunks:
            parser.feed(chunk)
            while (ev := parser.next_event()) is not None:
                out.events.append(ev)
    except XMLStreamError as exc:
        out.error = exc
    return out


@dataclass
class Feeder:
    """One feed mode x one parser mode, as a fixture."""

    chunk: Chunker
    hold: bool

    def __call__(self, data: bytes, **limits: int) -> Outcome:
        return drive(StreamParser(hold=self.hold, **limits), self.chunk(data))

    def parts(self, parts: Iterable[bytes], **limits: int) -> Outcome:
        """Each part is chunked on its own (a part is never merged with the next)."""
        chunks = [c for part in parts for c in self.chunk(part)]
        return drive(StreamParser(hold=self.hold, **limits), chunks)


@pytest.fixture(params=[whole, bytewise, chunked], ids=["whole", "bytewise", "chunked"])
def chunk(request: pytest.FixtureRequest) -> Chunker:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(params=[False, True], ids=["fast", "hold"])
def parse(request: pytest.FixtureRequest, chunk: Chunker) -> Feeder:
    return Feeder(chunk, request.param)


def key(ev: Event) -> object:
    """A comparable form of an event."""
    if isinstance(ev, Element):
        return ("element", canonical(ev), ev.tail)
    return ev


def stanzas_of(stream: bytes) -> list[object]:
    """The canonical stanzas a reference parse (whole input, fast mode) yields."""
    out = drive(StreamParser(), [stream])
    assert out.error is None, out.error
    return [canonical(e) for e in out.stanzas]


# -- the stream header ---------------------------------------------------------


def test_header_attributes_and_namespaces_are_reported(parse: Feeder) -> None:
    out = parse(HEADER)
    assert out.error is None
    assert out.events == [
        StreamHeader(
            tag=STREAMS + "stream",
            attrs={
                "to": "example.com",
                "from": "juliet@example.com",
                "version": "1.0",
                ns.XML_LANG: "en",
            },
            namespaces={"": ns.CLIENT, "stream": ns.STREAMS},
        )
    ]


def test_server_header_reports_extra_prefix_declarations(parse: Feeder) -> None:
    data = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<stream:stream xmlns="jabber:server" xmlns:db="jabber:server:dialback"'
        b' xmlns:stream="http://etherx.jabber.org/streams" from="a.example" to="b.example"'
        b' version="1.0" id="s2s-&amp;-1">'
    )
    out = parse(data)
    assert out.error is None
    [header] = out.events
    assert isinstance(header, StreamHeader)
    assert header.namespaces == {
        "": ns.SERVER,
        "db": "jabber:server:dialback",
        "stream": ns.STREAMS,
    }
    assert header.attrs["id"] == "s2s-&-1"


def test_header_without_xml_declaration_is_accepted(parse: Feeder) -> None:
    out = parse(b"\r\n  " + BARE_HEADER)
    assert out.error is None
    assert [type(e) for e in out.events] == [StreamHeader]


def test_utf8_byte_order_mark_before_header_is_accepted(parse: Feeder) -> None:
    out = parse(b"\xef\xbb\xbf" + HEADER + b"<message/>")
    assert out.error is None
    assert [type(e) for e in out.events] == [StreamHeader, Element]


def test_utf8_encoding_declaration_is_accepted(parse: Feeder) -> None:
    out = parse(b"<?xml version='1.0' encoding='utf-8'?>" + BARE_HEADER)
    assert out.error is None
    assert len(out.events) == 1


def test_header_attribute_containing_gt_does_not_stall(parse: Feeder) -> None:
    data = BARE_HEADER[:-1] + b" to='a&gt;b' id='x>y'>"
    out = parse(data)
    assert out.error is None
    [header] = out.events
    assert isinstance(header, StreamHeader)
    assert header.attrs == {"to": "a>b", "id": "x>y"}


def test_header_is_reported_before_the_rest_arrives(parse: Feeder) -> None:
    out = parse(HEADER + b"<message><body>unfin")
    assert out.error is None
    assert [type(e) for e in out.events] == [StreamHeader]


# -- stanzas -------------------------------------------------------------------


def test_stanza_with_nested_children_and_namespaces(parse: Feeder) -> None:
    stanza = (
        b"<iq type='result' id='disco1' from='example.com'>"
        b"<query xmlns='http://jabber.org/protocol/disco#info'>"
        b"<identity category='server' type='im' name='Prose'/>"
        b"<feature var='urn:xmpp:ping'/><feature var='jabber:iq:roster'/>"
        b"<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE'><value>v</value></field></x>"
        b"</query></iq>"
    )
    out = parse(HEADER + stanza)
    assert out.error is None
    [iq] = out.stanzas
    disco = "{http://jabber.org/protocol/disco#info}"
    expected = element(
        CLIENT + "iq",
        {"type": "result", "id": "disco1", "from": "example.com"},
        [
            element(
                disco + "query",
                children=[
                    element(
                        disco + "identity", {"category": "server", "type": "im", "name": "Prose"}
                    ),
                    element(disco + "feature", {"var": "urn:xmpp:ping"}),
                    element(disco + "feature", {"var": "jabber:iq:roster"}),
                    element(
                        "{jabber:x:data}x",
                        {"type": "result"},
                        [
                            element(
                                "{jabber:x:data}field",
                                {"var": "FORM_TYPE"},
                                [element("{jabber:x:data}value", text="v")],
                            )
                        ],
                    ),
                ],
            )
        ],
    )
    assert canonical(iq) == canonical(expected)


def test_prefixed_elements_and_attributes_are_in_clark_notation(parse: Feeder) -> None:
    stanza = b"<message xmlns:e='urn:example' e:flag='1'><e:payload e:a='x' b='y'/></message>"
    out = parse(HEADER + stanza)
    assert out.error is None
    [msg] = out.stanzas
    assert msg.attrib == {"{urn:example}flag": "1"}
    [payload] = msg
    assert payload.tag == "{urn:example}payload"
    assert payload.attrib == {"{urn:example}a": "x", "b": "y"}


def test_no_namespace_child_under_namespaced_parent(parse: Feeder) -> None:
    out = parse(HEADER + b"<message><x xmlns=''><y/></x></message>")
    assert out.error is None
    [msg] = out.stanzas
    assert [c.tag for c in msg.iter()] == [CLIENT + "message", "x", "y"]


def test_mixed_content_keeps_text_and_tails(parse: Feeder) -> None:
    stanza = (
        b"<message><html xmlns='http://jabber.org/protocol/xhtml-im'>"
        b"<body xmlns='http://www.w3.org/1999/xhtml'>Hello <b>bold</b> and <i>it</i>!</body>"
        b"</html></message>"
    )
    out = parse(HEADER + stanza)
    assert out.error is None
    [msg] = out.stanzas
    body = msg[0][0]
    assert body.text == "Hello "
    assert [(c.tag.split("}")[1], c.text, c.tail) for c in body] == [
        ("b", "bold", " and "),
        ("i", "it", "!"),
    ]


def test_cdata_section_is_text(parse: Feeder) -> None:
    out = parse(HEADER + b"<message><body>a<![CDATA[<b>&amp;</b> ]] >]]>z</body></message>")
    assert out.error is None
    assert out.stanzas[0][0].text == "a<b>&amp;</b> ]] >z"


def test_character_references_are_decoded(parse: Feeder) -> None:
    out = parse(
        HEADER + b"<message a='&#9;&#x41;'><body>&#233;&#x1F600;&#13;&#10;&#38;</body></message>"
    )
    assert out.error is None
    [msg] = out.stanzas
    assert msg.attrib["a"] == "\tA"
    assert msg[0].text == "\u00e9\U0001f600\r\n&"


def test_the_five_predefined_entities_are_decoded(parse: Feeder) -> None:
    out = parse(
        HEADER
        + b"<message x='&lt;&gt;&amp;&quot;&apos;'><body>&lt;&gt;&amp;&quot;&apos;</body></message>"
    )
    assert out.error is None
    [msg] = out.stanzas
    assert msg.attrib["x"] == "<>&\"'"
    assert msg[0].text == "<>&\"'"


def test_attribute_whitespace_is_normalised_but_references_are_kept(parse: Feeder) -> None:
    out = parse(HEADER + b"<message a='x\ty\nz' b='x&#9;y&#10;z'/>")
    assert out.error is None
    assert out.stanzas[0].attrib == {"a": "x y z", "b": "x\ty\nz"}


def test_multibyte_utf8_split_across_chunks(parse: Feeder) -> None:
    text = "h\u00e9 \u20ac \U0001f600 \u4e2d\u6587 \u0928\u092e\u0938\u094d\u0924\u0947"
    out = parse(HEADER + f"<message to='\u00e9'><body>{text}</body></message>".encode())
    assert out.error is None
    [msg] = out.stanzas
    assert msg.attrib["to"] == "\u00e9"
    assert msg[0].text == text


@pytest.mark.parametrize("hold", [False, True], ids=["fast", "hold"])
def test_four_byte_character_split_at_every_position(hold: bool) -> None:
    data = HEADER + "<message><body>\U0001f600\U0001f600</body></message>".encode()
    for cut in range(len(HEADER), len(data)):
        out = drive(StreamParser(hold=hold), [data[:cut], data[cut:]])
        assert out.error is None
        assert out.stanzas[0][0].text == "\U0001f600\U0001f600"


def test_many_stanzas_come_out_in_order(parse: Feeder) -> None:
    stanzas = b"".join(b"<message id='m%d'><body>%d</body></message>" % (i, i) for i in range(50))
    out = parse(HEADER + stanzas)
    assert out.error is None
    assert [m.get("id") for m in out.stanzas] == [f"m{i}" for i in range(50)]


def test_whitespace_keepalives_between_stanzas_are_ignored(parse: Feeder) -> None:
    data = HEADER + b" \n<presence/>\n\n \t<message/> \r\n <iq type='get' id='1'/> "
    out = parse(data)
    assert out.error is None
    assert [e.tag for e in out.stanzas] == [CLIENT + "presence", CLIENT + "message", CLIENT + "iq"]
    assert all(e.tail is None for e in out.stanzas)


def test_handed_out_stanza_is_not_mutated_by_later_input(parse: Feeder) -> None:
    parser = StreamParser(hold=parse.hold)
    first = drive(parser, parse.chunk(HEADER + b"<message><body>hi</body></message>"))
    [msg] = first.stanzas
    before = canonical(msg)
    later = drive(parser, parse.chunk(b"  \n <presence/> " + STREAM_FOOTER))
    assert later.error is None
    assert msg.tail is None
    assert canonical(msg) == before
    assert later.stanzas[0].tail is None


@pytest.mark.parametrize("after", [b"<!-- c -->", b"<?pi x?>", b"</stream:stream>"])
def test_text_after_a_stanza_never_becomes_its_tail(parse: Feeder, after: bytes) -> None:
    # Found by atheris: the tree builder flushes pending text into the last
    # element's tail on any following event, including one that is an error.
    out = parse(HEADER + b"<message/>text at depth one" + after)
    assert [e.tag for e in out.stanzas] == [CLIENT + "message"]
    assert out.stanzas[0].tail is None


def test_nonzas_in_other_namespaces_are_top_level_elements(parse: Feeder) -> None:
    data = (
        HEADER + b"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/>"
        b"</starttls></stream:features><r xmlns='urn:xmpp:sm:3'/>"
    )
    out = parse(data)
    assert out.error is None
    assert [e.tag for e in out.stanzas] == [STREAMS + "features", "{urn:xmpp:sm:3}r"]
    assert out.stanzas[0][0][0].tag == "{urn:ietf:params:xml:ns:xmpp-tls}required"


# -- the end of the stream -----------------------------------------------------


def test_closing_tag_ends_the_stream(parse: Feeder) -> None:
    out = parse(HEADER + b"<message/> " + STREAM_FOOTER)
    assert out.error is None
    assert [type(e) for e in out.events] == [StreamHeader, Element, StreamEnd]
    assert out.parser is not None and out.parser.ended


def test_self_closing_stream_header_is_header_then_end(parse: Feeder) -> None:
    out = parse(BARE_HEADER[:-1] + b"/>")
    assert out.error is None
    assert [type(e) for e in out.events] == [StreamHeader, StreamEnd]


def test_bytes_after_the_stream_end_are_not_parsed(parse: Feeder) -> None:
    out = parse(HEADER + b"<message/>" + STREAM_FOOTER + b"<garbage <<< &nbsp; <!-- -->")
    assert out.error is None
    assert [type(e) for e in out.events] == [StreamHeader, Element, StreamEnd]
    parser = out.parser
    assert parser is not None
    parser.feed(b"<more/>")
    assert parser.next_event() is None


def test_stream_error_is_an_ordinary_top_level_element(parse: Feeder) -> None:
    data = (
        HEADER + b"<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
        b"</stream:error></stream:stream>"
    )
    out = parse(data)
    assert out.error is None
    assert out.stanzas[0].tag == STREAMS + "error"
    assert isinstance(out.events[-1], StreamEnd)


# -- hold mode -----------------------------------------------------------------


@pytest.mark.parametrize("chunk", [whole, bytewise, chunked], ids=["whole", "bytewise", "chunked"])
def test_take_unparsed_returns_exactly_the_bytes_after_proceed(chunk: Chunker) -> None:
    tail = b"<garbage \x00\xff <!DOCTYPE x> &nbsp;"
    proceed = b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
    parser = StreamParser(hold=True)
    events: list[Event] = []
    fed = b""
    for piece in chunk(HEADER + b"\n" + proceed + tail):
        parser.feed(piece)
        fed += piece
        # Like a connection: stop pulling as soon as <proceed/> arrives.
        while not (events and isinstance(events[-1], Element)):
            ev = parser.next_event()
            if ev is None:
                break
            events.append(ev)
        if events and isinstance(events[-1], Element):
            break
    assert [type(e) for e in events] == [StreamHeader, Element]
    assert isinstance(events[-1], Element)
    assert events[-1].tag == "{urn:ietf:params:xml:ns:xmpp-tls}proceed"
    assert parser.take_unparsed() == fed[fed.index(proceed) + len(proceed) :]
    assert parser.take_unparsed() == b""


@pytest.mark.parametrize("chunk", [whole, bytewise, chunked], ids=["whole", "bytewise", "chunked"])
def test_take_unparsed_after_the_header_returns_the_rest(chunk: Chunker) -> None:
    rest = b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGp1bGlldAA=</auth>"
    parser = StreamParser(hold=True)
    fed = b""
    header = None
    for piece in chunk(HEADER + rest):
        parser.feed(piece)
        fed += piece
        header = parser.next_event()
        if header is not None:
            break
    assert isinstance(header, StreamHeader)
    assert parser.take_unparsed() == fed[len(HEADER) :]


def test_hold_mode_stops_after_each_top_level_element() -> None:
    parser = StreamParser(hold=True)
    parser.feed(HEADER + b"<a/><b/><c/>")
    assert isinstance(parser.next_event(), StreamHeader)
    assert parser.take_unparsed() == b"<a/><b/><c/>"


@pytest.mark.parametrize("chunk", [whole, bytewise, chunked], ids=["whole", "bytewise", "chunked"])
def test_hold_can_be_switched_off_once_no_restart_can_follow(chunk: Chunker) -> None:
    stanzas = b"".join(b"<message id='%d'><body>%d</body></message>" % (i, i) for i in range(20))
    parser = StreamParser(hold=True)
    events = drive(parser, chunk(HEADER + b"<iq type='result' id='bind'/>")).events
    assert [type(e) for e in events] == [StreamHeader, Element]
    parser.hold = False
    out = drive(parser, chunk(stanzas + STREAM_FOOTER))
    assert out.error is None
    assert [e.get("id") for e in out.stanzas] == [str(i) for i in range(20)]
    assert isinstance(out.events[-1], StreamEnd)


def test_restart_with_leftover_bytes_in_a_fresh_parser() -> None:
    old = StreamParser(hold=True)
    old.feed(HEADER + b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>" + HEADER + b"<iq/>")
    assert isinstance(old.next_event(), StreamHeader)
    assert old.next_event().tag == "{urn:ietf:params:xml:ns:xmpp-sasl}success"  # type: ignore[union-attr]
    new = StreamParser(hold=True)
    out = drive(new, [old.take_unparsed()])
    assert out.error is None
    assert [type(e) for e in out.events] == [StreamHeader, Element]


# -- restricted XML (RFC 6120 §11.1) -------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"<!DOCTYPE stream:stream>" + BARE_HEADER,
        b"<?xml version='1.0'?><!DOCTYPE stream>" + BARE_HEADER,
        b"<?xml version='1.0'?>\n  <!DOCTYPE stream SYSTEM 'file:///etc/passwd'>" + BARE_HEADER,
    ],
    ids=["bare", "after-declaration", "external"],
)
def test_doctype_before_root_is_restricted_xml(parse: Feeder, data: bytes) -> None:
    out = parse(data)
    assert out.condition is C.RESTRICTED_XML
    assert out.events == []


def test_doctype_inside_the_stream_is_not_well_formed(parse: Feeder) -> None:
    out = parse(HEADER + b"<!DOCTYPE x><message/>")
    assert out.condition is C.NOT_WELL_FORMED


def test_billion_laughs_is_restricted_xml(parse: Feeder) -> None:
    lol = b"<!DOCTYPE lolz [<!ENTITY lol 'lol'>"
    for i in range(1, 10):
        prev = b"lol" if i == 1 else b"lol%d" % (i - 1)
        lol += b"<!ENTITY lol%d '%s'>" % (i, (b"&" + prev + b";") * 10)
    lol += b"]>"
    out = parse(
        b"<?xml version='1.0'?>" + lol + BARE_HEADER + b"<message><body>&lol9;</body></message>"
    )
    assert out.condition is C.RESTRICTED_XML
    assert out.events == []


@pytest.mark.parametrize(
    "data",
    [
        b"<!-- hello -->" + BARE_HEADER,
        b"<?xml version='1.0'?><!-- hello -->" + BARE_HEADER,
        b"  <!---->" + BARE_HEADER,
    ],
    ids=["first", "after-declaration", "after-space"],
)
def test_comment_before_header_is_restricted_xml(parse: Feeder, data: bytes) -> None:
    out = parse(data)
    assert out.condition is C.RESTRICTED_XML
    assert out.events == []


def test_comment_after_header_is_restricted_xml(parse: Feeder) -> None:
    out = parse(HEADER + b"<!-- hello --><message/>")
    assert out.condition is C.RESTRICTED_XML
    assert [type(e) for e in out.events] == [StreamHeader]


def test_comment_inside_a_stanza_is_restricted_xml(parse: Feeder) -> None:
    out = parse(HEADER + b"<message/><message><body>a<!-- x -->b</body></message>")
    assert out.condition is C.RESTRICTED_XML
    assert [type(e) for e in out.events] == [StreamHeader, Element]


@pytest.mark.parametrize(
    "data",
    [
        b"<?xml-stylesheet href='a.xsl'?>" + BARE_HEADER,
        b"<?xml version='1.0'?><?foo bar?>" + BARE_HEADER,
    ],
    ids=["first", "after-declaration"],
)
def test_processing_instruction_before_header_is_restricted_xml(parse: Feeder, data: bytes) -> None:
    out = parse(data)
    assert out.condition is C.RESTRICTED_XML
    assert out.events == []


def test_processing_instruction_after_header_is_restricted_xml(parse: Feeder) -> None:
    out = parse(HEADER + b"<?foo bar?><message/>")
    assert out.condition is C.RESTRICTED_XML
    assert [type(e) for e in out.events] == [StreamHeader]


def test_processing_instruction_inside_a_stanza_is_restricted_xml(parse: Feeder) -> None:
    out = parse(HEADER + b"<message><?php echo 1; ?></message>")
    assert out.condition is C.RESTRICTED_XML


@pytest.mark.parametrize("ref", [b"&nbsp;", b"&lol;", b"&copy;"])
def test_undefined_entity_is_restricted_xml(parse: Feeder, ref: bytes) -> None:
    out = parse(HEADER + b"<message><body>a" + ref + b"b</body></message>")
    assert out.condition is C.RESTRICTED_XML
    assert [type(e) for e in out.events] == [StreamHeader]


def test_undefined_entity_in_attribute_is_restricted_xml(parse: Feeder) -> None:
    out = parse(HEADER + b"<message to='&nbsp;'/>")
    assert out.condition is C.RESTRICTED_XML


# -- malformed input -----------------------------------------------------------


@pytest.mark.parametrize(
    "stanza",
    [
        b"<message></presence>",
        b"<message to=example.com/>",
        b"<message to='a' to='b'/>",
        b"<message><<body/></message>",
        b"<message>&amp</message>",
        b"<message>& </message>",
        b"<x:message/>",
        b"<message 1a='x'/>",
        b"<message a='<'/>",
        b"</message>",
        b"<message/></stream:streamx>",
        b"<message>]]></message>",
        b"<message xmlns:xmlns='x'/>",
    ],
)
def test_malformed_input_is_not_well_formed(parse: Feeder, stanza: bytes) -> None:
    out = parse(HEADER + stanza + b"<presence/>" * 3)
    assert out.condition is C.NOT_WELL_FORMED
    assert not any(isinstance(e, Element) and e.tag == CLIENT + "presence" for e in out.events)


@pytest.mark.parametrize(
    "data",
    [
        b"hello" + BARE_HEADER,
        b"HTTP/1.1 200 OK\r\n\r\n",
        b"\x00\x00\x00\x00",
        b"\x16\x03\x01\x02\x00\x01",
    ],
    ids=["text", "http", "nuls", "tls-client-hello"],
)
def test_text_before_header_is_not_well_formed(parse: Feeder, data: bytes) -> None:
    out = parse(data)
    assert out.condition is C.NOT_WELL_FORMED


def test_xml_declaration_after_whitespace_is_not_well_formed(parse: Feeder) -> None:
    out = parse(b"  <?xml version='1.0'?>" + BARE_HEADER)
    assert out.condition is C.NOT_WELL_FORMED


def test_malformed_xml_declaration_is_not_well_formed(parse: Feeder) -> None:
    out = parse(b"<?xml version='1.0'>" + BARE_HEADER + b"<message/>")
    assert out.condition is C.NOT_WELL_FORMED


# -- encodings (RFC 6120 §11.6) ------------------------------------------------


@pytest.mark.parametrize("encoding", [b"ISO-8859-1", b"UTF-16", b"us-ascii", b"windows-1252"])
def test_non_utf8_xml_declaration_is_unsupported_encoding(parse: Feeder, encoding: bytes) -> None:
    out = parse(b"<?xml version='1.0' encoding='" + encoding + b"'?>" + BARE_HEADER)
    assert out.condition is C.UNSUPPORTED_ENCODING
    assert out.events == []


@pytest.mark.parametrize(
    "data",
    [
        "\ufeff<?xml version='1.0'?><stream:stream>".encode("utf-16-be"),
        "\ufeff<?xml version='1.0'?><stream:stream>".encode("utf-16-le"),
        "\ufeff<stream:stream>".encode("utf-16-le"),
        "<?xml version='1.0'?><stream:stream>".encode("utf-16-be"),
        "<?xml version='1.0'?><stream:stream>".encode("utf-16-le"),
    ],
    ids=["bom-be", "bom-le", "bom-le-no-declaration", "no-bom-be", "no-bom-le"],
)
def test_utf16_is_unsupported_encoding(parse: Feeder, data: bytes) -> None:
    out = parse(data)
    assert out.condition is C.UNSUPPORTED_ENCODING
    assert out.events == []


@pytest.mark.parametrize(
    "bad",
    [b"\xff", b"\xc0\xaf", b"\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82", b"\xfe"],
    ids=["ff", "overlong", "lone-continuation", "surrogate", "above-max", "truncated", "fe"],
)
def test_invalid_utf8_is_not_well_formed(parse: Feeder, bad: bytes) -> None:
    # expat reports invalid UTF-8 as "not well-formed (invalid token)".
    for data in (
        HEADER + b"<message><body>a" + bad + b"b</body></message>",
        HEADER + b"<message to='" + bad + b"'/>",
    ):
        out = parse(data)
        assert isinstance(out.error, XMLStreamError)
        assert out.condition is C.NOT_WELL_FORMED
        assert out.stanzas == []


@pytest.mark.parametrize(
    "stanza",
    [
        b"<message><body>a\x00b</body></message>",
        b"<message to='a\x00b'/>",
        b"<mess\x00age/>",
        b"<message><body>&#0;</body></message>",
        b"<message><body>\x01</body></message>",
        b"<message><body>&#x1;</body></message>",
        b"<message><body>&#xFFFE;</body></message>",
        b"<message><body>&#xD800;</body></message>",
    ],
    ids=[
        "text",
        "attribute",
        "name",
        "char-ref",
        "control",
        "control-ref",
        "fffe",
        "surrogate-ref",
    ],
)
def test_nul_and_other_non_xml_characters_are_not_well_formed(parse: Feeder, stanza: bytes) -> None:
    out = parse(HEADER + stanza)
    assert out.condition is C.NOT_WELL_FORMED
    assert out.stanzas == []


def test_nul_byte_in_the_header_is_not_well_formed(parse: Feeder) -> None:
    out = parse(BARE_HEADER[:20] + b"\x00" + BARE_HEADER[20:])
    assert out.condition is C.NOT_WELL_FORMED


# -- limits --------------------------------------------------------------------


def big_stanza(size: int) -> bytes:
    """A message of about ``size`` bytes with many small children."""
    item = b"<item xmlns='urn:example' n='0123456789'>payload</item>"
    return b"<message>" + item * (size // len(item) + 1) + b"</message>"


def test_stanza_bigger_than_max_stanza_size_is_policy_violation(parse: Feeder) -> None:
    out = parse(
        HEADER + b"<message/>" + big_stanza(16 * 1024) + b"<message/>", max_stanza_size=1024
    )
    assert out.condition is C.POLICY_VIOLATION
    assert len(out.stanzas) == 1


def test_big_stanza_fed_in_one_chunk_is_policy_violation(parse: Feeder) -> None:
    out = parse.parts([HEADER + b"<message/>", big_stanza(64 * 1024)], max_stanza_size=4096)
    assert out.condition is C.POLICY_VIOLATION
    assert len(out.stanzas) == 1


def test_huge_text_without_tags_is_policy_violation(parse: Feeder) -> None:
    out = parse(HEADER + b"<message><body>" + b"a" * 20_000, max_stanza_size=2048)
    assert out.condition is C.POLICY_VIOLATION


def test_huge_text_in_one_chunk_is_policy_violation(parse: Feeder) -> None:
    out = parse.parts([HEADER + b"<message><body>", b"a" * 1_000_000], max_stanza_size=4096)
    assert out.condition is C.POLICY_VIOLATION


def test_default_limit_rejects_a_megabyte_stanza(parse: Feeder) -> None:
    out = parse.parts([HEADER, b"<message><body>" + b"x" * (1 << 20) + b"</body></message>"])
    assert out.condition is C.POLICY_VIOLATION


def test_whitespace_flood_between_stanzas_is_policy_violation(parse: Feeder) -> None:
    out = parse.parts([HEADER + b"<message/>", b" " * 10_000], max_stanza_size=2048)
    assert out.condition is C.POLICY_VIOLATION


def test_endless_prolog_is_policy_violation(parse: Feeder) -> None:
    out = parse.parts([b" " * 10_000], max_stanza_size=2048)
    assert out.condition is C.POLICY_VIOLATION
    out = parse.parts([b"<?xml version='1.0' " + b" " * 10_000], max_stanza_size=2048)
    assert out.condition is C.POLICY_VIOLATION


def test_huge_attribute_value_is_policy_violation(parse: Feeder) -> None:
    out = parse.parts([HEADER, b"<message to='" + b"a" * 100_000 + b"'/>"], max_stanza_size=8192)
    assert out.condition is C.POLICY_VIOLATION


def test_huge_header_is_policy_violation(parse: Feeder) -> None:
    data = BARE_HEADER[:-1] + b" id='" + b"x" * 50_000 + b"'>"
    out = parse(data, max_stanza_size=4096)
    assert out.condition is C.POLICY_VIOLATION
    assert out.events == []


def test_stanzas_within_the_limit_pass_however_they_are_chunked(parse: Feeder) -> None:
    # 40 stanzas of ~1.9 KiB against a 2 KiB limit, arriving together.
    stanzas = [
        b"<message id='%02d'><body>%s</body></message>" % (i, b"z" * 1900) for i in range(40)
    ]
    assert all(len(s) <= 2048 for s in stanzas)
    out = parse(HEADER + b"\n".join(stanzas), max_stanza_size=2048)
    assert out.error is None
    assert len(out.stanzas) == 40


def test_stanza_exactly_at_the_limit_passes_and_one_byte_more_fails() -> None:
    for hold in (False, True):
        for size, ok in ((2048, True), (2049, False)):
            body = b"<message><body>" + b"q" * (size - 32) + b"</body></message>"
            body = body.replace(b"<body>", b"<body>" + b"r" * (size - len(body)), 1)
            assert len(body) == size
            out = drive(StreamParser(hold=hold, max_stanza_size=2048), bytewise(HEADER + body))
            assert (out.error is None) is ok, (hold, size)


def nested(depth: int) -> bytes:
    """A stanza whose deepest element is at ``depth`` (the stanza is depth 1)."""
    return b"<message>" + b"<a>" * (depth - 1) + b"</a>" * (depth - 1) + b"</message>"


def test_nesting_up_to_max_depth_is_accepted(parse: Feeder) -> None:
    out = parse(HEADER + nested(8), max_depth=8)
    assert out.error is None
    assert len(list(out.stanzas[0].iter())) == 8


def test_nesting_deeper_than_max_depth_is_policy_violation(parse: Feeder) -> None:
    out = parse(HEADER + b"<presence/>" + nested(9), max_depth=8)
    assert out.condition is C.POLICY_VIOLATION
    assert len(out.stanzas) == 1


def test_deep_nesting_attack_is_policy_violation(parse: Feeder) -> None:
    out = parse.parts([HEADER, b"<a>" * 50_000])
    assert out.condition is C.POLICY_VIOLATION


# -- a broken parser stays broken ----------------------------------------------


@pytest.mark.parametrize(
    ("data", "condition"),
    [
        (HEADER + b"<!-- x -->", C.RESTRICTED_XML),
        (HEADER + b"<message></iq>", C.NOT_WELL_FORMED),
        (b"\xff\xfe<\x00", C.UNSUPPORTED_ENCODING),
        (HEADER + nested(100), C.POLICY_VIOLATION),
    ],
    ids=["restricted", "malformed", "encoding", "policy"],
)
def test_once_broken_the_parser_keeps_raising(parse: Feeder, data: bytes, condition: C) -> None:
    out = parse(data)
    assert out.condition is condition
    parser = out.parser
    assert parser is not None
    for _ in range(3):
        with pytest.raises(XMLStreamError) as exc_info:
            parser.next_event()
        assert exc_info.value is out.error
        with pytest.raises(XMLStreamError) as exc_info:
            parser.feed(b"<message/>")
        assert exc_info.value.condition is condition


def test_events_before_an_error_are_delivered_first(parse: Feeder) -> None:
    out = parse(HEADER + b"<a/><b/><c/><!-- no -->")
    assert out.condition is C.RESTRICTED_XML
    assert [e.tag for e in out.stanzas] == [CLIENT + "a", CLIENT + "b", CLIENT + "c"]


# -- properties ----------------------------------------------------------------

XML_TEXT = st.text(
    st.characters(
        exclude_categories=("Cs", "Cc"),
        include_characters="\t\n\r\x7f\x85",
        exclude_characters="\ufffe\uffff",
    ),
    max_size=16,
) | st.sampled_from(["", "<&>\"'", "]]>", "\r\n", " \t ", "&amp;", "\U0001f600\u00e9"])
NAMES = st.sampled_from(["body", "x", "item", "\u00e9l\u00e9ment", "data-1", "a.b"])
NAMESPACES = st.sampled_from(
    ["", ns.CLIENT, "urn:example:a", "urn:example:\u00fc", "http://x/?a=1&b=2"]
)


@st.composite
def elements(draw: st.DrawFn, depth: int = 0) -> Element:
    uri = draw(NAMESPACES)
    tag = ("{" + uri + "}" if uri else "") + draw(NAMES)
    attrs = draw(
        st.dictionaries(
            st.sampled_from(["id", "to", "type", "{urn:example:attr}v", ns.XML_LANG]),
            XML_TEXT,
            max_size=3,
        )
    )
    el = element(tag, attrs, text=draw(XML_TEXT) or None)
    if depth < 2:
        for child in draw(st.lists(elements(depth + 1), max_size=3)):
            child.tail = draw(XML_TEXT) or None
            el.append(child)
    return el


@st.composite
def streams(draw: st.DrawFn) -> tuple[bytes, list[Element]]:
    stanzas = draw(st.lists(elements(), min_size=1, max_size=4))
    header = stream_header({"to": "example.com", "version": "1.0", ns.XML_LANG: "en"})
    gaps = draw(
        st.lists(
            st.sampled_from(["", " ", "\n", "\r\n\t "]),
            min_size=len(stanzas),
            max_size=len(stanzas),
        )
    )
    body = b"".join(g.encode() + serialize(s) for g, s in zip(gaps, stanzas, strict=True))
    end = draw(st.booleans())
    return header + body + (STREAM_FOOTER if end else b""), stanzas


def cut(data: bytes, points: list[int]) -> list[bytes]:
    cuts = sorted({p % (len(data) + 1) for p in points})
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(), st.lists(st.integers(min_value=0), max_size=12), st.booleans())
def test_any_chunking_of_a_valid_stream_yields_the_same_events(
    stream: tuple[bytes, list[Element]], points: list[int], hold: bool
) -> None:
    data, stanzas = stream
    reference = drive(StreamParser(), [data])
    assert reference.error is None
    assert [canonical(e) for e in reference.stanzas] == [canonical(s) for s in stanzas]
    out = drive(StreamParser(hold=hold), cut(data, points))
    assert out.error is None
    assert [key(e) for e in out.events] == [key(e) for e in reference.events]
    single = drive(StreamParser(hold=hold), bytewise(data))
    assert [key(e) for e in single.events] == [key(e) for e in reference.events]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(), st.lists(st.integers(min_value=0), max_size=6), st.integers(1, 64))
def test_a_read_fed_in_one_slice_or_many_yields_the_same_events(
    stream: tuple[bytes, list[Element]], points: list[int], step: int
) -> None:
    """The stanza-exchange mode feeds a read to expat in one call when it fits
    one slice (the common read), in slices of ``step`` bytes otherwise: the
    same events either way, however the stream was cut into reads."""
    data, _ = stream
    reference = drive(StreamParser(), [data])
    sliced = StreamParser()
    sliced._slice = step  # the slice a large read is cut into (_FAST_SLICE)
    out = drive(sliced, cut(data, points))
    assert out.error is None
    assert [key(e) for e in out.events] == [key(e) for e in reference.events]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(streams())[0])
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["insert", "delete", "flip", "splice"]))
        pos = draw(st.integers(0, len(data)))
        if op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 8))]
        elif op == "flip" and pos < len(data):
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "splice":
            data[pos:pos] = draw(
                st.sampled_from(
                    [
                        b"<!--",
                        b"<?",
                        b"&nbsp;",
                        b"<!DOCTYPE x>",
                        b"\x00",
                        b"\xff",
                        b"]]>",
                        b"</",
                        b"<![CDATA[",
                    ]
                )
            )
    return bytes(data)


@settings(max_examples=100, deadline=5000, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(st.binary(max_size=300), mutated()),
    st.lists(st.integers(min_value=0), max_size=10),
    st.booleans(),
)
def test_arbitrary_and_mutated_input_only_raises_xml_stream_error(
    data: bytes, points: list[int], hold: bool
) -> None:
    parser = StreamParser(hold=hold, max_stanza_size=4096, max_depth=16)
    drive(parser, cut(data, points))  # anything but XMLStreamError propagates
    # A second drain must be quick and consistent too.
    try:
        while parser.next_event() is not None:
            pass
    except XMLStreamError:
        pass


# -- compaction of idle streams --------------------------------------------------


def drive_compacting(parser: StreamParser, chunks: Iterable[bytes]) -> tuple[Outcome, int]:
    """Like :func:`drive`, but ask the parser to compact after every chunk;
    also return how many times it did."""
    out = Outcome(parser=parser)
    compactions = 0
    try:
        for chunk in chunks:
            parser.feed(chunk)
            while (ev := parser.next_event()) is not None:
                out.events.append(ev)
            if parser.compact():
                assert parser.compacted
                compactions += 1
    except XMLStreamError as exc:
        out.error = exc
    return out, compactions


@given(streams(), st.lists(st.integers(min_value=0), max_size=12), st.booleans())
def test_compacting_between_any_chunks_changes_no_event(
    stream: tuple[bytes, list[Element]], points: list[int], hold: bool
) -> None:
    data, _stanzas = stream
    reference = drive(StreamParser(), [data])
    out, _ = drive_compacting(StreamParser(hold=hold), cut(data, points))
    assert out.error is None
    assert [key(e) for e in out.events] == [key(e) for e in reference.events]


def test_idle_stream_compacts_at_a_stanza_boundary_and_resumes_with_header_prefixes() -> None:
    header = (
        b"<?xml version='1.0'?><stream:stream xmlns='jabber:client'"
        b" xmlns:stream='http://etherx.jabber.org/streams' xmlns:x='urn:example:x'>"
    )
    parser = StreamParser()
    first = drive(parser, [header, b"<message><x:a/></message>"])
    assert [type(e) for e in first.events] == [StreamHeader, Element]
    assert parser.compact() and parser.compacted
    assert not parser.compact()  # already compacted
    # The prefix declared on the header still resolves after the pause.
    rest = drive(parser, [b"<message><x:b>t</x:b></message>", b"</stream:stream>"])
    assert not parser.compacted
    assert rest.error is None
    assert rest.stanzas[0][0].tag == "{urn:example:x}b"
    assert isinstance(rest.events[-1], StreamEnd)


@pytest.mark.parametrize(
    "pending",
    [b"<message><body>half", b"<message", b" text ", b"<message/><iq"],
    ids=["open-element", "open-tag", "text", "element-then-open-tag"],
)
def test_stream_in_the_middle_of_an_element_or_text_does_not_compact(pending: bytes) -> None:
    parser = StreamParser()
    drive(parser, [BARE_HEADER, pending])
    assert not parser.compact()
    assert not parser.compacted


def test_whitespace_keepalive_after_a_stanza_still_compacts() -> None:
    parser = StreamParser()
    drive(parser, [BARE_HEADER, b"<message/>  \n "])
    assert parser.compact()
    out = drive(parser, [b"<iq type='get' id='1'/>"])
    assert [e.tag for e in out.stanzas] == [CLIENT + "iq"]


def test_errors_after_compaction_are_still_detected() -> None:
    parser = StreamParser()
    drive(parser, [BARE_HEADER, b"<message/>"])
    assert parser.compact()
    out = drive(parser, [b"<!-- comment -->"])
    assert out.condition is C.RESTRICTED_XML


# ---------------------------------------------------------------------------
# message mode (RFC 7395 §3.3.3): one element per WebSocket message, parsed once

_MESSAGE_PARTS = [
    b"<iq type='get' id='1'/>",
    b"<message><body>hi &amp; bye</body></message>",
    b"<presence>",
    b"</presence>",
    b"<!-- c -->",
    b"<?pi x?>",
    b"text",
    b" ",
    b"</stream:stream>",
    b"<a><b><c/></b></a>",
    b"&unknown;",
    b"<x xmlns='urn:example'/>",
    b"<",
    b">",
]


def _message_mode(message: bytes) -> Element | None:
    parser = StreamParser()
    parser.feed(BARE_HEADER)
    assert isinstance(parser.next_event(), StreamHeader)
    assert parser.between_elements
    try:
        parser.feed_element(message)
    except XMLStreamError:
        return None
    event = parser.next_event()
    assert isinstance(event, Element) and parser.next_event() is None
    assert parser.between_elements  # ready for the next message
    return event


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_MESSAGE_PARTS), min_size=1, max_size=4))
def test_message_mode_takes_exactly_what_parse_fragment_takes(parts: list[bytes]) -> None:
    message = b"".join(parts).strip(b" ")
    try:
        expected: Element | None = parse_fragment(message)
    except ValueError:
        expected = None
    got = _message_mode(message) if message.startswith(b"<") and message.endswith(b">") else None
    if expected is None:
        assert got is None
    else:
        assert got is not None and canonical(got) == canonical(expected)


def test_message_mode_queues_nothing_of_a_message_with_two_elements() -> None:
    parser = StreamParser()
    parser.feed(BARE_HEADER)
    parser.next_event()
    with pytest.raises(XMLStreamError) as info:
        parser.feed_element(b"<iq type='get' id='1'/><iq type='get' id='2'/>")
    assert info.value.condition is C.NOT_WELL_FORMED
    with pytest.raises(XMLStreamError):
        parser.next_event()


def test_message_mode_needs_the_parser_between_elements() -> None:
    parser = StreamParser()
    assert not parser.between_elements  # no header yet
    with pytest.raises(RuntimeError):
        parser.feed_element(b"<iq/>")
    parser.feed(BARE_HEADER + b"<message>")
    parser.next_event()
    assert parser.next_event() is None
    assert not parser.between_elements  # inside an element
