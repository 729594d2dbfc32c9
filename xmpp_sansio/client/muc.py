"""The client side of multi-user chat (XEP-0045): request builders and a
room's occupants as seen from presence.

:class:`RoomView` follows one room from the presence the client receives
(§7.2.3: occupants with their roles, affiliations and real JIDs when shown;
its own nick from status 110; nick changes 303; removals 301/307/321/322/332/
333; destruction) and turns each into a :class:`RoomEvent`. The builders
make the stanzas of §7-§10 (join, leave, nick change, messages, role and
affiliation changes, configuration, destruction, invitations), and
:func:`direct_invitation` the XEP-0249 one. No I/O: ``xmpp_trio.muc`` sends
them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Final
from xml.etree.ElementTree import Element, SubElement

from ..forms import FORM_TYPE, Field, Form, FormType, build_form
from ..jid import JID
from ..server.muc.permissions import Affiliation, Role
from ..server.muc.room import parse_jid
from ..server.muc.stanzas import MUC, MUC_ADMIN, MUC_OWNER, MUC_USER, OCCUPANT_ID
from ..stanza import (
    IqType,
    MessageType,
    PresenceType,
    make_iq,
    make_message,
    make_presence,
    parse_error,
)

__all__ = [
    "ROOMCONFIG",
    "Occupant",
    "RoomEvent",
    "RoomEventKind",
    "RoomView",
    "affiliation_list_request",
    "affiliation_request",
    "config_request",
    "config_submit",
    "decline",
    "destroy_request",
    "direct_invitation",
    "groupchat",
    "join_presence",
    "leave_presence",
    "mediated_invitation",
    "nick_presence",
    "role_request",
]

ROOMCONFIG: Final = "http://jabber.org/protocol/muc#roomconfig"
CONFERENCE: Final = "jabber:x:conference"  # XEP-0249


def _room_jid(room: JID, nick: str) -> JID:
    return JID.from_parts(room.local, room.domain, nick)


def join_presence(
    room: JID,
    nick: str,
    *,
    password: str | None = None,
    maxstanzas: int | None = None,
    seconds: int | None = None,
) -> Element:
    """§7.2.2: enter ``room`` as ``nick`` (history limits per §7.2.14)."""
    presence = make_presence(_room_jid(room, nick))
    x = SubElement(presence, f"{{{MUC}}}x")
    history = {
        k: str(v) for k, v in (("maxstanzas", maxstanzas), ("seconds", seconds)) if v is not None
    }
    if history:
        SubElement(x, f"{{{MUC}}}history", history)
    if password is not None:
        SubElement(x, f"{{{MUC}}}password").text = password
    return presence


def leave_presence(room: JID, nick: str, status: str | None = None) -> Element:
    """§7.14: leave the room."""
    return make_presence(_room_jid(room, nick), PresenceType.UNAVAILABLE, status=status)


def nick_presence(room: JID, nick: str) -> Element:
    """§7.6: change nick (available presence to the new room JID)."""
    return make_presence(_room_jid(room, nick))


def groupchat(room: JID, body: str) -> Element:
    """§7.4: a message to all occupants."""
    return make_message(room, body, MessageType.GROUPCHAT)


def _admin(room: JID, id: str, items: Iterable[Mapping[str, str]], reason: str | None) -> Element:
    query = Element(f"{{{MUC_ADMIN}}}query")
    for attrs in items:
        item = SubElement(query, f"{{{MUC_ADMIN}}}item", dict(attrs))
        if reason is not None:
            SubElement(item, f"{{{MUC_ADMIN}}}reason").text = reason
    return make_iq(IqType.SET, id, query, to=room)


def role_request(
    room: JID, id: str, nick: str, role: Role | str, reason: str | None = None
) -> Element:
    """§8.2-§8.6: kick (role none), voice, moderator."""
    return _admin(room, id, [{"nick": nick, "role": str(Role(role))}], reason)


def affiliation_request(
    room: JID, id: str, jid: JID, affiliation: Affiliation | str, reason: str | None = None
) -> Element:
    """§9, §10: ban (outcast), membership, admin, owner; none removes."""
    return _admin(
        room, id, [{"jid": str(jid.bare), "affiliation": str(Affiliation(affiliation))}], reason
    )


def affiliation_list_request(room: JID, id: str, affiliation: Affiliation | str) -> Element:
    """§9.5, §10.5: the users with ``affiliation``."""
    query = Element(f"{{{MUC_ADMIN}}}query")
    SubElement(query, f"{{{MUC_ADMIN}}}item", {"affiliation": str(Affiliation(affiliation))})
    return make_iq(IqType.GET, id, query, to=room)


def config_request(room: JID, id: str) -> Element:
    """§10.2: ask for the configuration form."""
    return make_iq(IqType.GET, id, Element(f"{{{MUC_OWNER}}}query"), to=room)


def config_submit(
    room: JID, id: str, values: Mapping[str, str | bool | int | Iterable[str]]
) -> Element:
    """§10.2: submit configuration ``values`` (``muc#roomconfig_...`` vars;
    none for an instant room, §10.1.2)."""
    fields = [Field(FORM_TYPE, values=(ROOMCONFIG,))] if values else []
    for var, value in values.items():
        values_: tuple[str, ...]
        if isinstance(value, bool):
            values_ = ("1" if value else "0",)
        elif isinstance(value, str | int):
            values_ = (str(value),)
        else:
            values_ = tuple(value)
        fields.append(Field(var, values=values_))
    query = Element(f"{{{MUC_OWNER}}}query")
    query.append(build_form(Form(FormType.SUBMIT, fields=tuple(fields))))
    return make_iq(IqType.SET, id, query, to=room)


def destroy_request(
    room: JID, id: str, *, reason: str | None = None, venue: JID | None = None
) -> Element:
    """§10.9: destroy the room."""
    query = Element(f"{{{MUC_OWNER}}}query")
    destroy = SubElement(
        query, f"{{{MUC_OWNER}}}destroy", {} if venue is None else {"jid": str(venue)}
    )
    if reason is not None:
        SubElement(destroy, f"{{{MUC_OWNER}}}reason").text = reason
    return make_iq(IqType.SET, id, query, to=room)


def _user_x_message(room: JID, tag: str, to: JID, reason: str | None) -> Element:
    message = make_message(room)
    x = SubElement(message, f"{{{MUC_USER}}}x")
    child = SubElement(x, f"{{{MUC_USER}}}{tag}", {"to": str(to)})
    if reason is not None:
        SubElement(child, f"{{{MUC_USER}}}reason").text = reason
    return message


def mediated_invitation(room: JID, invitee: JID, reason: str | None = None) -> Element:
    """§7.8.2: an invitation through the room."""
    return _user_x_message(room, "invite", invitee, reason)


def decline(room: JID, inviter: JID, reason: str | None = None) -> Element:
    """§7.8.2.1: decline an invitation."""
    return _user_x_message(room, "decline", inviter, reason)


def direct_invitation(
    invitee: JID, room: JID, *, reason: str | None = None, password: str | None = None
) -> Element:
    """XEP-0249 §2: an invitation sent straight to the invitee."""
    message = make_message(invitee)
    attrs = {"jid": str(room.bare)}
    if reason is not None:
        attrs["reason"] = reason
    if password is not None:
        attrs["password"] = password
    SubElement(message, f"{{{CONFERENCE}}}x", attrs)
    return message


# -- following a room ----------------------------------------------------------------


@dataclass(slots=True)
class Occupant:
    """An occupant as its presence shows it."""

    nick: str
    role: Role
    affiliation: Affiliation
    jid: JID | None = None  # shown in non-anonymous rooms and to moderators
    occupant_id: str | None = None  # XEP-0421


class RoomEventKind(Enum):
    JOINED = "joined"  # we are in (status 110)
    JOIN_FAILED = "join-failed"  # the join was refused: ``condition``
    ENTERED = "entered"  # another occupant came in
    LEFT = "left"  # another occupant left (``codes`` says why)
    CHANGED = "changed"  # presence, role or affiliation of an occupant changed
    NICK_CHANGED = "nick-changed"  # ``old`` is now ``occupant.nick``
    REMOVED = "removed"  # we are out: left, kicked, banned, destroyed (``codes``)


@dataclass(slots=True)
class RoomEvent:
    kind: RoomEventKind
    occupant: Occupant | None = None
    codes: frozenset[int] = frozenset()
    old: str | None = None
    condition: str | None = None


@dataclass
class RoomView:
    """One room as the client sees it (§7.2.3). Feed it every presence from
    the room with :meth:`handle_presence`."""

    room: JID
    nick: str | None = None  # ours, once joined
    occupants: dict[str, Occupant] = field(default_factory=dict)
    joined: bool = False
    subject: str | None = None
    _renamed: dict[str, str] = field(default_factory=dict, repr=False)  # new nick -> old (303)

    @property
    def me(self) -> Occupant | None:
        return None if self.nick is None else self.occupants.get(self.nick)

    def handle_message(self, message: Element) -> None:
        """Note the subject (§8.1) from a groupchat message of the room."""
        subject = message.find("{jabber:client}subject")
        if subject is not None and message.find("{jabber:client}body") is None:
            self.subject = subject.text or ""

    def handle_presence(self, presence: Element) -> RoomEvent | None:
        """What a presence from ``room/nick`` means; ``None`` if it is not one."""
        jid = parse_jid(presence.get("from"))
        if jid is None or jid.bare != self.room.bare or jid.resource is None:
            return None
        nick = jid.resource
        type_ = presence.get("type")
        if type_ == "error":
            if self.joined:
                return None
            return RoomEvent(
                RoomEventKind.JOIN_FAILED, condition=parse_error(presence).condition.value
            )
        x = presence.find(f"{{{MUC_USER}}}x")
        item = None if x is None else x.find(f"{{{MUC_USER}}}item")
        if x is None or item is None:
            return None
        codes = frozenset(
            int(s.get("code", "0"))
            for s in x.findall(f"{{{MUC_USER}}}status")
            if (s.get("code") or "").isdigit()
        )
        occupant = Occupant(
            nick,
            _role(item.get("role")),
            _affiliation(item.get("affiliation")),
            parse_jid(item.get("jid")),
            _occupant_id(presence),
        )
        mine = 110 in codes
        if type_ == "unavailable":
            new = item.get("nick")
            if 303 in codes and new:
                self.occupants.pop(nick, None)
                self._renamed[new] = nick
                return None  # the available presence from the new nick follows
            self.occupants.pop(nick, None)
            if mine:
                self.joined = False
                self.occupants.clear()
                return RoomEvent(RoomEventKind.REMOVED, occupant, codes)
            return RoomEvent(RoomEventKind.LEFT, occupant, codes)
        old_nick = self._renamed.pop(nick, None)
        known = nick in self.occupants
        self.occupants[nick] = occupant
        if mine:
            was_joined = self.joined
            self.nick, self.joined = nick, True
            if not was_joined:
                return RoomEvent(RoomEventKind.JOINED, occupant, codes)
        if old_nick is not None:
            return RoomEvent(RoomEventKind.NICK_CHANGED, occupant, codes, old=old_nick)
        return RoomEvent(RoomEventKind.CHANGED if known else RoomEventKind.ENTERED, occupant, codes)


def _role(raw: str | None) -> Role:
    try:
        return Role(raw or "none")
    except ValueError:
        return Role.NONE


def _affiliation(raw: str | None) -> Affiliation:
    try:
        return Affiliation(raw or "none")
    except ValueError:
        return Affiliation.NONE


def _occupant_id(presence: Element) -> str | None:
    found = presence.find(f"{{{OCCUPANT_ID}}}occupant-id")
    return None if found is None else found.get("id")
