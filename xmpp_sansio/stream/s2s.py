"""Server-to-server streams (``jabber:server``), both roles, sans I/O.

Theory of operation
-------------------
A receiving server (:class:`S2SReceivingConnection`) answers the initiating
server's header (``to`` must be one of our domains, else ``host-unknown``)
and offers STARTTLS, required by default (RFC 6120 §5.3.1). After TLS the I/O
layer passes the facts of the peer's certificate (:class:`S2STLSEstablished`)
and the offer depends on them (RFC 6120 §13.7.1.2, XEP-0178):

- SASL EXTERNAL when the certificate is valid and names the header's
  ``from`` (RFC 6125, :func:`~.s2s_identity.certificate_names`); success
  restarts the stream, whose features are then empty: ready;
- Server Dialback (XEP-0220) otherwise: a ``<db:result>`` with a key asks
  for one domain pair. When the certificate names the claimed domain the
  pair is valid at once (XEP-0344); else the I/O layer asks the
  authoritative server (:class:`DialbackVerifyRequested`, answered with
  :class:`DialbackVerdict`), unless ``require_valid_certificate`` refuses.

Each ``<db:result>`` authenticates one (remote, local) domain pair; more
follow on the same stream (piggybacking, XEP-0220 §2.6). Every stanza's
``from``/``to`` domains must be an authenticated pair, or the stream closes
with ``invalid-from`` (RFC 6120 §4.9.3.9, §13.7.3). ``<db:verify>`` from a
receiving server asking us as the authoritative server is answered at once
from the XEP-0185 key (:func:`~.s2s_identity.dialback_key`).

The initiating side (:class:`S2SInitiatingConnection`) runs the same steps
from the other end: STARTTLS, EXTERNAL if offered (a failure falls back to
dialback), else dialback; :meth:`~S2SInitiatingConnection.authorize`
piggybacks another local domain, :meth:`~S2SInitiatingConnection.verify`
sends a ``db:verify`` (the authoritative check of XEP-0220 §2.3). Stanzas
are handed over and taken in ``jabber:client`` (retagged on the wire).

Streams are one-way here (RFC 6120 §4.2): a stanza on an initiating stream
is ``unsupported-stanza-type``. The tables are in :mod:`.s2s_state`.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element, SubElement

from ..errors import LocalProtocolError, StanzaErrorCondition, StreamErrorCondition
from ..jid import JID, InvalidJID
from ..stanza import retag_stanza
from ..xml import ns
from ..xml.parser import StreamHeader
from ..xml.writer import stream_header
from .answers import Answer, TLSEstablished
from .base import _STANZA_NAMES, _Connection
from .events import NegotiationFailed, StanzaReceived, TLSRequested
from .features import dialback as db
from .features import external
from .s2s_events import (
    DialbackVerdict,
    DialbackVerifyRequested,
    DialbackVerifyResult,
    DomainPairAuthenticated,
    DomainPairRejected,
    S2SConfig,
    S2STLSEstablished,
)
from .s2s_identity import PeerCertificate, certificate_names, dialback_key, dialback_key_matches
from .s2s_state import S2S_INITIATING_TRANSITIONS, S2S_RECEIVING_TRANSITIONS
from .state import TERMINAL, Input, State

__all__ = ["DIALBACK", "S2SInitiatingConnection", "S2SReceivingConnection"]

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
        raise LocalProtocolError("stanzas do not go out on this side of the stream")

    def _authenticated(self) -> None:
        self._parser.max_stanza_size = self._postauth_size

    def _not_a_stanza(self, el: Element) -> None:
        local = el.tag[1:].partition("}")[2] if el.tag[:1] == "{" else el.tag
        if local in _STANZA_NAMES:
            self._stream_error(StreamErrorCondition.INVALID_NAMESPACE)  # RFC 6120 §4.9.3.10
        else:
            self._stream_error(StreamErrorCondition.UNSUPPORTED_STANZA_TYPE)


class S2SReceivingConnection(_S2SStream):
    """The receiving server's side of an s2s stream (RFC 6120 §13.7; XEP-0220).

    Events: :class:`~.events.StreamOpened`, :class:`~.events.TLSRequested`
    (answer :class:`S2STLSEstablished`), :class:`DialbackVerifyRequested`
    (answer :class:`DialbackVerdict`), :class:`DomainPairAuthenticated`,
    :class:`DomainPairRejected`, :class:`~.events.StanzaReceived` (in
    ``jabber:client``, from an authenticated pair).
    """

    _transitions = S2S_RECEIVING_TRANSITIONS

    def __init__(self, config: S2SConfig, *, direct_tls: PeerCertificate | None = None) -> None:
        super().__init__(config, direct_tls)
        self.local: str | None = None
        self.remote: str | None = None
        self._external_offered = False
        self._external_done = False
        self._pending: set[tuple[str, str]] = set()
        self._auth_failures = 0

    def _error_header_attrs(self) -> dict[str, str | None]:
        return {"from": self.local, "id": self.stream_id}

    def _handle_header(self, header: StreamHeader) -> None:
        self._opened(header)
        condition = self._check_header(header)
        local = _domain(header.attrs.get("to"))
        if condition is None and (local is None or local not in self.config.domains):
            condition = StreamErrorCondition.HOST_UNKNOWN  # RFC 6120 §4.9.3.6
        if condition is not None:
            self._stream_error(condition)
            return
        assert local is not None
        self.local = local
        self.remote = _domain(header.attrs.get("from"))
        self.stream_id = self.config.rng(12).hex()
        self._queue_header({"from": local, "to": self.remote, "id": self.stream_id})
        self._fire(Input.PEER_HEADER)
        self._send_element(self._features())
        if self._external_done:
            assert self.remote is not None
            self._authenticated()
            self._fire(Input.S2S_AUTHENTICATED)

    def _features(self) -> Element:
        """RFC 6120 §4.3.2: STARTTLS first; after it EXTERNAL and/or dialback;
        after EXTERNAL nothing (the stream is ready, §6.4.6)."""
        features = Element(ns.FEATURES_TAG)
        if self._external_done:
            return features
        config = self.config
        if not self.tls_active and config.tls_available:
            starttls = SubElement(features, ns.STARTTLS_TAG)
            if config.require_tls:
                SubElement(starttls, "{" + ns.TLS + "}required")
                return features
        self._external_offered = self.remote is not None and certificate_names(
            self.peer_certificate, self.remote
        )
        if self._external_offered:
            features.append(external.mechanisms_element())
        if config.allow_dialback:
            features.append(db.dialback_feature())
        return features

    def _tls_missing(self) -> bool:
        return self.config.require_tls and not self.tls_active

    def _handle_negotiation(self, el: Element) -> None:
        tag = el.tag
        if tag == ns.STARTTLS_TAG:
            if self.tls_active or not self.config.tls_available:
                self._send_element(Element(ns.TLS_FAILURE_TAG))  # §5.4.2.2
                self._fire(Input.TLS_REFUSED)
                return
            self._send_element(Element(ns.PROCEED_TAG))
            self._fire(Input.TLS_STARTED)
            self._events.append(TLSRequested(True, self.local or ""))
        elif self._tls_missing():
            self._stream_error(StreamErrorCondition.POLICY_VIOLATION, "STARTTLS is required")
        elif tag == ns.AUTH_TAG:
            self._external(el)
        elif tag in _DB_TAGS:
            self._dialback(el)
        elif tag in _SERVER_STANZAS:
            self._stream_error(StreamErrorCondition.NOT_AUTHORIZED, "authenticate first")
        else:
            self._not_a_stanza(el)

    def _external(self, el: Element) -> None:
        """RFC 6120 §6.4, XEP-0178 §2: one step, the certificate is the credential."""
        condition = external.check_auth(el, self.remote if self._external_offered else None)
        if condition is None:
            assert self.local is not None and self.remote is not None
            self._send_element(Element(ns.SUCCESS_TAG))
            self._external_done = True
            self.pairs.add((self.local, self.remote))
            self._events.append(DomainPairAuthenticated(self.local, self.remote, external.EXTERNAL))
            self._fire(Input.SASL_SUCCEEDED)
            return
        self._send_element(external.failure_element(condition))
        self._auth_failures += 1
        if self._auth_failures >= self.config.limits.max_auth_attempts:
            self._stream_error(StreamErrorCondition.POLICY_VIOLATION, "too many attempts")
            return
        self._fire(Input.SASL_FAILED)

    def _handle_ready(self, el: Element) -> None:
        if el.tag in _SERVER_STANZAS:
            self._stanza(el)
        elif el.tag in _DB_TAGS:
            self._dialback(el)
        else:
            self._not_a_stanza(el)

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

    def _dialback(self, el: Element) -> None:
        parsed = db.parse_dialback(el)
        if parsed is None:
            self._stream_error(StreamErrorCondition.IMPROPER_ADDRESSING, "dialback addressing")
            return
        if parsed.verify:
            self._answer_verify(parsed)
            return
        originating, receiving = _domain(parsed.from_), _domain(parsed.to)
        if originating is None:
            self._stream_error(StreamErrorCondition.INVALID_FROM)  # XEP-0220 §2.4
            return
        error: StanzaErrorCondition | None = None
        text: str | None = None
        if receiving is None or receiving not in self.config.domains:
            error = StanzaErrorCondition.ITEM_NOT_FOUND  # §2.4: not hosted here
        elif not self.config.allow_dialback or parsed.key is None or parsed.type is not None:
            error = StanzaErrorCondition.BAD_REQUEST
        elif (receiving, originating) in self.pairs or certificate_names(
            self.peer_certificate, originating
        ):
            self._verdict(receiving, originating, True, None)  # XEP-0344
            return
        elif self.config.require_valid_certificate:
            error, text = StanzaErrorCondition.NOT_AUTHORIZED, "a valid certificate is required"
        elif len(self._pending) + len(self.pairs) >= self.config.max_domain_pairs:
            error = StanzaErrorCondition.RESOURCE_CONSTRAINT
        if error is not None:
            self._send_element(
                db.result_element(parsed.to, parsed.from_, type_="error", error=error, text=text)
            )
            self._events.append(DomainPairRejected(parsed.to, parsed.from_, error))
            return
        assert receiving is not None and parsed.key is not None and self.stream_id is not None
        self._pending.add((receiving, originating))
        self._events.append(
            DialbackVerifyRequested(originating, receiving, self.stream_id, parsed.key)
        )

    def _answer_verify(self, parsed: db.DialbackElement) -> None:
        """XEP-0220 §2.3.2: we are the authoritative server of ``to``."""
        if _domain(parsed.to) not in self.config.domains:
            self._send_element(
                db.verify_element(
                    parsed.to,
                    parsed.from_,
                    parsed.id or "",
                    type_="error",
                    error=StanzaErrorCondition.ITEM_NOT_FOUND,
                )
            )
            return
        valid = (
            parsed.id is not None
            and parsed.key is not None
            and dialback_key_matches(
                self.config.secret, parsed.from_, parsed.to, parsed.id, parsed.key
            )
        )
        self._send_element(
            db.verify_element(
                parsed.to, parsed.from_, parsed.id or "", type_="valid" if valid else "invalid"
            )
        )

    def _answer(self, answer: Answer | S2STLSEstablished | DialbackVerdict) -> None:
        if isinstance(answer, DialbackVerdict):
            pair = (answer.receiving, answer.originating)
            if pair not in self._pending:
                raise LocalProtocolError("no dialback verification is pending for that pair")
            self._pending.discard(pair)
            if self._state not in TERMINAL:
                self._verdict(*pair, answer.valid, answer.error)
            return
        super()._answer(answer)

    def _verdict(
        self, local: str, remote: str, valid: bool, error: StanzaErrorCondition | None
    ) -> None:
        """XEP-0220 §2.4: the result for the pair; the first valid one makes the
        stream ready."""
        if valid:
            self._send_element(db.result_element(local, remote, type_="valid"))
            self.pairs.add((local, remote))
            self._events.append(DomainPairAuthenticated(local, remote, DIALBACK))
            if self._state is State.NEGOTIATING:
                self._authenticated()
                self._fire(Input.S2S_AUTHENTICATED)
            return
        if error is None and not self.pairs:
            # XEP-0220 §2.4: a bogus key on a stream with no other pair: result
            # "invalid", and the stream MUST be closed (not-authorized).
            self._send_element(db.result_element(local, remote, type_="invalid"))
            self._events.append(DomainPairRejected(local, remote, None))
            self._stream_error(StreamErrorCondition.NOT_AUTHORIZED, "dialback key invalid")
            return
        if error is None:
            # §2.4/§2.5: other pairs are valid here: refuse this one with
            # <forbidden/> and keep the stream for them.
            error = StanzaErrorCondition.FORBIDDEN
        self._send_element(db.result_element(local, remote, type_="error", error=error))
        self._events.append(DomainPairRejected(local, remote, error))


class S2SInitiatingConnection(_S2SStream):
    """The initiating server's side of an s2s stream from ``local`` to ``remote``.

    :meth:`start` sends the header; negotiation then runs by itself. With
    ``verify_only`` the stream authenticates nothing and only carries
    ``db:verify`` questions (XEP-0220 §2.3). Events:
    :class:`~.events.StreamOpened`, :class:`~.events.TLSRequested` (answer
    :class:`S2STLSEstablished`), :class:`DomainPairAuthenticated`,
    :class:`DomainPairRejected`, :class:`DialbackVerifyResult`,
    :class:`~.events.NegotiationFailed`.
    """

    _transitions = S2S_INITIATING_TRANSITIONS

    def __init__(
        self,
        config: S2SConfig,
        local: str,
        remote: str,
        *,
        verify_only: bool = False,
        direct_tls: PeerCertificate | None = None,
    ) -> None:
        super().__init__(config, direct_tls)
        self.local = local
        self.remote = remote
        self.verify_only = verify_only
        self._started = False
        self._external_done = False
        self._dialback_offered = False
        self._can_verify = False
        self._verifies: list[Element] = []
        self._pending: set[str] = set()

    def _error_header_attrs(self) -> dict[str, str | None]:
        return {"from": self.local, "to": self.remote}

    def start(self) -> None:
        """Queue the stream header (RFC 6120 §4.7.1: ``from`` our domain)."""
        if self._started:
            raise LocalProtocolError("the stream is already started")
        self._started = True
        self._queue_header({"from": self.local, "to": self.remote})

    def _on_restart(self) -> None:
        self._queue_header({"from": self.local, "to": self.remote})

    def _handle_header(self, header: StreamHeader) -> None:
        if not self._header_accepted(header):
            return
        self.stream_id = header.attrs.get("id") or None
        self._fire(Input.PEER_HEADER)

    def _fail(self, reason: str) -> None:
        self._events.append(NegotiationFailed(reason))
        self._fire(Input.NEGOTIATION_FAILED)

    def _handle_negotiation(self, el: Element) -> None:
        tag = el.tag
        if self._state is State.AWAIT_FEATURES:
            if tag != ns.FEATURES_TAG:
                self._not_a_stanza(el)
                return
            self._fire(Input.PEER_FEATURES)
            self._negotiate(el)
        elif tag == ns.PROCEED_TAG and self._state is State.NEGOTIATING:
            self._fire(Input.TLS_STARTED)
            self._events.append(TLSRequested(False, self.remote))
        elif tag == ns.TLS_FAILURE_TAG:
            self._fail("STARTTLS failed")
        elif tag == ns.SUCCESS_TAG and self._state is State.SASL:
            self._external_done = True
            self._fire(Input.SASL_SUCCEEDED)
        elif tag == ns.FAILURE_TAG and self._state is State.SASL:
            self._fire(Input.SASL_FAILED)
            self._dialback_or_fail()
        elif tag in _DB_TAGS:
            self._dialback_answer(el)
        else:
            self._not_a_stanza(el)

    def _negotiate(self, features: Element) -> None:
        """RFC 6120 §4.3.2, XEP-0178 §2, XEP-0220 §2.1: pick the next step."""
        if self._external_done:  # after SASL: empty features, ready (§6.4.6)
            self.pairs.add((self.local, self.remote))
            self._events.append(DomainPairAuthenticated(self.local, self.remote, external.EXTERNAL))
            self._authenticated()
            self._fire(Input.S2S_AUTHENTICATED)
            self._flush_verifies()
            return
        if not self.tls_active:
            if features.find(ns.STARTTLS_TAG) is not None and self.config.tls_available:
                self._send_element(Element(ns.STARTTLS_TAG))
                return
            if self.config.require_tls:
                self._fail("STARTTLS is required but not offered")
                return
        if self.config.require_valid_certificate and not certificate_names(
            self.peer_certificate, self.remote
        ):
            self._fail(f"the certificate is not valid for {self.remote}")
            return
        self._can_verify = True
        self._flush_verifies()
        if self.verify_only:
            return
        self._dialback_offered = features.find("{" + db.DB_FEATURES + "}dialback") is not None
        mechanisms = features.find(ns.MECHANISMS_TAG)
        offered = () if mechanisms is None else [(m.text or "").strip() for m in mechanisms]
        if external.EXTERNAL in offered:
            self._send_element(external.auth_element(self.local))
            self._fire(Input.SASL_STARTED)
            return
        self._dialback_or_fail()

    def _dialback_or_fail(self) -> None:
        if not (self._dialback_offered and self.config.allow_dialback):
            self._fail("no authentication method offered")
        elif self.stream_id is None:
            self._fail("no stream id for dialback")
        else:
            self._request(self.local)

    def _request(self, local: str) -> None:
        """XEP-0220 §2.1.1: ``<db:result from to>key</db:result>``."""
        assert self.stream_id is not None
        key = dialback_key(self.config.secret, self.remote, local, self.stream_id)
        self._pending.add(local)
        self._send_element(db.result_element(local, self.remote, key=key))

    def authorize(self, local: str) -> None:
        """Piggyback another of our domains on this stream (XEP-0220 §2.6)."""
        if self._state is not State.READY or self.verify_only:
            raise LocalProtocolError("domains are added on a ready, authenticating stream")
        if local not in self.config.domains:
            raise LocalProtocolError(f"{local} is not one of our domains")
        if (local, self.remote) not in self.pairs and local not in self._pending:
            self._request(local)

    def verify(self, originating: str, receiving: str, stream_id: str, key: str) -> None:
        """Ask the authoritative server of ``originating`` (our ``remote``)
        whether ``key`` is valid (XEP-0220 §2.3.1); queued until negotiated."""
        el = db.verify_element(receiving, originating, stream_id, key=key)
        self._verifies.append(el)
        self._flush_verifies()

    def _flush_verifies(self) -> None:
        if not self._can_verify or self._state in TERMINAL:
            return
        for el in self._verifies:
            self._send_element(el)
        self._verifies.clear()

    def _dialback_answer(self, el: Element) -> None:
        parsed = db.parse_dialback(el)
        if parsed is None or parsed.type is None:
            self._stream_error(StreamErrorCondition.UNSUPPORTED_STANZA_TYPE, "dialback answer")
            return
        if parsed.verify:
            self._events.append(
                DialbackVerifyResult(
                    parsed.from_, parsed.to, parsed.id or "", parsed.type == "valid"
                )
            )
            return
        local = parsed.to
        if local not in self._pending:
            return  # not asked, or already answered: ignore (XEP-0220 §2.4)
        self._pending.discard(local)
        if parsed.type == "valid":
            self.pairs.add((local, self.remote))
            self._events.append(DomainPairAuthenticated(local, self.remote, DIALBACK))
            if self._state is State.NEGOTIATING:
                self._authenticated()
                self._fire(Input.S2S_AUTHENTICATED)
            return
        self._events.append(DomainPairRejected(local, self.remote, db.error_condition(el)))
        if self._state is State.NEGOTIATING and not self._pending:
            self._fail(f"dialback refused for {local}")

    def _handle_ready(self, el: Element) -> None:
        if el.tag in _DB_TAGS:
            self._dialback_answer(el)
        else:
            self._not_a_stanza(el)  # RFC 6120 §4.2: this stream carries ours only

    def _not_a_stanza(self, el: Element) -> None:
        if el.tag in _SERVER_STANZAS:
            self._stream_error(StreamErrorCondition.UNSUPPORTED_STANZA_TYPE, "one-way stream")
        else:
            super()._not_a_stanza(el)

    def _check_outbound(self, element: Element) -> None:
        """Only from an authenticated local domain to ``remote``."""
        pair = (_jid_domain(element.get("from")), _jid_domain(element.get("to")))
        if pair[1] != self.remote or (pair[0], self.remote) not in self.pairs:
            raise LocalProtocolError(f"{pair[0]} -> {pair[1]} is not authenticated here")
