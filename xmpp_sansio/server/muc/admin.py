"""The requests a room answers (XEP-0045 §6.4, §7.10, §8-§10): ``muc#admin``
role and affiliation lists, ``muc#owner`` configuration and destruction,
registration, the room's disco#info and XEP-0410 self-pings; iqs between
occupants are relayed."""

from __future__ import annotations

from dataclasses import replace
from typing import Final
from xml.etree.ElementTree import Element, SubElement

from ...disco import DiscoInfo, DiscoItem, DiscoItems, Identity, build_disco_info, build_disco_items
from ...errors import StanzaErrorCondition
from ...forms import FORM_TYPE, Field, FieldType, Form, FormError, FormType, build_form, parse_form
from ...jid import JID
from ...stanza import Iq, IqType, error_reply, iq_result
from ...xml import ns
from ..effects import Bounce, Outcome, Reply
from ..mam.retract import tombstone
from . import codes
from .config import ROOMCONFIG, RoomConfig, apply_submission, config_form
from .permissions import (
    Affiliation,
    AffiliationPrivilege,
    Role,
    affiliation_change_error,
    affiliation_privileges,
    initial_role,
    role_change_error,
)
from .room import Occupant, Room
from .stanzas import MUC, MUC_ADMIN, MUC_OWNER, MUC_USER, OCCUPANT_ID, strip_muc, user_x

__all__ = ["handle_room_iq", "room_features"]

_C_ERR = StanzaErrorCondition
_ADMIN_Q: Final = f"{{{MUC_ADMIN}}}query"
_OWNER_Q: Final = f"{{{MUC_OWNER}}}query"
_REGISTER_Q: Final = f"{{{ns.REGISTER}}}query"
_PING: Final = f"{{{ns.PING}}}ping"
_X_DATA: Final = "{jabber:x:data}x"
_MUC_REGISTER: Final = MUC + "#register"
_ROOMINFO: Final = MUC + "#roominfo"
_ROOMUSER: Final = "x-roomuser-item"
MODERATE: Final = "urn:xmpp:message-moderate:1"  # XEP-0425
RETRACT: Final = "urn:xmpp:message-retract:1"  # XEP-0424
_MODERATE: Final = f"{{{MODERATE}}}moderate"
_STANZA_ID: Final = "{urn:xmpp:sid:0}stanza-id"  # XEP-0359


def handle_room_iq(room: Room, iq: Iq) -> list[Outcome]:
    """An iq to the room (bare) or to an occupant's room JID."""
    sender = iq.from_
    assert sender is not None and iq.to is not None
    if iq.to.resource is not None:
        return _to_occupant(room, iq, iq.to.resource)
    payload = iq.payload
    if not iq.is_request or payload is None:
        return []
    tag = payload.tag
    if tag == _ADMIN_Q:
        return (
            _admin_get(room, iq, payload)
            if iq.type is IqType.GET
            else _admin_set(room, iq, payload)
        )
    if tag == _OWNER_Q:
        return _owner(room, iq, payload)
    if tag == _REGISTER_Q:
        return _register(room, iq, payload)
    if tag == _MODERATE and iq.type is IqType.SET:
        return _moderate(room, iq, payload)
    if iq.type is IqType.GET and tag == f"{{{ns.DISCO_INFO}}}query" and payload.get("node") is None:
        return [Reply(iq_result(iq.element, build_disco_info(room_info(room))))]
    if (
        iq.type is IqType.GET
        and tag == f"{{{ns.DISCO_INFO}}}query"
        and payload.get("node") == _ROOMUSER
    ):
        # §7.12: the user's registered nick, as the name of an identity (or none).
        nick = room.reserved.get(sender.bare)
        identities = () if nick is None else (Identity("conference", "text", nick),)
        info = build_disco_info(DiscoInfo(identities, (), (), _ROOMUSER))
        return [Reply(iq_result(iq.element, info))]
    if iq.type is IqType.GET and tag == f"{{{ns.DISCO_ITEMS}}}query":
        return [Reply(iq_result(iq.element, build_disco_items(room_items(room, sender))))]
    return [Bounce(iq.element, _C_ERR.SERVICE_UNAVAILABLE)]


def room_items(room: Room, requester: JID) -> DiscoItems:
    """§6.5: the occupants' room JIDs when the room shows who is in it
    (``whois`` anyone: the non-anonymous rooms, as Prosody lists them), and,
    in a members-only room, only to its members and occupants; else an
    empty list (the occupants are private; banned users get that too)."""
    if not room.config.non_anonymous:
        return DiscoItems()
    affiliation = room.affiliation(requester)
    if affiliation is Affiliation.OUTCAST or (
        room.config.members_only
        and requester not in room.by_jid
        and affiliation.rank < Affiliation.MEMBER.rank
    ):
        return DiscoItems()
    return DiscoItems(
        tuple(DiscoItem(room.occupant_jid(nick), name=nick) for nick in sorted(room.occupants))
    )


def room_features(room: Room) -> tuple[str, ...]:
    """The room's disco#info features (§6.4, §15.2.2)."""
    c = room.config
    return (
        ns.DISCO_INFO,
        MUC,
        OCCUPANT_ID,
        "muc_public" if c.public else "muc_hidden",
        "muc_persistent" if c.persistent else "muc_temporary",
        "muc_membersonly" if c.members_only else "muc_open",
        "muc_moderated" if c.moderated else "muc_unmoderated",
        "muc_passwordprotected" if c.password else "muc_unsecured",
        "muc_nonanonymous" if c.non_anonymous else "muc_semianonymous",
        "urn:xmpp:ping",
        ns.REGISTER,
        "urn:xmpp:sid:0",
        MODERATE,
        RETRACT,  # XEP-0424 §2 and "Tombstones": own retractions kept as tombstones
        f"{RETRACT}#tombstone",
        *(("urn:xmpp:mam:2", "urn:xmpp:mam:2#extended") if room.archiving else ()),
    )


def room_info(room: Room) -> DiscoInfo:
    """§6.4: the room's identity, features and ``muc#roominfo`` form."""
    fields = (
        Field(FORM_TYPE, FieldType.HIDDEN, values=(_ROOMINFO,)),
        Field("muc#roominfo_description", label="Description", values=(room.config.description,)),
        Field("muc#roominfo_subject", label="Subject", values=(room.subject,)),
        Field(
            "muc#roominfo_occupants",
            label="Number of occupants",
            values=(str(len(room.occupants)),),
        ),
        Field("muc#roomconfig_roomname", label="Name", values=(room.config.name,)),
    )
    name = room.config.name or room.jid.local
    return DiscoInfo(
        (Identity("conference", "text", name),),
        tuple(sorted(set(room_features(room)))),
        (Form(FormType.RESULT, fields=fields),),
    )


# -- iqs to occupants (XEP-0410, §7.? relaying) ---------------------------------------------


def _to_occupant(room: Room, iq: Iq, nick: str) -> list[Outcome]:
    sender = iq.from_
    assert sender is not None
    occupant = room.by_jid.get(sender)
    if occupant is None:
        return [Bounce(iq.element, _C_ERR.NOT_ACCEPTABLE)] if iq.is_request else []
    if iq.payload is not None and iq.payload.tag == _PING and nick == occupant.nick:
        return [Reply(iq_result(iq.element))]  # XEP-0410 §3: joined
    target = room.occupants.get(nick)
    if target is None:
        return [Bounce(iq.element, _C_ERR.ITEM_NOT_FOUND)] if iq.is_request else []
    relayed = strip_muc(iq.element)
    relayed.set("from", str(room.occupant_jid(occupant.nick)))
    return [room.send(target.jid, relayed)]


# -- muc#admin (§8, §9) ---------------------------------------------------------------------


def _admin_get(room: Room, iq: Iq, query: Element) -> list[Outcome]:
    """§9.5, §9.8, §10.5, §10.8, §8.5: a list by affiliation or by role."""
    sender = iq.from_
    assert sender is not None
    items = query.findall(f"{{{MUC_ADMIN}}}item")
    if len(items) != 1:
        return [Bounce(iq.element, _C_ERR.BAD_REQUEST)]
    item = items[0]
    result = Element(_ADMIN_Q)
    requester_aff = room.affiliation(sender)
    occupant = room.by_jid.get(sender)
    raw_aff, raw_role = item.get("affiliation"), item.get("role")
    if raw_aff is not None:
        try:
            wanted = Affiliation(raw_aff)
        except ValueError:
            return [Bounce(iq.element, _C_ERR.BAD_REQUEST)]
        privileges = affiliation_privileges(requester_aff, room.config)
        if wanted is Affiliation.MEMBER:
            allowed = AffiliationPrivilege.RETRIEVE_MEMBER_LIST in privileges
        elif wanted is Affiliation.NONE:
            allowed = False
        else:
            allowed = AffiliationPrivilege.BAN in privileges
        if not allowed:
            return [Bounce(iq.element, _C_ERR.FORBIDDEN)]
        for user, aff in sorted(room.affiliations.items(), key=lambda p: str(p[0])):
            if aff is wanted:
                attrs = {"affiliation": aff.value, "jid": str(user)}
                nick = room.reserved.get(user)
                if nick:
                    attrs["nick"] = nick
                SubElement(result, f"{{{MUC_ADMIN}}}item", attrs)
        return [Reply(iq_result(iq.element, result))]
    if raw_role is not None:
        try:
            wanted_role = Role(raw_role)
        except ValueError:
            return [Bounce(iq.element, _C_ERR.BAD_REQUEST)]
        if occupant is None or occupant.role is not Role.MODERATOR:
            return [Bounce(iq.element, _C_ERR.FORBIDDEN)]
        for other in room.occupants.values():
            if other.role is wanted_role:
                SubElement(
                    result,
                    f"{{{MUC_ADMIN}}}item",
                    {
                        "affiliation": room.affiliation(other.bare).value,
                        "role": other.role.value,
                        "nick": other.nick,
                        "jid": str(other.jid),
                    },
                )
        return [Reply(iq_result(iq.element, result))]
    return [Bounce(iq.element, _C_ERR.BAD_REQUEST)]


class _Refused(Exception):
    def __init__(self, condition: StanzaErrorCondition) -> None:
        self.condition = condition


def _admin_set(room: Room, iq: Iq, query: Element) -> list[Outcome]:
    """§8.2-§8.6, §9.1-§9.7, §10.6-§10.9: role and affiliation changes, all
    checked before any is made (§9.? "all or none")."""
    sender = iq.from_
    assert sender is not None
    items = query.findall(f"{{{MUC_ADMIN}}}item")
    if not items or len(items) > room.limits.max_items_per_request:
        return [Bounce(iq.element, _C_ERR.BAD_REQUEST)]
    actor_aff = room.affiliation(sender)
    actor = room.by_jid.get(sender)
    actor_role = Role.NONE if actor is None else actor.role
    try:
        changes = [_check_item(room, item, actor_aff, actor_role) for item in items]
    except _Refused as refused:
        return [Bounce(iq.element, refused.condition)]
    out: list[Outcome] = [Reply(iq_result(iq.element))]
    actor_nick = None if actor is None else actor.nick
    for kind, target, value, reason in changes:
        if kind == "role":
            assert isinstance(target, Occupant) and isinstance(value, Role)
            out.extend(_apply_role(room, target, value, reason, actor_nick))
        else:
            assert isinstance(target, JID) and isinstance(value, Affiliation)
            out.extend(apply_affiliation(room, target, value, reason, actor_nick, iq.element))
    return out


def _check_item(
    room: Room, item: Element, actor_aff: Affiliation, actor_role: Role
) -> tuple[str, Occupant | JID, Role | Affiliation, str | None]:
    reason = item.findtext(f"{{{MUC_ADMIN}}}reason")
    raw_role, raw_aff = item.get("role"), item.get("affiliation")
    if (raw_role is None) == (raw_aff is None):
        raise _Refused(_C_ERR.BAD_REQUEST)
    if raw_role is not None:
        try:
            new_role = Role(raw_role)
        except ValueError:
            raise _Refused(_C_ERR.BAD_REQUEST) from None
        nick = item.get("nick")
        target = None if nick is None else room.occupants.get(nick)
        if target is None:
            raise _Refused(_C_ERR.ITEM_NOT_FOUND if nick is not None else _C_ERR.BAD_REQUEST)
        target_aff = room.affiliation(target.bare)
        error = role_change_error(actor_aff, actor_role, target_aff, target.role, new_role)
        if error is not None:
            raise _Refused(error)
        return "role", target, new_role, reason
    try:
        new_aff = Affiliation(raw_aff or "")
    except ValueError:
        raise _Refused(_C_ERR.BAD_REQUEST) from None
    raw_jid = item.get("jid")
    user: JID | None = None
    if raw_jid is not None:
        try:
            user = JID.parse(raw_jid).bare
        except ValueError:
            raise _Refused(_C_ERR.JID_MALFORMED) from None
    elif item.get("nick") is not None:
        holder = room.occupants.get(item.get("nick") or "")
        if holder is None:
            raise _Refused(_C_ERR.ITEM_NOT_FOUND)
        user = holder.bare
    if user is None:
        raise _Refused(_C_ERR.BAD_REQUEST)
    current = room.affiliation(user)
    error = affiliation_change_error(actor_aff, current, new_aff)
    if error is not None:
        raise _Refused(error)
    if current is Affiliation.OWNER and new_aff is not Affiliation.OWNER and room.owners == (user,):
        raise _Refused(_C_ERR.CONFLICT)  # §10.7: the last owner stays
    return "affiliation", user, new_aff, reason


def _apply_role(
    room: Room, target: Occupant, role: Role, reason: str | None, actor: str | None
) -> list[Outcome]:
    if role is Role.NONE:
        return room.remove(target, (codes.KICKED,), None, reason=reason, actor=actor)  # §8.2
    target.role = role
    return room.broadcast_presence(target)


def apply_affiliation(
    room: Room,
    user: JID,
    affiliation: Affiliation,
    reason: str | None,
    actor: str | None,
    stanza: Element | None = None,
) -> list[Outcome]:
    """Set ``user``'s affiliation and carry it out on its occupants (§9.1
    ban 301, §9.4 removal 321, role changes) or tell the user (101)."""
    out = room.set_affiliation(user, affiliation)
    present = [o for o in room.occupants.values() if o.bare == user.bare]
    for occupant in present:
        if affiliation is Affiliation.OUTCAST:
            out.extend(
                room.remove(occupant, (codes.BANNED,), affiliation, reason=reason, actor=actor)
            )
        elif room.config.members_only and affiliation.rank < Affiliation.MEMBER.rank:
            out.extend(
                room.remove(
                    occupant, (codes.REMOVED_AFFILIATION,), affiliation, reason=reason, actor=actor
                )
            )
        else:
            role = initial_role(affiliation, moderated=room.config.moderated, members_only=False)
            if affiliation.rank >= Affiliation.MEMBER.rank or occupant.role is Role.MODERATOR:
                occupant.role = role
            out.extend(room.broadcast_presence(occupant))
    if not present and affiliation is not Affiliation.OUTCAST:
        note = Element("{jabber:client}message", {"from": str(room.jid), "to": str(user.bare)})
        note.append(
            user_x(
                affiliation=affiliation.value,
                role="none",
                jid=user.bare,
                codes=(codes.AFFILIATION_CHANGED,),
            )
        )
        out.append(room.send(user.bare, note))
    return out


# -- muc#owner (§10) -------------------------------------------------------------------------


def _owner(room: Room, iq: Iq, query: Element) -> list[Outcome]:
    sender = iq.from_
    assert sender is not None
    if room.affiliation(sender) is not Affiliation.OWNER:
        return [Bounce(iq.element, _C_ERR.FORBIDDEN)]
    if iq.type is IqType.GET:
        form = config_form(
            room.config, room.owners, room.admins, room.limits, archive=room.archived
        )
        answer = Element(_OWNER_Q)
        answer.append(build_form(form))
        return [Reply(iq_result(iq.element, answer))]
    destroy = query.find(f"{{{MUC_OWNER}}}destroy")
    if destroy is not None:
        return [Reply(iq_result(iq.element)), *destroy_room(room, destroy)]
    x = query.find(_X_DATA)
    if x is None:
        return [Bounce(iq.element, _C_ERR.BAD_REQUEST)]
    try:
        form = parse_form(x)
    except FormError as exc:
        return [Reply(error_reply(iq.element, _C_ERR.BAD_REQUEST, text=str(exc)))]
    if form.type is FormType.CANCEL:
        if room.locked:  # §10.1.3: cancelling the initial configuration destroys the room
            return [Reply(iq_result(iq.element)), *destroy_room(room, None)]
        return [Reply(iq_result(iq.element))]
    if form.type is not FormType.SUBMIT or (form.form_type not in (None, ROOMCONFIG)):
        return [Bounce(iq.element, _C_ERR.BAD_REQUEST)]
    try:
        new, owners, admins = apply_submission(room.config, form, room.limits)
    except FormError as exc:
        return [Reply(error_reply(iq.element, _C_ERR.NOT_ACCEPTABLE, text=str(exc)))]
    if owners is not None and not owners:
        return [Reply(error_reply(iq.element, _C_ERR.NOT_ACCEPTABLE, text="a room needs an owner"))]
    return [Reply(iq_result(iq.element)), *_reconfigure(room, new, owners, admins, iq.element)]


def _reconfigure(
    room: Room,
    new: RoomConfig,
    owners: tuple[JID, ...] | None,
    admins: tuple[JID, ...] | None,
    stanza: Element,
) -> list[Outcome]:
    old = room.config
    was_locked = room.locked
    room.config = new
    room.locked = False
    out: list[Outcome] = []
    if new.persistent and not old.persistent:
        out.extend(room.persist_all())
    elif old.persistent and not new.persistent:
        out.extend(room.persist_delete())
    else:
        out.extend(room.persist_room(stanza))
    for wanted, aff in ((owners, Affiliation.OWNER), (admins, Affiliation.ADMIN)):
        if wanted is None:
            continue
        for user in wanted:
            if room.affiliation(user) is not aff:
                out.extend(apply_affiliation(room, user.bare, aff, None, None))
        for user in [
            u
            for u, a in room.affiliations.items()
            if a is aff and u not in {w.bare for w in wanted}
        ]:
            out.extend(apply_affiliation(room, user, Affiliation.NONE, None, None))
    if new.members_only and not old.members_only:
        for occupant in list(room.occupants.values()):
            if room.affiliation(occupant.bare).rank < Affiliation.MEMBER.rank:
                out.extend(room.remove(occupant, (codes.MEMBERS_ONLY_REMOVED,), None, reason=None))
    if not was_locked and new != old:
        status: list[int] = []
        if new.whois != old.whois:
            status.append(
                codes.NOW_NON_ANONYMOUS if new.non_anonymous else codes.NOW_SEMI_ANONYMOUS
            )
        if new.logging != old.logging:
            status.append(codes.LOGGING_ENABLED if new.logging else codes.LOGGING_DISABLED)
        if len(status) < 1 or _other_changes(old, new):
            status.insert(0, codes.CONFIG_CHANGED)
        out.extend(room.notice(status))
    return out


def _other_changes(old: RoomConfig, new: RoomConfig) -> bool:
    return replace(new, whois=old.whois, logging=old.logging) != old


def destroy_room(room: Room, destroy: Element | None) -> list[Outcome]:
    """§10.9: every occupant leaves with ``<destroy/>`` (alternate venue and
    reason); the service then forgets the room."""
    element = Element(f"{{{MUC_USER}}}destroy")
    if destroy is not None:
        venue = destroy.get("jid")
        if venue is not None:
            element.set("jid", venue)
        reason = destroy.findtext(f"{{{MUC_OWNER}}}reason")
        if reason is not None:
            SubElement(element, f"{{{MUC_USER}}}reason").text = reason
    out = room.close((), element)
    if room.config.persistent:
        out.extend(room.persist_delete())
    room.history.forget(room.jid)
    room.destroyed = True
    return out


# -- XEP-0425 moderation ----------------------------------------------------------------------


def _moderate(room: Room, iq: Iq, moderate: Element) -> list[Outcome]:
    """XEP-0425 §4: a moderator retracts a message of the room's history by
    the XEP-0359 id the room gave it; everyone is told (XEP-0424)."""
    sender = iq.from_
    assert sender is not None
    moderator = room.by_jid.get(sender)
    if moderator is None or moderator.role is not Role.MODERATOR:
        return [Bounce(iq.element, _C_ERR.FORBIDDEN)]
    stanza_id = moderate.get("id")
    if not stanza_id or moderate.find(f"{{{RETRACT}}}retract") is None:
        return [Bounce(iq.element, _C_ERR.BAD_REQUEST)]
    by = str(room.occupant_jid(moderator.nick))
    reason = moderate.findtext(f"{{{MODERATE}}}reason")
    now = room.now

    def tombstone(message: Element) -> Element:
        return make_tombstone(message, room.jid, by, moderator.id, reason, now)

    if not room.history.retract(room.jid, stanza_id, tombstone):
        return [Bounce(iq.element, _C_ERR.ITEM_NOT_FOUND)]
    notice = Element("{jabber:client}message", {"from": str(room.jid), "type": "groupchat"})
    retract = SubElement(notice, f"{{{RETRACT}}}retract", {"id": stanza_id})
    moderated = SubElement(retract, f"{{{MODERATE}}}moderated", {"by": by})
    SubElement(moderated, f"{{{OCCUPANT_ID}}}occupant-id", {"id": moderator.id})
    if reason is not None:
        SubElement(retract, f"{{{RETRACT}}}reason").text = reason
    return [Reply(iq_result(iq.element)), *room.fan_out(notice)]


def make_tombstone(
    message: Element, room: JID, by: str, moderator_id: str, reason: str | None, now: float
) -> Element:
    """XEP-0425 §5: ``message`` with its payloads (body and anything else that
    might leak it) replaced by ``<retracted stamp><moderated by><occupant-id/>
    </moderated><reason/></retracted>``; the author's occupant id and the
    room's stanza id stay."""
    occupant_id, room_id = f"{{{OCCUPANT_ID}}}occupant-id", str(room)
    dead = tombstone(
        message,
        now,
        lambda c: c.tag == occupant_id or (c.tag == _STANZA_ID and c.get("by") == room_id),
    )
    retracted = dead[-1]
    moderated = SubElement(retracted, f"{{{MODERATE}}}moderated", {"by": by})
    SubElement(moderated, f"{{{OCCUPANT_ID}}}occupant-id", {"id": moderator_id})
    if reason is not None:
        SubElement(retracted, f"{{{RETRACT}}}reason").text = reason
    return dead


# -- registration (§7.10) ------------------------------------------------------------------


def _register(room: Room, iq: Iq, query: Element) -> list[Outcome]:
    sender = iq.from_
    assert sender is not None
    aff = room.affiliation(sender)
    if iq.type is IqType.GET:
        answer = Element(_REGISTER_Q)
        if aff.rank >= Affiliation.MEMBER.rank:
            SubElement(answer, f"{{{ns.REGISTER}}}registered")
            SubElement(answer, f"{{{ns.REGISTER}}}username").text = room.reserved.get(
                sender.bare, ""
            )
            return [Reply(iq_result(iq.element, answer))]
        if aff is Affiliation.OUTCAST or not room.config.allow_register:
            return [Bounce(iq.element, _C_ERR.NOT_ALLOWED)]
        form = Form(
            FormType.FORM,
            title="Room registration",
            fields=(
                Field(FORM_TYPE, FieldType.HIDDEN, values=(_MUC_REGISTER,)),
                Field(
                    "muc#register_roomnick",
                    FieldType.TEXT_SINGLE,
                    "Desired Nickname",
                    required=True,
                ),
            ),
        )
        answer.append(build_form(form))
        return [Reply(iq_result(iq.element, answer))]
    if aff is Affiliation.OUTCAST or not room.config.allow_register:
        return [Bounce(iq.element, _C_ERR.NOT_ALLOWED)]
    x = query.find(_X_DATA)
    try:
        submitted = None if x is None else parse_form(x)
    except FormError:
        submitted = None
    nick = None if submitted is None else (submitted.value("muc#register_roomnick") or "").strip()
    if not nick or len(nick) > room.limits.max_nick_length:
        return [Bounce(iq.element, _C_ERR.NOT_ACCEPTABLE)]
    taken = any(n == nick and u != sender.bare for u, n in room.reserved.items())
    holder = room.occupants.get(nick)
    if taken or (holder is not None and holder.bare != sender.bare):
        return [Bounce(iq.element, _C_ERR.CONFLICT)]  # §7.10: nick reserved or in use
    room.reserved[sender.bare] = nick
    out: list[Outcome] = [Reply(iq_result(iq.element))]
    new = aff if aff.rank >= Affiliation.MEMBER.rank else Affiliation.MEMBER
    if new is aff:
        out.extend(room.set_affiliation(sender.bare, aff))
    else:
        out.extend(apply_affiliation(room, sender.bare, new, None, None))
    return out
