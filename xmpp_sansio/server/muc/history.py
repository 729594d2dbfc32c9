"""Discussion history sent on join (XEP-0045 §7.2.14), behind a small
interface: one store of a room's messages, read with the limits a joining
occupant asks for. :class:`MemoryHistory` keeps it in memory;
:class:`ArchivedHistory` keeps it in the room's archive (XEP-0313 §5.1.2,
a :class:`RoomArchive`: the server's message archives), with the newest
messages cached in memory for joins."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol
from xml.etree.ElementTree import Element, tostring

from ...delay import parse_datetime
from ...jid import JID

if TYPE_CHECKING:
    from ...stanza import Iq
    from ..effects import Outcome

__all__ = [
    "ArchivedHistory",
    "HistoryRequest",
    "HistoryStore",
    "MemoryHistory",
    "RoomArchive",
    "StoredMessage",
    "parse_history_request",
]

_MUC = "{http://jabber.org/protocol/muc}"
SID = "{urn:xmpp:sid:0}"  # XEP-0359
RETRACTED = "{urn:xmpp:message-retract:1}retracted"  # XEP-0424/XEP-0425 tombstones
MUC_USER_X = "{http://jabber.org/protocol/muc#user}x"  # a real JID in the archive


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A groupchat message as the room sent it (``from`` the room/nick, no
    ``to``), received at ``stamp`` (UNIX seconds)."""

    element: Element
    stamp: float
    size: int  # characters of the serialised stanza, for maxchars


@dataclass(frozen=True, slots=True)
class HistoryRequest:
    """The ``<history/>`` of a join (§7.2.14): every given limit applies."""

    maxstanzas: int | None = None
    maxchars: int | None = None
    seconds: int | None = None
    since: float | None = None


def parse_history_request(x: Element | None) -> HistoryRequest:
    """The ``<history/>`` child of the join's ``<x xmlns='…muc'/>``; bad
    values are ignored (the defaults then apply)."""
    history = None if x is None else x.find(_MUC + "history")
    if history is None:
        return HistoryRequest()

    def count(name: str) -> int | None:
        raw = history.get(name)
        if raw is None or not raw.strip().isdigit():
            return None
        return int(raw.strip())

    since: float | None = None
    raw_since = history.get("since")
    if raw_since is not None:
        try:
            since = parse_datetime(raw_since)
        except ValueError:
            since = None
    return HistoryRequest(count("maxstanzas"), count("maxchars"), count("seconds"), since)


class HistoryStore(Protocol):
    """A room's message history: what :meth:`append` added, read back oldest
    first by :meth:`read`. Room archives (XEP-0313) implement the same
    protocol over their store."""

    def append(
        self,
        room: JID,
        element: Element,
        stamp: float,
        keep: int,
        *,
        archive: bool = True,
        archived: Element | None = None,
    ) -> None:
        """Add a message; keep at most ``keep`` of the room's newest; archive
        it too if the store keeps an archive and ``archive`` (the room's
        switch), as ``archived`` if given (the copy naming the real JID)."""
        ...

    def read(
        self, room: JID, request: HistoryRequest, now: float, limit: int
    ) -> list[StoredMessage]:
        """At most ``limit`` newest messages meeting ``request``, oldest first."""
        ...

    def forget(self, room: JID) -> None:
        """Drop the room's history (the room is destroyed)."""
        ...

    def retract(self, room: JID, stanza_id: str, tombstone: Tombstone) -> bool:
        """Replace the message the room stamped with the XEP-0359 id
        ``stanza_id`` by ``tombstone(message)`` (XEP-0425 §5); whether it was
        there (and not already retracted, and ``tombstone`` made one)."""
        ...


class MemoryHistory:
    """:class:`HistoryStore` in memory (history is not kept across restarts)."""

    def __init__(self) -> None:
        self._rooms: dict[JID, deque[StoredMessage]] = {}

    def append(
        self,
        room: JID,
        element: Element,
        stamp: float,
        keep: int,
        *,
        archive: bool = True,
        archived: Element | None = None,
    ) -> None:
        if keep <= 0:
            self._rooms.pop(room, None)
            return
        queue = self._rooms.get(room)
        if queue is None or queue.maxlen != keep:
            queue = deque(queue or (), maxlen=keep)
            self._rooms[room] = queue
        queue.append(StoredMessage(element, stamp, len(tostring(element, encoding="unicode"))))

    def read(
        self, room: JID, request: HistoryRequest, now: float, limit: int
    ) -> list[StoredMessage]:
        queue = self._rooms.get(room)
        if not queue:
            return []
        count = limit if request.maxstanzas is None else min(limit, request.maxstanzas)
        chars = request.maxchars
        oldest = None if request.seconds is None else now - request.seconds
        if request.since is not None:
            oldest = request.since if oldest is None else max(oldest, request.since)
        out: list[StoredMessage] = []
        for message in reversed(queue):
            if len(out) >= count or (oldest is not None and message.stamp < oldest):
                break
            if chars is not None:
                if message.size > chars:
                    break
                chars -= message.size
            out.append(message)
        out.reverse()
        return out

    def forget(self, room: JID) -> None:
        self._rooms.pop(room, None)

    def retract(self, room: JID, stanza_id: str, tombstone: Tombstone) -> bool:
        return self._replace(room, stanza_id, tombstone) is not None

    def holds(self, room: JID, stanza_id: str) -> bool:
        """Whether the message ``stanza_id`` of ``room`` is in memory."""
        queue = self._rooms.get(room)
        return any(stanza_id_of(m.element, room) == stanza_id for m in queue or ())

    def _replace(self, room: JID, stanza_id: str, tombstone: Tombstone) -> Element | None:
        """The tombstone put in place of ``stanza_id``; ``None`` when that
        message is not in memory or already retracted."""
        queue = self._rooms.get(room)
        for i, message in enumerate(queue or ()):
            if stanza_id_of(message.element, room) == stanza_id:
                assert queue is not None
                if is_tombstone(message.element):
                    return None
                dead = tombstone(message.element)
                if dead is None:
                    return None  # not for this retraction (another's message)
                queue[i] = StoredMessage(
                    dead, message.stamp, len(tostring(dead, encoding="unicode"))
                )
                return dead
        return None


class RoomArchive(Protocol):
    """The message archives as rooms use them (implemented by
    :class:`~xmpp_sansio.server.mam.service.MamService`)."""

    def room_put(self, room: JID, element: Element, stamp: float) -> list[Outcome]:
        """Archive a message as the room sent it (``Persist`` effects)."""
        ...

    def room_query(self, iq: Iq, room: JID, *, reveal: bool = False) -> list[Outcome]:
        """Answer a XEP-0313 iq for the room's archive (the caller checked the
        sender), with the senders' real JIDs if ``reveal`` (§5.1.2)."""
        ...

    def room_history(self, room: JID, limit: int) -> list[tuple[Element, float]]:
        """The room's ``limit`` newest archived messages and stamps, oldest first."""
        ...

    def room_forget(self, room: JID) -> list[Outcome]:
        """Drop the room's archive (``Persist`` effects)."""
        ...

    def room_message(self, room: JID, sid: str) -> Element | None:
        """The archived message ``sid`` of the room, or ``None``."""
        ...

    def room_replace(self, room: JID, sid: str, element: Element) -> list[Outcome]:
        """Store ``element`` in place of the archived ``sid`` (``Persist`` effects)."""
        ...


class ArchivedHistory(MemoryHistory):
    """History in the room archives: the newest messages of a room are read
    from its archive the first time the room's history is used after a start
    (a synchronous read, once a room), then kept in memory like
    :class:`MemoryHistory`; every message appended is also archived: the
    MUC service turns :meth:`take_outcomes` into its ``Persist`` effects."""

    def __init__(self, archive: RoomArchive) -> None:
        super().__init__()
        self.archive = archive
        self._primed: set[JID] = set()
        self._outcomes: list[Outcome] = []

    def _prime(self, room: JID, keep: int) -> None:
        if room in self._primed:
            return
        if len(self._primed) > 100_000:
            self._primed.clear()
        self._primed.add(room)
        for element, stamp in self.archive.room_history(room, keep):
            for x in element.findall(MUC_USER_X):  # the archive's real JIDs stay there
                element.remove(x)
            super().append(room, element, stamp, keep)

    def append(
        self,
        room: JID,
        element: Element,
        stamp: float,
        keep: int,
        *,
        archive: bool = True,
        archived: Element | None = None,
    ) -> None:
        self._prime(room, keep)
        super().append(room, element, stamp, keep)
        if archive:
            copy = element if archived is None else archived
            self._outcomes.extend(self.archive.room_put(room, copy, stamp))

    def read(
        self, room: JID, request: HistoryRequest, now: float, limit: int
    ) -> list[StoredMessage]:
        self._prime(room, limit)
        return super().read(room, request, now, limit)

    def forget(self, room: JID) -> None:
        super().forget(room)
        self._primed.discard(room)
        self._outcomes.extend(self.archive.room_forget(room))

    def retract(self, room: JID, stanza_id: str, tombstone: Tombstone) -> bool:
        """XEP-0425 §5: the tombstone replaces the message in memory and in
        the archive (read from the archive when older than the history)."""
        if self.holds(room, stanza_id):
            dead = self._replace(room, stanza_id, tombstone)
            if dead is None:
                return False  # already a tombstone
        else:
            found = self.archive.room_message(room, stanza_id)
            if found is None or is_tombstone(found):
                return False
            dead = tombstone(found)
            if dead is None:
                return False
        self._outcomes.extend(self.archive.room_replace(room, stanza_id, dead))
        return True

    def take_outcomes(self) -> list[Outcome]:
        """The archive writes of the messages appended since the last call."""
        out, self._outcomes = self._outcomes, []
        return out


#: Makes the XEP-0424/XEP-0425 tombstone of a message (``None``: this
#: retraction may not touch it, XEP-0424 Business Rules: not the author's).
Tombstone = Callable[[Element], Element | None]


def is_tombstone(element: Element) -> bool:
    """Whether ``element`` is a XEP-0425 §5 tombstone (``<retracted/>``)."""
    return element.find(RETRACTED) is not None


def stanza_id_of(element: Element, room: JID) -> str | None:
    """The XEP-0359 ``<stanza-id/>`` the room (``by``) put on ``element``."""
    for found in element.iter(SID + "stanza-id"):
        if found.get("by") == str(room):
            return found.get("id")
    return None
