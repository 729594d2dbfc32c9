"""The MUC service host at ``conference.DOMAIN`` (XEP-0045 §6, §10.1): it
routes each stanza to its room, creates rooms on a first join, lists the
public rooms and answers the service's disco.

Rooms live in memory; persistent ones are written through ``Persist``
effects (:mod:`.store`) and read back from the store when the service is
attached to its router (at server start). Discussion history is read and
written through a :class:`~.history.HistoryStore`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar, Literal
from xml.etree.ElementTree import Element

from ...disco import DiscoItem, DiscoItems, Identity, build_disco_items
from ...errors import StanzaErrorCondition
from ...jid import JID
from ...stanza import Iq, IqType, Message, MessageType, Presence, PresenceType, Stanza, iq_result
from ...xml import ns
from ..effects import Bounce, Outcome, Reply
from ..hosts import HostService
from ..stages import Context
from ..view import ServerView
from . import codes
from .admin import handle_room_iq
from .blocks import Blocks
from .config import MucLimits, RoomConfig
from .history import ArchivedHistory, HistoryStore, MemoryHistory, RoomArchive
from .permissions import Affiliation, Role
from .room import Room
from .stanzas import MUC, OCCUPANT_ID
from .store import MucStorage

__all__ = ["MucService", "MucSettings"]

_C_ERR = StanzaErrorCondition
_MAM = "{urn:xmpp:mam:2}"


def _is_mam(stanza: Stanza) -> bool:
    """A XEP-0313 request (query, metadata, form) to a room."""
    return (
        isinstance(stanza, Iq)
        and stanza.payload is not None
        and stanza.payload.tag.startswith(_MAM)
    )


_MUC_X = f"{{{MUC}}}x"
_UNIQUE = f"{{{MUC}#unique}}unique"

#: Who may create rooms: everyone, users of the server's own domains, or
#: only the service's administrators.
Creators = Literal["anyone", "local", "admins"]


@dataclass(frozen=True, slots=True)
class MucSettings:
    """The service's configuration: its limits, the configuration of new
    rooms and who may create them."""

    limits: MucLimits = field(default_factory=MucLimits)
    default_config: RoomConfig = field(default_factory=RoomConfig)
    creators: Creators = "local"
    admins: frozenset[JID] = frozenset()


class MucService(HostService):
    """XEP-0045 at one domain (a :class:`~xmpp_sansio.server.hosts.HostService`)."""

    name: ClassVar[str | None] = "Chatrooms"
    identities: ClassVar[tuple[Identity, ...]] = (Identity("conference", "text", "Chatrooms"),)
    features: ClassVar[tuple[str, ...]] = (MUC, MUC + "#unique", OCCUPANT_ID, ns.DISCO_ITEMS)

    domain: str

    def __init__(
        self,
        settings: MucSettings | None = None,
        storage: MucStorage | None = None,
        history: HistoryStore | None = None,
        archive: RoomArchive | None = None,
        blocks: Blocks | None = None,
    ) -> None:
        self.settings = settings or MucSettings()
        #: Whether an account blocks an address (XEP-0191): applied to room traffic.
        self.blocks = blocks
        self.storage = storage
        #: The room archives (XEP-0313 §5.1.2): history is kept there, and
        #: MAM queries to a room are answered from it.
        self.archive = archive
        if history is None:
            history = MemoryHistory() if archive is None else ArchivedHistory(archive)
        self.history: HistoryStore = history
        self.rooms: dict[JID, Room] = {}

    def attach(self, server: ServerView, domain: str) -> None:
        """Called once by the router; loads the persistent rooms."""
        self.server = server
        self.domain = domain
        if self.storage is None:
            return
        for stored in self.storage.rooms():
            data = dict(stored.config)
            salt = bytes.fromhex(str(data.pop("_salt", "")) or "00")
            config = RoomConfig.from_dict(data, self.settings.default_config)
            room = self._room(stored.room, config, salt)
            room.subject, room.subject_by = stored.subject, stored.subject_by
            for user, (aff, nick) in stored.affiliations.items():
                room.affiliations[user] = Affiliation(aff)
                if nick:
                    room.reserved[user] = nick

    def _room(self, jid: JID, config: RoomConfig, salt: bytes) -> Room:
        room = Room(jid, config, self.settings.limits, salt, self.history, self.server, self.blocks)
        self.rooms[jid] = room
        return room

    # -- dispatch --------------------------------------------------------------------

    def handle(self, ctx: Context, stanza: Stanza) -> list[Outcome]:
        to = stanza.to
        if to is None or stanza.from_ is None:
            return []
        if to.local is None:
            return self._service(ctx, stanza)
        room = self.rooms.get(to.bare)
        if room is None:
            return self._no_room(ctx, stanza)
        room.now, room.rng = ctx.now, ctx.rng
        sender = stanza.from_
        if (
            room.locked
            and room.affiliation(sender) is not Affiliation.OWNER
            and sender not in room.by_jid
        ):
            return self._refuse(stanza, _C_ERR.ITEM_NOT_FOUND)  # §10.1.1
        if isinstance(stanza, Presence):
            out = room.presence(stanza)
        elif isinstance(stanza, Message):
            out = room.message(stanza)
        elif self.archive is not None and _is_mam(stanza):
            out = self._room_archive(room, stanza, self.archive)
        else:
            out = handle_room_iq(room, stanza)
        if room.destroyed or (room.empty and not room.config.persistent):
            self.rooms.pop(room.jid, None)  # §10.1.3: a temporary room ends with its last occupant
            self.history.forget(room.jid)
        if isinstance(self.history, ArchivedHistory):
            out.extend(self.history.take_outcomes())
        return out

    def _room_archive(self, room: Room, iq: Iq, archive: RoomArchive) -> list[Outcome]:
        """XEP-0313 §5.1.2: a room's archive, read by its members if it is
        members-only, else by anyone not banned; never through an occupant's JID."""
        assert iq.from_ is not None and iq.to is not None
        affiliation = room.affiliation(iq.from_)
        allowed = (
            affiliation in (Affiliation.MEMBER, Affiliation.ADMIN, Affiliation.OWNER)
            if room.config.members_only
            else affiliation is not Affiliation.OUTCAST
        )
        if iq.to.resource is not None or not allowed:
            return self._refuse(iq, _C_ERR.FORBIDDEN)
        # §5.1.2: real JIDs to those who may see them now (non-anonymous
        # rooms; in others the moderators, and the admins and owners who are).
        occupant = room.by_jid.get(iq.from_)
        reveal = (
            room.config.non_anonymous
            or affiliation in (Affiliation.ADMIN, Affiliation.OWNER)
            or (occupant is not None and occupant.role is Role.MODERATOR)
        )
        return archive.room_query(iq, room.jid, reveal=reveal)

    def _refuse(self, stanza: Stanza, condition: StanzaErrorCondition) -> list[Outcome]:
        if isinstance(stanza, Presence) and stanza.type is not PresenceType.AVAILABLE:
            return []
        if isinstance(stanza, Message) and stanza.type is MessageType.ERROR:
            return []
        if isinstance(stanza, Iq) and not stanza.is_request:
            return []
        return [Bounce(stanza.element, condition)]

    def _no_room(self, ctx: Context, stanza: Stanza) -> list[Outcome]:
        """A stanza for a room that does not exist: a join creates it (§10.1)."""
        if not isinstance(stanza, Presence) or stanza.type is not PresenceType.AVAILABLE:
            return self._refuse(stanza, _C_ERR.ITEM_NOT_FOUND)
        assert stanza.to is not None and stanza.from_ is not None
        if stanza.to.resource is None:
            return [Bounce(stanza.element, _C_ERR.JID_MALFORMED)]  # §7.2.1: no nick
        creator = stanza.from_
        error = self._creation_error(creator)
        if error is not None:
            return [Bounce(stanza.element, error)]
        config = self.settings.default_config
        room = self._room(stanza.to.bare, config, ctx.rng(32))
        room.now, room.rng = ctx.now, ctx.rng
        room.affiliations[creator.bare] = Affiliation.OWNER
        # §10.1.2: a MUC client gets a reserved room, locked until configured;
        # a client without <x xmlns='…muc'/> (groupchat 1.0) an instant one.
        room.locked = stanza.element.find(_MUC_X) is not None
        out = room.presence(stanza, created=True)
        if room.empty:  # the join failed (nick too long...)
            self.rooms.pop(room.jid, None)
            return out
        return [*room.persist_all(), *out]

    def _creation_error(self, creator: JID) -> StanzaErrorCondition | None:
        """§10.1.1: ``not-allowed`` for users who may not create rooms;
        ``resource-constraint`` over the limits."""
        settings = self.settings
        if settings.creators == "local" and not self.server.is_local(creator.domain):
            return _C_ERR.NOT_ALLOWED
        if settings.creators == "admins" and creator.bare not in settings.admins:
            return _C_ERR.NOT_ALLOWED
        limits = settings.limits
        if len(self.rooms) >= limits.max_rooms:
            return _C_ERR.RESOURCE_CONSTRAINT
        owned = sum(
            1 for r in self.rooms.values() if r.affiliations.get(creator.bare) is Affiliation.OWNER
        )
        if owned >= limits.max_rooms_per_user:
            return _C_ERR.RESOURCE_CONSTRAINT
        return None

    # -- the service itself (§6.1-§6.3) --------------------------------------------------

    def _service(self, ctx: Context, stanza: Stanza) -> list[Outcome]:
        if not isinstance(stanza, Iq):
            return (
                self._refuse(stanza, _C_ERR.SERVICE_UNAVAILABLE)
                if isinstance(stanza, Message)
                else []
            )
        payload = stanza.payload
        if (
            stanza.type is IqType.GET
            and payload is not None
            and payload.tag == f"{{{ns.DISCO_ITEMS}}}query"
            and payload.get("node") is None
            and stanza.to is not None
            and stanza.to.resource is None
        ):
            return [
                Reply(iq_result(stanza.element, build_disco_items(DiscoItems(self.public_rooms()))))
            ]
        answered = self.answer_disco(stanza)
        if answered is not None:
            return answered
        if stanza.type is IqType.GET and payload is not None and payload.tag == _UNIQUE:
            # §10.1.4: a room name nobody has (the service's entropy).
            unique = Element(_UNIQUE)
            unique.text = ctx.rng(16).hex()
            return [Reply(iq_result(stanza.element, unique))]
        return self._refuse(stanza, _C_ERR.SERVICE_UNAVAILABLE)

    def public_rooms(self) -> tuple[DiscoItem, ...]:
        """§6.3: the public, unlocked rooms, by JID."""
        listed = sorted(
            (r for r in self.rooms.values() if r.config.public and not r.locked),
            key=lambda r: str(r.jid),
        )
        return tuple(
            DiscoItem(r.jid, name=r.config.name or r.jid.local)
            for r in listed[: self.settings.limits.max_rooms]
        )

    def shutdown(self) -> list[Outcome]:
        """Every occupant of every room leaves with 332 (§7.14: the service is
        going down); the rooms stay stored."""
        out: list[Outcome] = []
        for room in self.rooms.values():
            out.extend(room.close((codes.SHUTDOWN,)))
        return out

    def rooms_of(self, user: JID) -> Iterable[Room]:
        """The rooms where ``user`` (any JID: its bare part) is an occupant."""
        return (
            r for r in self.rooms.values() if any(o.bare == user.bare for o in r.occupants.values())
        )
