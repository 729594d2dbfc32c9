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
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from xml.etree.ElementTree import Element

from . import ns

__all__ = ["STREAM_FOOTER", "serialize", "stream_header"]

STREAM_FOOTER = b"</stream:stream>"

_STREAM_PREFIX = "{" + ns.STREAMS + "}"
_XML_PREFIX = "{" + ns.XML + "}"
# XML 1.0 Char production, minus the characters we must escape anyway.
_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
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
    if len(_TAGS) < _TAGS_MAX:
        _TAGS[tag, parent_ns] = found
    return found


def _write(el: Element, parent_ns: str, out: list[str]) -> None:
    tag = el.tag
    if not isinstance(tag, str):
        raise ValueError("comments and processing instructions cannot be sent (RFC 6120 §11.1)")
    start, end, own_ns = _TAGS.get((tag, parent_ns)) or _tag(tag, parent_ns)
    out.append(start)
    attrib = el.attrib
    if attrib:
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
    text = el.text
    if text or len(el):
        if text:
            out.append(
                ">"
                + (_TEXT_SPECIAL.sub(_escape_char, text) if _TEXT_SPECIAL.search(text) else text)
            )
        else:
            out.append(">")
        for child in el:
            _write(child, own_ns, out)
            tail = child.tail
            if tail:
                out.append(_text(tail))
        out.append(end)
    else:
        out.append("/>")


def serialize(el: Element, default_ns: str = ns.CLIENT) -> bytes:
    """Serialise ``el`` as a top-level element of a stream whose content namespace is
    ``default_ns``. The element's own tail is not written."""
    out: list[str] = []
    _write(el, default_ns, out)
    text = "".join(out)
    _check(text)  # once over the whole element: every name and value is in it
    return text.encode("utf-8")


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
