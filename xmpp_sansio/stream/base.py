"""What both roles of a stream connection share: buffers, parser, restarts,
the table driver, close and error handling, and the XEP-0198 counting.

See :mod:`xmpp_sansio.stream.connection` for the theory of operation and
:mod:`xmpp_sansio.stream.state` for the tables this driver runs.
"""

from __future__ import annotations

from collections.abc import Callable
from xml.etree.ElementTree import Element

from ..errors import LocalProtocolError, RemoteProtocolError, StreamErrorCondition
from ..jid import JID
from ..sm import (
    Ack,
    AckRequest,
    AckRequestPolicy,
    SMState,
    build_nonza,
)
from ..stanza import stream_error_element
from ..xml import ns
from ..xml.parser import StreamEnd, StreamHeader, StreamParser, XMLStreamError
from ..xml.writer import serialize
from .answers import Answer, TLSEstablished, TLSInfo
from .events import (
    ConnectionClosed,
    Event,
    StreamClosed,
    StreamErrorReceived,
    StreamOpened,
)
from .framing import Framing, FramingError, TCPFraming, WebSocketFraming
from .state import (
    ENDED,
    READY,
    TERMINAL,
    TLS_PENDING,
    Action,
    Input,
    State,
    Transitions,
    is_peer_input,
)

__all__ = ["TLSInfo"]

_TCP = TCPFraming()
_STREAM_CONDITIONS = frozenset(c.value for c in StreamErrorCondition)
_STANZA_NAMES = frozenset({"message", "presence", "iq"})
_CLIENT_STANZAS = frozenset("{" + ns.CLIENT + "}" + n for n in _STANZA_NAMES)


def _is_space(data: bytes | bytearray) -> bool:
    """Only XML whitespace (S: space, tab, CR, LF), or nothing."""
    return not data.strip(b" \t\r\n")


_STOP_STATES = frozenset(
    {
        State.ERROR,
        State.CLOSED,
        State.TLS_PENDING,
        State.AWAIT_CREDENTIALS,
        State.AWAIT_DERIVATION,
        State.AWAIT_REGISTRATION,
        State.AWAIT_BIND,
        State.AWAIT_RESUME,
    }
)


class _Connection:
    """What both roles share: buffers, parser, restarts, close and error handling."""

    _default_ns = ns.CLIENT
    # TCP framing unless the constructor says otherwise; class attributes, so a
    # TCP connection carries no per-instance cost, and its hot path calls the
    # writer directly (no framing indirection).
    _framing: Framing = _TCP
    _serialize: Callable[[Element, str], bytes] = staticmethod(serialize)
    _ack_request_bytes: bytes | None = None  # <r/> as serialised on this stream
    #: This role's ``(state, input) -> (action, next state)`` table (state.py).
    _transitions: Transitions
    #: The peer's header must say ``version='1.0'`` (RFC 6120 §4.7.5); XEP-0114
    #: component headers carry none.
    _requires_version = True

    def __init__(
        self,
        limits_preauth: int,
        limits_postauth: int,
        max_depth: int,
        framing: Framing | None = None,
    ) -> None:
        self._negotiation_deadline: float | None = None
        self._tls_space = 0  # whitespace bytes dropped while TLS is pending
        self._preauth_size = limits_preauth
        self._postauth_size = limits_postauth
        self._max_depth = max_depth
        self._out: list[bytes] = []
        self._events: list[Event] = []  # a FIFO; a deque would cost 760 B per connection
        self._pending_error: RemoteProtocolError | None = None
        self._parser = self._new_parser(authenticated=False)
        self._state = State.AWAIT_HEADER  # then only _fire() assigns it
        self.tls_active = False
        self._sent_header = False
        self._sent_footer = False
        self._peer_closed = False
        self._was_ready = False
        self.jid: JID | None = None
        # XEP-0198: the state (from <enable/> on), and whether it is confirmed
        # (client: <enabled/> received), i.e. acks flow and inbound stanzas count.
        self._sm: SMState | None = None
        self._sm_live = False
        self._ack_policy = AckRequestPolicy()
        if framing is not None:
            self._set_framing(framing)

    # -- public API shared by both roles ----------------------------------------

    def data_to_send(self) -> bytes:
        """Return and forget the bytes queued for the peer.

        With stream management on, an ``<r/>`` is appended first when the
        :class:`~xmpp_sansio.sm.AckRequestPolicy` asks for one on flush.
        """
        if self._sm is not None:
            self._request_ack_on_flush()
        out = b"".join(self._out)
        self._out.clear()
        return out

    def may_have_output(self) -> bool:
        """Whether :meth:`data_to_send` may return bytes: some are queued, or
        stream management is on (XEP-0198 §4: an ``<r/>`` may be due on flush).
        False means it would return ``b""`` and change nothing."""
        return bool(self._out) or self._sm is not None

    def _request_ack_on_flush(self) -> None:
        """XEP-0198 §4: the policy may ask for ``<r/>`` whenever output is drained."""
        sm = self._sm
        if (
            sm is not None
            and self._sm_live
            and self._state is READY
            and self._ack_policy.due(sm, flushing=True)
        ):
            self._queue_ack_request(sm)

    def messages_to_send(self) -> list[bytes]:
        """Return and forget what is queued for the peer, one unit per entry: a
        header, an element or a footer. With :class:`WebSocketFraming` each is
        one text message (RFC 7395 §3.3.3); with TCP framing joining them gives
        :meth:`data_to_send`."""
        self._request_ack_on_flush()
        out = self._out[:]
        self._out.clear()
        return out

    def next_event(self) -> Event | None:
        """Return the next event, or ``None`` when more input is needed.

        Raises:
            RemoteProtocolError: the peer broke the protocol; the stream error
                is already queued in ``data_to_send()``.
        """
        if self._events:
            return self._events.pop(0)
        if self._pending_error is not None:
            error, self._pending_error = self._pending_error, None
            raise error
        return None

    @property
    def should_close(self) -> bool:
        """True when the I/O layer should flush and close the transport."""
        return self._state in ENDED

    def receive_data(self, data: bytes | bytearray) -> None:
        """Feed bytes from the transport (``b""`` means end of file)."""
        if not data:
            self.receive_eof()
            return
        if self._state in ENDED:
            return
        if self._state is TLS_PENDING:
            if _is_space(data):
                # Whitespace after <starttls/> or <proceed/> (RFC 6120 §11.7;
                # §5.3.3 says not to send it), bounded like a stanza.
                self._tls_space += len(data)
                if self._tls_space <= self._preauth_size:
                    return
            self._stream_error(
                StreamErrorCondition.POLICY_VIOLATION, "plaintext data during TLS negotiation"
            )
            return
        try:
            self._parser.feed(data)
        except XMLStreamError as exc:
            self._stream_error(exc.condition, exc.text)
            return
        self._process()

    def receive_message(self, message: bytes | str) -> None:
        """Feed one WebSocket text message (RFC 7395 §3.3): ``<open/>``, one
        element, or ``<close/>``. Only with :class:`WebSocketFraming`; end of
        file is :meth:`receive_eof`."""
        framing = self._framing
        if not isinstance(framing, WebSocketFraming):
            raise LocalProtocolError("messages need the WebSocket framing")
        if self._state in TERMINAL:
            return
        parser = self._parser
        try:
            element = framing.element_bytes(message, max_size=parser.max_stanza_size)
            if element is not None and parser.between_elements:
                # A stanza: parsed once, by the stream parser (message mode).
                try:
                    parser.feed_element(element)
                except XMLStreamError as exc:
                    raise _as_framing_error(exc, parser) from None
                self._process()
                return
            data = framing.decode(message, max_size=parser.max_stanza_size)
        except FramingError as exc:
            self._stream_error(exc.condition, exc.text)
            return
        _Connection.receive_data(self, data)  # not an override a test harness installed

    @property
    def framing(self) -> Framing:
        """How the stream meets the transport (framing.py)."""
        return self._framing

    def _set_framing(self, framing: Framing) -> None:
        """Choose the framing before anything was queued or fed (testing.py)."""
        if self._sent_header or self._out or self._state is not State.AWAIT_HEADER:
            raise LocalProtocolError("the framing is chosen before the stream starts")
        self._framing = framing
        self._serialize = serialize if isinstance(framing, TCPFraming) else framing.element

    def receive_eof(self) -> None:
        """The transport reached end of file."""
        self._fire(Input.PEER_EOF)
        self._events.append(ConnectionClosed())

    def send(self, element: Element | Answer) -> None:
        """Queue a stanza for the peer, or answer a request of this connection
        with an :mod:`~xmpp_sansio.stream.answers` value (h11's one ``send``).

        A stanza is only allowed once the stream is ready. With stream
        management on, it is counted and kept until the peer acknowledges it
        (XEP-0198 §4).
        """
        if not isinstance(element, Element):
            self._answer(element)
            return
        if self._state is not State.READY:
            raise LocalProtocolError(f"cannot send stanzas in state {self._state.name}")
        self._send_stanza(element)

    def close(self, condition: StreamErrorCondition | None = None, text: str | None = None) -> None:
        """Close our stream, with a stream error first if ``condition`` is given
        (RFC 6120 §4.4, §4.9.1.1). Idempotent.

        A clean close with stream management on first sends ``<a h/>``, so the
        peer does not resend what we handled (XEP-0198 §4).
        """
        if self._sent_footer:
            return
        if condition is None and self._sm is not None and self._sm_live and self._was_ready:
            self._send_element(build_nonza(Ack(self._sm.inbound)))
        if condition is not None:
            self._queue_error(condition, text)
            self._queue_footer()
            self._fire(Input.PROTOCOL_ERROR)
            return
        self._fire(Input.LOCAL_CLOSE)

    def start_timer(self, now: float, timeout: float) -> None:
        """Arm the negotiation deadline: the stream must be ready by ``now + timeout``."""
        self._negotiation_deadline = now + timeout

    @property
    def compacted(self) -> bool:
        """True while the parser's state is dropped (see :meth:`compact`)."""
        return self._parser.compacted

    def compact(self) -> bool:
        """Drop the XML parser's state while the stream is idle between two
        stanzas, to save memory; the next :meth:`receive_data` restores it
        (see :meth:`~xmpp_sansio.xml.parser.StreamParser.compact`). Only a
        ready stream compacts. Returns whether it did."""
        parser = self._parser
        if self._state is not State.READY or parser.hold:
            return False
        return parser.compact()

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` must be called next (``None``: no timer)."""
        if self._was_ready or self._state in ENDED:
            return None
        return self._negotiation_deadline

    def handle_timer(self, now: float) -> None:
        """Time passed. If negotiation is not done by its deadline, close the stream
        with ``connection-timeout`` (RFC 6120 §4.9.3.4)."""
        deadline = self.next_deadline()
        if deadline is not None and now >= deadline:
            self._stream_error(StreamErrorCondition.CONNECTION_TIMEOUT, "negotiation took too long")
            self._pending_error = None

    def tls_established(self, info: TLSInfo | None = None) -> None:
        """The TLS handshake finished; restart the stream (RFC 6120 §5.4.3.3).
        Same as ``send(TLSEstablished(info))``."""
        if self._state is not State.TLS_PENDING:
            raise LocalProtocolError("no TLS negotiation is pending")
        self.tls_active = True
        self._tls_info = info or TLSInfo()
        self._fire(Input.LOCAL_TLS_ESTABLISHED)

    def _answer(self, answer: Answer) -> None:
        """Apply an answer of the I/O layer; the roles add theirs."""
        if isinstance(answer, TLSEstablished):
            self.tls_established(answer.info)
            return
        raise LocalProtocolError(f"{type(answer).__name__} is not an answer for this role")

    @property
    def state(self) -> State:
        """Where the stream is (see :mod:`xmpp_sansio.stream.state`)."""
        return self._state

    # -- the table driver (the only writer of the state) ---------------------------

    def _fire(self, item: Input) -> None:
        """Apply ``item`` to the role's table: set the next state, run the action.

        A missing pair is a protocol error: for a peer input a stream error
        (``unsupported-stanza-type``, RFC 6120 §4.9.3.24), for a local input
        :class:`LocalProtocolError` with nothing changed.
        """
        step = self._transitions.get((self._state, item))
        if step is None:
            if is_peer_input(item):
                self._stream_error(
                    StreamErrorCondition.UNSUPPORTED_STANZA_TYPE,
                    f"{item.name} is not allowed in {self._state.name}",
                )
                return
            raise LocalProtocolError(f"{item.name} is not allowed in state {self._state.name}")
        action, self._state = step
        if action is Action.NONE:
            return
        if action is Action.CLOSE:
            self._queue_footer()
        elif action is Action.GO_LIVE:
            self._was_ready = True
            self._parser.hold = False
        else:  # Action.RESTART (RFC 6120 §5.4.3.3, §6.4.6)
            self._restart(authenticated=item is Input.SASL_SUCCEEDED)

    # -- internals ----------------------------------------------------------------

    def _new_parser(self, *, authenticated: bool, restarted: bool = False) -> StreamParser:
        return StreamParser(
            max_stanza_size=self._postauth_size if authenticated else self._preauth_size,
            max_depth=self._max_depth,
            hold=True,
            restarted=restarted,
        )

    def _restart(self, *, authenticated: bool) -> None:
        """Start a new stream on the same connection (RFC 6120 §4.3.3). Bytes
        that followed the restart trigger go to the new parser, which skips the
        old stream's whitespace before the new header."""
        leftover = self._parser.take_unparsed()
        self._parser = self._new_parser(authenticated=authenticated, restarted=True)
        # A new stream: an error before our next header must still send one
        # first (RFC 6120 §4.9.1.1).
        self._sent_header = False
        self._on_restart()
        if leftover:
            self._parser.feed(leftover)
            self._process()

    def _on_restart(self) -> None:
        """Hook: the client queues its new header here."""

    def _process(self) -> None:
        parser = self._parser
        while self._state not in _STOP_STATES:
            try:
                item = parser.next_event()
            except XMLStreamError as exc:
                self._stream_error(exc.condition, exc.text)
                return
            if item is None:
                return
            if parser is not self._parser:  # pragma: no cover - restarts return early
                return
            if isinstance(item, StreamHeader):
                self._handle_header(item)
            elif isinstance(item, StreamEnd):
                self._peer_closed = True
                self._events.append(StreamClosed())
                self._fire(Input.PEER_FOOTER)
            elif item.tag == ns.STREAM_ERROR_TAG:
                self._handle_stream_error(item)
            elif self._state is READY or (self._state is State.CLOSING and self._was_ready):
                self._handle_ready(item)
            elif self._state is State.CLOSING:
                pass  # RFC 6120 §4.4: we are closing; negotiation is over
            else:
                self._handle_negotiation(item)
                if self._parser is not parser:
                    return  # restarted: the new parser already ran
        if self._state is State.TLS_PENDING and not _is_space(parser.take_unparsed()):
            # Whitespace after <starttls/> (or <proceed/>) is discarded; anything
            # else could be an injection (CVE-2011-0411 style, RFC 6120 §5.3.3).
            self._stream_error(
                StreamErrorCondition.POLICY_VIOLATION, "data after the TLS negotiation request"
            )

    # -- stream management (XEP-0198): counting and ack requests -------------------

    def _send_stanza(self, element: Element) -> None:
        """Queue a stanza, counting it for stream management (XEP-0198 §4)."""
        if self._sent_footer:
            return  # RFC 6120 §4.4: nothing follows our </stream:stream>
        data = self._serialize(element, self._default_ns)
        self._out.append(data)
        sm = self._sm
        if sm is None:
            return
        sm.record_outbound(element, len(data))
        if self._sm_live and self._ack_policy.due(sm, flushing=False):
            self._queue_ack_request(sm)
        self._check_unacked(sm)

    def _check_unacked(self, sm: SMState) -> None:
        """Hook: the server bounds the unacknowledged queue."""

    def _queue_ack_request(self, sm: SMState) -> None:
        """Queue ``<r/>`` (XEP-0198 §4); its bytes never change on a stream,
        so they are serialised once per connection."""
        if not self._sent_footer:
            request = self._ack_request_bytes
            if request is None:
                request = self._serialize(build_nonza(AckRequest()), self._default_ns)
                self._ack_request_bytes = request
            self._out.append(request)
        sm.mark_requested()

    def _handle_stream_error(self, el: Element) -> None:
        condition = StreamErrorCondition.UNDEFINED_CONDITION
        text: str | None = None
        for child in el:
            uri, _, local = child.tag[1:].partition("}")
            if uri != ns.STREAM_ERRORS:
                continue
            if local == "text":
                text = child.text
            elif local in _STREAM_CONDITIONS:
                condition = StreamErrorCondition(local)
        self._events.append(StreamErrorReceived(condition, text))
        self._fire(Input.PEER_STREAM_ERROR)

    def _handle_header(self, header: StreamHeader) -> None:
        raise NotImplementedError

    def _handle_ready(self, el: Element) -> None:
        raise NotImplementedError

    def _handle_negotiation(self, el: Element) -> None:
        raise NotImplementedError

    def _check_header(self, header: StreamHeader) -> StreamErrorCondition | None:
        """Validate a peer header (RFC 6120 §4.7, §4.8, §4.9.3)."""
        if header.tag != ns.STREAM_TAG:
            uri = header.tag[1:].partition("}")[0] if header.tag[:1] == "{" else ""
            if uri != ns.STREAMS:
                return StreamErrorCondition.INVALID_NAMESPACE
            return StreamErrorCondition.BAD_FORMAT
        if header.namespaces.get("stream") != ns.STREAMS:
            return StreamErrorCondition.BAD_NAMESPACE_PREFIX
        if header.namespaces.get("") != self._default_ns:
            return StreamErrorCondition.INVALID_NAMESPACE
        if not self._requires_version:
            return None
        version = header.attrs.get("version", "0.9")
        major, _, minor = version.partition(".")
        if not (major.isdigit() and minor.isdigit()) or int(major) != 1:
            return StreamErrorCondition.UNSUPPORTED_VERSION
        return None

    def _header_accepted(self, header: StreamHeader) -> bool:
        """Report the peer's header and check it; on a bad one, the stream error."""
        self._opened(header)
        condition = self._check_header(header)
        if condition is not None:
            self._stream_error(condition)
            return False
        return True

    def _opened(self, header: StreamHeader) -> None:
        a = header.attrs
        self._events.append(
            StreamOpened(
                a.get("to"), a.get("from"), a.get("id"), a.get("version"), a.get(ns.XML_LANG)
            )
        )

    def _queue_header(self, attrs: dict[str, str | None]) -> None:
        self._out.append(self._framing.header(attrs, self._default_ns))
        self._sent_header = True

    def _queue_footer(self) -> None:
        if not self._sent_footer:
            self._out.append(self._framing.footer())
            self._sent_footer = True

    def _queue_error(
        self, condition: StreamErrorCondition, text: str | None, extra: Element | None = None
    ) -> None:
        if not self._sent_header:
            self._queue_header(self._error_header_attrs())
        err = stream_error_element(condition, text or None, lang="en", extra=extra)
        self._out.append(self._serialize(err, self._default_ns))

    def _error_header_attrs(self) -> dict[str, str | None]:
        return {"version": "1.0"}

    def _stream_error(
        self,
        condition: StreamErrorCondition,
        text: str | None = None,
        extra: Element | None = None,
    ) -> None:
        """The peer broke the protocol: queue the error, close, and report it."""
        if self._state is State.ERROR:
            return
        if not self._sent_footer:
            self._queue_error(condition, text, extra)
            self._queue_footer()
        self._fire(Input.PROTOCOL_ERROR)
        self._pending_error = RemoteProtocolError(condition, text)

    def _send_element(self, el: Element) -> None:
        if self._sent_footer:
            return  # RFC 6120 §4.4: nothing follows our </stream:stream>
        self._out.append(self._serialize(el, self._default_ns))


#: The depth :func:`~xmpp_sansio.xml.parser.parse_fragment` allows a message.
_FRAGMENT_DEPTH = 64


def _as_framing_error(exc: XMLStreamError, parser: StreamParser) -> FramingError:
    """What :meth:`WebSocketFraming.decode` answers for a message that is not
    one well-formed element (``not-well-formed``, RFC 7395 §3.3.3), or the
    stream's own depth limit where it is below the framing's."""
    if (
        exc.condition is StreamErrorCondition.POLICY_VIOLATION
        and parser.max_depth < _FRAGMENT_DEPTH
    ):
        return FramingError(exc.condition, exc.text)
    return FramingError(StreamErrorCondition.NOT_WELL_FORMED, exc.text)
