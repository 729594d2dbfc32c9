"""Message retraction (XEP-0424) in the archives: tombstones.

Theory of operation
-------------------
A message carrying ``<retract id='…' xmlns='urn:xmpp:message-retract:1'/>``
is delivered and archived like any other (XEP-0424, Business Rules: the
archiving service MUST store the retraction). Besides, the archive copies of the
message it names are replaced by a *tombstone* (XEP-0424's archive section):
the same message with its payloads (body and anything else that would leak
it) replaced by ``<retracted id='…' stamp='…'/>`` (``id``: the retraction's
own id, which clients such as slixmpp and Monal read; ``stamp``: when it was
retracted); its ``<origin-id/>`` and ``<stanza-id/>`` stay, so a client
paging MAM matches it to the retraction, and it keeps its place and XEP-0359
id in the archive. The accounts advertise ``urn:xmpp:message-retract:1#tombstone``
(:data:`RETRACT_TOMBSTONE`: a service that keeps tombstones MUST).

Who may retract (Business Rules): only the original sender. In a user archive the message
is named by its XEP-0359 ``<origin-id/>`` (clients MUST set one), and only an
archived message *from* the retracting account (bare JID) with that id is
replaced: a retraction of another's message, or of an unknown id, changes
nothing. Each archive is looked up on its own (the sender's and a local
recipient's), among its newest ``retract_window`` messages with the peer:
one ``Load`` effect, then ``ArchiveReplace`` ops (:class:`Retractions`).
In a room the message is named by the room's ``<stanza-id/>`` and only the
occupant with the author's XEP-0421 occupant id (a keyed hash of the real
bare JID) may retract it (:func:`room_tombstone`, used by the MUC).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Final
from xml.etree.ElementTree import Element, SubElement

from ...delay import format_datetime
from ...jid import JID
from ...xml.parser import parse_fragment
from ...xml.writer import serialize
from ..effects import Load, Outcome, Persist
from .store import ArchivePage, ArchiveQuery, ArchiveReplace

__all__ = [
    "RETRACT",
    "RETRACTED",
    "RETRACT_NS",
    "RETRACT_TOMBSTONE",
    "Retractions",
    "retracted_id",
    "retraction_ref",
    "retracts",
    "room_tombstone",
    "tombstone",
]

RETRACT_NS: Final = "urn:xmpp:message-retract:1"
#: XEP-0424 "Tombstones": a service that replaces retracted messages MUST advertise it.
RETRACT_TOMBSTONE: Final = f"{RETRACT_NS}#tombstone"
RETRACT: Final = f"{{{RETRACT_NS}}}retract"
RETRACTED: Final = f"{{{RETRACT_NS}}}retracted"
_ORIGIN_ID: Final = "{urn:xmpp:sid:0}origin-id"
_STANZA_ID: Final = "{urn:xmpp:sid:0}stanza-id"
_OCCUPANT_ID: Final = "{urn:xmpp:occupant-id:0}occupant-id"


def retracted_id(element: Element) -> str | None:
    """The id a XEP-0424 retraction names (``None``: not one, or no id)."""
    retract = element.find(RETRACT)
    return None if retract is None else retract.get("id") or None


def retraction_ref(element: Element) -> str | None:
    """How a tombstone names the retraction ``element``: its ``id``
    attribute, or without one its XEP-0359 origin id (``None``: neither)."""
    ref = element.get("id")
    if ref:
        return ref
    origin = element.find(_ORIGIN_ID)
    return None if origin is None else origin.get("id") or None


def tombstone(
    message: Element, now: float, keep: Callable[[Element], bool], ref: str | None = None
) -> Element:
    """A XEP-0424 tombstone: ``message`` with only its children that ``keep``
    (ids) and a ``<retracted id? stamp/>``: ``ref`` names the retraction
    (:func:`retraction_ref`), ``stamp`` is the time of the retraction."""
    dead = Element(message.tag, dict(message.attrib))
    dead.extend(child for child in message if keep(child))
    attrs = (
        {"stamp": format_datetime(now)}
        if ref is None
        else {"id": ref, "stamp": format_datetime(now)}
    )
    SubElement(dead, RETRACTED, attrs)
    return dead


def _ids(child: Element) -> bool:
    return child.tag in (_ORIGIN_ID, _STANZA_ID)


def room_tombstone(
    author_id: str, now: float, ref: str | None = None
) -> Callable[[Element], Element | None]:
    """The tombstone maker of an occupant's own retraction in a room (the
    MUC's ``Tombstone``): ``None`` (nothing changes) unless the message's
    XEP-0421 occupant id is ``author_id``, the retracting occupant's;
    ``ref`` names the retraction (:func:`retraction_ref`)."""

    def make(message: Element) -> Element | None:
        found = message.find(_OCCUPANT_ID)
        if found is None or found.get("id") != author_id:
            return None
        return tombstone(message, now, lambda c: c.tag in (_OCCUPANT_ID, _STANZA_ID), ref)

    return make


def _from_bare(message: Element) -> JID | None:
    sender = JID.parse_or_none(message.get("from"))
    return None if sender is None else sender.bare


def retracts(message: Element, retractor: JID, target: str) -> bool:
    """Whether a 1:1 retraction of ``target`` by ``retractor`` (bare)
    applies to ``message`` (XEP-0424 Business Rules: the original and the
    retraction from the same bare JID): it names it, its sender is
    ``retractor``, and it is neither a retraction nor a tombstone."""
    return (
        _names(message, target)
        and _from_bare(message) == retractor
        and message.find(RETRACT) is None
        and message.find(RETRACTED) is None
    )


def _names(message: Element, target: str) -> bool:
    """Whether ``message`` is the one a 1:1 retraction names: its origin id
    (XEP-0359 §3.2) or, without one, its ``id`` attribute."""
    origin = message.find(_ORIGIN_ID)
    if origin is not None:
        return origin.get("id") == target
    return message.get("id") == target


class Retractions:
    """Retractions in user archives waiting for their ``Load``: each names
    an archive, the retracting account and the retracted id."""

    def __init__(self) -> None:
        self._pending: dict[Hashable, tuple[JID, JID, str, float, str | None]] = {}
        self._next = 0

    def request(
        self,
        archive: JID,
        peer: JID,
        retractor: JID,
        target: str,
        now: float,
        window: int,
        ref: str | None = None,
    ) -> Load:
        """Read ``archive``'s newest ``window`` messages with ``peer`` (bare)
        to find the one ``retractor`` (bare) sent as ``target``; ``ref``
        names the retraction in the tombstone (:func:`retraction_ref`)."""
        self._next += 1
        request_id = ("retract", self._next)
        if len(self._pending) > 10_000:  # answers lost (a store that failed): forget them
            self._pending.clear()
        self._pending[request_id] = (archive, retractor, target, now, ref)
        return Load(request_id, ArchiveQuery(archive, max=window, with_=peer, before=""))

    def loaded(self, request_id: Hashable, result: object) -> list[Outcome] | None:
        """The tombstone of the named message (``None``: not a retraction's
        request; ``[]``: not found, not the retractor's, already retracted)."""
        pending = self._pending.pop(request_id, None)
        if pending is None:
            return None
        archive, retractor, target, now, ref = pending
        if not isinstance(result, ArchivePage):
            return []
        for item in reversed(result.items):
            message = parse_fragment(item.stanza)
            if (
                not _names(message, target)
                or _from_bare(message) != retractor
                or message.find(RETRACT) is not None  # a retraction is not retracted
            ):
                continue
            if message.find(RETRACTED) is not None:
                return []
            dead = serialize(tombstone(message, now, _ids, ref), "")
            return [Persist(ArchiveReplace(archive, item.sid, dead))]
        return []
