"""The writer as it was before session 10 (xmpp_sansio/xml/writer.py at 6d59492,
``serialize`` outside ``shared_writes``): the oracle the fast attribute path is
compared with, byte for byte. Kept as it was; not used by the library."""

from __future__ import annotations

import re
from xml.etree.ElementTree import Element

from xmpp_sansio.xml import ns

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


def _write(el: Element, parent_ns: str, out: list[str]) -> None:
    tag = el.tag
    if not isinstance(tag, str):
        raise ValueError("comments and processing instructions cannot be sent (RFC 6120 §11.1)")
    start, end, own_ns = _TAGS.get((tag, parent_ns)) or _tag(tag, parent_ns)
    out.append(start)
    attrib = el.attrib
    if attrib:
        keys = "".join(attrib)
        values = "".join(attrib.values())
        if (
            "{" in keys
            or "xmlns" in keys
            or "&" in values
            or "<" in values
            or ">" in values
            or '"' in values
            or "\t" in values
            or "\n" in values
            or "\r" in values
        ):
            _write_attrs(attrib, out)
        else:
            for key, value in attrib.items():
                out.append(f' {key}="{value}"')
    text = el.text
    if text or len(el):
        if text:
            if "&" in text or "<" in text or ">" in text or "\r" in text:
                text = _TEXT_SPECIAL.sub(_escape_char, text)
            out.append(">" + text)
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
