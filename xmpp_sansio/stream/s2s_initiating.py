"""The initiating server's side of a server-to-server stream (RFC 6120
§13.7; XEP-0178, XEP-0220), sans I/O; see :mod:`.s2s` for the theory of
operation and the receiving side.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element

from ..errors import LocalProtocolError, StreamErrorCondition
from ..xml import ns
from ..xml.parser import StreamHeader
from .events import NegotiationFailed, TLSRequested
from .features import bidi, external
from .features import dialback as db
from .s2s_base import _DB_TAGS, _SERVER_STANZAS, DIALBACK, _S2SStream
from .s2s_events import (
    DialbackVerifyResult,
    DomainPairAuthenticated,
    DomainPairRejected,
    S2SConfig,
)
from .s2s_identity import PeerCertificate, certificate_names, dialback_key
from .s2s_state import S2S_INITIATING_TRANSITIONS
from .state import TERMINAL, Input, State

__all__ = ["S2SInitiatingConnection"]


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
        if self.config.bidi and not self.bidi and bidi.offered(features):
            self._send_element(bidi.request_element())  # XEP-0288 §2.2: before auth
            self.bidi = True
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

    @property
    def can_piggyback(self) -> bool:
        """Whether :meth:`authorize` may add another local domain: a ready,
        authenticating stream whose peer offered dialback (XEP-0220 §2.1, §2.6;
        also after EXTERNAL), with room for another pair (``max_domain_pairs``)."""
        return (
            self._state is State.READY
            and not self.verify_only
            and self._dialback_offered
            and self.config.allow_dialback
            and len(self.pairs) + len(self._pending) < self.config.max_domain_pairs
        )

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
        elif self.bidi and el.tag in _SERVER_STANZAS:
            self._stanza(el)  # XEP-0288 §2.3: the inverse of an authenticated pair
        else:
            self._not_a_stanza(el)  # RFC 6120 §4.2: this stream carries ours only

    def _not_a_stanza(self, el: Element) -> None:
        if el.tag in _SERVER_STANZAS:
            self._stream_error(StreamErrorCondition.UNSUPPORTED_STANZA_TYPE, "one-way stream")
        else:
            super()._not_a_stanza(el)
