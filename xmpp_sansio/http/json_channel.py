"""The JSON channel: XMPP for web apps that never touch XML, as JSON
objects over a WebSocket (``/json``, subprotocol :data:`SUBPROTOCOL`).

A translation beneath the ordinary session, not a second server:
:class:`JsonFraming` is an RFC 7395 framing (it subclasses
:class:`~xmpp_sansio.stream.framing.WebSocketFraming`) whose messages are
JSON objects. :meth:`JsonFraming.decode` turns each received object into the
XML the stream parser reads (``<open/>``, SASL, bind, XEP-0198, stanzas:
the ``to_dict`` shapes of :mod:`xmpp_sansio.objects`), and the output side
turns every element the session sends into an object. Negotiation, SASL
(RFC 6120 §6: the mechanism and base64 payloads, nothing weaker than XMPP),
bind, stream management and the stanza size limit are the session's own.
Schema: docs/json-channel.md (version :data:`SCHEMA_VERSION`).
"""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Callable, Mapping
from typing import Any, Final
from xml.etree.ElementTree import Element

from ..errors import StreamErrorCondition
from ..objects import object_from_dict, object_from_element
from ..stanza import StanzaValueError, UnknownStanza
from ..stream.framing import FramingError, WebSocketFraming
from ..xml import ns
from ..xml.writer import serialize

__all__ = ["SCHEMA_VERSION", "SUBPROTOCOL", "JsonFraming", "element_to_object", "object_to_xml"]

#: The WebSocket subprotocol a client offers and the server selects.
SUBPROTOCOL: Final = "xmpp-json-1"
#: The schema version, sent in the server's ``open`` object.
SCHEMA_VERSION: Final = 1

_SASL_IN: Final = frozenset({"auth", "response", "abort"})
_SASL_OUT: Final = frozenset({"challenge", "success", "failure", "abort"})
_SM_NAMES: Final = frozenset({"enable", "enabled", "resume", "resumed", "r", "a", "failed"})
_SM_ATTRS: Final = frozenset({"h", "resume", "max", "previd", "location", "id"})
_B64: Final = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")
_ERR_NS: Final = "urn:ietf:params:xml:ns:xmpp-streams"
_HEADER_KEYS: Final = ("to", "from", "id", "version", "lang")


def _fail(condition: StreamErrorCondition, text: str) -> FramingError:
    return FramingError(condition, text)


def _b64(data: Mapping[str, Any]) -> str:
    value = data.get("data", "")
    if not isinstance(value, str) or not _B64.match(value):
        raise _fail(StreamErrorCondition.BAD_FORMAT, "'data' must be base64 text")
    try:
        binascii.a2b_base64(value.encode("ascii"))
    except binascii.Error:
        raise _fail(StreamErrorCondition.BAD_FORMAT, "'data' must be base64 text") from None
    return value or "="  # RFC 6120 §6.4.2: "=" is an empty response


def _serialize(el: Element) -> bytes:
    try:
        return serialize(el, "")
    except ValueError as exc:  # a character XML cannot carry
        raise _fail(StreamErrorCondition.BAD_FORMAT, str(exc)) from None


def object_to_xml(data: Any) -> bytes:
    """The XML stream element for one client object (docs/json-channel.md).

    Raises:
        FramingError: ``bad-format`` for an object that is not one of the
            schema's, ``unsupported-stanza-type`` for an unknown ``kind``.
    """
    if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
        raise _fail(StreamErrorCondition.BAD_FORMAT, "a frame is an object with a 'kind'")
    kind = data["kind"]
    if kind in ("message", "presence", "iq"):
        try:
            return _serialize(object_from_dict(data).to_element())
        except (ValueError, TypeError) as exc:
            raise _fail(StreamErrorCondition.BAD_FORMAT, str(exc)) from None
    if kind in _SASL_IN:
        el = Element(f"{{{ns.SASL}}}{kind}")
        if kind == "auth":
            mechanism = data.get("mechanism")
            if not isinstance(mechanism, str) or not mechanism:
                raise _fail(StreamErrorCondition.BAD_FORMAT, "'auth' needs a 'mechanism'")
            el.set("mechanism", mechanism)
            el.text = _b64(data) if "data" in data else None
        elif kind == "response":
            el.text = _b64(data)
        return _serialize(el)
    if kind == "bind":
        ident = data.get("id", "bind")
        if not isinstance(ident, str) or not ident:
            raise _fail(StreamErrorCondition.BAD_FORMAT, "'bind' ids are strings")
        iq = Element(f"{{{ns.CLIENT}}}iq", {"type": "set", "id": ident})
        bind = Element(f"{{{ns.BIND}}}bind")
        resource = data.get("resource")
        if isinstance(resource, str) and resource:
            child = Element(f"{{{ns.BIND}}}resource")
            child.text = resource
            bind.append(child)
        iq.append(bind)
        return _serialize(iq)
    if kind == "sm":
        name = data.get("name")
        attrs = data.get("attrs", {})
        if not isinstance(name, str) or name not in _SM_NAMES or not isinstance(attrs, dict):
            raise _fail(StreamErrorCondition.BAD_FORMAT, "'sm' needs a known 'name'")
        if not all(k in _SM_ATTRS and isinstance(v, str) for k, v in attrs.items()):
            raise _fail(StreamErrorCondition.BAD_FORMAT, "'sm' attrs are XEP-0198's, as strings")
        return _serialize(Element(f"{{{ns.SM}}}{name}", attrs))
    raise _fail(StreamErrorCondition.UNSUPPORTED_STANZA_TYPE, f"unknown kind {kind!r}")


def _local(tag: str) -> tuple[str, str]:
    if tag[:1] == "{":
        uri, _, name = tag[1:].partition("}")
        return uri, name
    return "", tag


def element_to_object(el: Element) -> dict[str, Any]:
    """The object a client receives for an element the session sends."""
    uri, name = _local(el.tag)
    if uri == ns.STREAMS and name == "features":
        out: dict[str, Any] = {"kind": "features"}
        for child in el:
            curi, cname = _local(child.tag)
            if curi == ns.SASL and cname == "mechanisms":
                out["mechanisms"] = [m.text or "" for m in child]
            elif curi == ns.BIND:
                out["bind"] = True
            elif curi == ns.SM:
                out["sm"] = True
        return out
    if uri == ns.STREAMS and name == "error":
        condition, text = "undefined-condition", None
        for child in el:
            curi, cname = _local(child.tag)
            if curi == _ERR_NS and cname == "text":
                text = child.text
            elif curi == _ERR_NS:
                condition = cname
        error: dict[str, Any] = {"kind": "stream-error", "condition": condition}
        if text:
            error["text"] = text
        return error
    if uri == ns.SASL and name in _SASL_OUT:
        sasl: dict[str, Any] = {"kind": name}
        if name == "failure":
            conditions = [_local(c.tag)[1] for c in el if _local(c.tag)[1] != "text"]
            sasl["condition"] = conditions[0] if conditions else "not-authorized"
        else:
            sasl["data"] = (el.text or "").strip()
        if name == "success":
            sasl["event"] = "authenticated"
        return sasl
    if uri == ns.SM:
        return {"kind": "sm", "name": name, "attrs": dict(el.attrib)}
    if uri == ns.CLIENT and name == "iq":
        bind = el.find(f"{{{ns.BIND}}}bind")
        if bind is not None and el.get("type") == "result":
            return {
                "kind": "bound",
                "id": el.get("id", ""),
                "jid": (bind.findtext(f"{{{ns.BIND}}}jid") or "").strip(),
            }
    try:
        return object_from_element(el).to_dict()
    except (UnknownStanza, StanzaValueError, ValueError):
        return {"kind": "xml", "xml": serialize(el, "").decode("utf-8")}


def _dump(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class JsonFraming(WebSocketFraming):
    """RFC 7395 framing with JSON objects for messages (one object per
    WebSocket text message); ``wrap`` as for :class:`WebSocketFraming`."""

    def __init__(self, wrap: Callable[[bytes], bytes] | None = None) -> None:
        super().__init__(ns.CLIENT, wrap)

    def header(self, attrs: Mapping[str, str | None], default_ns: str) -> bytes:
        """``{"kind": "open", ...}`` with the header's attributes and the schema version."""
        out: dict[str, Any] = {"kind": "open", "schema": SCHEMA_VERSION}
        for key in _HEADER_KEYS:
            value = attrs.get(ns.XML_LANG if key == "lang" else key)
            if value is not None:
                out[key] = value
        return self._out(_dump(out))

    def footer(self) -> bytes:
        """``{"kind": "close", "event": "closed"}``."""
        return self._out(_dump({"kind": "close", "event": "closed"}))

    def element(self, el: Element, default_ns: str) -> bytes:
        """One element as its object (:func:`element_to_object`)."""
        return self._out(_dump(element_to_object(el)))

    def decode(self, message: bytes | str, *, max_size: int) -> bytes:
        """The XML-stream bytes for one received object.

        Raises:
            FramingError: ``policy-violation`` over ``max_size`` (the stanza
                size limit), ``not-well-formed`` for bad JSON, ``bad-format``
                or ``unsupported-stanza-type`` (:func:`object_to_xml`).
        """
        raw = message.encode("utf-8") if isinstance(message, str) else bytes(message)
        if len(raw) > max_size:
            raise _fail(StreamErrorCondition.POLICY_VIOLATION, f"frame of {len(raw)} bytes")
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            raise _fail(StreamErrorCondition.NOT_WELL_FORMED, "not a JSON object") from None
        if isinstance(data, dict) and data.get("kind") in ("open", "close"):
            tag = "open" if data["kind"] == "open" else "close"
            el = Element(f"{{{ns.FRAMING}}}{tag}")
            if tag == "open":
                for key in ("to", "from", "id", "version", "lang"):
                    value = data.get(key)
                    if isinstance(value, str):
                        el.set(ns.XML_LANG if key == "lang" else key, value)
                el.attrib.setdefault("version", "1.0")
            return super().decode(_serialize(el), max_size=max_size)
        return object_to_xml(data)
