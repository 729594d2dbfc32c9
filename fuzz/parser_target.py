"""The parser fuzz target shared by ``fuzz_parser.py`` (hypothesis) and
``atheris_parser.py`` (coverage-guided).

:func:`check` feeds one input to a :class:`StreamParser` in the given chunks
and asserts the parser's invariants. Any exception other than
:class:`XMLStreamError` escaping the parser, or a broken invariant, is a bug.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from pathlib import Path
from xml.etree.ElementTree import Element

from xmpp_sansio.xml.parser import StreamEnd, StreamHeader, StreamParser, XMLStreamError

CORPUS = Path(__file__).parent / "corpus" / "parser"
MAX_STANZA_SIZE = 4096
MAX_DEPTH = 16

# Fragments that reach the parser's special paths when spliced into an input.
TOKENS: tuple[bytes, ...] = (
    b"<",
    b">",
    b"/>",
    b"</",
    b"<!--",
    b"-->",
    b"<?",
    b"?>",
    b"<?xml version='1.0'?>",
    b"<?xml version='1.0' encoding='UTF-16'?>",
    b"<!DOCTYPE x>",
    b"<!ENTITY a 'b'>",
    b"<![CDATA[",
    b"]]>",
    b"&nbsp;",
    b"&amp;",
    b"&#0;",
    b"&#x1F600;",
    b"\x00",
    b"\xff",
    b"\xfe\xff",
    b"\xef\xbb\xbf",
    b"\xf0\x9f\x98",
    b"xmlns=''",
    b"xmlns:a='urn:a'",
    b"</stream:stream>",
    b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
    b"<a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a>",
)


def seeds() -> list[bytes]:
    """The seed inputs, sorted by file name."""
    return [p.read_bytes() for p in sorted(CORPUS.glob("*.xml"))]


def split(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    """Cut ``data`` at the given offsets (taken modulo its length + 1)."""
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def depth(el: Element) -> int:
    return 1 + max((depth(child) for child in el), default=0)


def check(
    chunks: Sequence[bytes],
    *,
    hold: bool,
    max_stanza_size: int = MAX_STANZA_SIZE,
    max_depth: int = MAX_DEPTH,
    compact: bool = False,
) -> list[StreamHeader | Element | StreamEnd] | XMLStreamError:
    """Run one input; return its events, or the error that ended it.
    ``compact``: ask the parser to compact after every chunk."""
    parser = StreamParser(hold=hold, max_stanza_size=max_stanza_size, max_depth=max_depth)
    events: list[StreamHeader | Element | StreamEnd] = []
    error: XMLStreamError | None = None
    try:
        for chunk in chunks:
            parser.feed(chunk)
            while (ev := parser.next_event()) is not None:
                events.append(ev)
            if compact:
                parser.compact()
    except XMLStreamError as exc:
        error = exc
    # The events form a stream: one header first, elements, at most one end, last.
    for i, ev in enumerate(events):
        if isinstance(ev, StreamHeader):
            assert i == 0, "header not first"
        elif isinstance(ev, StreamEnd):
            assert i == len(events) - 1, "events after the stream end"
            assert parser.ended
        else:
            assert isinstance(ev, Element), f"unexpected event {ev!r}"
            assert i > 0, "element before the header"
            assert ev.tail is None
            assert depth(ev) <= max_depth, "nesting limit not enforced"
    if error is None:
        return events
    assert isinstance(error.condition, str) and error.condition
    # Broken stays broken, with the same error.
    for _ in range(2):
        try:
            parser.next_event()
        except XMLStreamError as again:
            assert again is error
        else:
            raise AssertionError("a broken parser returned an event")
        try:
            parser.feed(b"<x/>")
        except XMLStreamError:
            pass
        else:
            raise AssertionError("a broken parser accepted input")
    return error
