"""Component streams (XEP-0114, ``jabber:component:accept``), both roles, sans I/O.

Theory of operation
-------------------
An external component connects to the server and opens a stream in
``jabber:component:accept`` whose ``to`` is the component's domain (§3). The
server answers with its header (with the stream id), or with ``host-unknown``
for a domain it does not serve components for. The component sends
``<handshake>`` with the lowercase hex SHA-1 of the stream id and the shared
secret; the server checks it (the :class:`HandshakeFeature` plug-in of the
profile :data:`COMPONENT_ACCEPT_SERVER`), answers with an empty
``<handshake/>``, or closes with ``not-authorized``. Then stanzas flow.

The same driver, tables (``COMPONENT_SERVER_TRANSITIONS``,
``COMPONENT_CLIENT_TRANSITIONS`` in ``state.py``), parser, limits, timers and
close/error rules run as for c2s; only the header, the plug-in list and the
ready stream differ. There is no TLS, SASL, restart or XEP-0198 here (a
component connects over a trusted link; the trio listener of issue 20 may
add direct TLS beneath).

Stanzas: on the wire they are in ``jabber:component:accept``; both roles hand
them to the application in ``jabber:client`` (:class:`StanzaReceived`, so
``parse_stanza``, the objects and the router take them as they are) and take
``jabber:client`` stanzas to send (:func:`~xmpp_sansio.stanza.retag_stanza`).
The server side accepts a stanza whose ``from`` is any JID at the
component's domain (§3: "the component MAY send stanzas from any user at its
hostname"); another domain closes the stream with ``invalid-from``. A stanza
without ``from`` is stamped with the component's domain and one without
``to`` is answered with ``bad-request`` (as Prosody's ``mod_component``):
which domains a component may reach is the server's decision, later.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element

from ..errors import LocalProtocolError, StanzaErrorCondition, StreamErrorCondition
from ..jid import JID, InvalidJID
from ..stanza import can_reply_with_error, error_reply, retag_stanza, with_attrs
from ..xml import ns
from ..xml.parser import StreamHeader
from .answers import Answer
from .base import _STANZA_NAMES, _Connection
from .config import ComponentClientConfig, ComponentServerConfig
from .events import Authenticated, StanzaReceived
from .features.base import Profile, Stage
from .features.handshake import HANDSHAKE, ComponentHost, HandshakeFeature, handshake_digest
from .state import COMPONENT_CLIENT_TRANSITIONS, COMPONENT_SERVER_TRANSITIONS, Input, State

__all__ = [
    "COMPONENT_ACCEPT_SERVER",
    "ComponentClientConnection",
    "ComponentServerConnection",
]

_COMPONENT_STANZAS = frozenset("{" + ns.COMPONENT_ACCEPT + "}" + n for n in _STANZA_NAMES)

#: The server side of a component stream: the handshake and nothing else.
COMPONENT_ACCEPT_SERVER: Profile[ComponentHost, ComponentServerConfig] = Profile(
    before_auth=(HandshakeFeature(),), after_auth=()
)


class _ComponentStream(_Connection):
    """What both roles of a component stream share."""

    _default_ns = ns.COMPONENT_ACCEPT  # another header namespace: invalid-namespace (§3)
    _requires_version = False

    def __init__(self, limits_preauth: int, limits_postauth: int, max_depth: int) -> None:
        super().__init__(limits_preauth, limits_postauth, max_depth)
        self.domain: str | None = None
        self.stream_id: str | None = None

    def send(self, element: Element | Answer) -> None:
        """Queue a stanza (in ``jabber:client`` or already in
        ``jabber:component:accept``) once the handshake is done."""
        if not isinstance(element, Element):
            self._answer(element)
            return
        if self._state is not State.READY:
            raise LocalProtocolError(f"cannot send stanzas in state {self._state.name}")
        self._send_stanza(retag_stanza(element, ns.COMPONENT_ACCEPT))

    def _authenticated(self) -> None:
        """The handshake succeeded: stanzas may now be as large as configured."""
        self._parser.max_stanza_size = self._postauth_size

    def _not_a_stanza(self, el: Element) -> None:
        local = el.tag[1:].partition("}")[2] if el.tag[:1] == "{" else el.tag
        if local in _STANZA_NAMES:
            self._stream_error(StreamErrorCondition.INVALID_NAMESPACE)  # RFC 6120 §4.9.3.10
        else:
            self._stream_error(StreamErrorCondition.UNSUPPORTED_STANZA_TYPE)

    def _error_header_attrs(self) -> dict[str, str | None]:
        return {"from": self.domain, "id": self.stream_id}


class ComponentServerConnection(_ComponentStream):
    """The server's side of a component stream (XEP-0114 ``accept``).

    Events: :class:`StreamOpened`, :class:`Authenticated` (the component's
    domain, mechanism ``XEP-0114-HANDSHAKE``), then :class:`StanzaReceived`
    with stanzas in ``jabber:client`` whose ``from`` is at that domain.
    """

    _transitions = COMPONENT_SERVER_TRANSITIONS

    def __init__(
        self,
        config: ComponentServerConfig,
        *,
        profile: Profile[ComponentHost, ComponentServerConfig] = COMPONENT_ACCEPT_SERVER,
    ) -> None:
        limits = config.limits
        super().__init__(limits.max_stanza_size_preauth, limits.max_stanza_size, limits.max_depth)
        self.config = config
        self._claims = profile.claims(config)

    def _handle_header(self, header: StreamHeader) -> None:
        self._opened(header)
        condition = self._check_header(header)
        domain: str | None = None
        if condition is None:
            domain = _component_domain(header.attrs.get("to"))
            if domain is None or domain not in self.config.secrets:
                condition = StreamErrorCondition.HOST_UNKNOWN  # §3
        if condition is not None:
            self._stream_error(condition)
            return
        self.domain = domain
        self.stream_id = self.config.rng(12).hex()
        self._queue_header({"from": domain, "id": self.stream_id})
        self._fire(Input.PEER_HEADER)

    def _handle_negotiation(self, el: Element) -> None:
        """Before the handshake, each element goes to the profile's plug-in that
        claims it; a stanza is ``not-authorized`` (RFC 6120 §4.9.3.12)."""
        feature = self._claims[Stage.BEFORE_AUTH].get(el.tag)
        if feature is not None and feature.handle(self, Stage.BEFORE_AUTH, el):
            return
        if el.tag in _COMPONENT_STANZAS:
            self._stream_error(StreamErrorCondition.NOT_AUTHORIZED, "handshake first")
        else:
            self._not_a_stanza(el)

    def _handle_ready(self, el: Element) -> None:
        if el.tag not in _COMPONENT_STANZAS:
            self._not_a_stanza(el)
            return
        assert self.domain is not None
        stanza = retag_stanza(el, ns.CLIENT)
        sender = stanza.get("from")
        if sender is None:
            stanza = with_attrs(stanza, from_=self.domain)
        else:
            try:
                claimed = JID.parse(sender).domain
            except InvalidJID:
                claimed = None
            if claimed != self.domain:
                # §3: the domain of 'from' MUST match the component's.
                self._stream_error(StreamErrorCondition.INVALID_FROM)
                return
        if stanza.get("to") is None:
            if can_reply_with_error(stanza):
                reply = error_reply(stanza, StanzaErrorCondition.BAD_REQUEST, text="no 'to'")
                self._send_stanza(retag_stanza(reply, ns.COMPONENT_ACCEPT))
            return
        self._events.append(StanzaReceived(stanza))


class ComponentClientConnection(_ComponentStream):
    """The component's side (XEP-0114 ``accept``): :meth:`start` sends the
    header; the handshake follows the server's header on its own.

    Events: :class:`StreamOpened`, :class:`Authenticated` (the empty
    ``<handshake/>`` arrived), then :class:`StanzaReceived` in ``jabber:client``;
    a refused handshake is :class:`StreamErrorReceived` (``not-authorized``).
    """

    _transitions = COMPONENT_CLIENT_TRANSITIONS

    def __init__(self, config: ComponentClientConfig) -> None:
        limits = config.limits
        super().__init__(limits.max_stanza_size_preauth, limits.max_stanza_size, limits.max_depth)
        self.config = config
        self.domain = config.domain
        self._started = False

    def start(self) -> None:
        """Queue the stream header (§3: ``to`` is the component's domain)."""
        if self._started:
            raise LocalProtocolError("the stream is already started")
        self._started = True
        self._queue_header({"to": self.config.domain})

    def _handle_header(self, header: StreamHeader) -> None:
        if not self._header_accepted(header):
            return
        # A server refusing us sends a header without an id and then its
        # stream error (RFC 6120 §4.9.1.1; Prosody does, for host-unknown):
        # the handshake waits for an id, and the error is read as one.
        self.stream_id = header.attrs.get("id") or None
        if self.stream_id is not None:
            handshake = Element(ns.HANDSHAKE_TAG)
            handshake.text = handshake_digest(self.stream_id, self.config.secret)
            self._send_element(handshake)
        self._fire(Input.PEER_HEADER)

    def _handle_negotiation(self, el: Element) -> None:
        """The server's empty ``<handshake/>`` (§3); anything else is an error."""
        if self.stream_id is None:  # §3: no handshake without the stream id
            self._stream_error(StreamErrorCondition.BAD_FORMAT, "no stream id")
            return
        if el.tag != ns.HANDSHAKE_TAG or len(el) or (el.text or "").strip():
            self._not_a_stanza(el)
            return
        self._authenticated()
        self._events.append(Authenticated(JID.parse(self.config.domain), HANDSHAKE))
        self._fire(Input.HANDSHAKE_SUCCEEDED)

    def _handle_ready(self, el: Element) -> None:
        if el.tag not in _COMPONENT_STANZAS:
            self._not_a_stanza(el)
            return
        self._events.append(StanzaReceived(retag_stanza(el, ns.CLIENT)))

    def _error_header_attrs(self) -> dict[str, str | None]:
        return {"to": self.config.domain}


def _component_domain(to: str | None) -> str | None:
    """The domain named by a header's ``to``, normalised (RFC 7622); None if
    missing, invalid, or not a bare domain."""
    if to is None:
        return None
    try:
        jid = JID.parse(to)
    except InvalidJID:
        return None
    return jid.domain if jid.local is None and jid.resource is None else None
