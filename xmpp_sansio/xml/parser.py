"""Incremental XML stream parser with RFC 6120 §11 restrictions.

Theory of operation
-------------------
One :class:`StreamParser` parses one XML stream: the stream header, the
top-level elements (stanzas and nonzas), and the closing tag. A stream restart
(RFC 6120 §4.3.3, after STARTTLS and SASL) needs a fresh parser; the bytes the
old parser has not consumed are handed over with :meth:`StreamParser.take_unparsed`.

Parsing is done by expat through the C-accelerated
:class:`xml.etree.ElementTree.XMLParser` and its C ``TreeBuilder``, so
elements are built in C; the parser reports its events straight into a list
(what :class:`~xml.etree.ElementTree.XMLPullParser` does, without that
class's Python ``feed`` and ``read_events`` generator on every element).
Namespace declarations are reported only until the stream header. The
parser has two modes:

* ``hold=True`` (negotiation): bytes are fed to expat up to one ``>`` at a
  time and parsing stops after each stream header or top-level element. The
  byte boundary of every top-level element is then exact, so bytes that
  follow a ``<proceed/>`` or ``<success/>`` are never parsed as part of the
  old stream (the STARTTLS injection class of bugs).
* ``hold=False`` (stanza exchange): everything buffered is fed at once, in
  slices, which is the fast path.

Restrictions (RFC 6120 §11.1): comments, processing instructions, DTDs and
entity references other than the five predefined ones raise
``restricted-xml``. A document type or comment can only appear before the
root element as ``<!``, so the prolog is scanned for it before expat sees it.
Non-UTF-8 encodings raise ``unsupported-encoding`` (§11.6). Malformed XML
raises ``not-well-formed``, and so does text before the stream header. A
parser for a restarted stream (``restarted=True``, §4.3.3) skips XML
whitespace before the header (and its XML declaration): it is the previous
stream's whitespace between elements, which clients send even where §5.3.3
and §6.3.5 say they must not (a newline after ``</auth>``); it counts
towards ``max_stanza_size`` like whitespace between stanzas. Limits
(raising ``policy-violation``): bytes between two top-level element boundaries
(``max_stanza_size``), and element nesting depth (``max_depth``, the stream
element is depth 0).

The size limit never rejects a stanza that is within it. It is exact when
expat is fed up to one ``>`` at a time (hold mode, the prolog, small reads);
when a read holds several stanzas, expat only tells which slice of input
(at most ``min(16 KiB, max_stanza_size)`` bytes) a boundary fell in, so a
stanza can overrun the limit by up to two slices before it is rejected.

Events parsed before an error are still returned, in order; then the error is
raised, and raised again on every later call. Bytes after the closing stream
tag are never parsed (they are not part of this stream).

Idle streams: expat's state (name tables, buffers) is most of an idle
connection's memory. :meth:`StreamParser.compact` drops it between two
top-level elements; the next :meth:`~StreamParser.feed` builds a new expat
parser and primes it with the exact bytes of the original prolog and stream
header, so the namespace context, and hence every later element, is the same
as if the stream had never paused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final, NoReturn, cast
from xml.etree.ElementTree import Element, ParseError, TreeBuilder, XMLParser

from ..errors import StreamErrorCondition
from . import ns

__all__ = ["StreamEnd", "StreamHeader", "StreamParser", "XMLStreamError"]

_FAST_SLICE = 16384
_XML_ERROR_UNDEFINED_ENTITY = 11  # expat XML_ERROR_UNDEFINED_ENTITY
_XML_ERROR_UNKNOWN_ENCODING = 18
_XML_ERROR_INCORRECT_ENCODING = 19
_BOM_UTF8 = b"\xef\xbb\xbf"
_NOT_UTF8 = (b"\xfe\xff", b"\xff\xfe", b"\x00<\x00?", b"<\x00?\x00")  # UTF-16 signatures
_XML_SPACE = b" \t\r\n"
_XML_DECL = re.compile(rb"<\?xml\s[^>]*?\?>", re.DOTALL)
_ENCODING = re.compile(rb"""encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


class XMLStreamError(Exception):
    """The stream is broken; ``condition`` is the stream error to send."""

    def __init__(self, condition: StreamErrorCondition, text: str) -> None:
        super().__init__(f"{condition}: {text}")
        self.condition = condition
        self.text = text


@dataclass(frozen=True, slots=True)
class StreamHeader:
    """The opening ``<stream:stream>`` tag (RFC 6120 §4.7).

    ``tag`` is in Clark notation; ``attrs`` holds the attributes as
    ElementTree names them (``xml:lang`` is ``{http://www.w3.org/XML/1998/namespace}lang``);
    ``namespaces`` maps each prefix declared on the header (``""`` for the
    default namespace) to its URI.
    """

    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    namespaces: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """The closing ``</stream:stream>`` tag."""


ParserEvent = StreamHeader | Element | StreamEnd


class StreamParser:
    """Parse one XML stream incrementally; see the module docstring."""

    def __init__(
        self,
        *,
        max_stanza_size: int = 262144,
        max_depth: int = 64,
        hold: bool = False,
        restarted: bool = False,
    ):
        self.max_stanza_size = max_stanza_size
        self.max_depth = max_depth
        self.hold = hold
        # expat's reports, (kind, item) pairs: see _new_pull
        self._queue: list[tuple[str, Any]] = []
        self._pull: XMLParser | None = _new_pull(self._queue, _HEADER_EVENTS)
        self._flush = getattr(self._pull, "flush", None)  # expat >= 2.6 reparse deferral
        self._prolog = bytearray()  # what expat was fed up to the stream header
        # Whitespace-only bytes after the last ">" fed to expat (-1: other text).
        self._quiet_tail = 0
        self._buffer = bytearray()
        self._scanned = 0  # leading bytes of the buffer known to hold no ">"
        self._events: list[ParserEvent] = []  # a FIFO; a deque would cost 760 B per stream
        self._root: Element | None = None
        self._namespaces: dict[str, str] = {}
        self._depth = 0
        self._prolog_ok = False
        self._skip_space = restarted  # leading whitespace is the old stream's
        # A lower bound on the bytes since the last top-level boundary.
        self._since_boundary = 0
        self._boundaries = 0  # top-level boundaries seen so far
        self._slice = max(1, min(_FAST_SLICE, max_stanza_size))
        self._last_top: Element | None = None  # its tail may still be set by the builder
        self._ended = False
        self._error: XMLStreamError | None = None

    # -- input ---------------------------------------------------------------

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Buffer ``data``; it is parsed as events are pulled."""
        if self._error is not None:
            raise self._error
        self._buffer += data

    @property
    def between_elements(self) -> bool:
        """True after the header, between two top-level elements, with
        nothing buffered or queued: where :meth:`feed_element` may be used."""
        return (
            self._depth == 1
            and not self._buffer
            and not self._events
            and self._error is None
            and not self._ended
            and self._since_boundary == self._quiet_tail
        )

    def feed_element(self, data: bytes) -> None:
        """Message mode (RFC 7395 §3.3.3): parse ``data`` now as exactly one
        complete top-level element, whose event is then queued as usual.
        Only when :attr:`between_elements`.

        Raises:
            XMLStreamError: ``data`` is not one complete element
                (``not-well-formed``) or breaks a limit; the stream is broken.
        """
        if not self.between_elements:
            raise RuntimeError("feed_element needs the parser between two elements")
        if self._pull is None:
            self._restore()
        try:
            self._feed_expat(data)
        except XMLStreamError:
            self._events.clear()
            raise
        events = self._events
        if len(events) != 1 or self._depth != 1 or not isinstance(events[0], Element):
            events.clear()
            self._fail(StreamErrorCondition.NOT_WELL_FORMED, "a message must be one element")

    def take_unparsed(self) -> bytes:
        """Remove and return the buffered bytes expat has not seen yet."""
        data = bytes(self._buffer)
        self._buffer.clear()
        self._scanned = 0
        return data

    @property
    def ended(self) -> bool:
        """True once the closing stream tag has been parsed."""
        return self._ended

    @property
    def compacted(self) -> bool:
        """True while expat's state is dropped (see :meth:`compact`)."""
        return self._pull is None

    def compact(self) -> bool:
        """Drop expat's state if the stream is between two top-level elements
        (nothing buffered, nothing but whitespace after the last element).
        Returns whether it did; the next :meth:`feed` restores it."""
        if (
            self._pull is None
            or self._root is None
            or self._ended
            or self._error is not None
            or self._depth != 1
            or self._buffer
            or self._events
        ):
            return False
        if self._since_boundary != self._quiet_tail:
            return False  # expat may hold part of an element (or text) still
        if self._last_top is not None:
            self._last_top.tail = None
            self._last_top = None
        self._pull = None
        self._flush = None
        self._root = None
        return True

    def _restore(self) -> XMLParser:
        """A new expat parser in the state :meth:`compact` dropped."""
        queue = self._queue
        pull = _new_pull(queue, _STANZA_EVENTS)
        pull.feed(bytes(self._prolog))
        flush = getattr(pull, "flush", None)
        if flush is not None:
            flush()
        for kind, item in queue:
            if kind == "start":
                self._root = cast(Element, item)
        queue.clear()
        self._pull = pull
        self._flush = flush
        return pull

    # -- output --------------------------------------------------------------

    def next_event(self) -> ParserEvent | None:
        """Return the next event, or ``None`` when more data is needed.

        Raises:
            XMLStreamError: the stream is broken; it stays broken.
        """
        events = self._events
        if events:
            return events.pop(0)
        if self._error is not None:
            raise self._error
        if self._buffer and not self._ended:
            try:
                self._parse()
            except XMLStreamError:
                if not events:
                    raise
                # Hand out what was parsed before the error first.
            if events:
                return events.pop(0)
        return None

    # -- internals -----------------------------------------------------------

    def _fail(self, condition: StreamErrorCondition, text: str) -> NoReturn:
        self._error = XMLStreamError(condition, text)
        self._buffer.clear()
        raise self._error

    def _parse(self) -> None:
        # Unparsed bytes are bounded where they cannot be handed to expat yet
        # (an undecided prolog, a tail without ">" in hold mode). A read that
        # holds many stanzas is fine: only one stanza's bytes count.
        if self._root is None and not self._check_prolog():
            if len(self._buffer) > self.max_stanza_size:
                self._fail(StreamErrorCondition.POLICY_VIOLATION, "too much data before the header")
            return
        if self._pull is None:
            self._restore()
        if self.hold or self._root is None:
            buf = self._buffer
            start = 0
            while not self._events:
                end = buf.find(b">", max(start, self._scanned))
                if end < 0:
                    break
                self._feed_expat(bytes(buf[start : end + 1]))
                start = end + 1
                if self._ended:
                    break
            del buf[:start]
            self._scanned = 0
            if not self._events and not self._ended:
                self._scanned = len(buf)
                if self._since_boundary + len(buf) > self.max_stanza_size:
                    self._fail(StreamErrorCondition.POLICY_VIOLATION, "stanza too large")
        else:
            data = bytes(self._buffer)
            self._buffer.clear()
            step = self._slice
            if len(data) <= step:  # the common read: one slice
                self._feed_expat(data)
                return
            for i in range(0, len(data), step):
                self._feed_expat(data[i : i + step])
                if self._ended:
                    self._buffer += data[i + step :]
                    break

    def _check_prolog(self) -> bool:
        """Vet the bytes before the root element (RFC 6120 §11.1, §11.6).

        Returns False when more data is needed to decide.
        """
        if self._prolog_ok:
            # Already vetted up to the root's "<": what is left of the prolog
            # may be the tail of a start tag whose attribute held a ">".
            return True
        buf = self._buffer
        if self._skip_space:
            skipped = len(buf) - len(buf.lstrip(_XML_SPACE))
            del buf[:skipped]
            self._since_boundary += skipped  # bounded like whitespace between stanzas
            if self._since_boundary > self.max_stanza_size:
                self._fail(StreamErrorCondition.POLICY_VIOLATION, "too much data before the header")
            if not buf:
                return False
            self._skip_space = False
        if buf.startswith(_NOT_UTF8):
            self._fail(StreamErrorCondition.UNSUPPORTED_ENCODING, "only UTF-8 is allowed")
        head = bytes(buf[:4])
        if any(sig.startswith(head) for sig in (*_NOT_UTF8, _BOM_UTF8)):
            return False  # too short to tell
        start = len(_BOM_UTF8) if buf.startswith(_BOM_UTF8) else 0
        lt = self._find_tag(start)
        if lt < 0 or len(buf) < lt + 6:
            return False
        if buf[lt : lt + 5] == b"<?xml" and buf[lt + 5 : lt + 6] in _XML_SPACE:
            decl = _XML_DECL.match(buf, lt)
            if decl is None:
                if buf.find(b">", lt) < 0:
                    return False  # wait for the rest of the declaration
                # A declaration holds no ">" before its "?>".
                self._fail(StreamErrorCondition.NOT_WELL_FORMED, "malformed XML declaration")
            enc = _ENCODING.search(decl.group())
            if enc is not None and enc.group(1).lower() not in (b"utf-8", b"utf8"):
                self._fail(StreamErrorCondition.UNSUPPORTED_ENCODING, "only UTF-8 is allowed")
            lt = self._find_tag(decl.end())
            if lt < 0 or len(buf) < lt + 2:
                return False
        if bytes(buf[lt + 1 : lt + 2]) in (b"!", b"?"):
            self._fail(
                StreamErrorCondition.RESTRICTED_XML,
                "comments, processing instructions and DTDs are not allowed",
            )
        self._prolog_ok = True
        return True

    def _find_tag(self, start: int) -> int:
        """Index of the first ``<`` at or after ``start`` (-1: not yet); only
        whitespace may come before it."""
        buf = self._buffer
        lt = buf.find(b"<", start)
        if buf[start : lt if lt >= 0 else len(buf)].strip(_XML_SPACE):
            self._fail(StreamErrorCondition.NOT_WELL_FORMED, "text before the stream header")
        return lt

    def _feed_expat(self, data: bytes) -> None:
        boundaries = self._boundaries
        queued = len(self._events)
        error: ParseError | None = None
        pull = self._pull
        assert pull is not None
        if self._root is None:
            self._prolog += data
        last = data.rfind(b">")
        if last == len(data) - 1:
            self._quiet_tail = 0
        else:
            tail = data[last + 1 :]
            self._quiet_tail = -1 if tail.strip(_XML_SPACE) else len(tail)
        try:
            pull.feed(data)  # the events before an error are queued
            if self._flush is not None:
                self._flush()
        except ParseError as exc:
            error = exc
        if self._queue:
            self._translate()
        if self._ended:
            return  # whatever follows the closing tag is not this stream's
        if error is not None:
            code = error.code
            if code == _XML_ERROR_UNDEFINED_ENTITY:
                self._fail(StreamErrorCondition.RESTRICTED_XML, "undefined entity reference")
            if code in (_XML_ERROR_UNKNOWN_ENCODING, _XML_ERROR_INCORRECT_ENCODING):
                self._fail(StreamErrorCondition.UNSUPPORTED_ENCODING, str(error))
            self._fail(StreamErrorCondition.NOT_WELL_FORMED, str(error))
        if self._boundaries == boundaries:
            self._since_boundary += len(data)
        else:
            # Boundaries end at a ">": the first one in ``data`` closes the
            # element that was in progress, and whatever follows the last ">"
            # comes after the last boundary.
            if self._since_boundary + data.find(b">") + 1 > self.max_stanza_size:
                # The element just completed is too large: do not hand it out.
                while len(self._events) > queued:
                    self._events.pop()
                self._fail(StreamErrorCondition.POLICY_VIOLATION, "stanza too large")
            self._since_boundary = len(data) - 1 - last
        if self._since_boundary > self.max_stanza_size:
            self._fail(StreamErrorCondition.POLICY_VIOLATION, "stanza too large")

    def _translate(self) -> None:
        queue = self._queue
        depth = self._depth
        deepest = self.max_depth + 1
        emit = self._events.append
        last_top = self._last_top
        try:
            for kind, item in queue:
                if last_top is not None and kind != "start-ns":
                    # The tree builder has just given the text after the last
                    # top-level element to that element as its tail; the
                    # element is the receiver's now, so undo it.
                    last_top.tail = None
                    last_top = None
                if kind == "start":
                    depth += 1
                    if depth == 1:
                        self._root = item
                        emit(StreamHeader(item.tag, dict(item.attrib), self._namespaces))
                        self._boundaries += 1
                        # Declarations inside stanzas are in their tags already.
                        assert self._pull is not None
                        _report(self._pull, queue, _STANZA_EVENTS)
                    elif depth > deepest:
                        self._fail(
                            StreamErrorCondition.POLICY_VIOLATION, "elements nested too deep"
                        )
                elif kind == "end":
                    depth -= 1
                    if depth == 1:
                        item.tail = None
                        emit(item)
                        last_top = item
                        self._boundaries += 1
                    elif depth == 0:
                        self._ended = True
                        emit(StreamEnd())
                        break
                elif kind == "start-ns":
                    if self._root is None:
                        prefix, uri = item
                        self._namespaces[prefix] = uri
                else:  # comment or pi
                    self._fail(
                        StreamErrorCondition.RESTRICTED_XML,
                        "comments and processing instructions are not allowed",
                    )
        finally:
            queue.clear()
            self._depth = depth
            self._last_top = last_top
        root = self._root
        if root is not None and len(root):
            del root[:]
            root.text = None


#: What expat reports until the stream header, and after it.
_HEADER_EVENTS: Final = ("start", "end", "start-ns", "comment", "pi")
_STANZA_EVENTS: Final = ("start", "end", "comment", "pi")


def _new_pull(queue: list[tuple[str, Any]], events: tuple[str, ...]) -> XMLParser:
    """A C parser and tree builder reporting ``events`` into ``queue`` (what
    :class:`~xml.etree.ElementTree.XMLPullParser` sets up, minus its Python
    wrapper: ``_setevents`` is the C parser's, since Python 3.4)."""
    pull = XMLParser(target=TreeBuilder())
    _report(pull, queue, events)
    return pull


def _report(pull: XMLParser, queue: list[tuple[str, Any]], events: tuple[str, ...]) -> None:
    """Have ``pull`` append ``events`` (and only those) to ``queue``."""
    cast(Any, pull)._setevents(queue, events)


def is_stream_tag(tag: str) -> bool:
    """True for the ``{http://etherx.jabber.org/streams}stream`` tag."""
    return tag == "{" + ns.STREAMS + "}stream"


def parse_fragment(
    data: bytes | str, default_ns: str = ns.CLIENT, *, max_size: int | None = None
) -> Element:
    """Parse one serialised element, as :func:`~xmpp_sansio.xml.writer.serialize`
    writes it for a stream whose content namespace is ``default_ns``.

    The element is parsed as the content of such a stream, so the RFC 6120 §11
    restrictions apply (no comments, processing instructions, DTDs or entity
    references beyond the predefined five). Hold mode stops at the exact
    element boundary, so nothing may follow it (a smuggled closing stream tag
    included). ``max_size`` bounds the element (default: its own length).

    Raises:
        ValueError: ``data`` is not exactly one well-formed element
            (surrounding whitespace is allowed) or is larger than ``max_size``.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    raw = raw.strip(b" \t\r\n")
    if max_size is not None and len(raw) > max_size:
        raise ValueError(f"XML fragment of {len(raw)} bytes exceeds {max_size}")
    if not raw.startswith(b"<") or not raw.endswith(b">"):
        raise ValueError("an XML fragment must be one element, without text around it")
    from .writer import STREAM_FOOTER, stream_header

    parser = StreamParser(max_stanza_size=len(raw) + 1024, hold=True)
    parser.feed(stream_header({}, default_ns, xml_declaration=False))
    parser.feed(raw)
    parser.feed(STREAM_FOOTER)
    found: list[Element] = []
    try:
        while True:
            event = parser.next_event()
            if event is None:
                raise ValueError("incomplete XML fragment")
            if isinstance(event, StreamEnd):
                break
            if isinstance(event, Element):
                found.append(event)
    except XMLStreamError as exc:
        raise ValueError(f"invalid XML fragment: {exc.text}") from None
    if len(found) != 1 or parser.take_unparsed():
        raise ValueError(f"expected one element, found {len(found)}")
    return found[0]
