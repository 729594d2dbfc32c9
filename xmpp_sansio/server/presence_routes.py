"""Presence routing of the :class:`~xmpp_sansio.server.router.Router`
(RFC 6121 §4, §8.5): presence a session broadcasts, directs or receives.

A mixin of the router, kept apart so that each module stays within its
size limit: it reads the router's session tables and runs its stages
through the methods declared below (the router defines them).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING
from xml.etree.ElementTree import Element

from xmpp_sansio.jid import JID
from xmpp_sansio.stanza import Iq, Message, Presence, PresenceType, make_presence, with_attrs

from .effects import Deliver, Outcome
from .stages import (
    Context,
    Event,
    PresenceBroadcast,
    PresenceDirected,
    PresenceReceived,
    ProbeReceived,
    Request,
    SubscriptionReceived,
)
from .view import BoundSession

__all__ = ["PresenceRoutes"]

# Read for every presence update, as globals: in Python 3.11 an enum member read
# goes through ``EnumType``'s ``__getattribute__`` slot (~1,000 instructions).
_AVAILABLE, _UNAVAILABLE = PresenceType.AVAILABLE, PresenceType.UNAVAILABLE
_PROBE = PresenceType.PROBE


class PresenceRoutes:
    """The router's presence routes (RFC 6121 §4.2-§4.6, §8.5)."""

    if TYPE_CHECKING:  # what the router provides
        _domains: frozenset[str]
        _by_full: dict[JID, BoundSession]
        _ctx: Context

        def _exists(self, to: JID) -> bool: ...
        def _available(self, bare: JID) -> list[BoundSession]: ...
        def _observe(self, event: Event) -> list[Outcome]: ...
        def _handle(self, request: Request) -> list[Outcome] | None: ...
        def _route_inbound(self, element: Element, *, transform: bool = False) -> list[Outcome]: ...
        def _route_elsewhere(self, stanza: Message | Presence | Iq) -> list[Outcome]: ...
        def _inbound_filtered(
            self, element: Element, sender: JID, recipient: JID
        ) -> list[Outcome] | None: ...

    def _presence_from_session(self, sender: BoundSession, pres: Presence) -> list[Outcome]:
        to = pres.to
        if to is None:
            return self._presence_broadcast(sender, pres)
        effects: list[Outcome] = []
        if pres.type is _AVAILABLE or pres.type is _UNAVAILABLE:
            effects.extend(self._observe(PresenceDirected(sender, pres.element, to)))
        effects.extend(self._route_presence(pres))
        return effects

    def _route_presence(self, pres: Presence) -> list[Outcome]:
        to = pres.to
        element = pres.element
        type_ = pres.type
        sender = pres.from_
        assert sender is not None and to is not None
        if to.domain not in self._domains:
            return self._route_elsewhere(pres)
        if to.local is None:
            return []  # presence to the server itself
        if not self._exists(to):
            # RFC 6121 §8.5.1: presence to no such user is ignored, except that a
            # subscription request or probe is answered with "unsubscribed" (§3.1.3).
            if type_ in (PresenceType.SUBSCRIBE, PresenceType.PROBE):
                answer = make_presence(
                    to=sender.bare, type=PresenceType.UNSUBSCRIBED, from_=to.bare
                )
                return self._route_inbound(answer)
            return []
        stopped = self._inbound_filtered(element, sender, to.bare)
        if stopped is not None:
            return stopped
        if type_ is _PROBE:
            answered = self._handle(ProbeReceived(element, sender, to.bare))
            return [] if answered is None else answered
        if type_.is_subscription:
            # RFC 6121 §8.5.2.1.2, §8.5.3 and §3: subscription stanzas are for
            # the account, whatever resource they name.
            taken = self._handle(SubscriptionReceived(element, sender.bare, to.bare))
            if taken is not None:
                return taken
            return [Deliver(s.id, element) for s in self._available(to.bare)]
        updates = type_ is _AVAILABLE or type_ is _UNAVAILABLE
        if not to.is_bare:
            target = self._by_full.get(to)
            # RFC 6121 §8.5.3.1: deliver to the matching resource; none
            # matching: silently ignore (§8.5.3.2.2).
            effects: list[Outcome] = [] if target is None else [Deliver(target.id, element)]
        elif updates:
            # RFC 6121 §8.5.2.1.2: directed presence to the bare JID goes to all
            # available resources; 'to' is left as the bare JID.
            effects = [Deliver(s.id, element) for s in self._available(to)]
        else:
            return []  # presence errors to a bare JID
        if updates and sender.domain not in self._domains and sender.resource is not None:
            # A remote contact's resource: services keep what they need of it.
            effects.extend(self._observe(PresenceReceived(element, sender, to.bare)))
        return effects

    def _presence_broadcast(self, sender: BoundSession, pres: Presence) -> list[Outcome]:
        """Presence without ``to`` (RFC 6120 §10.3.2, RFC 6121 §4.2.2, §4.4.2, §4.5.2).

        Available presence records the session as available with its
        priority; unavailable presence records it as unavailable. Either is
        sent to all of the account's available resources, *including* the
        sender (RFC 6121 §4.2.2: an entity is implicitly subscribed to its own
        presence), each copy addressed to the recipient's full JID, and handed
        to the observers of ``PresenceBroadcast`` for the roster-based
        broadcast. Other types without ``to`` are dropped.
        """
        initial = False
        if pres.type is _AVAILABLE:
            initial = not sender.available
            sender.available = True
            sender.priority = pres.priority
            recipients = self._available(sender.jid.bare)
        elif pres.type is _UNAVAILABLE:
            recipients = [s for s in self._available(sender.jid.bare) if s is not sender]
            recipients.append(sender)
            sender.available = False
            sender.priority = 0
        else:
            return []
        effects = self._broadcast_to_own_resources(pres.element, recipients)
        effects.extend(self._observe(PresenceBroadcast(sender, pres.element, initial)))
        return effects

    def _broadcast_to_own_resources(
        self, element: Element, recipients: Iterable[BoundSession]
    ) -> list[Outcome]:
        return [Deliver(s.id, with_attrs(element, to=str(s.jid))) for s in recipients]
