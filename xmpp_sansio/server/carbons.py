"""Message Carbons (XEP-0280, ``urn:xmpp:carbons:2``).

Theory of operation
-------------------
A session enables or disables carbons for itself with an iq set (XEP-0280
§4, §5); repeating either is not an error (§10.1). The state lives in this
service, per session, and is forgotten when the session ends.

When the router has delivered a message eligible for carbons (§6.1, see
:func:`carbons_eligible`) to some sessions of an account, each *other*
carbons-enabled session of that account gets a copy wrapped in
``<received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>``
(§7, XEP-0297). When a local session sends an eligible message, each other
carbons-enabled session of the sender's account gets it wrapped in
``<sent/>`` (§8), whether or not the sending session enabled carbons. A
wrapper is ``from`` the account's bare JID, ``to`` the receiving session's
full JID, with the original ``type`` (§7, §8).

A carbon is delivered to the session directly, whatever its presence or
priority: carbons-enabled sessions with negative priority are a common way to
follow conversations without receiving messages for the bare JID.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Final
from xml.etree.ElementTree import Element

from ..errors import StanzaErrorCondition
from ..jid import JID
from ..stanza import Iq, IqType, MessageType, iq_result
from ..xml.element import split_tag
from .effects import Bounce, Deliver, Reply
from .service import IqService
from .stages import (
    Context,
    Event,
    MessageDelivered,
    MessageSent,
    SessionUnbound,
)

if TYPE_CHECKING:
    from .effects import Outcome, SessionId
    from .view import BoundSession

__all__ = [
    "CARBONS_NS",
    "FORWARD_NS",
    "CarbonsService",
    "carbons_eligible",
    "forwarded_copy",
]

CARBONS_NS: Final = "urn:xmpp:carbons:2"
FORWARD_NS: Final = "urn:xmpp:forward:0"
HINTS_NS: Final = "urn:xmpp:hints"

_RECEIPTS_NS: Final = "urn:xmpp:receipts"
_CHATSTATES_NS: Final = "http://jabber.org/protocol/chatstates"
_MARKERS_NS: Final = "urn:xmpp:chat-markers:0"
_CONFERENCE_NS: Final = "jabber:x:conference"
_MUC_USER_NS: Final = "http://jabber.org/protocol/muc#user"

#: XEP-0280 §6.1: "payload elements typically used in IM" (XEP-0184, XEP-0085,
#: XEP-0333), and XEP-0249 direct MUC invitations.
_IM_PAYLOAD_NS: Final = frozenset({_RECEIPTS_NS, _CHATSTATES_NS, _MARKERS_NS, _CONFERENCE_NS})


def carbons_eligible(element: Element, *, inbound: bool) -> bool:
    """Whether a message is eligible for carbons (XEP-0280 §6.1, §9).

    Not eligible: a ``<private/>`` child or a XEP-0334 ``<no-copy/>`` hint
    (§9); type ``groupchat`` (§6.1 MUC rules); type ``error`` (§6.1 allows
    errors in reply to eligible messages, which this server cannot tell);
    anything already holding a carbon (``<sent/>``/``<received/>``), so
    copies are never nested. Eligible: type ``chat``; type ``normal`` with a
    ``<body/>``; a receipt, chat state or chat marker (XEP-0184, XEP-0085,
    XEP-0333); a XEP-0249 or XEP-0045 mediated invitation. ``inbound``: a
    private message from a MUC occupant (marked with a ``muc#user`` ``<x/>``
    without an invitation) is not copied, the room already sends it to every
    joined client (§6.1).
    """
    raw = element.get("type")
    try:
        type_ = MessageType(raw) if raw is not None else MessageType.NORMAL
    except ValueError:
        type_ = MessageType.NORMAL  # RFC 6121 §5.2.2
    if type_ in (MessageType.GROUPCHAT, MessageType.ERROR):
        return False
    stanza_ns = split_tag(element.tag)[0]
    eligible = type_ is MessageType.CHAT
    for child in element:
        namespace, local = split_tag(child.tag)
        if namespace == CARBONS_NS or (namespace == HINTS_NS and local == "no-copy"):
            return False  # <private/>, <no-copy/>, or a carbon itself
        is_body = namespace == stanza_ns and local == "body"
        if namespace in _IM_PAYLOAD_NS or (is_body and type_ is MessageType.NORMAL):
            eligible = True
        elif namespace == _MUC_USER_NS:
            if child.find(f"{{{_MUC_USER_NS}}}invite") is not None:
                eligible = True  # XEP-0045 §7.8.2 mediated invitation
            elif inbound:
                return False
    return eligible


def forwarded_copy(element: Element, direction: str, account: JID, to: JID) -> Element:
    """The carbon of ``element`` for the session ``to`` of ``account``:
    ``direction`` is ``"received"`` (XEP-0280 §7) or ``"sent"`` (§8)."""
    if direction not in ("received", "sent"):
        raise ValueError(f"direction must be 'received' or 'sent', not {direction!r}")
    attrs = {"from": str(account.bare), "to": str(to)}
    type_ = element.get("type")
    if type_ is not None:
        attrs["type"] = type_
    wrapper = Element(element.tag, attrs)
    container = Element(f"{{{CARBONS_NS}}}{direction}")
    forwarded = Element(f"{{{FORWARD_NS}}}forwarded")
    forwarded.append(element)
    container.append(forwarded)
    wrapper.append(container)
    return wrapper


class CarbonsService(IqService):
    """XEP-0280 Message Carbons; state is per session and in memory."""

    server_features: ClassVar[tuple[str, ...]] = (CARBONS_NS,)

    def __init__(self) -> None:
        self._enabled: set[SessionId] = set()

    def enabled(self, session: SessionId) -> bool:
        """Whether ``session`` has carbons enabled."""
        return session in self._enabled

    def enable(self, session: SessionId) -> None:
        """Enable carbons for a bound ``session`` without an iq: Bind 2's
        inline ``<enable/>`` (XEP-0386 §3.2, "MUST be enabled at this point")."""
        self._set(session, True)

    observes: ClassVar[tuple[type[Event], ...]] = (
        MessageSent,
        MessageDelivered,
        SessionUnbound,
    )
    #: While no session enabled carbons the router neither calls the message
    #: observers nor builds their events (:mod:`~xmpp_sansio.server.pipeline`).
    idle_observes: ClassVar[frozenset[type[Event]]] = frozenset({MessageSent, MessageDelivered})

    @property
    def idle(self) -> bool:
        return not self._enabled

    def _set(self, session: SessionId, on: bool) -> None:
        """Enable or disable ``session``; the router hears when the service
        goes idle (no session enabled) or active (the first one)."""
        was_idle = not self._enabled
        if on:
            self._enabled.add(session)
        else:
            self._enabled.discard(session)
        if was_idle != (not self._enabled):
            self.server.idle_changed()

    def observe(self, ctx: Context, event: Event) -> list[Outcome]:
        if not self._enabled:
            return []  # a session's end while idle: nothing to forget
        match event:
            case MessageSent():
                return self._message_sent(event.session, event.element)
            case MessageDelivered():
                return self._message_delivered(event.element, event.recipient, event.sessions)
            case SessionUnbound():
                return self._session_unbound(event.session)
        return []

    def handle_iq(self, ctx: Context, iq: Iq, to: JID | None) -> list[Outcome] | None:
        """``<enable/>`` / ``<disable/>`` sets (XEP-0280 §4, §5) from a local
        session about itself: to the server or its own bare JID. Another
        account's bare JID, or a sender that is not a local session, get
        ``not-allowed`` (§4.1, §5.1); an iq get gets ``bad-request``."""
        payload = iq.payload
        if payload is None or not iq.is_request:
            return None
        namespace, local = split_tag(payload.tag)
        if namespace != CARBONS_NS:
            return None
        if iq.type is not IqType.SET or local not in ("enable", "disable"):
            return [Bounce(iq.element, StanzaErrorCondition.BAD_REQUEST)]
        session = None if iq.from_ is None else self.server.session_by_jid(iq.from_)
        if session is None or (to is not None and to != session.jid.bare):
            return [Bounce(iq.element, StanzaErrorCondition.NOT_ALLOWED)]
        self._set(session.id, local == "enable")
        return [Reply(iq_result(iq.element))]

    def _message_delivered(
        self, element: Element, recipient: JID, sessions: list[int]
    ) -> list[Outcome]:
        """``<received/>`` carbons to the recipient's other enabled sessions
        (XEP-0280 §7: never to the sessions that got the original)."""
        if not self._enabled or not carbons_eligible(element, inbound=True):
            return []
        return self._copies(element, "received", recipient, exclude=set(sessions))

    def _message_sent(self, session: BoundSession, element: Element) -> list[Outcome]:
        """``<sent/>`` carbons to the sender's other enabled sessions (XEP-0280 §8)."""
        if not self._enabled or not carbons_eligible(element, inbound=False):
            return []
        return self._copies(element, "sent", session.jid.bare, exclude={session.id})

    def _copies(
        self, element: Element, direction: str, account: JID, exclude: set[int]
    ) -> list[Outcome]:
        return [
            Deliver(s.id, forwarded_copy(element, direction, account, s.jid))
            for s in self.server.sessions_of(account)
            if s.id in self._enabled and s.id not in exclude
        ]

    def _session_unbound(self, session: BoundSession) -> list[Outcome]:
        """Forget the session's carbons state."""
        self._set(session.id, False)
        return []
