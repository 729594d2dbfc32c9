"""What both roles of a server-to-server stream share (:mod:`.s2s`,
:mod:`.s2s_initiating`): the ``jabber:server`` header with the dialback
prefix (XEP-0220 §2.1), the answers to TLS requests, sending stanzas for
authenticated pairs, and domain parsing.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element

from ..errors import LocalProtocolError, StreamErrorCondition
from ..jid import JID, InvalidJID
from ..stanza import retag_stanza
from ..xml import ns
from ..xml.writer import stream_header
from .answers import Answer, TLSEstablished
from .base import _STANZA_NAMES, _Connection
from .events import StanzaReceived
from .features import dialback as db
from .s2s_events import (
    DialbackVerdict,
    S2SConfig,
    S2STLSEstablished,
)
from .s2s_identity import PeerCertificate
from .state import State

__all__ = ["DIALBACK"]

#: The ``method`` of :class:`DomainPairAuthenticated` for XEP-0220.
DIALBACK = "dialback"
_SERVER_STANZAS = frozenset("{" + ns.SERVER + "}" + n for n in _STANZA_NAMES)
_DB_TAGS = frozenset({db.DB_RESULT_TAG, db.DB_VERIFY_TAG})
_DB_DECL = b' xmlns:db="' + db.DB.encode() + b'">'


def _domain(value: str | None) -> str | None:
    """A bare domain, normalised (RFC 7622), or None."""
    if not value:
        return None
    try:
        jid = JID.parse(value)
    except InvalidJID:
        return None
    return jid.domain if jid.local is None and jid.resource is None else None


def _jid_domain(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return JID.parse(value).domain
    except InvalidJID:
        return None


class _S2SStream(_Connection):
    """What both roles of an s2s stream share."""

    _default_ns = ns.SERVER

    def __init__(self, config: S2SConfig, direct_tls: PeerCertificate | None = None) -> None:
        limits = config.limits
        super().__init__(limits.max_stanza_size_preauth, limits.max_stanza_size, limits.max_depth)
        self.config = config
        self.stream_id: str | None = None
        #: XEP-0368: the stream starts over TLS (no STARTTLS); the facts of the
        #: peer's certificate (``PeerCertificate(False)`` when it gave none)
        self.tls_active = direct_tls is not None
        self.peer_certificate: PeerCertificate | None = direct_tls
        #: Authenticated (local, remote) domain pairs.
        self.pairs: set[tuple[str, str]] = set()
        #: XEP-0288: stanzas flow both ways (asked for by the initiating side)
        self.bidi = False

    def _queue_header(self, attrs: dict[str, str | None]) -> None:
        # XEP-0220 §2.1: the dialback prefix is declared on the header.
        data = stream_header({**attrs, "version": "1.0"}, ns.SERVER)
        self._out.append(data[:-1] + _DB_DECL)
        self._sent_header = True

    def _answer(self, answer: Answer | S2STLSEstablished | DialbackVerdict) -> None:
        if isinstance(answer, S2STLSEstablished):
            if self._state is not State.TLS_PENDING:
                raise LocalProtocolError("no TLS negotiation is pending")
            self.peer_certificate = answer.certificate
            self.tls_established(answer.info)
            return
        if isinstance(answer, TLSEstablished):
            self._answer(S2STLSEstablished(None, answer.info))
            return
        raise LocalProtocolError(f"{type(answer).__name__} is not an answer for this role")

    def send(self, element: Element | Answer | S2STLSEstablished | DialbackVerdict) -> None:
        """Queue a stanza (``jabber:client`` or ``jabber:server``) for an
        authenticated pair, or answer a request of this connection."""
        if not isinstance(element, Element):
            self._answer(element)
            return
        if self._state is not State.READY:
            raise LocalProtocolError(f"cannot send stanzas in state {self._state.name}")
        self._check_outbound(element)
        self._send_stanza(retag_stanza(element, ns.SERVER))

    def _check_outbound(self, element: Element) -> None:
        """Only from a local domain to a remote one of an authenticated pair
        (on a receiving stream: only when bidirectional, XEP-0288 §2.3)."""
        pair = (_jid_domain(element.get("from")), _jid_domain(element.get("to")))
        if pair not in self.pairs:
            raise LocalProtocolError(f"{pair[0]} -> {pair[1]} is not authenticated here")

    def _stanza(self, el: Element) -> None:
        """RFC 6120 §8.1.1.2, §8.1.2.2: both addresses, and the pair
        authenticated on this stream (a spoofed ``from`` is ``invalid-from``)."""
        sender, to = _jid_domain(el.get("from")), _jid_domain(el.get("to"))
        if sender is None or to is None:
            condition = (
                StreamErrorCondition.IMPROPER_ADDRESSING
                if el.get("from") is None or el.get("to") is None
                else StreamErrorCondition.INVALID_FROM
                if sender is None
                else StreamErrorCondition.IMPROPER_ADDRESSING
            )
            self._stream_error(condition)
            return
        if (to, sender) not in self.pairs:
            self._stream_error(StreamErrorCondition.INVALID_FROM, f"{sender} -> {to}")
            return
        self._events.append(StanzaReceived(retag_stanza(el, ns.CLIENT)))

    def _authenticated(self) -> None:
        self._parser.max_stanza_size = self._postauth_size

    def _not_a_stanza(self, el: Element) -> None:
        local = el.tag[1:].partition("}")[2] if el.tag[:1] == "{" else el.tag
        if local in _STANZA_NAMES:
            self._stream_error(StreamErrorCondition.INVALID_NAMESPACE)  # RFC 6120 §4.9.3.10
        else:
            self._stream_error(StreamErrorCondition.UNSUPPORTED_STANZA_TYPE)
