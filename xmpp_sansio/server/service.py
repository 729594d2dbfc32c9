"""Server services: the extension points of the routing core.

Theory of operation
-------------------
The :class:`~xmpp_sansio.server.router.Router` owns the session table and the
RFC 6121 §8 delivery rules. Everything else a server does (rosters, presence
subscriptions, offline storage, blocking, carbons, disco, vCards...) is a
:class:`Service` in the list given to the router. The router calls each
service's hooks at fixed points, in list order; a hook returns outcomes
(:mod:`xmpp_sansio.server.effects`), and a hook that may *take over* a stanza
returns ``None`` to pass it on.

Services are synchronous and own no I/O: what they store goes through a
storage object passed to their constructor (a Protocol they define, with an
in-memory implementation for tests; ``xmpp_trio`` supplies SQLite ones). A
service never holds the router: it sees the server as a read-only
:class:`~xmpp_sansio.server.view.ServerView` (``self.server``: who is online,
which domains are local), and asks for everything else with outcomes. To send
a stanza from the server side (a roster push, a presence answer to a probe),
a service builds the element with its ``from`` and ``to`` and returns
:class:`~xmpp_sansio.server.effects.Route` of it, which the router routes by
the normal local delivery rules; a result or error for a request is a
:class:`~xmpp_sansio.server.effects.Reply`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar
from xml.etree.ElementTree import Element

from ..jid import JID
from ..stanza import Iq

if TYPE_CHECKING:
    from collections.abc import Hashable

    from .effects import Outcome, SessionId
    from .view import BoundSession, ServerView

__all__ = ["Service"]


class Service:
    """Base class: every hook is neutral. Override what the service needs."""

    #: disco#info features this service adds to the server (XEP-0030).
    server_features: ClassVar[tuple[str, ...]] = ()
    #: disco#info features this service adds to each account's bare JID.
    account_features: ClassVar[tuple[str, ...]] = ()

    #: The server this service is plugged into, read-only (set by :meth:`attach`).
    server: ServerView

    def attach(self, server: ServerView) -> None:
        """Called once by the router that will call the hooks."""
        self.server = server

    # -- IQs ---------------------------------------------------------------

    def handle_iq(self, iq: Iq, to: JID | None) -> list[Outcome] | None:
        """An iq for the server (``to`` is ``None``: no ``to`` or a local domain,
        RFC 6120 §10.3.3) or for the bare JID ``to`` of an existing local account
        (RFC 6121 §8.5.2.1.3). ``iq.from_`` is the sender's full JID. Return the
        effects if the payload is this service's, else ``None``."""
        return None

    # -- every stanza ----------------------------------------------------------

    def filter_outbound(
        self, session: BoundSession, element: Element, to: JID | None
    ) -> list[Outcome] | None:
        """A stanza a local session sent (``from`` already stamped). Return a list
        to stop it (with the effects, e.g. an error), ``None`` to let it go."""
        return None

    def filter_inbound(self, element: Element, sender: JID, recipient: JID) -> list[Outcome] | None:
        """A stanza about to be delivered to the local account ``recipient``
        (bare). Return a list to stop it, ``None`` to let it be delivered."""
        return None

    # -- messages ------------------------------------------------------------------

    def message_sent(self, session: BoundSession, element: Element) -> list[Outcome]:
        """A local session sent a message (after outbound filters)."""
        return []

    def message_delivered(
        self, element: Element, recipient: JID, sessions: list[int]
    ) -> list[Outcome]:
        """A message for the account ``recipient`` (bare) went to ``sessions``."""
        return []

    def message_undeliverable(self, element: Element, recipient: JID) -> list[Outcome] | None:
        """A chat/normal message for an existing account with no available
        resource (RFC 6121 §8.5.2.2.1). Return effects if it was taken care of
        (stored offline), ``None`` to let the router bounce it."""
        return None

    # -- presence --------------------------------------------------------------------

    def presence_broadcast(
        self, session: BoundSession, element: Element, initial: bool
    ) -> list[Outcome]:
        """The session sent presence without ``to`` (RFC 6121 §4.2, §4.4, §4.5),
        or ended while available (an unavailable ``element``). ``initial`` is
        true for the first available presence of the session."""
        return []

    def presence_directed(self, session: BoundSession, element: Element, to: JID) -> list[Outcome]:
        """The session sent available/unavailable presence to ``to`` (RFC 6121 §4.6);
        the router routes it, services may track it."""
        return []

    def subscription_outbound(
        self, session: BoundSession, element: Element, to: JID
    ) -> list[Outcome] | None:
        """The session sent a subscription presence (subscribe, subscribed,
        unsubscribe, unsubscribed) to the bare JID ``to`` (RFC 6121 §3).
        Return effects to take it over (including routing it on), ``None`` to
        let the router route it unchanged."""
        return None

    def subscription_inbound(self, element: Element, sender: JID, to: JID) -> list[Outcome] | None:
        """A subscription presence from ``sender`` (bare) for the existing local
        account ``to`` (bare). ``None``: deliver to all available resources."""
        return None

    def probe(self, element: Element, sender: JID, to: JID) -> list[Outcome] | None:
        """A presence probe from ``sender`` for the local account ``to`` (bare),
        answered by the server (RFC 6121 §4.3.2). ``None``: ignore."""
        return None

    # -- sessions ------------------------------------------------------------------------

    def session_bound(self, session: BoundSession) -> list[Outcome]:
        """A resource was bound."""
        return []

    def session_unbound(self, session: BoundSession) -> list[Outcome]:
        """A session ended (after its unavailable presence was broadcast)."""
        return []

    def handed_over(
        self, session: SessionId, bound: BoundSession | None, receipt: Hashable
    ) -> list[Outcome]:
        """A stanza this service delivered with ``receipt`` (a
        :class:`~xmpp_sansio.server.router.Deliver` field) reached ``session``'s
        client; ``bound`` is its record, ``None`` if it has ended since. Every
        service with this hook sees every receipt: ignore those of others."""
        return []

    # -- accounts ----------------------------------------------------------------------

    def account_removed(self, account: JID) -> list[Outcome]:
        """The account ``account`` (bare) was deleted (XEP-0077 §3.2): forget its data."""
        return []
