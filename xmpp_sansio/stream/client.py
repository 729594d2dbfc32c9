"""The client side of a client-to-server stream (RFC 6120 §4-§7, XEP-0198,
XEP-0352): it picks STARTTLS, the strongest SASL mechanism, then resumes or
binds, on its own. See :mod:`xmpp_sansio.stream.connection` for the theory of
operation and :data:`~xmpp_sansio.stream.state.CLIENT_TRANSITIONS` for its table.
"""

from __future__ import annotations

from contextlib import suppress
from xml.etree.ElementTree import Element, SubElement

from .. import sasl
from ..errors import LocalProtocolError, StreamErrorCondition
from ..jid import JID, InvalidJID
from ..sm import (
    Enable,
    Enabled,
    Failed,
    HandledCountTooHigh,
    Resume,
    Resumed,
    SMParseError,
    SMState,
    build_nonza,
    is_sm_element,
    parse_nonza,
)
from ..xml import ns
from ..xml.parser import StreamHeader
from .answers import TLSInfo
from .base import _CLIENT_STANZAS
from .client_features import C2S_CLIENT, ClientProfile
from .client_sasl2 import (
    SASL2_CLIENT_TAGS,
    Exchange,
    advertised_channel_bindings,
    begin,
    check_downgrade_hash,
    finish,
    handle_sasl2,
)
from .config import ClientConfig
from .events import (
    Authenticated,
    AuthenticationFailed,
    NegotiationFailed,
    ResourceBound,
    ResumeFailed,
    StanzaReceived,
    StanzasAcknowledged,
    StreamManagementEnabled,
    StreamManagementFailed,
    TLSRequested,
)
from .features import _b64decode, _b64encode, _sasl_element
from .framing import Framing
from .sm_stream import _SMStream
from .state import CLIENT_TRANSITIONS, Input, State

__all__ = ["ClientConnection"]


class ClientConnection(_SMStream):
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

    Which step follows each ``<stream:features/>`` is the ``profile``'s
    (:mod:`.client_features`, default :data:`C2S_CLIENT`).
    """

    _transitions = CLIENT_TRANSITIONS

    def __init__(
        self,
        config: ClientConfig,
        *,
        tls_active: bool = False,
        tls_info: TLSInfo | None = None,
        sm_state: SMState | None = None,
        framing: Framing | None = None,
        profile: ClientProfile = C2S_CLIENT,
    ) -> None:
        limits = config.limits
        super().__init__(limits.max_stanza_size, limits.max_stanza_size, limits.max_depth, framing)
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
        self._profile = profile
        self._sasl2: Exchange | None = None
        #: the login used SASL2 (XEP-0388), not RFC 6120 SASL
        self.used_sasl2 = False
        #: the channel binding type the last ``-PLUS`` mechanism used (RFC 5802 §6)
        self.channel_binding_used: str | None = None
        # RFC 6120 SASL: what was advertised, for XEP-0474's check
        self._sasl1_offer: tuple[list[str], frozenset[str] | None] | None = None

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
        if self._state is not State.READY:
            raise LocalProtocolError(f"cannot send in state {self._state.name}")
        if not self.csi_offered:
            raise LocalProtocolError("the server does not offer client state indication")
        self._send_element(Element(ns.CSI_ACTIVE_TAG if active else ns.CSI_INACTIVE_TAG))

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
        if not self._header_accepted(header):
            return
        self.stream_id = header.attrs.get("id")
        self._fire(Input.PEER_HEADER)

    def _fail_negotiation(self, reason: str) -> None:
        self._events.append(NegotiationFailed(reason))
        self._fire(Input.NEGOTIATION_FAILED)

    def _handle_negotiation(self, el: Element) -> None:
        tag = el.tag
        state = self._state
        if state is State.AWAIT_FEATURES and tag == ns.FEATURES_TAG:
            self._handle_features(el)
        elif state is State.TLS_PENDING:  # pragma: no cover - _process stops first
            pass
        elif state is State.NEGOTIATING and tag == ns.PROCEED_TAG:
            self._fire(Input.TLS_STARTED)
            self._events.append(
                TLSRequested(server_side=False, server_hostname=self.config.jid.domain)
            )
        elif state is State.NEGOTIATING and tag == ns.TLS_FAILURE_TAG:
            self._fail_negotiation("the server refused STARTTLS")
        elif state is State.SASL and tag in (ns.CHALLENGE_TAG, ns.SUCCESS_TAG, ns.FAILURE_TAG):
            self._handle_sasl(el)
        elif state is State.SASL and tag in SASL2_CLIENT_TAGS and self._sasl2 is not None:
            handle_sasl2(self, el)
        elif state is State.BINDING and tag == ns.IQ_TAG:
            self._handle_bind_result(el)
        elif state is State.RESUMING and tag in (ns.SM_RESUMED_TAG, ns.SM_FAILED_TAG):
            self._handle_resume_answer(el)
        else:
            self._stream_error(StreamErrorCondition.UNSUPPORTED_STANZA_TYPE)

    def _handle_features(self, features: Element) -> None:
        self._fire(Input.PEER_FEATURES)
        self._profile.negotiate(self, features)

    def _negotiate_tls(self, features: Element) -> bool:
        """STARTTLS (RFC 6120 §5.4.2.1), or fail when TLS is required and not
        offered (§5.3.1). Whether this was the step."""
        if features.find(ns.STARTTLS_TAG) is not None:
            self._send_element(Element(ns.STARTTLS_TAG))
            return True
        if self.config.require_tls:
            self._fail_negotiation("the server does not offer TLS (STARTTLS stripping?)")
            return True
        return False

    def _negotiate_sasl(self, features: Element) -> None:
        """RFC 6120 §6.4.2: ``<auth/>`` with the best acceptable mechanism."""
        offered = [
            (m.text or "").strip()
            for m in features.iterfind(f"{ns.MECHANISMS_TAG}/{{{ns.SASL}}}mechanism")
        ]
        bindings = advertised_channel_bindings(features)
        mechanism = self._password_mechanism(offered, bindings)
        if mechanism is None:
            self._fail_negotiation(f"no acceptable SASL mechanism among {offered}")
            return
        self._mechanism = mechanism
        self._sasl1_offer = (offered, bindings)
        initial = mechanism.initial_response()
        self._send_element(_sasl_element("auth", _b64encode(initial), mechanism=mechanism.name))
        self._fire(Input.SASL_STARTED)

    def _password_mechanism(
        self, offered: list[str], bindings: frozenset[str] | None
    ) -> sasl.ClientMechanism | None:
        """The best acceptable mechanism of ``offered`` (``-PLUS`` with the
        binding XEP-0440 ``bindings`` and this connection have in common)."""
        cfg = self.config
        server_plus = any(m.endswith("-PLUS") for m in offered)
        if cfg.mechanisms is not None:
            offered = [m for m in offered if m in cfg.mechanisms]
        cb = sasl.choose_channel_binding(
            self._tls_info.channel_bindings, bindings, cfg.login.channel_bindings
        )
        name = sasl.select_client_mechanism(
            offered,
            tls=self.tls_active,
            channel_binding=cb is not None,
            allow_plain=cfg.allow_plain,
        )
        if name is None:
            return None
        if server_plus and not name.endswith("-PLUS"):
            # We chose not to bind although both sides could: gs2 flag 'n', not the
            # downgrade-detecting 'y' (RFC 5802 §6).
            cb = None
        self.channel_binding_used = cb.type if cb is not None and name.endswith("-PLUS") else None
        return sasl.create_client_mechanism(
            name,
            username=cfg.jid.local or "",
            password=cfg.password,
            nonce=cfg.rng(18),
            channel_binding=cb,
            server_supports_plus=server_plus,
        )

    def _negotiate_sasl2(self, features: Element) -> bool:
        return begin(self, features)

    def _finish_sasl2(self, features: Element) -> bool:
        return finish(self, features)

    def _server_not_verified(self, reason: str) -> None:
        """The server could not prove it knows our credentials, or the offer
        was tampered with: abort (RFC 5802 §9, XEP-0474 §3.2)."""
        self._events.append(AuthenticationFailed("server-not-verified", reason))
        self._stream_error(StreamErrorCondition.NOT_AUTHORIZED, "server authentication failed")
        self._pending_error = None

    def _negotiate_bind(self, features: Element) -> None:
        """Resume (XEP-0198 §5) when a previous session allows it, else bind
        (RFC 6120 §7)."""
        self._sm_offered = features.find(ns.SM_TAG) is not None
        self.csi_offered = features.find(ns.CSI_TAG) is not None
        previous = self._previous_sm
        if previous is not None:
            if self._sm_offered and previous.resume and previous.id and previous.jid:
                # XEP-0198 §5: resume instead of binding.
                self._send_element(build_nonza(Resume(previous.id, previous.inbound)))
                self._bind_features = features
                self._fire(Input.RESUME_STARTED)
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
        if features.find(ns.BIND_TAG) is None:
            self._fail_negotiation("the server does not offer resource binding")
            return
        session = features.find(ns.SESSION_TAG)
        self._needs_session = (
            session is not None and session.find("{" + ns.SESSION + "}optional") is None
        )
        self._bind_id = "bind-" + self.config.rng(6).hex()
        iq = Element(ns.IQ_TAG, {"type": "set", "id": self._bind_id})
        bind = SubElement(iq, ns.BIND_TAG)
        if cfg.jid.resource:
            SubElement(bind, "{" + ns.BIND + "}resource").text = cfg.jid.resource
        self._send_element(iq)
        self._fire(Input.BIND_STARTED)

    def _handle_sasl(self, el: Element) -> None:
        mech = self._mechanism
        assert mech is not None
        if el.tag == ns.FAILURE_TAG:
            condition = "not-authorized"
            text = None
            for child in el:
                local = child.tag.partition("}")[2]
                if local == "text":
                    text = child.text
                else:
                    condition = local
            self._events.append(AuthenticationFailed(condition, text))
            self._fire(Input.SASL_FAILED)
            return
        try:
            data = _b64decode(el.text)
            if el.tag == ns.CHALLENGE_TAG:
                offer, self._sasl1_offer = self._sasl1_offer, None
                if offer is not None:  # XEP-0474 §3.2, on the server-first-message
                    reason = check_downgrade_hash(mech.name, data or b"", *offer)
                    if reason is not None:
                        raise sasl.SASLClientError(reason)
                self._send_element(
                    _sasl_element("response", _b64encode(mech.challenge(data or b""), empty=None))
                )
                return
            mech.success(data)
        except (ValueError, sasl.SASLClientError) as exc:
            self._server_not_verified(str(exc))
            return
        self.authenticated = True
        self._events.append(Authenticated(self.config.jid.bare, mech.name))
        self._fire(Input.SASL_SUCCEEDED)  # RFC 6120 §6.4.6: restart on receiving <success/>

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
        text = el.findtext(f"{ns.BIND_TAG}/{{{ns.BIND}}}jid")
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
            iq = Element(ns.IQ_TAG, {"type": "set", "id": self._session_id})
            SubElement(iq, ns.SESSION_TAG)
            self._send_element(iq)
            return
        self._ready()

    def _ready(self) -> None:
        assert self.jid is not None
        self._fire(Input.BOUND)
        self._events.append(ResourceBound(self.jid))
        if self._sm_offered and self.config.stream_management:
            # XEP-0198 §3: after binding; our outbound count starts now (§4).
            self._send_element(build_nonza(Enable(self.config.sm_resume, self.config.sm_max)))
            self._sm = SMState(jid=self.jid)

    def _handle_ready(self, el: Element) -> None:
        if el.tag in _CLIENT_STANZAS:
            self._count_inbound()
            self._events.append(StanzaReceived(el))
        elif is_sm_element(el) and el.tag in (ns.SM_ENABLED_TAG, ns.SM_FAILED_TAG):
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
