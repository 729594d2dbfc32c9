"""The server side of a client-to-server stream (RFC 6120 §4-§8): the stream
header, the dispatch to the feature plug-ins and the ready stream.

See :mod:`xmpp_sansio.stream.connection` for the theory of operation.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element

from .. import sasl
from ..errors import LocalProtocolError, StanzaErrorCondition, StreamErrorCondition
from ..jid import JID, InvalidJID
from ..sasl.credentials import ScramCredentials
from ..sm import PresenceHold, SMState
from ..xml import ns
from ..xml.parser import StreamHeader
from .answers import (
    Answer,
    BindAccepted,
    BindRefused,
    CredentialsProvided,
    CredentialsRefused,
    DerivationProvided,
    RegistrationAnswered,
    ResumeAccepted,
    ResumeRejected,
)
from .base import _CLIENT_STANZAS, _STANZA_NAMES
from .events import StanzaReceived
from .features import Stage, _iq_error
from .server_role import _ServerRole
from .state import READY, Input, State

# StanzaReceived(el) without the frozen dataclass's __init__ (a Python call
# and an object.__setattr__): a bare instance and its slot set directly,
# ~1.2k instructions less a stanza (callgrind); the same event otherwise.
_new_event = object.__new__
_set_element = StanzaReceived.__dict__["element"].__set__

__all__ = ["ServerConnection"]


class ServerConnection(_ServerRole):
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

    The connection is the table driver (base.py), the stream's situation
    (server_role.py), the header, the dispatch of each element to the
    profile's feature that claims it and of each answer to the feature that
    asked (features/), and the ready stream; each feature's handling is in its
    plug-in (features/starttls.py, sasl.py, register.py, bind.py, sm.py,
    csi.py). The answer methods (``provide_credentials`` etc.) are aliases of
    ``send(answer)``.
    """

    def send(self, element: Element | Answer) -> None:
        """Queue a stanza for the client, or answer a request (see
        :meth:`_Connection.send` and :mod:`~xmpp_sansio.stream.answers`).

        While the client is inactive (XEP-0352), presence updates are held, the
        latest per sender, and sent when it becomes active again; any other
        stanza is sent at once.
        """
        if not isinstance(element, Element):
            self._answer(element)
            return
        if self._state is not READY:
            raise LocalProtocolError(f"cannot send stanzas in state {self._state.name}")
        if self.client_active:
            self._send_stanza(element)
            return
        held = self._held
        if held is None:
            held = self._held = PresenceHold()
        for stanza in held.offer(element):
            self._send_stanza(stanza)

    def provide_credentials(self, credentials: ScramCredentials | None) -> None:
        """Alias of ``send(CredentialsProvided(credentials))`` (``None``: no such account)."""
        self._answer(CredentialsProvided(credentials))

    def provide_derived(self, salted_password: bytes) -> None:
        """Alias of ``send(DerivationProvided(salted_password))``."""
        self._answer(DerivationProvided(salted_password))

    def refuse_credentials(
        self, condition: sasl.SASLCondition = sasl.SASLCondition.TEMPORARY_AUTH_FAILURE
    ) -> None:
        """Alias of ``send(CredentialsRefused(condition))``: fail the exchange
        without a lookup; it counts toward ``max_auth_attempts`` (RFC 6120 §6.4.5)."""
        self._answer(CredentialsRefused(condition))

    def bind_accepted(self) -> None:
        """Alias of ``send(BindAccepted())`` (RFC 6120 §7.6.1)."""
        self._answer(BindAccepted())

    def bind_refused(
        self, condition: StanzaErrorCondition = StanzaErrorCondition.RESOURCE_CONSTRAINT
    ) -> None:
        """Alias of ``send(BindRefused(condition))`` (RFC 6120 §7.6.2.1)."""
        self._answer(BindRefused(condition))

    def registration_result(self, condition: StanzaErrorCondition | None = None) -> None:
        """Alias of ``send(RegistrationAnswered(condition))`` (XEP-0077 §3.1)."""
        self._answer(RegistrationAnswered(condition))

    def resume_accepted(self, state: SMState) -> None:
        """Alias of ``send(ResumeAccepted(state))`` (XEP-0198 §5).

        Raises:
            LocalProtocolError: no resumption was requested, or ``state`` is not
                the requested session of the authenticated account.
        """
        self._answer(ResumeAccepted(state))

    def resume_failed(self) -> None:
        """Alias of ``send(ResumeRejected())`` (XEP-0198 §5: ``item-not-found``)."""
        self._answer(ResumeRejected())

    def take_held_presences(self) -> list[Element]:
        """Hand over the presence updates held for an inactive client (XEP-0352),
        e.g. to keep them with a detached session; they will not be sent here."""
        held = self._held
        return [] if held is None else held.flush()

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

    def _check_unacked(self, sm: SMState) -> None:
        """XEP-0198 §4: bound what a client leaves unacknowledged; a burst may
        go ``sm_unacked_burst`` times past the limits (see the config), and
        crossing them asks for an ack at once."""
        config = self.config
        if (
            len(sm.queue) <= config.sm_max_unacked
            and sm.queued_bytes <= config.sm_max_unacked_bytes
        ):
            return
        count, size = len(sm.queue), sm.queued_bytes
        limit, limit_bytes = config.sm_max_unacked, config.sm_max_unacked_bytes
        burst = config.sm_unacked_burst
        if count > limit * burst or size > limit_bytes * burst:
            self.close(StreamErrorCondition.RESOURCE_CONSTRAINT, "too many unacknowledged stanzas")
        elif (
            self._sm_live
            and count - 1 <= limit
            and size - sm.sizes[-1] <= limit_bytes  # this stanza crossed a limit
            and sm.unrequested
        ):
            self._queue_ack_request(sm)

    def _answer(self, answer: Answer) -> None:
        """An answer goes to the profile's plug-in that asked for it
        (:meth:`Profile.answering`); ``TLSEstablished`` to the driver."""
        feature = self._answering.get(type(answer))
        if feature is not None:
            feature.answer(self, answer)
        else:
            super()._answer(answer)

    def _handle_header(self, header: StreamHeader) -> None:
        if self._state is not State.AWAIT_HEADER:  # pragma: no cover - parser gives one header
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
        self._fire(Input.PEER_HEADER)

    # -- negotiation -------------------------------------------------------------------

    def _handle_negotiation(self, el: Element) -> None:
        """Before binding, each element goes to the profile's feature that
        claims it at this stage (:meth:`Profile.claims`); what none takes gets
        the stream's answer."""
        tag = el.tag
        if self.authenticated_jid is not None:
            bind_feature = self._claims[Stage.BIND].get(tag)
            if bind_feature is not None and bind_feature.handle(self, Stage.BIND, el):
                return
            if tag in _CLIENT_STANZAS:
                self._stream_error(StreamErrorCondition.NOT_AUTHORIZED, "bind a resource first")
            else:
                self._stream_error(StreamErrorCondition.UNSUPPORTED_STANZA_TYPE)
            return
        feature = self._claims[Stage.BEFORE_AUTH].get(tag)
        if feature is not None and feature.handle(self, Stage.BEFORE_AUTH, el):
            return
        if tag in _CLIENT_STANZAS or tag[1:].partition("}")[2] in _STANZA_NAMES:
            # RFC 6120 §4.9.3.12: no stanzas before the stream is authenticated.
            self._stream_error(StreamErrorCondition.NOT_AUTHORIZED)
        else:
            self._stream_error(StreamErrorCondition.UNSUPPORTED_STANZA_TYPE)

    # -- ready ---------------------------------------------------------------------------

    def _handle_ready(self, el: Element) -> None:
        tag = el.tag
        claims = self._ready_claims
        feature = claims.get(tag)  # XEP-0198, XEP-0352: one dict miss
        if feature is not None:
            feature.handle(self, Stage.READY, el)
            return
        if tag not in _CLIENT_STANZAS:
            namespace = tag[: tag.find("}") + 1]
            feature = claims.get(namespace) if namespace else None
            if feature is not None:
                feature.handle(self, Stage.READY, el)
            elif tag[1:].partition("}")[2] in _STANZA_NAMES:
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
        sm = self._sm  # XEP-0198 §4: handled (answered here or handed over)
        if sm is not None and self._sm_live:  # _count_inbound, inline: every stanza
            sm.count_inbound()
        if tag == ns.IQ_TAG and el.get("type") == "set":
            payload = el.find(ns.SESSION_TAG)
            if payload is not None and len(el) == 1 and el.get("to") in (None, self.domain):
                # RFC 3921 session establishment, kept as a no-op (RFC 6121 Appendix E).
                self._send_stanza(Element(ns.IQ_TAG, {"type": "result", "id": el.get("id", "")}))
                return
            if el.find(ns.BIND_TAG) is not None:
                self._send_stanza(_iq_error(el, StanzaErrorCondition.NOT_ALLOWED))
                return
        event = _new_event(StanzaReceived)  # StanzaReceived(el), see _set_element
        _set_element(event, el)
        self._events.append(event)
