"""What a service sees of the server it is plugged into: the session table and
the local domains, read-only.

The :class:`~xmpp_sansio.server.router.Router` implements :class:`ServerView`
and hands itself to each service as this protocol only, so a service can ask
who is online but can act only through the outcomes it returns
(:mod:`xmpp_sansio.server.effects`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple, Protocol
from xml.etree.ElementTree import Element

from ..disco import DiscoItem
from ..jid import JID
from .effects import SessionId

if TYPE_CHECKING:
    from .effects import Outcome

__all__ = ["AvailableResource", "BoundSession", "ServerView"]


class AvailableResource(NamedTuple):
    """A bound session that has sent available presence, with its priority."""

    jid: JID
    session: SessionId
    priority: int


@dataclass(slots=True)
class BoundSession:
    """The router's record of a bound session, passed to the stages.

    ``available`` is true once the session has sent available presence
    without ``to`` (and until unavailable presence); ``priority`` is from that
    presence (RFC 6121 §4.7.2.3). Treat it as read-only outside the router.
    """

    id: SessionId
    jid: JID
    available: bool = False
    priority: int = 0
    #: ``str(jid)``, the ``from`` the router stamps on each of its stanzas
    #: (RFC 6120 §8.1.2.1), made once: a ``JID.__str__`` call is ~1,000 instructions.
    stamp: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.stamp = str(self.jid)


class ServerView(Protocol):
    """The read-only questions a service may ask of the server, and the one
    thing it may tell it (:meth:`idle_changed`)."""

    @property
    def domains(self) -> frozenset[str]:
        """The local domains (normalised)."""
        ...

    def is_local(self, domain: str) -> bool:
        """Whether ``domain`` is hosted here."""
        ...

    def account_exists(self, account: JID) -> bool:
        """Whether the local account of ``account`` exists (RFC 6121 §8.5.1)."""
        ...

    def session(self, session: SessionId) -> BoundSession | None:
        """The bound session ``session``, or ``None``."""
        ...

    def session_by_jid(self, full: JID) -> BoundSession | None:
        """The session bound to the full JID ``full``, or ``None``."""
        ...

    def sessions_of(self, bare: JID) -> list[BoundSession]:
        """All bound sessions of the account ``bare`` (in bind order)."""
        ...

    def available_resources(self, bare: JID) -> list[AvailableResource]:
        """The sessions of ``bare`` that sent available presence, with priorities."""
        ...

    def service_items(self) -> tuple[DiscoItem, ...]:
        """The service hosts (``echo.``, ``conference.``...), as disco items."""
        ...

    def server_features(self) -> frozenset[str]:
        """The disco#info features of every service, for the server (XEP-0030)."""
        ...

    def account_features(self) -> frozenset[str]:
        """The disco#info features of every service, for an account's bare JID."""
        ...

    def inbound_filtered(
        self, element: Element, sender: JID, recipient: JID
    ) -> list[Outcome] | None:
        """What the inbound filters (blocking...) make of ``element`` from
        ``sender`` for the account ``recipient``: ``None`` lets it through, a
        list stops it (with the filter's outcomes)."""
        ...

    def idle_changed(self) -> None:
        """The service's :attr:`~xmpp_sansio.server.service.Service.idle`
        changed: the router calls its idle observers and filters again, or
        stops, from the next stanza on."""
        ...
