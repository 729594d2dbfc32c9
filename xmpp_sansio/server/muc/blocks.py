"""Blocking (XEP-0191) in rooms. Rooms deliver straight to their occupants'
sessions, so the router's inbound filter never sees room traffic: the room
applies its occupants' block lists itself (docs/muc.md, "Blocking in
rooms"). An occupant who blocks the sender's room JID (``room@service/nick``,
the room, the service: what the router would have matched) or its real
JID (full, bare or its server) does not get the sender's groupchat
messages, private messages or history."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from typing import Protocol, TypeVar

from ...jid import JID
from ..blocking import blocked_by

__all__ = ["Blocks", "RoomBlockers", "blocks_sender"]


class Blocks(Protocol):
    """The accounts' block lists, as rooms read them
    (:class:`~xmpp_sansio.server.blocking.BlockingService`)."""

    @property
    def generation(self) -> int:
        """Changes whenever a list may have changed."""
        ...

    def blocklist(self, user: JID) -> AbstractSet[JID]:
        """The JIDs the account ``user`` (bare) blocks."""
        ...


class _HasBare(Protocol):
    @property
    def bare(self) -> JID: ...


_O = TypeVar("_O", bound=_HasBare)


def blocks_sender(blocks: AbstractSet[JID], viewer: JID, address: JID, real: JID | None) -> bool:
    """Whether the list ``blocks`` of the account ``viewer`` (bare) stops a
    sender known by its room JID ``address`` and its real JID ``real``
    (XEP-0191 §6 matching; one's own JIDs never)."""
    if blocked_by(blocks, address):
        return True
    return real is not None and real.bare != viewer and blocked_by(blocks, real)


class RoomBlockers:
    """One room's view of the lists: the occupants whose list is not empty
    are kept until a list (``Blocks.generation``) or the occupants
    (:meth:`changed`) change, so a room where nobody blocks anyone pays one
    comparison per message."""

    def __init__(self, lists: Blocks, is_local: Callable[[str], bool]) -> None:
        self.lists = lists
        self.is_local = is_local
        self._membership = 0
        self._key: tuple[int, int] | None = None
        self._blockers: list[tuple[_HasBare, AbstractSet[JID]]] = []

    def changed(self) -> None:
        """An occupant came or went."""
        self._membership += 1

    def of(self, occupants: Iterable[_O]) -> list[tuple[_O, AbstractSet[JID]]]:
        """The local ``occupants`` whose block list is not empty, with it
        (``occupants`` are the room's: the same between two :meth:`changed`)."""
        key = (self.lists.generation, self._membership)
        if key != self._key:
            lists, is_local = self.lists, self.is_local
            self._blockers = [
                (occupant, blocks)
                for occupant in occupants
                if is_local(occupant.bare.domain) and (blocks := lists.blocklist(occupant.bare))
            ]
            self._key = key
        return self._blockers  # type: ignore[return-value]

    def blocked(self, viewer: JID, address: JID, real: JID | None) -> bool:
        """Whether the account ``viewer`` (bare) blocks the sender (see
        :func:`blocks_sender`); remote accounts' lists are not ours."""
        if not self.is_local(viewer.domain):
            return False
        blocks = self.lists.blocklist(viewer)
        return bool(blocks) and blocks_sender(blocks, viewer, address, real)
