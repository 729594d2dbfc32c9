"""Serialisation of elements and stream headers to UTF-8 bytes (RFC 6120 §4.7, §11).

Namespaces are written the way XMPP peers expect: the stream's content
namespace (``jabber:client``) is the inherited default and is not repeated on
stanzas; every element whose namespace differs from its parent's declares it
with ``xmlns='...'``; elements of the streams namespace use the ``stream:``
prefix declared on the stream header; namespaced attributes other than
``xml:*`` get generated prefixes declared on the element.

Characters that XML 1.0 cannot carry (RFC 6120 §11.1 restricts us to XML 1.0
``Char``) raise :class:`ValueError`: this is the caller's bug, not something
to send and let the peer choke on.

Inside :func:`shared_writes` (a scope the I/O layer opens around routing one
stanza) an element is serialised once for every stream and the archive that
take it; see its docstring for the rule that makes that safe.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from xml.etree.ElementTree import Element

from . import ns

__all__ = [
    "STREAM_FOOTER",
    "Prewritten",
    "SharedWrites",
    "attribute_text",
    "serialize",
    "shared_writes",
    "stream_header",
]

STREAM_FOOTER = b"</stream:stream>"

_STREAM_PREFIX = "{" + ns.STREAMS + "}"
_XML_PREFIX = "{" + ns.XML + "}"
# XML 1.0 Char production, minus the characters we must escape anyway.
_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# The ASCII bytes XML 1.0 allows (Char): what is left after deleting them is not.
_ASCII_CHARS = bytes([0x09, 0x0A, 0x0D, *range(0x20, 0x80)])
_TEXT_SPECIAL = re.compile("[&<>\r]")
_ATTR_SPECIAL = re.compile('[&<>"\t\n\r]')
_ESCAPES = {
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
    '"': "&quot;",
    "\t": "&#9;",
    "\n": "&#10;",
    "\r": "&#13;",
}


def _escape_char(match: re.Match[str]) -> str:
    return _ESCAPES[match.group()]


def _check(value: str) -> None:
    bad = _INVALID.search(value)
    if bad is not None:
        raise ValueError(f"character {bad.group()!r} cannot be sent in XML")


def _text(value: str) -> str:
    return _TEXT_SPECIAL.sub(_escape_char, value) if _TEXT_SPECIAL.search(value) else value


def _attr(value: str) -> str:
    return _ATTR_SPECIAL.sub(_escape_char, value) if _ATTR_SPECIAL.search(value) else value


# (tag, parent namespace) -> (start of the start tag with its namespace
# declaration, end tag, the element's namespace): one dict lookup per element
# instead of splitting its tag. Bounded: a peer can send any number of tags.
_TAGS: dict[tuple[str, str], tuple[str, str, str]] = {}
_TAGS_MAX = 4096


def _tag(tag: str, parent_ns: str) -> tuple[str, str, str]:
    if not isinstance(tag, str):  # only str tags are cached: checked on a miss
        raise ValueError("comments and processing instructions cannot be sent (RFC 6120 §11.1)")
    decls = ""
    if tag[0] == "{":
        uri, _, local = tag[1:].partition("}")
        if uri == ns.STREAMS:
            name = "stream:" + local
            own_ns = parent_ns
        else:
            name = local
            own_ns = uri
            if uri != parent_ns:
                decls = f' xmlns="{_attr(uri)}"'
    else:
        name = tag
        own_ns = ""
        if parent_ns:
            decls = ' xmlns=""'
    found = ("<" + name + decls, "</" + name + ">", own_ns)
    _check(found[0])  # a reused element's start tag is written without the whole check
    if len(_TAGS) < _TAGS_MAX:
        _TAGS[tag, parent_ns] = found
    return found


def _write_attrs(attrib: dict[str, str], out: list[str]) -> None:
    """Attributes with namespaces or characters to escape."""
    prefixes: dict[str, str] | None = None
    for key, value in attrib.items():
        if key[0] == "{":
            uri, _, local = key[1:].partition("}")
            if uri == ns.XML:
                key = "xml:" + local
            else:
                if prefixes is None:
                    prefixes = {}
                prefix = prefixes.get(uri)
                if prefix is None:
                    prefix = prefixes[uri] = f"ns{len(prefixes)}"
                    out.append(f' xmlns:{prefix}="{_attr(uri)}"')
                key = f"{prefix}:{local}"
        elif key[:5] == "xmlns" and key[5:6] in ("", ":"):
            # Namespaces come from the Clark names; a literal declaration
            # would clash with the generated ones.
            raise ValueError(f"{key!r} is not an attribute: put the namespace in the tag")
        if _ATTR_SPECIAL.search(value):
            value = _ATTR_SPECIAL.sub(_escape_char, value)
        out.append(f' {key}="{value}"')


_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")


def attribute_text(key: str, value: str) -> str:
    """What the writer writes for the attribute ``key="value"`` of a plain
    name (its leading space included, the value escaped): the pieces of a
    :class:`Prewritten` element's ``attrs``. Raises :class:`ValueError` for
    any other name (a Clark name, ``xmlns``, a prefix)."""
    if not _PLAIN_NAME.fullmatch(key) or key == "xmlns":
        raise ValueError(f"{key!r} is not a plain attribute name")
    return f' {key}="{_attr(value)}"'


class Prewritten(Element):
    """An empty element of two attributes whose attributes the writer copies
    as written when it was made: ``attrs`` (the :func:`attribute_text` of
    each, in order) is written while the element's attributes are still
    ``source`` (``(name, value, name, value)``, in order) and it has no text
    and no children; changed in any way, it is written like any element. For
    an element made once a stanza from values checked once (a XEP-0359
    ``<stanza-id/>``: an id from a pool, the ``by`` of a recipient): the
    generic attribute path's build and checks are skipped. Characters XML
    cannot carry are still refused by the whole output's check."""

    __slots__ = ("attrs", "source")

    attrs: str
    source: tuple[str, str, str, str]


def _write(el: Element, parent_ns: str, out: list[str]) -> None:
    tag = el.tag
    start, end, own_ns = _TAGS.get((tag, parent_ns)) or _tag(tag, parent_ns)
    out.append(start)
    attrib = el.attrib
    if attrib:
        # The common case (plain names, nothing to escape) as one string,
        # checked once: whatever the checks let through is what
        # _write_attrs would write; what they refuse (a Clark name, a
        # declaration, a character to escape; or merely a value that looks
        # like one) takes _write_attrs.
        n = len(attrib)
        if n == 4:  # a stanza's to, from, type and id
            k1, k2, k3, k4 = attrib
            v1, v2, v3, v4 = attrib.values()
            attrs = f' {k1}="{v1}" {k2}="{v2}" {k3}="{v3}" {k4}="{v4}"'
        elif n == 2:
            k1, k2 = attrib
            v1, v2 = attrib.values()
            if (
                type(el) is Prewritten  # a <stanza-id/>: written when made
                and (k1, v1, k2, v2) == el.source
                and el.text is None
                and not len(el)
            ):
                out.append(el.attrs)
                out.append("/>")
                return
            attrs = f' {k1}="{v1}" {k2}="{v2}"'
        elif n == 1:
            ((k1, v1),) = attrib.items()
            attrs = f' {k1}="{v1}"'
        elif n == 3:
            k1, k2, k3 = attrib
            v1, v2, v3 = attrib.values()
            attrs = f' {k1}="{v1}" {k2}="{v2}" {k3}="{v3}"'
        else:
            attrs = "".join([f' {key}="{value}"' for key, value in attrib.items()])
        if (
            "{" in attrs
            or "xmlns" in attrs
            or "&" in attrs
            or "<" in attrs
            or ">" in attrs
            or "\t" in attrs
            or "\n" in attrs
            or "\r" in attrs
            or attrs.count('"') != 2 * n  # a quote in a name or value
        ):
            _write_attrs(attrib, out)
        else:
            out.append(attrs)
    text = el.text
    if text or len(el):
        if text:
            if "&" in text or "<" in text or ">" in text or "\r" in text:
                text = _TEXT_SPECIAL.sub(_escape_char, text)
            out.append(">" + text)
        else:
            out.append(">")
        for child in el[:]:  # a list: no IndexError ends the loop
            _write(child, own_ns, out)
            tail = child.tail
            if tail:
                out.append(_text(tail))
        out.append(end)
    else:
        out.append("/>")


def serialize(el: Element, default_ns: str = ns.CLIENT) -> bytes:
    """Serialise ``el`` as a top-level element of a stream whose content namespace is
    ``default_ns``. The element's own tail is not written.

    Inside :func:`shared_writes` an element is written once and its bytes
    reused, whatever ``default_ns`` (only the start tag's namespace
    declaration depends on it), and so is the content of copies that share
    its children (``with_attrs``: fan-out with other ``to``/``from``)."""
    if _memo is not None:
        return _shared(el, default_ns, _memo)
    return _serialize(el, default_ns)


def _serialize(el: Element, default_ns: str) -> bytes:
    out: list[str] = []
    _write(el, default_ns, out)
    text = "".join(out)
    # Once over the whole element: every name and value is in it.
    if text.isascii():
        data = text.encode("ascii")
        if data.translate(None, _ASCII_CHARS):
            _check(text)  # raises
        return data
    _check(text)
    return text.encode("utf-8")


# What serialize() wrote for an element inside shared_writes(), with what it
# checks before reusing it: (element, tag, attributes, text, children,
# default_ns, bytes). The element is held, so its id() cannot be reused while
# the scope lasts; so are its children (the first one's id() finds copies).
_Written = tuple[Element, str, dict[str, str], "str | None", list[Element], str, bytes]


def _shared(el: Element, default_ns: str, memo: dict[int, _Written]) -> bytes:
    """:func:`serialize` inside :func:`shared_writes`. Kept cheap for an
    element written once: the work of reusing is done when it is reused."""
    tag = el.tag
    hit = memo.get(id(el))
    if (
        hit is not None
        and hit[0] is el
        and hit[1] is tag
        and hit[3] is el.text
        and hit[2] == el.attrib
        and hit[4] == el[:]
    ):
        if hit[5] == default_ns:
            return hit[6]
        # Only the start tag's namespace declaration depends on default_ns.
        own = (_TAGS.get((tag, hit[5])) or _tag(tag, hit[5]))[0]
        start = (_TAGS.get((tag, default_ns)) or _tag(tag, default_ns))[0]
        return start.encode() + hit[6][len(own.encode()) :]
    children = el[:]  # a list (list(el) ends on an IndexError)
    data: bytes | None = None
    if children:
        # A copy with the same children (fan-out): its content is the same.
        same = _bodies.get(id(children[0]))
        if (
            same is not None
            and same[1] is tag
            and same[3] is el.text
            and same[4] == children
            # The content follows the start tag's first ">" unless a name
            # holds one (attribute values are escaped).
            and ">" not in tag
            and ">" not in "".join(same[2])
        ):
            written = same[6]
            head = _serialize(Element(tag, el.attrib), default_ns)  # <name .../>
            data = head[:-2] + written[written.index(b">") :]
    if data is None:
        data = _serialize(el, default_ns)
        if tag[:_STREAMS_LEN] == _STREAM_PREFIX:
            return data  # a stream: element's children inherit default_ns: not kept
    entry = (el, tag, dict(el.attrib), el.text, children, default_ns, data)
    memo[id(el)] = entry
    if children:
        _bodies[id(children[0])] = entry
    return data


_memo: dict[int, _Written] | None = None  # id(element) -> what it was written as
_bodies: dict[int, _Written] = {}  # id(first child) -> its parent as written
_STREAMS_LEN = len(_STREAM_PREFIX)


class SharedWrites:
    """The scope :func:`shared_writes` returns (one object, reentrant)."""

    __slots__ = ("_depth",)

    def __init__(self) -> None:
        self._depth = 0

    def __enter__(self) -> None:
        global _memo
        self._depth += 1
        if self._depth == 1:
            _memo = {}

    def __exit__(self, *exc: object) -> None:
        global _memo
        self._depth -= 1
        if not self._depth:
            _memo = None
            _bodies.clear()


_SHARED = SharedWrites()


def shared_writes() -> SharedWrites:
    """A scope (``with shared_writes():``) in which :func:`serialize` writes
    each element once and hands out the same bytes again: the recipient's
    stream, the archive and the size count of one delivered stanza share
    them (the ``jabber:client`` stream form and the archive's form, which
    declares ``xmlns``, differ only in the start tag).

    The rule: an element serialised inside the scope must not change below
    its own level (a child's attributes, text or children) before it is
    serialised again in the same scope. Changes to its own tag, attributes,
    text or list of children are detected, and it is written anew. The I/O
    layer opens the scope around routing one stanza and carrying out its
    effects (no other task runs meanwhile); everything kept is dropped when
    the outermost scope closes. Scopes nest. The scope is one per process,
    not per thread: an embedder that serialises in several threads at once
    must not open it (a ContextVar per thread/task measured 4-10% more
    instructions per stanza on ``perf_paths.py server``; to revisit)."""
    return _SHARED


def stream_header(
    attrs: Mapping[str, str | None], default_ns: str = ns.CLIENT, *, xml_declaration: bool = True
) -> bytes:
    """The opening ``<stream:stream>`` tag (RFC 6120 §4.7), with the optional XML
    declaration. ``attrs`` keys are ``to``, ``from``, ``id``, ``version`` and
    ``xml:lang`` (or its Clark form); ``None`` values are left out."""
    parts = ["<?xml version='1.0'?>" if xml_declaration else "", "<stream:stream"]
    for key, value in attrs.items():
        if value is None:
            continue
        if key == ns.XML_LANG:
            key = "xml:lang"
        parts.append(f' {key}="{_attr(value)}"')
    parts.append(f' xmlns="{_attr(default_ns)}" xmlns:stream="{ns.STREAMS}">')
    text = "".join(parts)
    _check(text)
    return text.encode("utf-8")
