"""Client and server XML stream connections (RFC 6120 §4-§7), sans I/O.

Theory of operation
-------------------
A connection is fed bytes with :meth:`receive_data` (``receive_eof`` at end of
file) and hands back :class:`~xmpp_sansio.stream.events.Event` values from
:meth:`next_event` and bytes to write from :meth:`data_to_send`. Because XMPP
produces unsolicited output (features after a header, errors, a new header
after a restart), every input may queue output: the I/O layer drains
``data_to_send()`` after every call.

Negotiation (RFC 6120 §4.3) runs inside the connection. The server side
advertises features, runs STARTTLS and SASL, and binds a resource; it asks the
I/O layer for a few things only: to wrap the transport in TLS
(:class:`TLSRequested`, answered with :meth:`tls_established`), to look up
stored credentials (:class:`CredentialsRequested`, answered with
:meth:`ServerConnection.provide_credentials`, or refused with
:meth:`ServerConnection.refuse_credentials`) and, for PLAIN, to run the
password derivation (:class:`DerivationRequested`, answered with
:meth:`ServerConnection.provide_derived`): the connection never runs PBKDF2
itself, so the I/O layer can keep it off its event loop. With
``ServerConfig.ask_before_bind`` it also asks before binding a resource
(:class:`BindRequested`, answered with :meth:`ServerConnection.bind_accepted`
or :meth:`ServerConnection.bind_refused`). The client side picks STARTTLS,
the strongest SASL mechanism and binds, on its own.

Stream restarts (§4.3.3) replace the parser and keep the connection; while
negotiating, the parser runs in hold mode so that bytes after the restart
trigger go to the new parser, never to the old stream.

Stream management (XEP-0198) runs inside the connection too, over an
:class:`~xmpp_sansio.sm.SMState` that can outlive it. The server offers
``<sm/>`` with the post-authentication features; the client enables it right
after binding (§3), or, given the state of a previous connection, offers
``<resume/>`` instead of binding (§5). Once enabled, every stanza sent is
counted and queued until acknowledged, every stanza received is counted
(``h``), ``<r/>`` is answered at once, and ``<r/>`` is sent by the
:class:`~xmpp_sansio.sm.AckRequestPolicy` (also when output is drained). The
server asks the I/O layer to find the session to resume
(:class:`ResumeRequested`, answered with :meth:`ServerConnection.resume_accepted`
or :meth:`ServerConnection.resume_failed`), then retransmits what the client
did not handle, once. Client State Indication (XEP-0352) is a server feature
too: while the client is inactive, :meth:`ServerConnection.send` holds
presence updates (the latest per sender) and flushes them on ``<active/>``.

Errors: a protocol violation by the peer queues ``<stream:error/>`` and
``</stream:stream>``, moves to :attr:`State.ERROR`, and makes the next call to
:meth:`next_event` (after the events already produced) raise
:class:`~xmpp_sansio.errors.RemoteProtocolError`. Misuse raises
:class:`~xmpp_sansio.errors.LocalProtocolError`. Any other exception is a bug.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from enum import Enum, auto
from xml.etree.ElementTree import Element, SubElement

from .. import register, sasl
from ..errors import (
    LocalProtocolError,
    RemoteProtocolError,
    StanzaErrorCondition,
    StreamErrorCondition,
)
from ..jid import JID, InvalidJID
from ..sasl.credentials import ScramCredentials
from ..sm import (
    CSI_NS,
    Ack,
    AckRequest,
    AckRequestPolicy,
    Enable,
    Enabled,
    Failed,
    HandledCountTooHigh,
    PresenceHold,
    Resume,
    Resumed,
    SMParseError,
    SMState,
    build_nonza,
    handled_count_too_high,
    is_sm_element,
    parse_nonza,
)
from ..sm import NS as SM_NS
from ..xml import ns
from ..xml.parser import StreamEnd, StreamHeader, StreamParser, XMLStreamError
from ..xml.writer import STREAM_FOOTER, serialize, stream_header
from .config import ClientConfig, ServerConfig
from .events import (
    Authenticated,
    AuthenticationFailed,
    BindRequested,
    ClientStateChanged,
    ConnectionClosed,
    CredentialsRequested,
    DerivationRequested,
    Event,
    NegotiationFailed,
    RegistrationRequested,
    ResourceBound,
    ResumeFailed,
    ResumeRequested,
    StanzaReceived,
    StanzasAcknowledged,
    StreamClosed,
    StreamErrorReceived,
    StreamManagementEnabled,
    StreamManagementFailed,
    StreamOpened,
    StreamResumed,
    TLSRequested,
)

__all__ = ["ClientConnection", "ServerConnection", "State", "TLSInfo"]

_STREAM_TAG = "{" + ns.STREAMS + "}stream"
_FEATURES = "{" + ns.STREAMS + "}features"
_ERROR = "{" + ns.STREAMS + "}error"
_STARTTLS = "{" + ns.TLS + "}starttls"
_PROCEED = "{" + ns.TLS + "}proceed"
_TLS_FAILURE = "{" + ns.TLS + "}failure"
_MECHANISMS = "{" + ns.SASL + "}mechanisms"
_AUTH = "{" + ns.SASL + "}auth"
_CHALLENGE = "{" + ns.SASL + "}challenge"
_RESPONSE = "{" + ns.SASL + "}response"
_SUCCESS = "{" + ns.SASL + "}success"
_FAILURE = "{" + ns.SASL + "}failure"
_ABORT = "{" + ns.SASL + "}abort"
_SASL_CB_NS = "urn:xmpp:sasl-cb:0"  # XEP-0440 §2
_BIND = "{" + ns.BIND + "}bind"
_SESSION = "{" + ns.SESSION + "}session"
_SM_FEATURE = "{" + SM_NS + "}sm"
_SM_ENABLE = "{" + SM_NS + "}enable"
_SM_RESUME = "{" + SM_NS + "}resume"
_SM_RESUMED = "{" + SM_NS + "}resumed"
_SM_ENABLED = "{" + SM_NS + "}enabled"
_SM_FAILED = "{" + SM_NS + "}failed"
_CSI_FEATURE = "{" + CSI_NS + "}csi"
_CSI_ACTIVE = "{" + CSI_NS + "}active"
_CSI_INACTIVE = "{" + CSI_NS + "}inactive"
_STREAM_CONDITIONS = frozenset(c.value for c in StreamErrorCondition)
_STANZA_NAMES = frozenset({"message", "presence", "iq"})
_CLIENT_STANZAS = frozenset("{" + ns.CLIENT + "}" + n for n in _STANZA_NAMES)
_SERVER_MECHANISMS = (
    "SCRAM-SHA-512-PLUS",
    "SCRAM-SHA-256-PLUS",
    "SCRAM-SHA-1-PLUS",
    "SCRAM-SHA-512",
    "SCRAM-SHA-256",
    "SCRAM-SHA-1",
    "PLAIN",
    "EXTERNAL",
    "ANONYMOUS",
)


class State(Enum):
    """Where a stream connection is (both roles share the names)."""

    AWAIT_HEADER = auto()  #: waiting for the peer's stream header
    AWAIT_FEATURES = auto()  #: client: header received, features not yet
    NEGOTIATING = auto()  #: features exchanged, a negotiation step may come
    TLS_PENDING = auto()  #: the I/O layer must do the TLS handshake
    SASL = auto()  #: a SASL exchange is running
    AWAIT_CREDENTIALS = auto()  #: server: the I/O layer is looking up credentials
    AWAIT_DERIVATION = auto()  #: server: the I/O layer is running PBKDF2 (PLAIN)
    AWAIT_REGISTRATION = auto()  #: server: the I/O layer is creating an account
    AWAIT_BIND = auto()  #: server: the I/O layer decides whether a resource may be bound
    BINDING = auto()  #: client: bind request sent
    RESUMING = auto()  #: client: ``<resume/>`` sent (XEP-0198 §5)
    AWAIT_RESUME = auto()  #: server: the I/O layer is looking up the session to resume
    READY = auto()  #: stanzas flow
    CLOSING = auto()  #: we sent ``</stream:stream>``, waiting for the peer's
    CLOSED = auto()  #: both directions are done
    ERROR = auto()  #: a stream error ended the stream


@dataclass(frozen=True, slots=True)
class TLSInfo:
    """What the TLS layer tells the connection once the handshake is done.

    ``channel_binding`` enables the SCRAM ``-PLUS`` mechanisms (RFC 5929 / RFC 9266)
    and is the one a client uses; a server lists further types this connection
    supports in ``more_channel_bindings`` (``tls-unique`` on TLS 1.2) and
    announces them all (XEP-0440).
    """

    channel_binding: sasl.ChannelBinding | None = None
    more_channel_bindings: tuple[sasl.ChannelBinding, ...] = ()

    @property
    def channel_bindings(self) -> tuple[sasl.ChannelBinding, ...]:
        """Every binding of this connection, ``channel_binding`` first."""
        first = () if self.channel_binding is None else (self.channel_binding,)
        return first + self.more_channel_bindings


def _is_space(data: bytes | bytearray) -> bool:
    """Only XML whitespace (S: space, tab, CR, LF), or nothing."""
    return not data.strip(b" \t\r\n")


def _b64encode(data: bytes | None, *, empty: str | None = "=") -> str | None:
    """SASL element text: absent data is no text; empty data is ``=`` in an
    initial response and in success data (RFC 6120 §6.4.2, §6.3.10), and no
    text (``empty=None``) in a challenge or response, where ``=`` is undefined
    (§6.4.3)."""
    if data is None:
        return None
    return base64.b64encode(data).decode("ascii") if data else empty


def _b64decode(text: str | None) -> bytes | None:
    """Decode SASL element text; ``None`` for no text, raise ValueError if invalid."""
    if text is None:
        return None
    text = text.strip()
    if text == "":
        return None
    if text == "=":
        return b""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("invalid base64") from None


def _sasl_element(name: str, text: str | None = None, **attrs: str) -> Element:
    el = Element("{" + ns.SASL + "}" + name, attrs)
    el.text = text
    return el


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
_REGISTER_QUERY = "{jabber:iq:register}query"


class _Connection:
    """What both roles share: buffers, parser, restarts, close and error handling."""

    _default_ns = ns.CLIENT

    def __init__(self, limits_preauth: int, limits_postauth: int, max_depth: int) -> None:
        self._negotiation_deadline: float | None = None
        self._tls_space = 0  # whitespace bytes dropped while TLS is pending
        self._preauth_size = limits_preauth
        self._postauth_size = limits_postauth
        self._max_depth = max_depth
        self._out: list[bytes] = []
        self._events: list[Event] = []  # a FIFO; a deque would cost 760 B per connection
        self._pending_error: RemoteProtocolError | None = None
        self._parser = self._new_parser(authenticated=False)
        self.state = State.AWAIT_HEADER
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

    # -- public API shared by both roles ----------------------------------------

    def data_to_send(self) -> bytes:
        """Return and forget the bytes queued for the peer.

        With stream management on, an ``<r/>`` is appended first when the
        :class:`~xmpp_sansio.sm.AckRequestPolicy` asks for one on flush.
        """
        sm = self._sm
        if (
            sm is not None
            and self._sm_live
            and self.state is State.READY
            and self._ack_policy.due(sm, flushing=True)
        ):
            self._queue_ack_request(sm)
        out = b"".join(self._out)
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
        return self.state in (State.CLOSED, State.ERROR)

    def receive_data(self, data: bytes | bytearray) -> None:
        """Feed bytes from the transport (``b""`` means end of file)."""
        if not data:
            self.receive_eof()
            return
        if self.state in (State.CLOSED, State.ERROR):
            return
        if self.state is State.TLS_PENDING:
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

    def receive_eof(self) -> None:
        """The transport reached end of file."""
        if self.state is not State.CLOSED and self.state is not State.ERROR:
            self.state = State.CLOSED
        self._events.append(ConnectionClosed())

    def send(self, element: Element) -> None:
        """Queue a stanza for the peer. Only allowed once the stream is ready.

        With stream management on, the stanza is counted and kept until the
        peer acknowledges it (XEP-0198 §4).
        """
        if self.state is not State.READY:
            raise LocalProtocolError(f"cannot send stanzas in state {self.state.name}")
        self._send_stanza(element)

    def send_raw(self, data: bytes) -> None:
        """Queue pre-serialised bytes (whitespace keepalives, forwarded stanzas).

        Bytes are not counted by stream management, so with it enabled only
        whitespace is allowed here (a stanza would break the XEP-0198 counts).
        """
        if self.state is not State.READY:
            raise LocalProtocolError(f"cannot send in state {self.state.name}")
        if self._sm is not None and data.strip():
            raise LocalProtocolError("with stream management on, send stanzas with send()")
        self._out.append(data)

    @property
    def sm(self) -> SMState | None:
        """The XEP-0198 state of this stream: ``None`` until ``<enable/>`` was sent
        (client) or received (server), or the stream was resumed. Keep it to
        resume the session on a later connection (XEP-0198 §5)."""
        return self._sm

    @property
    def sm_enabled(self) -> bool:
        """Stream management is on: acks flow and stanzas are counted (XEP-0198 §3)."""
        return self._sm_live

    def request_ack(self) -> None:
        """Queue ``<r/>``: ask the peer which stanzas it handled (XEP-0198 §4)."""
        sm = self._require_sm()
        self._queue_ack_request(sm)

    def send_ack(self) -> None:
        """Queue an unrequested ``<a h/>`` (XEP-0198 §4: "at any time")."""
        sm = self._require_sm()
        self._send_element(build_nonza(Ack(sm.inbound)))

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
            self.state = State.ERROR
            return
        self._queue_footer()
        self.state = State.CLOSED if self._peer_closed else State.CLOSING

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
        if self.state is not State.READY or parser.hold:
            return False
        return parser.compact()

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` must be called next (``None``: no timer)."""
        if self._was_ready or self.state in (State.CLOSED, State.ERROR):
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
        """The TLS handshake finished; restart the stream (RFC 6120 §5.4.3.3)."""
        if self.state is not State.TLS_PENDING:
            raise LocalProtocolError("no TLS negotiation is pending")
        self.tls_active = True
        self._tls_info = info or TLSInfo()
        self._restart(authenticated=False)

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
        self.state = State.AWAIT_HEADER
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
        while self.state not in _STOP_STATES:
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
                if not self._sent_footer:
                    self._queue_footer()
                self.state = State.CLOSED
            elif item.tag == _ERROR:
                self._handle_stream_error(item)
            elif self.state is State.READY or (self.state is State.CLOSING and self._was_ready):
                self._handle_ready(item)
            elif self.state is State.CLOSING:
                pass  # RFC 6120 §4.4: we are closing; negotiation is over
            else:
                self._handle_negotiation(item)
                if self._parser is not parser:
                    return  # restarted: the new parser already ran
        if self.state is State.TLS_PENDING and not _is_space(parser.take_unparsed()):
            # Whitespace after <starttls/> (or <proceed/>) is discarded; anything
            # else could be an injection (CVE-2011-0411 style, RFC 6120 §5.3.3).
            self._stream_error(
                StreamErrorCondition.POLICY_VIOLATION, "data after the TLS negotiation request"
            )

    # -- stream management (XEP-0198) shared by both roles -------------------------

    def _require_sm(self) -> SMState:
        sm = self._sm
        if sm is None or not self._sm_live or self.state is not State.READY:
            raise LocalProtocolError("stream management is not enabled on a ready stream")
        return sm

    def _send_stanza(self, element: Element) -> None:
        """Queue a stanza, counting it for stream management (XEP-0198 §4)."""
        if self._sent_footer:
            return  # RFC 6120 §4.4: nothing follows our </stream:stream>
        data = serialize(element, self._default_ns)
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
        self._send_element(build_nonza(AckRequest()))
        sm.mark_requested()

    def _count_inbound(self) -> None:
        if self._sm is not None and self._sm_live:
            self._sm.count_inbound()

    def _handle_ack_nonza(self, el: Element) -> None:
        """``<r/>`` or ``<a/>`` on a stream with stream management on (XEP-0198 §4);
        anything else in the namespace is ``unsupported-stanza-type``."""
        sm = self._sm
        try:
            nonza = parse_nonza(el)
        except SMParseError as exc:
            self._stream_error(StreamErrorCondition.BAD_FORMAT, str(exc))
            return
        if sm is None or not self._sm_live:
            self._stream_error(
                StreamErrorCondition.UNSUPPORTED_STANZA_TYPE, "stream management is not enabled"
            )
            return
        if isinstance(nonza, AckRequest):
            # §4: "MUST acknowledge it ... as soon as possible".
            self._send_element(build_nonza(Ack(sm.inbound)))
        elif isinstance(nonza, Ack):
            try:
                acked = sm.ack(nonza.h)
            except HandledCountTooHigh as exc:
                self._handled_count_too_high(exc)
                return
            if acked:
                self._events.append(StanzasAcknowledged(acked))
        else:
            self._stream_error(StreamErrorCondition.UNSUPPORTED_STANZA_TYPE)

    def _handled_count_too_high(self, exc: HandledCountTooHigh) -> None:
        """XEP-0198 §6: ``undefined-condition`` with ``<handled-count-too-high/>``."""
        self._stream_error(
            StreamErrorCondition.UNDEFINED_CONDITION, str(exc), handled_count_too_high(exc)
        )

    def _attach_resumed(self, sm: SMState) -> None:
        """Carry on the resumed session ``sm`` (XEP-0198 §5): ready as its JID,
        with everything still unacknowledged sent again, once. Retransmitted
        stanzas keep their sequence numbers: they are not counted again."""
        assert sm.jid is not None
        self._sm = sm
        self._sm_live = True
        sm.requested = sm.acked  # nothing requested on this stream yet
        self.jid = sm.jid
        self.state = State.READY
        self._was_ready = True
        self._parser.hold = False
        retransmitted = sm.unacked
        for stanza in retransmitted:
            self._out.append(serialize(stanza, self._default_ns))
        self._events.append(StreamResumed(sm.jid, retransmitted))

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
        if not self._sent_footer:
            self._queue_footer()
        self.state = State.CLOSED

    def _handle_header(self, header: StreamHeader) -> None:
        raise NotImplementedError

    def _handle_ready(self, el: Element) -> None:
        raise NotImplementedError

    def _handle_negotiation(self, el: Element) -> None:
        raise NotImplementedError

    def _check_header(self, header: StreamHeader) -> StreamErrorCondition | None:
        """Validate a peer header (RFC 6120 §4.7, §4.8, §4.9.3)."""
        if header.tag != _STREAM_TAG:
            uri = header.tag[1:].partition("}")[0] if header.tag[:1] == "{" else ""
            if uri != ns.STREAMS:
                return StreamErrorCondition.INVALID_NAMESPACE
            return StreamErrorCondition.BAD_FORMAT
        if header.namespaces.get("stream") != ns.STREAMS:
            return StreamErrorCondition.BAD_NAMESPACE_PREFIX
        if header.namespaces.get("") != self._default_ns:
            return StreamErrorCondition.INVALID_NAMESPACE
        version = header.attrs.get("version", "0.9")
        major, _, minor = version.partition(".")
        if not (major.isdigit() and minor.isdigit()) or int(major) != 1:
            return StreamErrorCondition.UNSUPPORTED_VERSION
        return None

    def _opened(self, header: StreamHeader) -> None:
        a = header.attrs
        self._events.append(
            StreamOpened(
                a.get("to"), a.get("from"), a.get("id"), a.get("version"), a.get(ns.XML_LANG)
            )
        )

    def _queue_header(self, attrs: dict[str, str | None]) -> None:
        self._out.append(stream_header(attrs, self._default_ns))
        self._sent_header = True

    def _queue_footer(self) -> None:
        if not self._sent_footer:
            self._out.append(STREAM_FOOTER)
            self._sent_footer = True

    def _queue_error(
        self, condition: StreamErrorCondition, text: str | None, extra: Element | None = None
    ) -> None:
        if not self._sent_header:
            self._queue_header(self._error_header_attrs())
        err = Element(_ERROR)
        SubElement(err, "{" + ns.STREAM_ERRORS + "}" + condition.value)
        if text:
            t = SubElement(err, "{" + ns.STREAM_ERRORS + "}text", {ns.XML_LANG: "en"})
            t.text = text
        if extra is not None:  # RFC 6120 §4.9.4: an application-specific condition
            err.append(extra)
        self._out.append(serialize(err, self._default_ns))

    def _error_header_attrs(self) -> dict[str, str | None]:
        return {"version": "1.0"}

    def _stream_error(
        self,
        condition: StreamErrorCondition,
        text: str | None = None,
        extra: Element | None = None,
    ) -> None:
        """The peer broke the protocol: queue the error, close, and report it."""
        if self.state is State.ERROR:
            return
        if not self._sent_footer:
            self._queue_error(condition, text, extra)
            self._queue_footer()
        self.state = State.ERROR
        self._pending_error = RemoteProtocolError(condition, text)

    def _send_element(self, el: Element) -> None:
        if self._sent_footer:
            return  # RFC 6120 §4.4: nothing follows our </stream:stream>
        self._out.append(serialize(el, self._default_ns))


class ServerConnection(_Connection):
    """The receiving entity's side of a client-to-server stream (RFC 6120).

    Args:
        config: what to offer.
        tls_active: the transport is already TLS (direct TLS, XEP-0368).
        tls_info: with ``tls_active``, the channel bindings of that TLS session.
        external_identity: for SASL EXTERNAL, the identity the I/O layer has
            verified (for example from a client certificate).

    SCRAM ``-PLUS`` is offered when the TLS session has channel bindings, and
    their types are announced (XEP-0440). A ``-PLUS`` attempt with another type
    fails without counting as an attempt, and a later ``y`` gs2 flag on the
    stream is then not taken for a downgrade (docs/security.md).

    Stream management (XEP-0198): ``<sm/>`` is offered after authentication
    when ``config.stream_management`` is on. ``<enable/>`` is accepted once,
    after binding (§3); resumption is granted only with a positive
    ``config.sm_resume_timeout``. A ``<resume/>`` after authentication and
    before binding emits :class:`ResumeRequested`; answer it with
    :meth:`resume_accepted` or :meth:`resume_failed`. When the transport
    breaks, :attr:`sm_resumable` tells whether to keep the session.
    """

    def __init__(
        self,
        config: ServerConfig,
        *,
        tls_active: bool = False,
        tls_info: TLSInfo | None = None,
        external_identity: str | None = None,
    ) -> None:
        limits = config.limits
        super().__init__(limits.max_stanza_size_preauth, limits.max_stanza_size, limits.max_depth)
        self.config = config
        self.tls_active = tls_active
        self._tls_info = tls_info or TLSInfo()
        self._external_identity = external_identity
        self.domain: str | None = None
        self.stream_id: str | None = None
        self.authenticated_jid: JID | None = None
        self.jid: JID | None = None
        self.auth_failures = 0
        self._mechanism: sasl.ServerMechanism | None = None
        self._cb_type_refused = False  # a -PLUS attempt named a type we lack
        self._pending_username: str | None = None
        self._pending_registration: Element | None = None
        self._pending_bind: tuple[str, JID] | None = None  # iq id, the JID asked for
        self._peer_from: str | None = None
        self._ack_policy = config.sm_ack_requests
        self._resume_request: Resume | None = None
        self._resume_attempted = False
        #: XEP-0352: the client's state; every stream starts active (§5, §5.2).
        self.client_active = True
        self._held = PresenceHold()

    # -- API ----------------------------------------------------------------------

    def send(self, element: Element) -> None:
        """Queue a stanza for the client (see :meth:`_Connection.send`).

        While the client is inactive (XEP-0352), presence updates are held, the
        latest per sender, and sent when it becomes active again; any other
        stanza is sent at once.
        """
        if self.state is not State.READY:
            raise LocalProtocolError(f"cannot send stanzas in state {self.state.name}")
        if self.client_active:
            self._send_stanza(element)
            return
        for stanza in self._held.offer(element):
            self._send_stanza(stanza)

    def take_held_presences(self) -> list[Element]:
        """Hand over the presence updates held for an inactive client (XEP-0352),
        e.g. to keep them with a detached session; they will not be sent here."""
        return self._held.flush()

    @property
    def sm_resumable(self) -> bool:
        """The session may be kept for resumption now that the transport broke:
        resumption was granted and the stream did not end cleanly (with
        ``</stream:stream>``) or with a stream error (XEP-0198 §5, §7)."""
        sm = self._sm
        return (
            sm is not None
            and sm.resume
            and self._sm_live
            and self._was_ready
            and not self._sent_footer
            and not self._peer_closed
        )

    def resume_accepted(self, state: SMState) -> None:
        """Answer :class:`ResumeRequested`: the session ``state`` (detached from
        its old connection) continues on this stream (XEP-0198 §5).

        Sends ``<resumed/>``, drops what the client's ``h`` acknowledges, sends
        the rest of the queue again, once, and makes the stream ready as the
        session's JID. An ``h`` beyond what was sent closes the stream with
        ``handled-count-too-high`` (§6) and leaves ``state`` unchanged.

        Raises:
            LocalProtocolError: no resumption was requested, or ``state`` is not
                the requested session of the authenticated account.
        """
        request = self._resume_request
        if self.state is not State.AWAIT_RESUME or request is None:
            raise LocalProtocolError("no resumption was requested")
        if state.id != request.previd or not state.resume:
            raise LocalProtocolError("this is not the session the client asked for")
        assert self.authenticated_jid is not None
        if state.jid is None or state.jid.bare != self.authenticated_jid.bare:
            # XEP-0198 §10: resumption only after authentication, and only by the
            # account that owns the session (the SM-ID alone must not be enough).
            raise LocalProtocolError("the session belongs to another account")
        self._resume_request = None
        try:
            acked = state.ack(request.h)
        except HandledCountTooHigh as exc:
            self._handled_count_too_high(exc)
            return
        self._send_element(build_nonza(Resumed(request.previd, state.inbound)))
        if acked:
            self._events.append(StanzasAcknowledged(acked))
        self._attach_resumed(state)
        self._process()

    def resume_failed(self) -> None:
        """Answer :class:`ResumeRequested`: no such session (XEP-0198 §5:
        ``<failed><item-not-found/></failed>``). The client may bind instead."""
        if self.state is not State.AWAIT_RESUME:
            raise LocalProtocolError("no resumption was requested")
        self._resume_request = None
        self._send_sm_failed(StanzaErrorCondition.ITEM_NOT_FOUND)
        self.state = State.NEGOTIATING
        self._process()

    def provide_credentials(self, credentials: ScramCredentials | None) -> None:
        """Answer a :class:`CredentialsRequested` event (``None``: no such account)."""
        if self.state is not State.AWAIT_CREDENTIALS or self._mechanism is None:
            raise LocalProtocolError("no credentials were requested")
        self.state = State.SASL
        mech = self._mechanism
        self._sasl_step(lambda: mech.provide_credentials(credentials))
        self._process()

    def provide_derived(self, salted_password: bytes) -> None:
        """Answer a :class:`DerivationRequested` event with the PBKDF2 result."""
        if self.state is not State.AWAIT_DERIVATION or self._mechanism is None:
            raise LocalProtocolError("no derivation was requested")
        self.state = State.SASL
        mech = self._mechanism
        self._sasl_step(lambda: mech.provide_derived(salted_password))
        self._process()

    def refuse_credentials(
        self, condition: sasl.SASLCondition = sasl.SASLCondition.TEMPORARY_AUTH_FAILURE
    ) -> None:
        """Answer a :class:`CredentialsRequested` event with a SASL failure
        without looking the credentials up, e.g. while backing off after
        repeated failures (RFC 6120 §6.5.12 ``temporary-auth-failure``).

        Like any failure it emits :class:`AuthenticationFailed` and counts
        toward ``max_auth_attempts``; until that limit the stream stays open
        and the client may try again (RFC 6120 §6.4.5).
        """
        if self.state is not State.AWAIT_CREDENTIALS or self._mechanism is None:
            raise LocalProtocolError("no credentials were requested")
        if condition is sasl.SASLCondition.ABORTED:
            raise LocalProtocolError("only the client aborts an exchange")
        self._sasl_failure(condition)
        self._process()

    def bind_accepted(self) -> None:
        """Answer a :class:`BindRequested` event: bind the JID asked for, send the
        result and emit :class:`ResourceBound` (RFC 6120 §7.6.1)."""
        pending = self._pending_bind
        if self.state is not State.AWAIT_BIND or pending is None:
            raise LocalProtocolError("no resource binding was requested")
        self._pending_bind = None
        self._complete_bind(*pending)
        self._process()

    def bind_refused(
        self, condition: StanzaErrorCondition = StanzaErrorCondition.RESOURCE_CONSTRAINT
    ) -> None:
        """Answer a :class:`BindRequested` event with an IQ error, by default
        ``<resource-constraint/>`` of type ``wait`` (RFC 6120 §7.6.2.1: the
        account has reached its limit of connected resources). The stream stays
        in the binding stage, so the client may try again."""
        pending = self._pending_bind
        if self.state is not State.AWAIT_BIND or pending is None:
            raise LocalProtocolError("no resource binding was requested")
        self._pending_bind = None
        self.state = State.NEGOTIATING
        reply = Element("{" + ns.CLIENT + "}iq", {"type": "error", "id": pending[0]})
        error = SubElement(
            reply, "{" + ns.CLIENT + "}error", {"type": condition.default_type.value}
        )
        SubElement(error, "{" + ns.STANZA_ERRORS + "}" + condition.value)
        self._send_element(reply)
        self._process()

    def registration_result(self, condition: StanzaErrorCondition | None = None) -> None:
        """Answer a :class:`RegistrationRequested` event: ``None`` when the account
        was created, else the error (``conflict`` if it exists, XEP-0077 §3.1)."""
        if self.state is not State.AWAIT_REGISTRATION:
            raise LocalProtocolError("no registration was requested")
        request = self._pending_registration
        assert request is not None
        self._pending_registration = None
        self.state = State.NEGOTIATING
        if condition is None:
            self._send_element(
                Element("{" + ns.CLIENT + "}iq", {"type": "result", "id": request.get("id", "")})
            )
        else:
            self._send_element(_iq_error(request, condition.value, condition.default_type.value))
        self._process()

    @property
    def registration_offered(self) -> bool:
        """In-band registration is possible on this stream now (XEP-0077 §8)."""
        return (
            self.config.allow_registration
            and self.authenticated_jid is None
            and (self.tls_active or not self.config.require_tls)
            and self.domain not in self.config.anonymous_domains
        )

    @property
    def offered_mechanisms(self) -> list[str]:
        """SASL mechanisms offered in the current features (RFC 6120 §6.4.1)."""
        if self.authenticated_jid is not None:
            return []
        if self.config.require_tls and not self.tls_active:
            return []
        cfg = self.config
        if self.domain in cfg.anonymous_domains:
            return ["ANONYMOUS"]  # an anonymous-only host
        cb = bool(self._tls_info.channel_bindings)
        names = []
        for name in _SERVER_MECHANISMS:
            if name.endswith("-PLUS") and not cb:
                continue
            if name == "PLAIN" and not (cfg.allow_plain and self.tls_active):
                continue
            if name == "ANONYMOUS" and not cfg.allow_anonymous:
                continue
            if name == "EXTERNAL" and not (cfg.allow_external and self._external_identity):
                continue
            names.append(name)
        return names

    # -- header and features ---------------------------------------------------------

    def _error_header_attrs(self) -> dict[str, str | None]:
        return {
            "from": self.domain or next(iter(sorted(self.config.domains))),
            "id": self._new_id(),
            "version": "1.0",
        }

    def _new_id(self) -> str:
        return self.config.rng(12).hex()

    def _handle_header(self, header: StreamHeader) -> None:
        if self.state is not State.AWAIT_HEADER:  # pragma: no cover - parser gives one header
            self._stream_error(StreamErrorCondition.BAD_FORMAT)
            return
        self._opened(header)
        condition = self._check_header(header)
        to = header.attrs.get("to")
        domain: str | None = None
        if condition is None:
            if to is None:
                domain = self.domain or sorted(self.config.domains)[0]
            else:
                try:
                    domain = JID.parse(to).domain
                except InvalidJID:
                    domain = None
                if domain not in self.config.domains or (self.domain and domain != self.domain):
                    condition = StreamErrorCondition.HOST_UNKNOWN
        if condition is not None:
            self._stream_error(condition)
            return
        assert domain is not None
        self.domain = domain
        self.stream_id = self._new_id()
        self._peer_from = header.attrs.get("from")
        attrs: dict[str, str | None] = {
            "from": domain,
            "id": self.stream_id,
            "version": "1.0",
            ns.XML_LANG: "en",
        }
        if self._peer_from and self.tls_active:
            attrs["to"] = self._peer_from
        self._queue_header(attrs)
        self._send_element(self._features())
        self.state = State.NEGOTIATING

    def _features(self) -> Element:
        """RFC 6120 §4.3.2: features for the current stage of negotiation."""
        features = Element(_FEATURES)
        if self.authenticated_jid is not None:
            SubElement(features, _BIND)
            session = SubElement(features, _SESSION)
            SubElement(session, "{" + ns.SESSION + "}optional")
            if self.config.stream_management:  # XEP-0198 §2: once authenticated
                SubElement(features, _SM_FEATURE)
            if self.config.csi:  # XEP-0352 §4.1
                SubElement(features, _CSI_FEATURE)
            features.extend(self.config.post_auth_features)
            return features
        if not self.tls_active and self.config.tls_available:
            starttls = SubElement(features, _STARTTLS)
            if self.config.require_tls:
                SubElement(starttls, "{" + ns.TLS + "}required")
        mechanisms = self.offered_mechanisms
        if mechanisms:
            mechs = SubElement(features, _MECHANISMS)
            for name in mechanisms:
                SubElement(mechs, "{" + ns.SASL + "}mechanism").text = name
            if any(name.endswith("-PLUS") for name in mechanisms):  # XEP-0440 §2
                cb_types = SubElement(features, "{" + _SASL_CB_NS + "}sasl-channel-binding")
                for binding in self._tls_info.channel_bindings:
                    SubElement(cb_types, "{" + _SASL_CB_NS + "}channel-binding", type=binding.type)
        if self.registration_offered:
            features.append(register.feature_element())
        return features

    # -- negotiation -------------------------------------------------------------------

    def _handle_negotiation(self, el: Element) -> None:
        tag = el.tag
        if self.authenticated_jid is not None:
            self._handle_bind_stage(el)
        elif tag == _STARTTLS and self.state is State.NEGOTIATING:
            if self.tls_active or not self.config.tls_available:
                self._send_element(Element(_TLS_FAILURE))
                self._stream_error_after_failure()
                return
            self._send_element(Element(_PROCEED))
            self.state = State.TLS_PENDING
            self._events.append(TLSRequested(server_side=True, server_hostname=self.domain or ""))
        elif tag == _AUTH and self.state is State.NEGOTIATING:
            self._start_sasl(el)
        elif tag == _RESPONSE and self.state is State.SASL and self._mechanism is not None:
            try:
                data = _b64decode(el.text)
            except ValueError:
                self._sasl_failure(sasl.SASLCondition.INCORRECT_ENCODING)
                return
            mech = self._mechanism
            self._sasl_step(lambda: mech.respond(data or b""))
        elif tag == _ABORT and self.state in (
            State.SASL,
            State.AWAIT_CREDENTIALS,
            State.AWAIT_DERIVATION,
        ):
            self._sasl_failure(sasl.SASLCondition.ABORTED)
        elif tag in (_AUTH, _RESPONSE, _ABORT):
            self._sasl_failure(sasl.SASLCondition.MALFORMED_REQUEST)
        elif (
            tag == "{" + ns.CLIENT + "}iq"
            and self.state is State.NEGOTIATING
            and el.find(_REGISTER_QUERY) is not None
            and self.registration_offered
        ):
            self._handle_registration(el)
        elif tag in (_SM_ENABLE, _SM_RESUME) and self.config.stream_management:
            # XEP-0198 §3, §5: not before authentication.
            self._send_sm_failed(StanzaErrorCondition.UNEXPECTED_REQUEST)
        elif tag in _CLIENT_STANZAS or tag[1:].partition("}")[2] in _STANZA_NAMES:
            # RFC 6120 §6.4.? / §4.9.3.12: no stanzas before authentication.
            self._stream_error(StreamErrorCondition.NOT_AUTHORIZED)
        else:
            self._stream_error(StreamErrorCondition.UNSUPPORTED_STANZA_TYPE)

    def _handle_registration(self, iq: Element) -> None:
        """In-band registration before authentication (XEP-0077 §3.1)."""
        query = iq.find(_REGISTER_QUERY)
        assert query is not None and self.domain is not None
        iq_id = iq.get("id")
        kind = iq.get("type")
        if not iq_id or kind not in ("get", "set") or len(iq) != 1:
            self._send_element(_iq_error(iq, "bad-request", "modify"))
            return
        if kind == "get":
            reply = Element("{" + ns.CLIENT + "}iq", {"type": "result", "id": iq_id})
            reply.append(register.registration_form(self.config.registration_instructions))
            self._send_element(reply)
            return
        try:
            request = register.parse_registration(query)
            if request.remove:  # §3.2: only an authenticated user can cancel
                raise register.RegistrationError(
                    StanzaErrorCondition.NOT_AUTHORIZED, "log in first"
                )
            local, password = register.validate_new_account(
                request.username, request.password, self.domain
            )
        except register.RegistrationError as exc:
            self._send_element(_iq_error(iq, exc.condition.value, exc.condition.default_type.value))
            return
        self._pending_registration = iq
        self.state = State.AWAIT_REGISTRATION
        self._events.append(RegistrationRequested(local, password))

    def _stream_error_after_failure(self) -> None:
        """RFC 6120 §5.4.2.2: after a TLS <failure/> the server closes the stream."""
        self._queue_footer()
        self.state = State.CLOSING

    def _start_sasl(self, el: Element) -> None:
        name = el.get("mechanism", "")
        if self.config.require_tls and not self.tls_active:
            self._sasl_failure(sasl.SASLCondition.ENCRYPTION_REQUIRED)
            return
        if name not in self.offered_mechanisms:
            if name == "PLAIN" and not self.tls_active:
                self._sasl_failure(sasl.SASLCondition.ENCRYPTION_REQUIRED)
            else:
                self._sasl_failure(sasl.SASLCondition.INVALID_MECHANISM)
            return
        try:
            initial = _b64decode(el.text)
        except ValueError:
            self._sasl_failure(sasl.SASLCondition.INCORRECT_ENCODING)
            return
        offered = self.offered_mechanisms
        # RFC 5802 §6 treats "y" as a downgrade when -PLUS was offered; not once
        # this client tried -PLUS and was refused its binding type (XEP-0440
        # §4: e.g. tls-unique on TLS 1.3): "y" is then what it truly sees.
        advertised_plus = any(m.endswith("-PLUS") for m in offered) and not self._cb_type_refused
        try:
            mech = sasl.create_server_mechanism(
                name,
                nonce=self.config.rng(18),
                channel_binding=self._tls_info.channel_bindings,
                advertised_plus=advertised_plus,
                external_identity=self._external_identity,
                decoy_key=self.config.decoy_key,
                decoy_iterations=self.config.decoy_iterations,
            )
        except sasl.SASLFailure as exc:
            self._sasl_failure(exc.condition, exc.text)
            return
        self._mechanism = mech
        self.state = State.SASL
        self._sasl_step(lambda: mech.start(initial))

    def _sasl_step(self, step: Callable[[], sasl.ServerStep]) -> None:
        mech = self._mechanism
        assert mech is not None
        try:
            result = step()
        except sasl.SASLFailure as exc:
            if isinstance(exc, sasl.UnsupportedChannelBinding):
                self._cb_type_refused = True
            self._sasl_failure(exc.condition, exc.text, checked=exc.checked, counts=exc.counts)
            return
        if isinstance(result, sasl.Challenge):
            self._send_element(_sasl_element("challenge", _b64encode(result.data, empty=None)))
        elif isinstance(result, sasl.NeedCredentials):
            self.state = State.AWAIT_CREDENTIALS
            self._pending_username = result.username
            self._events.append(CredentialsRequested(result.username, mech.hash_name or "sha256"))
        elif isinstance(result, sasl.NeedDerivation):
            self.state = State.AWAIT_DERIVATION
            self._events.append(
                DerivationRequested(
                    result.password, result.salt, result.iterations, result.hash_name
                )
            )
        else:
            assert isinstance(result, sasl.Authenticated)
            self._sasl_success(mech.name, result)

    def _sasl_success(self, mechanism: str, result: sasl.Authenticated) -> None:
        assert self.domain is not None
        try:
            if result.username is None:  # ANONYMOUS: a fresh random account name
                jid = JID.from_parts(self.config.rng(8).hex(), self.domain, None)
            else:
                jid = JID.from_parts(result.username, self.domain, None)
        except InvalidJID:
            self._sasl_failure(sasl.SASLCondition.NOT_AUTHORIZED)
            return
        if result.authzid:
            try:
                authz = JID.parse(result.authzid)
            except InvalidJID:
                authz = None
            if authz != jid:  # RFC 6120 §6.4.6: we only allow authorizing as oneself
                self._sasl_failure(sasl.SASLCondition.INVALID_AUTHZID)
                return
        self._send_element(_sasl_element("success", _b64encode(result.additional_data)))
        self.authenticated_jid = jid
        self._mechanism = None
        self._events.append(Authenticated(jid, mechanism))
        # RFC 6120 §6.4.6: the receiving entity restarts on sending <success/>.
        self._restart(authenticated=True)

    def _sasl_failure(
        self,
        condition: sasl.SASLCondition,
        text: str | None = None,
        username: str | None = None,
        *,
        checked: bool = False,
        counts: bool = True,
    ) -> None:
        """Send ``<failure/>`` (RFC 6120 §6.4.5) and count the attempt.

        Every failure counts toward ``max_auth_attempts``, ``<abort/>`` and
        malformed requests included (§6.4.5: the receiving entity "SHOULD
        allow a configurable but reasonable number of retries"), except a
        channel binding type the connection lacks (``counts`` false: the
        client may pick another on this stream); ``checked`` tells the I/O
        layer's back-off whether a credential was verified.
        """
        failure = _sasl_element("failure")
        SubElement(failure, "{" + ns.SASL + "}" + condition.value)
        if text:
            SubElement(failure, "{" + ns.SASL + "}text").text = text
        self._send_element(failure)
        self._mechanism = None
        self.state = State.NEGOTIATING
        if counts:
            self.auth_failures += 1
        self._events.append(
            AuthenticationFailed(
                condition.value,
                text,
                username or self._pending_username,
                credentials_checked=checked,
                counted=counts,
            )
        )
        self._pending_username = None
        if self.auth_failures >= self.config.limits.max_auth_attempts:
            # RFC 6120 §6.4.5: too many retries -> <policy-violation/>.
            self._stream_error(
                StreamErrorCondition.POLICY_VIOLATION, "too many authentication attempts"
            )

    def _handle_bind_stage(self, el: Element) -> None:
        """RFC 6120 §7: the only thing allowed now is binding a resource (or
        resuming a session, XEP-0198 §5)."""
        if self.config.stream_management and el.tag == _SM_RESUME:
            self._handle_resume(el)
            return
        if self.config.stream_management and el.tag == _SM_ENABLE:
            # XEP-0198 §3: "SHALL enforce this order" (enable only after binding).
            self._send_sm_failed(StanzaErrorCondition.UNEXPECTED_REQUEST)
            return
        if self.config.csi and el.tag in (_CSI_ACTIVE, _CSI_INACTIVE):
            self._set_client_state(el.tag == _CSI_ACTIVE)
            return
        if el.tag != "{" + ns.CLIENT + "}iq":
            if el.tag in _CLIENT_STANZAS:
                self._stream_error(StreamErrorCondition.NOT_AUTHORIZED, "bind a resource first")
            else:
                self._stream_error(StreamErrorCondition.UNSUPPORTED_STANZA_TYPE)
            return
        bind = el.find(_BIND)
        iq_id = el.get("id")
        if bind is None or el.get("type") != "set" or not iq_id:
            self._stream_error(StreamErrorCondition.NOT_AUTHORIZED, "bind a resource first")
            return
        assert self.authenticated_jid is not None
        requested = bind.findtext("{" + ns.BIND + "}resource")
        requested = requested.strip() if requested else ""
        try:
            if requested:
                jid = self.authenticated_jid.with_resource(requested)
            else:  # RFC 6120 §7.6.2.1: the server generates a resource
                jid = self.authenticated_jid.with_resource(self.config.rng(9).hex())
        except InvalidJID:
            self._send_element(_iq_error(el, "bad-request", "modify"))  # RFC 6120 §7.7.2.1
            return
        if self.config.ask_before_bind:
            self._pending_bind = (iq_id, jid)
            self.state = State.AWAIT_BIND
            self._events.append(BindRequested(jid))
            return
        self._complete_bind(iq_id, jid)

    def _complete_bind(self, iq_id: str, jid: JID) -> None:
        reply = Element("{" + ns.CLIENT + "}iq", {"type": "result", "id": iq_id})
        SubElement(SubElement(reply, _BIND), "{" + ns.BIND + "}jid").text = str(jid)
        self._send_element(reply)
        self.jid = jid
        self.state = State.READY
        self._was_ready = True
        self._parser.hold = False
        self._events.append(ResourceBound(jid))

    # -- stream management and client state ------------------------------------------------

    def _send_sm_failed(self, condition: StanzaErrorCondition) -> None:
        self._send_element(build_nonza(Failed(condition.value)))

    def _handle_resume(self, el: Element) -> None:
        """``<resume/>`` after authentication, before binding (XEP-0198 §5)."""
        try:
            request = parse_nonza(el)
        except SMParseError:
            self._send_sm_failed(StanzaErrorCondition.BAD_REQUEST)
            return
        assert isinstance(request, Resume)
        if self._resume_attempted:
            self._send_sm_failed(StanzaErrorCondition.UNEXPECTED_REQUEST)
            return
        self._resume_attempted = True
        if self.config.sm_resume_timeout <= 0:
            # §5: "If the server does not support session resumption ...
            # SHOULD include an error condition of <feature-not-implemented/>".
            self._send_sm_failed(StanzaErrorCondition.FEATURE_NOT_IMPLEMENTED)
            return
        assert self.authenticated_jid is not None
        self._resume_request = request
        self.state = State.AWAIT_RESUME
        self._events.append(ResumeRequested(request.previd, request.h, self.authenticated_jid))

    def _handle_sm_ready(self, el: Element) -> None:
        """A XEP-0198 element on a ready stream."""
        if el.tag == _SM_RESUME:
            self._send_sm_failed(StanzaErrorCondition.UNEXPECTED_REQUEST)  # §5: not after bind
            return
        if el.tag != _SM_ENABLE:
            self._handle_ack_nonza(el)
            return
        try:
            request = parse_nonza(el)
        except SMParseError:
            self._send_sm_failed(StanzaErrorCondition.BAD_REQUEST)
            return
        assert isinstance(request, Enable)
        if self._sm is not None:
            # §3: "at most one attempt" (and a resumed stream has it already).
            self._send_sm_failed(StanzaErrorCondition.UNEXPECTED_REQUEST)
            return
        timeout = self.config.sm_resume_timeout
        resume = request.resume and timeout > 0
        sm_id: str | None = None
        max_: int | None = None
        if resume:
            max_ = max(1, math.ceil(timeout))
            if request.max is not None:
                max_ = min(max_, request.max)  # §3: the client's preference, if shorter
            sm_id = self.config.rng(16).hex()  # §5: opaque, never reused, unguessable
        self._send_element(build_nonza(Enabled(sm_id, resume, max_)))
        # §4: both counters start now (after receiving <enable/> and sending <enabled/>).
        self._sm = SMState(id=sm_id, resume=resume, max=max_, jid=self.jid)
        self._sm_live = True
        self._events.append(StreamManagementEnabled(sm_id, resume, max_))

    def _check_unacked(self, sm: SMState) -> None:
        if (
            len(sm.queue) > self.config.sm_max_unacked
            or sm.queued_bytes > self.config.sm_max_unacked_bytes
        ):
            self.close(StreamErrorCondition.RESOURCE_CONSTRAINT, "too many unacknowledged stanzas")

    def _set_client_state(self, active: bool) -> None:
        """``<active/>``/``<inactive/>`` (XEP-0352 §4.2). Becoming active flushes the
        held presence before anything else is processed (§5.1, in-order processing)."""
        if active == self.client_active:
            return
        self.client_active = active
        self._events.append(ClientStateChanged(active))
        if active and self.state is State.READY:
            for stanza in self._held.flush():
                self._send_stanza(stanza)

    # -- ready ---------------------------------------------------------------------------

    def _handle_ready(self, el: Element) -> None:
        tag = el.tag
        if self.config.stream_management and is_sm_element(el):
            self._handle_sm_ready(el)
            return
        if self.config.csi and tag in (_CSI_ACTIVE, _CSI_INACTIVE):
            self._set_client_state(tag == _CSI_ACTIVE)
            return
        if tag not in _CLIENT_STANZAS:
            if tag[1:].partition("}")[2] in _STANZA_NAMES:
                self._stream_error(StreamErrorCondition.INVALID_NAMESPACE)
            else:
                self._stream_error(StreamErrorCondition.UNSUPPORTED_STANZA_TYPE)
            return
        sender = el.get("from")
        if sender is not None:
            assert self.jid is not None
            try:
                claimed = JID.parse(sender)
            except InvalidJID:
                claimed = None
            if claimed != self.jid and claimed != self.jid.bare:
                self._stream_error(StreamErrorCondition.INVALID_FROM)  # RFC 6120 §8.1.2.1
                return
        self._count_inbound()  # XEP-0198 §4: handled (answered here or handed over)
        if tag == "{" + ns.CLIENT + "}iq" and el.get("type") == "set":
            payload = el.find(_SESSION)
            if payload is not None and len(el) == 1 and el.get("to") in (None, self.domain):
                # RFC 3921 session establishment, kept as a no-op (RFC 6121 Appendix E).
                self._send_stanza(
                    Element("{" + ns.CLIENT + "}iq", {"type": "result", "id": el.get("id", "")})
                )
                return
            if el.find(_BIND) is not None:
                self._send_stanza(_iq_error(el, "not-allowed", "cancel"))
                return
        self._events.append(StanzaReceived(el))


def _iq_error(request: Element, condition: str, error_type: str) -> Element:
    reply = Element("{" + ns.CLIENT + "}iq", {"type": "error", "id": request.get("id", "")})
    error = SubElement(reply, "{" + ns.CLIENT + "}error", {"type": error_type})
    SubElement(error, "{" + ns.STANZA_ERRORS + "}" + condition)
    return reply


class ClientConnection(_Connection):
    """The initiating entity's side of a client-to-server stream (RFC 6120).

    Construct it, call :meth:`start` (or pass ``tls_active=True`` first for
    direct TLS), then pump bytes. Negotiation is automatic: STARTTLS when
    offered (required unless ``config.require_tls`` is off), the strongest
    SASL mechanism (``-PLUS`` when channel binding is available, PLAIN only
    over TLS), then resource binding. :class:`ResourceBound` means ready.

    Stream management (XEP-0198): when the server offers it and
    ``config.stream_management`` is on, ``<enable/>`` follows binding
    (:class:`StreamManagementEnabled` or :class:`StreamManagementFailed`
    follows). Pass the :attr:`sm` of a previous connection as ``sm_state`` to
    resume its session instead of binding: :class:`StreamResumed` then means
    ready, or :class:`ResumeFailed` reports the stanzas the server never
    acknowledged and binding goes on as usual.
    """

    def __init__(
        self,
        config: ClientConfig,
        *,
        tls_active: bool = False,
        tls_info: TLSInfo | None = None,
        sm_state: SMState | None = None,
    ) -> None:
        limits = config.limits
        super().__init__(limits.max_stanza_size, limits.max_stanza_size, limits.max_depth)
        self.config = config
        self.tls_active = tls_active
        self._tls_info = tls_info or TLSInfo()
        self.authenticated = False
        self.jid: JID | None = None
        self.stream_id: str | None = None
        self._mechanism: sasl.ClientMechanism | None = None
        self._bind_id = ""
        self._session_id = ""
        self._needs_session = False
        self._started = False
        self._ack_policy = config.sm_ack_requests
        self._previous_sm = sm_state
        self._bind_features: Element | None = None
        self._sm_offered = False
        #: the server offers Client State Indication (XEP-0352 §4.1)
        self.csi_offered = False

    @property
    def sm_pending(self) -> bool:
        """``<enable/>`` was sent and the server has not answered yet (XEP-0198 §3)."""
        return self._sm is not None and not self._sm_live

    def set_client_state(self, active: bool) -> None:
        """Tell the server the user is (in)active: ``<active/>``/``<inactive/>``
        (XEP-0352 §4.2). Every stream, resumed ones too, starts active.

        Raises:
            LocalProtocolError: the stream is not ready or the server does not
                offer CSI.
        """
        if self.state is not State.READY:
            raise LocalProtocolError(f"cannot send in state {self.state.name}")
        if not self.csi_offered:
            raise LocalProtocolError("the server does not offer client state indication")
        self._send_element(Element(_CSI_ACTIVE if active else _CSI_INACTIVE))

    def start(self) -> None:
        """Queue the initial stream header (RFC 6120 §4.2)."""
        if self._started:
            raise LocalProtocolError("already started")
        self._started = True
        self._send_header()

    def _send_header(self) -> None:
        attrs: dict[str, str | None] = {"to": self.config.jid.domain, "version": "1.0"}
        if self.tls_active:  # RFC 6120 §4.7.1: reveal the JID only under TLS
            attrs["from"] = str(self.config.jid.bare)
        if self.config.lang:
            attrs[ns.XML_LANG] = self.config.lang
        self._queue_header(attrs)

    def _on_restart(self) -> None:
        self._send_header()

    def _error_header_attrs(self) -> dict[str, str | None]:
        return {"to": self.config.jid.domain, "version": "1.0"}

    def _handle_header(self, header: StreamHeader) -> None:
        self._opened(header)
        condition = self._check_header(header)
        if condition is not None:
            self._stream_error(condition)
            return
        self.stream_id = header.attrs.get("id")
        self.state = State.AWAIT_FEATURES

    def _fail_negotiation(self, reason: str) -> None:
        self._events.append(NegotiationFailed(reason))
        self._queue_footer()
        self.state = State.CLOSED

    def _handle_negotiation(self, el: Element) -> None:
        tag = el.tag
        state = self.state
        if state is State.AWAIT_FEATURES and tag == _FEATURES:
            self._handle_features(el)
        elif state is State.TLS_PENDING:  # pragma: no cover - _process stops first
            pass
        elif state is State.NEGOTIATING and tag == _PROCEED:
            self.state = State.TLS_PENDING
            self._events.append(
                TLSRequested(server_side=False, server_hostname=self.config.jid.domain)
            )
        elif state is State.NEGOTIATING and tag == _TLS_FAILURE:
            self._fail_negotiation("the server refused STARTTLS")
        elif state is State.SASL and tag in (_CHALLENGE, _SUCCESS, _FAILURE):
            self._handle_sasl(el)
        elif state is State.BINDING and tag == "{" + ns.CLIENT + "}iq":
            self._handle_bind_result(el)
        elif state is State.RESUMING and tag in (_SM_RESUMED, _SM_FAILED):
            self._handle_resume_answer(el)
        else:
            self._stream_error(StreamErrorCondition.UNSUPPORTED_STANZA_TYPE)

    def _handle_features(self, features: Element) -> None:
        cfg = self.config
        self.state = State.NEGOTIATING
        if not self.tls_active:
            if features.find(_STARTTLS) is not None:
                self._send_element(Element(_STARTTLS))
                return
            if cfg.require_tls:
                self._fail_negotiation("the server does not offer TLS (STARTTLS stripping?)")
                return
        if not self.authenticated:
            offered = [
                (m.text or "").strip()
                for m in features.iterfind(f"{_MECHANISMS}/{{{ns.SASL}}}mechanism")
            ]
            server_plus = any(m.endswith("-PLUS") for m in offered)
            if cfg.mechanisms is not None:
                offered = [m for m in offered if m in cfg.mechanisms]
            cb = self._tls_info.channel_binding
            name = sasl.select_client_mechanism(
                offered,
                tls=self.tls_active,
                channel_binding=cb is not None,
                allow_plain=cfg.allow_plain,
            )
            if name is None:
                self._fail_negotiation(f"no acceptable SASL mechanism among {offered}")
                return
            if server_plus and not name.endswith("-PLUS"):
                # We chose not to bind although both sides could: gs2 flag 'n', not the
                # downgrade-detecting 'y' (RFC 5802 §6).
                cb = None
            self._mechanism = sasl.create_client_mechanism(
                name,
                username=cfg.jid.local or "",
                password=cfg.password,
                nonce=cfg.rng(18),
                channel_binding=cb,
                server_supports_plus=server_plus,
            )
            initial = self._mechanism.initial_response()
            self._send_element(_sasl_element("auth", _b64encode(initial), mechanism=name))
            self.state = State.SASL
            return
        self._sm_offered = features.find(_SM_FEATURE) is not None
        self.csi_offered = features.find(_CSI_FEATURE) is not None
        previous = self._previous_sm
        if previous is not None:
            if self._sm_offered and previous.resume and previous.id and previous.jid:
                # XEP-0198 §5: resume instead of binding.
                self._send_element(build_nonza(Resume(previous.id, previous.inbound)))
                self._bind_features = features
                self.state = State.RESUMING
                return
            self._previous_sm = None
            self._events.append(
                ResumeFailed("feature-not-implemented", None, previous.take_unacked())
            )
        self._start_bind(features)

    def _handle_resume_answer(self, el: Element) -> None:
        """``<resumed/>`` or ``<failed/>`` after our ``<resume/>`` (XEP-0198 §5)."""
        previous = self._previous_sm
        assert previous is not None
        try:
            answer = parse_nonza(el)
        except SMParseError as exc:
            self._stream_error(StreamErrorCondition.BAD_FORMAT, str(exc))
            return
        if isinstance(answer, Resumed):
            if answer.previd != previous.id:
                self._stream_error(StreamErrorCondition.UNDEFINED_CONDITION, "wrong previd")
                return
            try:
                acked = previous.ack(answer.h)
            except HandledCountTooHigh as exc:
                self._handled_count_too_high(exc)
                return
            self._previous_sm = None
            if acked:
                self._events.append(StanzasAcknowledged(acked))
            self._attach_resumed(previous)
            return
        assert isinstance(answer, Failed)
        self._previous_sm = None
        if answer.h is not None:
            # §5: the server may say how many of our stanzas it handled before
            # the session timed out; those need no resending.
            with suppress(HandledCountTooHigh):
                previous.ack(answer.h)
        self._events.append(ResumeFailed(answer.condition, answer.h, previous.take_unacked()))
        features = self._bind_features
        assert features is not None
        self._bind_features = None
        self._start_bind(features)

    def _start_bind(self, features: Element) -> None:
        cfg = self.config
        if features.find(_BIND) is None:
            self._fail_negotiation("the server does not offer resource binding")
            return
        session = features.find(_SESSION)
        self._needs_session = (
            session is not None and session.find("{" + ns.SESSION + "}optional") is None
        )
        self._bind_id = "bind-" + self.config.rng(6).hex()
        iq = Element("{" + ns.CLIENT + "}iq", {"type": "set", "id": self._bind_id})
        bind = SubElement(iq, _BIND)
        if cfg.jid.resource:
            SubElement(bind, "{" + ns.BIND + "}resource").text = cfg.jid.resource
        self._send_element(iq)
        self.state = State.BINDING

    def _handle_sasl(self, el: Element) -> None:
        mech = self._mechanism
        assert mech is not None
        if el.tag == _FAILURE:
            condition = "not-authorized"
            text = None
            for child in el:
                local = child.tag.partition("}")[2]
                if local == "text":
                    text = child.text
                else:
                    condition = local
            self._events.append(AuthenticationFailed(condition, text))
            self._queue_footer()
            self.state = State.CLOSING
            return
        try:
            data = _b64decode(el.text)
            if el.tag == _CHALLENGE:
                self._send_element(
                    _sasl_element("response", _b64encode(mech.challenge(data or b""), empty=None))
                )
                return
            mech.success(data)
        except (ValueError, sasl.SASLClientError) as exc:
            # The server could not prove it knows our credentials: abort (RFC 5802 §9).
            self._events.append(AuthenticationFailed("server-not-verified", str(exc)))
            self._stream_error(StreamErrorCondition.NOT_AUTHORIZED, "server authentication failed")
            self._pending_error = None
            return
        self.authenticated = True
        self._events.append(Authenticated(self.config.jid.bare, mech.name))
        self._restart(authenticated=True)  # RFC 6120 §6.4.6: restart on receiving <success/>

    def _handle_bind_result(self, el: Element) -> None:
        iq_id = el.get("id")
        if iq_id == self._session_id and self._session_id:
            self._ready()
            return
        if iq_id != self._bind_id:
            self._stream_error(StreamErrorCondition.NOT_AUTHORIZED, "stanza before binding")
            return
        if el.get("type") != "result":
            condition = "undefined-condition"
            error = el.find("{" + ns.CLIENT + "}error")
            if error is not None and len(error):
                condition = error[0].tag.partition("}")[2]
            self._fail_negotiation(f"resource binding failed: {condition}")
            return
        text = el.findtext(f"{_BIND}/{{{ns.BIND}}}jid")
        try:
            jid = JID.parse((text or "").strip())
        except InvalidJID:
            self._stream_error(StreamErrorCondition.INVALID_XML, "bad JID in bind result")
            return
        if jid.bare != self.config.jid.bare or jid.resource is None:
            self._stream_error(StreamErrorCondition.INVALID_XML, "bind result for another account")
            return
        self.jid = jid
        if self._needs_session:
            self._session_id = "sess-" + self.config.rng(6).hex()
            iq = Element("{" + ns.CLIENT + "}iq", {"type": "set", "id": self._session_id})
            SubElement(iq, _SESSION)
            self._send_element(iq)
            return
        self._ready()

    def _ready(self) -> None:
        assert self.jid is not None
        self.state = State.READY
        self._was_ready = True
        self._parser.hold = False
        self._events.append(ResourceBound(self.jid))
        if self._sm_offered and self.config.stream_management:
            # XEP-0198 §3: after binding; our outbound count starts now (§4).
            self._send_element(build_nonza(Enable(self.config.sm_resume, self.config.sm_max)))
            self._sm = SMState(jid=self.jid)

    def _handle_ready(self, el: Element) -> None:
        if el.tag in _CLIENT_STANZAS:
            self._count_inbound()
            self._events.append(StanzaReceived(el))
        elif is_sm_element(el) and el.tag in (_SM_ENABLED, _SM_FAILED):
            self._handle_enable_answer(el)
        elif is_sm_element(el):
            self._handle_ack_nonza(el)
        else:
            self._stream_error(StreamErrorCondition.UNSUPPORTED_STANZA_TYPE)

    def _handle_enable_answer(self, el: Element) -> None:
        """``<enabled/>`` or ``<failed/>`` after our ``<enable/>`` (XEP-0198 §3)."""
        sm = self._sm
        if sm is None or self._sm_live:
            self._stream_error(StreamErrorCondition.UNSUPPORTED_STANZA_TYPE, "nothing to answer")
            return
        try:
            answer = parse_nonza(el)
        except SMParseError as exc:
            self._stream_error(StreamErrorCondition.BAD_FORMAT, str(exc))
            return
        if isinstance(answer, Failed):
            self._sm = None
            self._events.append(StreamManagementFailed(answer.condition))
            return
        assert isinstance(answer, Enabled)
        sm.resume = answer.resume and bool(answer.id) and self.config.sm_resume
        sm.id = answer.id
        sm.max = answer.max
        sm.location = answer.location
        self._sm_live = True  # §4: our inbound count starts now
        self._events.append(
            StreamManagementEnabled(answer.id, sm.resume, answer.max, answer.location)
        )
