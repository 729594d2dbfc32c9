"""An external component's entry in the hosts table (XEP-0114).

A component (``gw.example.org``) is a service host whose handler is another
process: every stanza addressed to the component's domain, or to any JID at
it, is handed to the component's connection as a
:class:`~xmpp_sansio.server.effects.Deliver` to its session id. What the
component sends is routed with :meth:`Router.route_inbound
<xmpp_sansio.server.router.Router.route_inbound>` (its ``from`` checked by
the stream, :mod:`xmpp_sansio.stream.component`), like any host's stanzas.

While no connection is up, the host bounces the traffic with
``service-unavailable`` (RFC 6120 §8.3.3.19) or holds up to ``max_queue``
stanzas for the next connection (:class:`WhenAway`); a second connection for
the same domain is refused with ``conflict`` or replaces the first
(:class:`OnConflict`, RFC 6120 §4.9.3.3).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, ClassVar
from xml.etree.ElementTree import Element

from ..errors import StanzaErrorCondition, StreamErrorCondition
from .effects import Bounce, Deliver, Disconnect, Outcome, SessionId
from .hosts import HostService

if TYPE_CHECKING:
    from ..stanza import Stanza
    from .stages import Context

__all__ = ["ComponentHost", "ComponentSettings", "OnConflict", "WhenAway"]


class WhenAway(Enum):
    """What happens to stanzas for a component that is not connected."""

    BOUNCE = "bounce"  # service-unavailable at once
    QUEUE = "queue"  # held (up to max_queue) for the next connection, then bounced


class OnConflict(Enum):
    """What a second connection for a connected component's domain gets."""

    REFUSE = "refuse"  # the new stream is closed with conflict
    REPLACE = "replace"  # the old stream is closed with conflict, the new one serves


@dataclass(frozen=True, slots=True)
class ComponentSettings:
    """How the server treats a component's domain (the same for all)."""

    when_away: WhenAway = WhenAway.BOUNCE
    max_queue: int = 1000
    on_conflict: OnConflict = OnConflict.REFUSE


class ComponentHost(HostService):
    """The hosts-table entry of one external component's domain.

    :meth:`connected` and :meth:`disconnected` are called by the I/O layer
    when the component's stream completes its handshake and when it ends;
    the first returns outcomes for :meth:`Router.drain
    <xmpp_sansio.server.router.Router.drain>`. Disco of the domain is the
    component's own business: the host answers nothing itself, so the
    server's disco#items only lists the domain (XEP-0030 §4)."""

    name: ClassVar[str | None] = None

    def __init__(self, settings: ComponentSettings | None = None) -> None:
        self.settings = settings or ComponentSettings()
        #: the session id of the connected component, if any
        self.session: SessionId | None = None
        #: stanzas held for the next connection (WhenAway.QUEUE)
        self.queue: deque[Element] = deque()

    def handle(self, ctx: Context, stanza: Stanza) -> list[Outcome]:
        if self.session is not None:
            return [Deliver(self.session, stanza.element)]
        settings = self.settings
        if settings.when_away is WhenAway.QUEUE and len(self.queue) < settings.max_queue:
            self.queue.append(stanza.element)
            return []
        return [Bounce(stanza.element, StanzaErrorCondition.SERVICE_UNAVAILABLE)]

    def connected(self, session: SessionId) -> list[Outcome] | None:
        """The component authenticated on ``session``: it serves the domain
        from now on, and gets the stanzas held for it. ``None``: refused,
        another connection serves the domain (the caller closes ``session``
        with ``conflict``)."""
        outcomes: list[Outcome] = []
        if self.session is not None and self.session != session:
            if self.settings.on_conflict is OnConflict.REFUSE:
                return None
            outcomes.append(Disconnect(self.session, StreamErrorCondition.CONFLICT))
        self.session = session
        while self.queue:
            outcomes.append(Deliver(session, self.queue.popleft()))
        return outcomes

    def disconnected(self, session: SessionId) -> None:
        """``session``'s stream ended; if it served the domain, nobody does now."""
        if self.session == session:
            self.session = None
