"""One room's state machine (XEP-0045 §7-§10): occupants and their
sessions, presence, groupchat and private messages, invitations, kicks and
affiliation changes.

A :class:`Room` is driven by :class:`~xmpp_sansio.server.muc.service.MucService`
with validated stanzas and returns outcomes (deliveries and ``Persist``
effects); the ``muc#admin``/``muc#owner`` requests are in
:mod:`~xmpp_sansio.server.muc.admin`.

Occupants are keyed by nick; one occupant may be joined from several
resources of the same bare JID (multi-session nicks, §7.2.2 note): each
session gets the room's traffic, and the occupant leaves when its last
session does. An occupant whose client disconnects leaves through the
unavailable presence the server sends to the directed presence targets of
the closed session (RFC 6121 §4.6.3).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final
from xml.etree.ElementTree import Element, SubElement

from ...delay import delay_element
from ...errors import StanzaErrorCondition
from ...forms import (
    FORM_TYPE,
    Field,
    FieldType,
    Form,
    FormError,
    FormType,
    Option,
    build_form,
    parse_form,
)
from ...jid import JID
from ...stanza import Message, MessageType, Presence, PresenceType, with_attrs
from ..effects import Bounce, Deliver, Outcome, Persist, Route
from ..mam.retract import retracted_id, retraction_ref, room_tombstone
from . import codes
from .blocks import Blocks, RoomBlockers, blocks_sender
from .config import MucLimits, RoomConfig
from .history import SID, ArchivedHistory, HistoryStore, parse_history_request
from .permissions import Affiliation, Role, RolePrivilege, initial_role, role_privileges
from .stanzas import MUC, MUC_USER, occupant_id, occupant_id_element, strip_muc, user_x
from .store import MucAffiliationPut, MucRoomDelete, MucRoomPut

if TYPE_CHECKING:
    from ..view import ServerView

__all__ = ["Occupant", "Room"]

_C: Final = "{jabber:client}"
_PRESENCE: Final = _C + "presence"
_MESSAGE: Final = _C + "message"
_C_ERR = StanzaErrorCondition
_X_DATA: Final = "{jabber:x:data}x"
_REQUEST: Final = "http://jabber.org/protocol/muc#request"


@dataclass(slots=True)
class Occupant:
    """An occupant: one nick, one bare JID, one or more sessions (full JID ->
    its latest presence, stripped of MUC payloads)."""

    nick: str
    bare: JID
    role: Role
    id: str
    sessions: dict[JID, Element] = field(default_factory=dict)
    #: Its current presence as the room sends it, by ``reveal``, with what it
    #: was built from: every join sends it to the newcomer (see ``current``).
    built: dict[bool, tuple[object, Element]] = field(default_factory=dict, repr=False)

    @property
    def jid(self) -> JID:
        """The full JID shown to those who may see real JIDs (the first session)."""
        return next(iter(self.sessions))


class Room:
    """A room at ``jid`` (bare). ``server`` answers which sessions are bound;
    ``salt`` keys its occupant ids (XEP-0421)."""

    def __init__(
        self,
        jid: JID,
        config: RoomConfig,
        limits: MucLimits,
        salt: bytes,
        history: HistoryStore,
        server: ServerView,
        blocks: Blocks | None = None,
    ) -> None:
        self.jid = jid
        #: XEP-0191 in the room (:mod:`.blocks`), when the server has block lists.
        self.blockers = None if blocks is None else RoomBlockers(blocks, server.is_local)
        self.config = config
        self.limits = limits
        self.salt = salt
        self.history = history
        self.server = server
        self.affiliations: dict[JID, Affiliation] = {}
        self.reserved: dict[JID, str] = {}  # registered nicks (§7.10), by bare JID
        self.occupants: dict[str, Occupant] = {}
        self.by_jid: dict[JID, Occupant] = {}
        self.locked = False
        self.subject = ""
        self.subject_by = ""
        self.destroyed = False
        self.now = 0.0  # the time of the current call, set by the service
        self.rng: Callable[[int], bytes] = lambda n: bytes(n)  # the call's entropy, likewise

    # -- state -----------------------------------------------------------------

    def affiliation(self, user: JID) -> Affiliation:
        return self.affiliations.get(user.bare, Affiliation.NONE)

    @property
    def owners(self) -> tuple[JID, ...]:
        return tuple(j for j, a in self.affiliations.items() if a is Affiliation.OWNER)

    @property
    def admins(self) -> tuple[JID, ...]:
        return tuple(j for j, a in self.affiliations.items() if a is Affiliation.ADMIN)

    @property
    def archived(self) -> bool:
        """Whether the room keeps its messages in an archive (XEP-0313 §5.1.2)."""
        return isinstance(self.history, ArchivedHistory)

    @property
    def archiving(self) -> bool:
        """Whether new messages go to the room's archive (archived, and the
        owner left ``muc#roomconfig_enablearchiving`` on)."""
        return self.config.archiving and self.archived

    @property
    def empty(self) -> bool:
        return not self.occupants

    def privileges(self, occupant: Occupant) -> frozenset[RolePrivilege]:
        return role_privileges(occupant.role, self.config)

    def nick_of(self, user: JID) -> str | None:
        """A nick reserved by ``user`` (bare), if any."""
        return self.reserved.get(user.bare)

    def persist_room(self, stanza: Element | None = None) -> list[Outcome]:
        """The write of the room's configuration and subject (persistent rooms only)."""
        if not self.config.persistent:
            return []
        config = self.config.to_dict()
        config["_salt"] = self.salt.hex()
        op = MucRoomPut(self.jid, config, self.subject, self.subject_by)
        return [Persist(op, stanza)]

    def persist_all(self) -> list[Outcome]:
        """The room and every affiliation (it became persistent)."""
        out = self.persist_room()
        if not out:
            return out
        for user, aff in self.affiliations.items():
            out.append(
                Persist(MucAffiliationPut(self.jid, user, aff.value, self.reserved.get(user, "")))
            )
        return out

    def persist_delete(self) -> list[Outcome]:
        return [Persist(MucRoomDelete(self.jid))]

    def set_affiliation(self, user: JID, affiliation: Affiliation) -> list[Outcome]:
        """Record ``user``'s affiliation (and persist it)."""
        user = user.bare
        if affiliation is Affiliation.NONE:
            self.affiliations.pop(user, None)
            self.reserved.pop(user, None)
        else:
            self.affiliations[user] = affiliation
        if not self.config.persistent:
            return []
        nick = self.reserved.get(user, "")
        return [Persist(MucAffiliationPut(self.jid, user, affiliation.value, nick))]

    # -- sending ---------------------------------------------------------------

    def send(self, to: JID, element: Element) -> Outcome:
        """``element`` (with its ``from``) to ``to``: straight to the bound
        session, else by the routing rules."""
        addressed = with_attrs(element, to=str(to))
        session = self.server.session_by_jid(to)
        if session is not None:
            return Deliver(session.id, addressed)
        return Route(addressed)

    def to_occupant(self, occupant: Occupant, element: Element) -> list[Outcome]:
        return [self.send(full, element) for full in occupant.sessions]

    def occupant_jid(self, nick: str) -> JID:
        return JID.from_parts(self.jid.local, self.jid.domain, nick)

    def presence_of(
        self,
        occupant: Occupant,
        *,
        reveal: bool,
        codes_: Iterable[int] = (),
        unavailable: bool = False,
        nick: str | None = None,
        actor: str | None = None,
        reason: str | None = None,
        role: Role | None = None,
        affiliation: Affiliation | None = None,
    ) -> Element:
        """``occupant``'s presence from its room JID (§7.2.3), ``to`` left
        for :meth:`send`; ``reveal`` adds the real JID (§7.2.4)."""
        if unavailable:
            pres = Element(_PRESENCE, {"type": "unavailable"})
        else:
            pres = strip_muc(next(iter(occupant.sessions.values())), _PRESENCE)
        pres.set("from", str(self.occupant_jid(occupant.nick)))
        aff = self.affiliation(occupant.bare) if affiliation is None else affiliation
        pres.append(
            user_x(
                affiliation=aff.value,
                role=(occupant.role if role is None else role).value,
                jid=occupant.jid if reveal else None,
                nick=nick,
                codes=codes_,
                actor=actor,
                reason=reason,
            )
        )
        pres.append(occupant_id_element(occupant.id))
        return pres

    def current(self, occupant: Occupant, reveal: bool) -> Element:
        """:meth:`presence_of` for the occupant's current presence, built once
        per change of what it shows (its presence, role, affiliation, nick,
        shown JID): a join sends every occupant's to the newcomer."""
        first, source = next(iter(occupant.sessions.items()))
        key = (source, first, occupant.nick, occupant.role, self.affiliation(occupant.bare))
        cached = occupant.built.get(reveal)
        if cached is not None and cached[0] == key and cached[0][0] is source:
            return cached[1]
        element = self.presence_of(occupant, reveal=reveal)
        occupant.built[reveal] = (key, element)
        return element

    def reveals_to(self, viewer: Occupant) -> bool:
        """Whether ``viewer`` sees real JIDs (non-anonymous room, or a moderator, §5.1)."""
        return self.config.non_anonymous or viewer.role is Role.MODERATOR

    def broadcast_presence(
        self,
        occupant: Occupant,
        *,
        codes_: tuple[int, ...] = (),
        self_codes: Iterable[int] = (),
        unavailable: bool = False,
        nick: str | None = None,
        role: Role | None = None,
    ) -> list[Outcome]:
        """``occupant``'s presence to every occupant (§7.2.3): to the others
        if its role's presence is broadcast (unavailable presence always), to
        itself always, with 110 and ``self_codes``."""
        out: list[Outcome] = []
        if unavailable or occupant.role.value in self.config.presence_broadcast:
            variants: dict[bool, Element] = {}
            for other in self.occupants.values():
                if other is occupant:
                    continue
                reveal = self.reveals_to(other)
                el = variants.get(reveal)
                if el is None:
                    el = self.presence_of(
                        occupant,
                        reveal=reveal,
                        codes_=codes_,
                        unavailable=unavailable,
                        nick=nick,
                        role=role,
                    )
                    variants[reveal] = el
                out.extend(self.to_occupant(other, el))
        mine = (codes.SELF, *codes_, *self_codes)
        own = self.presence_of(
            occupant, reveal=True, codes_=mine, unavailable=unavailable, nick=nick, role=role
        )
        out.extend(self.to_occupant(occupant, own))
        return out

    # -- presence (§7.1-§7.7) -----------------------------------------------------

    def presence(self, pres: Presence, *, created: bool = False) -> list[Outcome]:
        """Presence to a room JID (the service has checked ``to`` has a nick
        for available presence)."""
        sender = pres.from_
        assert sender is not None and pres.to is not None
        occupant = self.by_jid.get(sender)
        nick = pres.to.resource
        if pres.type is PresenceType.ERROR:
            if occupant is None:
                return []
            return self.remove(occupant, (codes.KICKED_ON_ERROR,), Affiliation.NONE, reason=None)
        if pres.type is PresenceType.UNAVAILABLE:
            return [] if occupant is None else self.leave(sender, occupant)
        if pres.type is PresenceType.PROBE:
            return self._probe(pres, occupant, nick)
        if pres.type is not PresenceType.AVAILABLE:
            return []
        if nick is None:
            return [Bounce(pres.element, _C_ERR.JID_MALFORMED)]
        if occupant is None:
            reserved = self.reserved.get(sender.bare)
            if reserved is not None and reserved != nick:  # §7.10: the registered nick
                return self._join(pres, sender, reserved, created, modified=True)
            return self._join(pres, sender, nick, created)
        if occupant.nick != nick:
            return self._change_nick(pres, sender, occupant, nick)
        occupant.sessions[sender] = pres.element
        return self.broadcast_presence(occupant)

    def _probe(self, pres: Presence, prober: Occupant | None, nick: str | None) -> list[Outcome]:
        """A probe of an occupant's room JID: its current presence, for occupants."""
        target = None if nick is None else self.occupants.get(nick)
        if prober is None or target is None or pres.from_ is None:
            return []
        return [self.send(pres.from_, self.presence_of(target, reveal=self.reveals_to(prober)))]

    def _join_error(self, pres: Presence, sender: JID, nick: str) -> StanzaErrorCondition | None:
        """Why ``sender`` may not enter as ``nick`` (§7.2.5-§7.2.11), or ``None``."""
        if len(nick) > self.limits.max_nick_length:
            return _C_ERR.NOT_ACCEPTABLE
        aff = self.affiliation(sender)
        if self.locked and aff is not Affiliation.OWNER:
            return _C_ERR.ITEM_NOT_FOUND  # §10.1.1: locked until configured
        if aff is Affiliation.OUTCAST:
            return _C_ERR.FORBIDDEN  # §7.2.7
        if self.config.members_only and aff.rank < Affiliation.MEMBER.rank:
            return _C_ERR.REGISTRATION_REQUIRED  # §7.2.6
        holder = self.occupants.get(nick)
        if holder is not None and holder.bare != sender.bare:
            return _C_ERR.CONFLICT  # §7.2.8
        reserved_by = next((u for u, n in self.reserved.items() if n == nick), None)
        if reserved_by is not None and reserved_by != sender.bare:
            return _C_ERR.CONFLICT  # §7.2.9: reserved by another user
        if self.config.password and aff is not Affiliation.OWNER:
            x = pres.element.find(f"{{{MUC}}}x")
            given = None if x is None else x.findtext(f"{{{MUC}}}password")
            if given != self.config.password:
                return _C_ERR.NOT_AUTHORIZED  # §7.2.5
        full = len(self.occupants) >= min(self.config.max_users, self.limits.max_occupants)
        if holder is None and full and aff.rank < Affiliation.ADMIN.rank:
            return _C_ERR.SERVICE_UNAVAILABLE  # §7.2.10
        return None

    def _join(
        self, pres: Presence, sender: JID, nick: str, created: bool, *, modified: bool = False
    ) -> list[Outcome]:
        error = self._join_error(pres, sender, nick)
        if error is not None:
            return [Bounce(pres.element, error)]
        existing = self.occupants.get(nick)
        out: list[Outcome] = []
        if existing is not None:  # another session of the same user (multi-session)
            existing.sessions[sender] = pres.element
            self.by_jid[sender] = existing
            occupant = existing
            for other in self.occupants.values():
                if other is not occupant and other.role.value in self.config.presence_broadcast:
                    out.append(self.send(sender, self.current(other, self.reveals_to(occupant))))
            mine = self._join_codes(created, modified)
            out.append(self.send(sender, self.presence_of(occupant, reveal=True, codes_=mine)))
        else:
            aff = self.affiliation(sender)
            role = initial_role(
                aff, moderated=self.config.moderated, members_only=self.config.members_only
            )
            oid = occupant_id(self.salt, self.jid, sender)
            occupant = Occupant(nick, sender.bare, role, oid, {sender: pres.element})
            reveal = self.reveals_to(occupant)
            for other in self.occupants.values():  # §7.2.3: existing occupants first
                if other.role.value in self.config.presence_broadcast:
                    out.append(self.send(sender, self.current(other, reveal)))
            self.occupants[nick] = occupant
            self.by_jid[sender] = occupant
            if self.blockers is not None:
                self.blockers.changed()
            out.extend(
                self.broadcast_presence(
                    occupant, self_codes=self._join_codes(created, modified)[1:]
                )
            )
        out.extend(self._history(pres, sender))
        out.append(self.send(sender, self._subject_message()))
        return out

    def _join_codes(self, created: bool, modified: bool = False) -> list[int]:
        out = [codes.SELF]
        if modified:
            out.append(codes.NICK_MODIFIED)
        if self.config.non_anonymous:
            out.append(codes.NON_ANONYMOUS)
        if self.config.logging:
            out.append(codes.LOGGING_ENABLED)
        if created:
            out.append(codes.CREATED)
        return out

    def _history(self, pres: Presence, sender: JID) -> list[Outcome]:
        """§7.2.14: the history the joining session asks for, with delays."""
        x = pres.element.find(f"{{{MUC}}}x")
        request = parse_history_request(x)
        limit = min(self.config.history_length, self.limits.max_history)
        if limit == 0 or request.maxstanzas == 0 or request.maxchars == 0:
            return []
        now = self.now
        out: list[Outcome] = []
        viewer = self.by_jid.get(sender) if self.blockers is not None else None
        for stored in self.history.read(self.jid, request, now, limit):
            if viewer is not None and self._blocked_author(viewer, stored.element):
                continue
            copy = with_attrs(stored.element)
            copy.append(delay_element(stored.stamp, from_=str(self.jid)))
            out.append(self.send(sender, copy))
        return out

    def _subject_message(self) -> Element:
        """§7.2.15: the subject (empty if none), last of the join."""
        sender = self.occupant_jid(self.subject_by) if self.subject_by else self.jid
        msg = Element(_MESSAGE, {"from": str(sender), "type": "groupchat"})
        SubElement(msg, _C + "subject").text = self.subject
        return msg

    def leave(self, full: JID, occupant: Occupant) -> list[Outcome]:
        """§7.14: the session ``full`` leaves; the occupant with its last session."""
        if len(occupant.sessions) > 1:
            occupant.sessions.pop(full, None)
            del self.by_jid[full]
            el = self.presence_of(
                occupant, reveal=True, codes_=(codes.SELF,), unavailable=True, role=Role.NONE
            )
            return [self.send(full, el)]
        out = self.broadcast_presence(occupant, unavailable=True, role=Role.NONE)
        self._drop(occupant)
        return out

    def _drop(self, occupant: Occupant) -> None:
        self.occupants.pop(occupant.nick, None)
        if self.blockers is not None:
            self.blockers.changed()
        for full in occupant.sessions:
            self.by_jid.pop(full, None)

    def remove(
        self,
        occupant: Occupant,
        codes_: tuple[int, ...],
        affiliation: Affiliation | None,
        *,
        reason: str | None,
        actor: str | None = None,
    ) -> list[Outcome]:
        """Remove ``occupant`` with the status codes (kick 307, ban 301, 321,
        322, 332, 333): unavailable presence to everyone (§8.2, §9.1)."""

        def removal(reveal: bool, status: tuple[int, ...]) -> Element:
            return self.presence_of(
                occupant,
                reveal=reveal,
                codes_=status,
                unavailable=True,
                role=Role.NONE,
                affiliation=affiliation,
                actor=actor,
                reason=reason,
            )

        out: list[Outcome] = []
        for other in self.occupants.values():
            if other is not occupant:
                out.extend(self.to_occupant(other, removal(self.reveals_to(other), codes_)))
        out.extend(self.to_occupant(occupant, removal(True, (codes.SELF, *codes_))))
        self._drop(occupant)
        return out

    def _change_nick(
        self, pres: Presence, sender: JID, occupant: Occupant, nick: str
    ) -> list[Outcome]:
        """§7.6: 303 from the old nick, then presence from the new one."""
        if RolePrivilege.CHANGE_NICK not in self.privileges(occupant):
            return [Bounce(pres.element, _C_ERR.NOT_ALLOWED)]
        if len(nick) > self.limits.max_nick_length:
            return [Bounce(pres.element, _C_ERR.NOT_ACCEPTABLE)]
        holder = self.occupants.get(nick)
        reserved_by = next((u for u, n in self.reserved.items() if n == nick), None)
        if (holder is not None and holder is not occupant) or (
            reserved_by is not None and reserved_by != occupant.bare
        ):
            return [Bounce(pres.element, _C_ERR.CONFLICT)]
        out = self.broadcast_presence(
            occupant, codes_=(codes.NICK_CHANGED,), unavailable=True, nick=nick
        )
        del self.occupants[occupant.nick]
        occupant.nick = nick
        occupant.sessions[sender] = pres.element
        self.occupants[nick] = occupant
        out.extend(self.broadcast_presence(occupant))
        return out

    # -- messages (§7.4, §7.5, §7.8) ------------------------------------------------

    def message(self, msg: Message) -> list[Outcome]:
        sender = msg.from_
        assert sender is not None and msg.to is not None
        occupant = self.by_jid.get(sender)
        if msg.type is MessageType.ERROR:
            if occupant is None:
                return []
            return self.remove(occupant, (codes.KICKED_ON_ERROR,), None, reason=None)
        if msg.to.resource is not None:
            return self._private(msg, occupant, msg.to.resource)
        if msg.type is MessageType.GROUPCHAT:
            return self._groupchat(msg, occupant)
        x = msg.element.find(f"{{{MUC_USER}}}x")
        if x is not None:
            return self._mediated(msg, sender, occupant, x)
        form = msg.element.find(_X_DATA)
        if form is not None and occupant is not None:
            return self._voice_request(msg, occupant, form)
        return [Bounce(msg.element, _C_ERR.NOT_ACCEPTABLE)] if occupant is None else []

    def _groupchat(self, msg: Message, occupant: Occupant | None) -> list[Outcome]:
        if occupant is None:
            return [Bounce(msg.element, _C_ERR.NOT_ACCEPTABLE)]  # §7.4
        subject = msg.element.find(_C + "subject")
        if subject is not None and msg.body is None:
            return self._set_subject(msg, occupant, subject.text or "")
        if RolePrivilege.SEND_TO_ALL not in self.privileges(occupant):
            return [Bounce(msg.element, _C_ERR.FORBIDDEN)]  # §7.4: visitors in moderated rooms
        out_el = strip_muc(msg.element)
        for forged in [
            c for c in out_el if c.tag == SID + "stanza-id" and c.get("by") == str(self.jid)
        ]:
            out_el.remove(forged)  # XEP-0359 §5: only the room stamps its ids
        out_el.set("from", str(self.occupant_jid(occupant.nick)))
        out_el.append(occupant_id_element(occupant.id))
        # XEP-0359: time first (an archive's index of ids grows at its end), then 64 random bits
        sid = f"{int(self.now * 1_000_000):014x}{self.rng(8).hex()}"
        out_el.append(Element(SID + "stanza-id", {"id": sid, "by": str(self.jid)}))
        if (target := retracted_id(out_el)) is not None:
            # XEP-0424: the author's own message (by occupant id) becomes a tombstone
            dead = room_tombstone(occupant.id, self.now, retraction_ref(msg.element))
            self.history.retract(self.jid, target, dead)
        if msg.body is not None:
            keep = min(self.config.history_length, self.limits.max_history)
            archived = None
            if self.archiving:  # XEP-0313 §5.1.2: the archive notes the real JID
                archived = with_attrs(out_el)
                archived.append(
                    user_x(
                        affiliation=self.affiliation(occupant.bare).value,
                        role=occupant.role.value,
                        jid=msg.from_,
                    )
                )
            self.history.append(
                self.jid,
                out_el,
                self.now,
                keep,
                archive=self.config.archiving,
                archived=archived,
            )
        assert msg.from_ is not None
        return self._fan_out_from(out_el, occupant, msg.from_)

    def fan_out(self, element: Element) -> list[Outcome]:
        """``element`` to every session of every occupant (§7.4: the sender too)."""
        out: list[Outcome] = []
        for occupant in self.occupants.values():
            out.extend(self.to_occupant(occupant, element))
        return out

    def _fan_out_from(self, element: Element, sender: Occupant, real: JID) -> list[Outcome]:
        """A groupchat message from ``sender`` (its session ``real``) to every
        occupant who does not block it (XEP-0191, :mod:`.blocks`)."""
        blockers = [] if self.blockers is None else self.blockers.of(self.occupants.values())
        if not blockers:
            return self.fan_out(element)
        address = self.occupant_jid(sender.nick)
        skip = {
            id(occupant)
            for occupant, blocks in blockers
            if occupant is not sender and blocks_sender(blocks, occupant.bare, address, real)
        }
        out: list[Outcome] = []
        for occupant in self.occupants.values():
            if id(occupant) not in skip:
                out.extend(self.to_occupant(occupant, element))
        return out

    def _blocked_author(self, viewer: Occupant, element: Element) -> bool:
        """Whether ``viewer`` blocks the room JID a history message is from."""
        author = parse_jid(element.get("from"))
        return author is not None and self.blocked(viewer, author, None)

    def blocked(self, viewer: Occupant, address: JID, real: JID | None) -> bool:
        """Whether ``viewer`` blocks (XEP-0191) an occupant known by its room
        JID ``address`` and its real JID ``real`` (:mod:`.blocks`)."""
        return self.blockers is not None and self.blockers.blocked(viewer.bare, address, real)

    def _set_subject(self, msg: Message, occupant: Occupant, subject: str) -> list[Outcome]:
        """§8.1: a subject change by an occupant allowed to make it."""
        if RolePrivilege.MODIFY_SUBJECT not in self.privileges(occupant):
            return [Bounce(msg.element, _C_ERR.FORBIDDEN)]
        if len(subject) > self.limits.max_subject_length:
            return [Bounce(msg.element, _C_ERR.NOT_ACCEPTABLE)]
        self.subject = subject
        self.subject_by = occupant.nick
        out = self.fan_out(self._subject_message())
        out.extend(self.persist_room(msg.element))
        return out

    def _private(self, msg: Message, occupant: Occupant | None, nick: str) -> list[Outcome]:
        """§7.5: a private message to another occupant, through the room."""
        if msg.type is MessageType.GROUPCHAT:
            return [Bounce(msg.element, _C_ERR.BAD_REQUEST)]
        if occupant is None:
            return [Bounce(msg.element, _C_ERR.NOT_ACCEPTABLE)]
        if RolePrivilege.SEND_PRIVATE not in self.privileges(occupant):
            return [Bounce(msg.element, _C_ERR.FORBIDDEN)]
        target = self.occupants.get(nick)
        if target is None:
            return [Bounce(msg.element, _C_ERR.ITEM_NOT_FOUND)]
        if target is not occupant and self.blocked(
            target, self.occupant_jid(occupant.nick), msg.from_
        ):
            # XEP-0191 §3.3, as for a message between accounts: service-unavailable.
            return [Bounce(msg.element, _C_ERR.SERVICE_UNAVAILABLE)]
        out_el = strip_muc(msg.element)
        out_el.set("from", str(self.occupant_jid(occupant.nick)))
        out_el.append(Element(f"{{{MUC_USER}}}x"))
        out_el.append(occupant_id_element(occupant.id))
        return self.to_occupant(target, out_el)

    def _mediated(
        self, msg: Message, sender: JID, occupant: Occupant | None, x: Element
    ) -> list[Outcome]:
        """§7.8.2 invitations through the room, and their declines (§7.8.2.1)."""
        out: list[Outcome] = []
        invites = x.findall(f"{{{MUC_USER}}}invite")
        declines = x.findall(f"{{{MUC_USER}}}decline")
        if invites:
            aff = self.affiliation(sender)
            allowed = occupant is not None and RolePrivilege.INVITE in self.privileges(occupant)
            if (
                self.config.members_only
                and aff.rank < Affiliation.ADMIN.rank
                and not self.config.allow_invites
            ):
                allowed = False
            if not allowed:
                return [Bounce(msg.element, _C_ERR.FORBIDDEN)]
            for invite in invites[: self.limits.max_items_per_request]:
                to = _jid_attr(invite, "to")
                if to is None:
                    return [Bounce(msg.element, _C_ERR.JID_MALFORMED)]
                if self.config.members_only and self.affiliation(to).rank < Affiliation.MEMBER.rank:
                    out.extend(self.set_affiliation(to, Affiliation.MEMBER))  # §7.8.2
                note = Element(_MESSAGE, {"from": str(self.jid)})
                ux = SubElement(note, f"{{{MUC_USER}}}x")
                inv = SubElement(ux, f"{{{MUC_USER}}}invite", {"from": str(sender)})
                reason = invite.findtext(f"{{{MUC_USER}}}reason")
                if reason is not None:
                    SubElement(inv, f"{{{MUC_USER}}}reason").text = reason
                if self.config.password:
                    SubElement(ux, f"{{{MUC_USER}}}password").text = self.config.password
                SubElement(note, _C + "body").text = (
                    f"{sender.bare} invites you to the room {self.jid}"
                    + (f": {reason}" if reason else "")
                )
                out.append(Route(with_attrs(note, to=str(to))))
            return out
        for decline in declines[:1]:
            to = _jid_attr(decline, "to")
            if to is None:
                return [Bounce(msg.element, _C_ERR.JID_MALFORMED)]
            note = Element(_MESSAGE, {"from": str(self.jid), "to": str(to)})
            ux = SubElement(note, f"{{{MUC_USER}}}x")
            dec = SubElement(ux, f"{{{MUC_USER}}}decline", {"from": str(sender.bare)})
            reason = decline.findtext(f"{{{MUC_USER}}}reason")
            if reason is not None:
                SubElement(dec, f"{{{MUC_USER}}}reason").text = reason
            out.append(Route(note))
        return out

    def _voice_request(self, msg: Message, occupant: Occupant, x: Element) -> list[Outcome]:
        """§8.6: a visitor asks for voice (the form goes to the moderators);
        a moderator approves one (``muc#request_allow``)."""
        try:
            form = parse_form(x)
            approved = form.bool_value("muc#request_allow")
        except FormError:
            return [Bounce(msg.element, _C_ERR.BAD_REQUEST)]
        if form.form_type != _REQUEST:
            return []
        if occupant.role is Role.MODERATOR:
            target = self.occupants.get(form.value("muc#roomnick") or "")
            if not approved or target is None or target.role is not Role.VISITOR:
                return []
            target.role = Role.PARTICIPANT
            return self.broadcast_presence(target)
        if occupant.role is not Role.VISITOR or form.value("muc#role") != "participant":
            return []
        request = Form(
            FormType.FORM,
            title="Voice request",
            fields=(
                Field(FORM_TYPE, FieldType.HIDDEN, values=(_REQUEST,)),
                Field(
                    "muc#role",
                    FieldType.LIST_SINGLE,
                    "Requested role",
                    values=("participant",),
                    options=(Option("participant"),),
                ),
                Field("muc#jid", FieldType.JID_SINGLE, "User ID", values=(str(occupant.jid),)),
                Field(
                    "muc#roomnick", FieldType.TEXT_SINGLE, "Room Nickname", values=(occupant.nick,)
                ),
                Field(
                    "muc#request_allow",
                    FieldType.BOOLEAN,
                    "Grant voice to this person?",
                    values=("false",),
                ),
            ),
        )
        note = Element(_MESSAGE, {"from": str(self.jid)})
        note.append(build_form(request))
        out: list[Outcome] = []
        for moderator in self.occupants.values():
            if moderator.role is Role.MODERATOR:
                out.extend(self.to_occupant(moderator, note))
        return out

    # -- room-wide notices -------------------------------------------------------------

    def notice(self, status_codes: Iterable[int]) -> list[Outcome]:
        """A groupchat message from the room with status codes (§10.2.1: 104, 170-173)."""
        msg = Element(_MESSAGE, {"from": str(self.jid), "type": "groupchat"})
        x = SubElement(msg, f"{{{MUC_USER}}}x")
        for code in status_codes:
            SubElement(x, f"{{{MUC_USER}}}status", {"code": str(code)})
        return self.fan_out(msg)

    def close(self, status_codes: tuple[int, ...], destroy: Element | None = None) -> list[Outcome]:
        """Every occupant leaves (§10.9 destruction, with ``destroy``; 332 at
        shutdown): unavailable presence to each from its own room JID."""
        out: list[Outcome] = []
        for occupant in list(self.occupants.values()):
            el = self.presence_of(
                occupant,
                reveal=True,
                codes_=(codes.SELF, *status_codes),
                unavailable=True,
                role=Role.NONE,
                affiliation=Affiliation.NONE if destroy is not None else None,
            )
            if destroy is not None:
                x = el.find(f"{{{MUC_USER}}}x")
                assert x is not None
                x.append(destroy)
            out.extend(self.to_occupant(occupant, el))
        self.occupants.clear()
        self.by_jid.clear()
        return out


def parse_jid(raw: str | None) -> JID | None:
    """``raw`` as a JID, or ``None`` if it is absent or invalid."""
    if raw is None:
        return None
    try:
        return JID.parse(raw)
    except ValueError:
        return None


def _jid_attr(el: Element, name: str) -> JID | None:
    return parse_jid(el.get(name))
