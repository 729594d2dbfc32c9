"""Framing: how a stream's header, elements and footer meet the transport.

Theory of operation
-------------------
Everything above this layer (the state tables, the features, SASL, XEP-0198)
deals in a stream header, top-level elements and a footer. The framing turns
them into what the transport carries and back:

* :class:`TCPFraming` (RFC 6120 §4): one XML document over a byte stream; the
  header is ``<stream:stream>``, the footer ``</stream:stream>``, elements are
  written as children of the stream, and a restart is a new header.
* :class:`WebSocketFraming` (RFC 7395 §3.3-§3.6): one complete element per
  text message; the header is ``<open/>`` and the footer ``<close/>`` in
  ``urn:ietf:params:xml:ns:xmpp-framing``, and every element declares its own
  namespaces. A restart is a new ``<open/>`` (§3.5), so the negotiation above
  is the same; STARTTLS is not offered over it (TLS belongs to the WebSocket).

Input: on the WebSocket, :meth:`WebSocketFraming.decode` turns each message
into the bytes of the equivalent XML stream (``<open/>`` becomes a header,
``<close/>`` the footer, an element stays itself), which the connection's
stream parser then reads with all its limits; a stanza's message is handed
over by :meth:`WebSocketFraming.element_bytes` unparsed and read once, by the
stream parser in message mode (exactly one element, §3.3.3). Only whole messages are
handled, so the I/O layer (``xmpp_trio._transport.WebSocketTransport``)
hands over text messages, never a byte stream; on output, ``wrap`` lets it
have every unit as a ready WebSocket frame (``xmpp_sansio.http.text_frame``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Final, Protocol
from xml.etree.ElementTree import Element

from ..errors import StreamErrorCondition
from ..xml import ns
from ..xml.parser import parse_fragment
from ..xml.writer import STREAM_FOOTER, serialize, stream_header

__all__ = ["Framing", "FramingError", "TCPFraming", "WebSocketFraming"]


class Framing(Protocol):
    """What a connection needs from its framing (output side)."""

    #: Whether each queued unit is a message of its own (no byte stream).
    message_based: bool

    def header(self, attrs: Mapping[str, str | None], default_ns: str) -> bytes:
        """Our stream header (RFC 6120 §4.7) or its equivalent."""
        ...

    def footer(self) -> bytes:
        """Our stream footer (RFC 6120 §4.4) or its equivalent."""
        ...

    def element(self, el: Element, default_ns: str) -> bytes:
        """One top-level element."""
        ...


class FramingError(Exception):
    """A message broke the framing; ``condition`` is the stream error to send."""

    def __init__(self, condition: StreamErrorCondition, text: str) -> None:
        super().__init__(text)
        self.condition = condition
        self.text = text


class TCPFraming:
    """An XML stream over a byte stream (RFC 6120 §4)."""

    message_based = False

    def header(self, attrs: Mapping[str, str | None], default_ns: str) -> bytes:
        return stream_header(attrs, default_ns)

    def footer(self) -> bytes:
        return STREAM_FOOTER

    def element(self, el: Element, default_ns: str) -> bytes:
        return serialize(el, default_ns)


_OPEN_OR_CLOSE: Final = re.compile(rb"\s*<(?:[A-Za-z_][\w.-]*:)?(open|close)[\s/>]")
_STREAMS_PREFIXED: Final = re.compile(rb"^<stream:([\w-]+)")
_HEADER_ATTRS: Final = ("to", "from", "id", "version", ns.XML_LANG)


class WebSocketFraming:
    """RFC 7395 framing: one element per text message.

    Args:
        default_ns: the content namespace of the stream (``jabber:client``).
        wrap: applied to each unit sent (a header, an element, a footer): an
            I/O layer passes its WebSocket frame encoder, so that
            ``data_to_send()`` is ready for the socket; None keeps the bare
            messages (``messages_to_send()``).
    """

    message_based = True

    def __init__(
        self, default_ns: str = ns.CLIENT, wrap: Callable[[bytes], bytes] | None = None
    ) -> None:
        self._default_ns = default_ns
        self._wrap = wrap

    # -- output ----------------------------------------------------------------

    def header(self, attrs: Mapping[str, str | None], default_ns: str) -> bytes:
        """``<open/>`` with the header's attributes (§3.3.1, §3.3.2)."""
        el = Element(ns.OPEN_TAG, {k: v for k, v in attrs.items() if v is not None})
        return self._out(serialize(el, ""))

    def footer(self) -> bytes:
        """``<close/>`` (§3.6)."""
        return self._out(serialize(Element(ns.CLOSE_TAG), ""))

    def element(self, el: Element, default_ns: str) -> bytes:
        """The element with its own namespace declarations (§3.3.3); a
        ``stream:`` element (features, error) declares the prefix (§3.3.4, §3.6.2)."""
        data = serialize(el, "")
        if el.tag[:1] == "{" and el.tag[1:].startswith(ns.STREAMS + "}"):
            data = _STREAMS_PREFIXED.sub(
                rb'<stream:\1 xmlns:stream="' + ns.STREAMS.encode() + b'"', data, count=1
            )
        return self._out(data)

    def _out(self, data: bytes) -> bytes:
        wrap = self._wrap
        return data if wrap is None else wrap(data)

    # -- input -----------------------------------------------------------------

    def element_bytes(self, message: bytes | str, *, max_size: int) -> bytes | None:
        """The bytes of a message meant as one stanza (not ``<open/>`` or
        ``<close/>``), checked only as far as is cheap: the stream parser
        reads them in message mode
        (:meth:`~xmpp_sansio.xml.parser.StreamParser.feed_element`), which
        refuses anything but exactly one element (§3.3.3), so each message
        is parsed once. ``None``: :meth:`decode` it instead (a framing
        message, or a subclass whose ``decode`` translates messages).

        Raises:
            FramingError: too large, or text around the element.
        """
        if type(self).decode is not WebSocketFraming.decode:
            return None
        raw = message.encode("utf-8") if isinstance(message, str) else bytes(message)
        if len(raw) > max_size:
            raise FramingError(
                StreamErrorCondition.POLICY_VIOLATION, f"message of {len(raw)} bytes"
            )
        if _OPEN_OR_CLOSE.match(raw) is not None:
            return None
        raw = raw.strip(b" \t\r\n")
        if not raw.startswith(b"<") or not raw.endswith(b">"):
            raise FramingError(
                StreamErrorCondition.NOT_WELL_FORMED, "a message must be one element"
            )
        return raw

    def decode(self, message: bytes | str, *, max_size: int) -> bytes:
        """The XML-stream bytes equivalent to one received message.

        Raises:
            FramingError: not one element, an ``<open/>``/``<close/>`` outside
                the framing namespace, or too large.
        """
        raw = message.encode("utf-8") if isinstance(message, str) else bytes(message)
        if len(raw) > max_size:
            raise FramingError(
                StreamErrorCondition.POLICY_VIOLATION, f"message of {len(raw)} bytes"
            )
        match = _OPEN_OR_CLOSE.match(raw)
        if match is None:
            try:  # §3.3.3: exactly one complete element
                parse_fragment(raw, self._default_ns, max_size=max_size)
            except ValueError as exc:
                raise FramingError(StreamErrorCondition.NOT_WELL_FORMED, str(exc)) from None
            return raw
        try:
            el = parse_fragment(raw, ns.FRAMING, max_size=max_size)
        except ValueError as exc:
            raise FramingError(StreamErrorCondition.NOT_WELL_FORMED, str(exc)) from None
        if el.tag == ns.CLOSE_TAG:
            return STREAM_FOOTER
        if el.tag != ns.OPEN_TAG:
            # §3.3.2: the framing namespace is required on <open/>.
            raise FramingError(StreamErrorCondition.INVALID_NAMESPACE, "not an RFC 7395 <open/>")
        attrs = {k: el.get(k) for k in _HEADER_ATTRS}
        return stream_header(attrs, self._default_ns, xml_declaration=False)
