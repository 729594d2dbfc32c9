"""Storage of persistent rooms (XEP-0045 §10.1.3: a persistent room lives
until destroyed): the protocol a backend implements and the store
operations the service returns as :class:`~xmpp_sansio.server.effects.Persist`
effects.

The contract: :meth:`MucStorage.rooms` returns every stored room with its
configuration, subject and affiliations as last written; :meth:`MucStorage.apply`
carries out the operations in order, all or nothing, durable when it
returns. The service reads the store once, when it starts, and keeps the
rooms in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ...jid import JID

__all__ = [
    "MemoryMucStorage",
    "MucAffiliationPut",
    "MucOp",
    "MucRoomDelete",
    "MucRoomPut",
    "MucStorage",
    "StoredRoom",
]


@dataclass(frozen=True, slots=True)
class MucRoomPut:
    """Store room ``room`` (bare) with its configuration (plain data, see
    :meth:`~xmpp_sansio.server.muc.config.RoomConfig.to_dict`) and subject,
    replacing what was stored; affiliations are kept."""

    room: JID
    config: dict[str, Any]
    subject: str
    subject_by: str


@dataclass(frozen=True, slots=True)
class MucRoomDelete:
    """Forget room ``room`` and its affiliations (it was destroyed)."""

    room: JID


@dataclass(frozen=True, slots=True)
class MucAffiliationPut:
    """Set ``user``'s (bare) affiliation with ``room``; ``"none"`` removes it.
    ``nick`` is a reserved nick (§7.10), or empty."""

    room: JID
    user: JID
    affiliation: str
    nick: str = ""


#: The MUC store operations (part of ``StoreOp``).
MucOp = MucRoomPut | MucRoomDelete | MucAffiliationPut


@dataclass(slots=True)
class StoredRoom:
    """A persistent room as stored."""

    room: JID
    config: dict[str, Any]
    subject: str = ""
    subject_by: str = ""
    affiliations: dict[JID, tuple[str, str]] = field(default_factory=dict)  # user -> (aff, nick)


class MucStorage(Protocol):
    """The storage of persistent rooms (see the module docstring)."""

    def rooms(self) -> list[StoredRoom]:
        """Every stored room, in no particular order."""
        ...

    def apply(self, ops: Sequence[Any]) -> None:
        """Carry out the :data:`MucOp` among ``ops`` in order, all or nothing
        (others are ignored)."""
        ...


class MemoryMucStorage:
    """:class:`MucStorage` in memory."""

    def __init__(self) -> None:
        self._rooms: dict[JID, StoredRoom] = {}

    def rooms(self) -> list[StoredRoom]:
        return [
            StoredRoom(r.room, dict(r.config), r.subject, r.subject_by, dict(r.affiliations))
            for r in self._rooms.values()
        ]

    def apply(self, ops: Sequence[Any]) -> None:
        rooms = {
            k: StoredRoom(v.room, v.config, v.subject, v.subject_by, dict(v.affiliations))
            for k, v in self._rooms.items()
        }
        for op in ops:
            if isinstance(op, MucRoomPut):
                old = rooms.get(op.room)
                rooms[op.room] = StoredRoom(
                    op.room,
                    dict(op.config),
                    op.subject,
                    op.subject_by,
                    {} if old is None else old.affiliations,
                )
            elif isinstance(op, MucRoomDelete):
                rooms.pop(op.room, None)
            elif isinstance(op, MucAffiliationPut):
                stored = rooms.get(op.room)
                if stored is None:
                    raise KeyError(f"no stored room {op.room}")
                if op.affiliation == "none":
                    stored.affiliations.pop(op.user, None)
                else:
                    stored.affiliations[op.user] = (op.affiliation, op.nick)
        self._rooms = rooms
