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
from ..xml import ns
from ..xml.parser import StreamHeader
from .answers import Answer
from .events import TLSRequested
from .features import bidi, external
from .features import dialback as db
from .s2s_base import _DB_TAGS, _SERVER_STANZAS, DIALBACK, _domain, _S2SStream
from .s2s_events import (
    DialbackVerdict,
    DialbackVerifyRequested,
    DomainPairAuthenticated,
    DomainPairRejected,
    S2SConfig,
    S2STLSEstablished,
)
from .s2s_identity import PeerCertificate, certificate_names, dialback_key_matches
from .s2s_initiating import S2SInitiatingConnection
from .s2s_state import S2S_RECEIVING_TRANSITIONS
from .state import TERMINAL, Input, State

__all__ = ["DIALBACK", "S2SInitiatingConnection", "S2SReceivingConnection"]


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
        if config.bidi and not self.bidi:
            features.append(bidi.feature_element())  # XEP-0288 §2.1, after TLS
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
        elif tag == bidi.BIDI_TAG and self.config.bidi:
            self.bidi = True  # XEP-0288 §2.2: no answer
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

    def _check_outbound(self, element: Element) -> None:
        if not self.bidi:
            raise LocalProtocolError("stanzas go out here only on a bidirectional stream")
        super()._check_outbound(element)

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
