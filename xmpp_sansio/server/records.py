"""What the server keeps about one contact of one user (RFC 6121 §2, Appendix
A): :class:`StoredItem`, the record a roster store holds and a
:class:`~xmpp_sansio.server.effects.RosterPut` carries. Re-exported by
:mod:`xmpp_sansio.server.roster`."""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

from xmpp_sansio.jid import JID
from xmpp_sansio.roster import RosterItem
from xmpp_sansio.subscription import SubState, state_of

__all__ = ["StoredItem"]


@dataclass(frozen=True, slots=True)
class StoredItem:
    """What the server keeps about one contact of one user.

    ``item`` is the client-visible roster item. ``in_roster`` is false for a
    record that only notes an inbound subscription request from someone the
    user has not added (RFC 6121 Appendix A.1: the server "MUST NOT create a
    roster item" for it); such records are never shown to the client.
    ``pending_in`` is the "Pending In" sub-state and ``pending_request`` the
    complete ``subscribe`` stanza to redeliver (§3.1.3). Elements compare by
    identity, so ``pending_request`` is left out of ``==``; compare it with
    :func:`xmpp_sansio.xml.element.elements_equal`.
    """

    item: RosterItem
    in_roster: bool = True
    pending_in: bool = False
    pending_request: Element | None = field(default=None, compare=False, repr=False)

    @property
    def jid(self) -> JID:
        """The contact's JID (the record's key)."""
        return self.item.jid

    @property
    def state(self) -> SubState:
        """The Appendix A state of this record."""
        return state_of(self.item, self.pending_in)

    @property
    def visible(self) -> RosterItem | None:
        """The item as the client sees it, or ``None`` if it is not in the roster."""
        return self.item if self.in_roster else None
