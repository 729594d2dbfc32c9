"""XEP-0045's privilege tables, every privilege for every role and every
affiliation, checked on the wire: the tables below are transcribed from
§5.1.1 ("Privileges Associated With Roles") and §5.2.1 ("Privileges
Associated With Affiliations"), the "*" entries at the table's defaults, and
each cell is tried by an occupant with that role or a user with that
affiliation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
from muc_world import MUC, ROOM, C, World, error_condition, field, item, messages, presences

from xmpp_sansio.server.muc.config import RoomConfig
from xmpp_sansio.server.muc.permissions import (
    AFFILIATION_PRIVILEGES,
    ROLE_PRIVILEGES,
    Affiliation,
    AffiliationPrivilege,
    Role,
    RolePrivilege,
    role_privileges,
)

R = RolePrivilege
A = AffiliationPrivilege

# §5.1.1, columns None, Visitor, Participant, Moderator.
ROLE_TABLE: dict[RolePrivilege, tuple[bool, bool, bool, bool]] = {
    R.PRESENT: (False, True, True, True),
    R.RECEIVE_MESSAGES: (False, True, True, True),
    R.RECEIVE_PRESENCE: (False, True, True, True),
    R.BROADCAST_PRESENCE: (False, True, True, True),
    R.CHANGE_AVAILABILITY: (False, True, True, True),
    R.CHANGE_NICK: (False, True, True, True),
    R.SEND_PRIVATE: (False, True, True, True),
    R.INVITE: (False, True, True, True),
    R.SEND_TO_ALL: (False, False, True, True),
    R.MODIFY_SUBJECT: (False, False, True, True),
    R.KICK: (False, False, False, True),
    R.GRANT_VOICE: (False, False, False, True),
    R.REVOKE_VOICE: (False, False, False, True),
}
ROLES = (Role.NONE, Role.VISITOR, Role.PARTICIPANT, Role.MODERATOR)

# §5.2.1, columns Outcast, None, Member, Admin, Owner ("N/A" is no).
AFFILIATION_TABLE: dict[AffiliationPrivilege, tuple[bool, bool, bool, bool, bool]] = {
    A.ENTER_OPEN: (False, True, True, True, True),
    A.REGISTER: (False, True, False, False, False),
    A.RETRIEVE_MEMBER_LIST: (False, False, True, True, True),
    A.ENTER_MEMBERS_ONLY: (False, False, True, True, True),
    A.BAN: (False, False, False, True, True),
    A.EDIT_MEMBER_LIST: (False, False, False, True, True),
    A.ASSIGN_MODERATOR: (False, False, False, True, True),
    A.EDIT_ADMIN_LIST: (False, False, False, False, True),
    A.EDIT_OWNER_LIST: (False, False, False, False, True),
    A.CHANGE_CONFIG: (False, False, False, False, True),
    A.DESTROY: (False, False, False, False, True),
}
AFFILIATIONS = (
    Affiliation.OUTCAST,
    Affiliation.NONE,
    Affiliation.MEMBER,
    Affiliation.ADMIN,
    Affiliation.OWNER,
)

#: The "*" defaults of §5.1.1: invitations allowed, participants change the subject.
TABLE_DEFAULTS = RoomConfig(allow_invites=True, change_subject=True, whois="anyone")


def test_the_role_table_is_the_data_the_service_uses() -> None:
    for privilege, row in ROLE_TABLE.items():
        for role, allowed in zip(ROLES, row, strict=True):
            assert (privilege in ROLE_PRIVILEGES[role]) is allowed, (role, privilege)
            assert (privilege in role_privileges(role, TABLE_DEFAULTS)) is allowed, (
                role,
                privilege,
            )


def test_the_affiliation_table_is_the_data_the_service_uses() -> None:
    for privilege, row in AFFILIATION_TABLE.items():
        for affiliation, allowed in zip(AFFILIATIONS, row, strict=True):
            assert (privilege in AFFILIATION_PRIVILEGES[affiliation]) is allowed, (
                affiliation,
                privilege,
            )


# -- roles on the wire --------------------------------------------------------------------------


def admin(w: World, who: str, items: str) -> str | None:
    w.send(
        who, f"<iq type='set' id='a' to='{ROOM}'><query xmlns='{MUC}#admin'>{items}</query></iq>"
    )
    got = [g for g in w.take(who) if g.tag == C + "iq"]
    return error_condition(got[0])


def role_room(role: Role) -> World:
    """A moderated room (the table's defaults) where alice has ``role``
    and bob is a visitor. ``NONE``: alice is not in it, and (as available
    presence from a non-occupant is a join, §7.2) she is banned, so that no
    presence of hers gets in."""
    w = World(config=TABLE_DEFAULTS)
    w.create(fields=field("muc#roomconfig_moderatedroom", "1"))
    if role is Role.NONE:
        assert admin(w, "owner", "<item jid='alice@example.com' affiliation='outcast'/>") is None
    else:
        w.join("alice")
        if role is Role.PARTICIPANT:
            assert admin(w, "owner", "<item nick='alice' role='participant'/>") is None
        if role is Role.MODERATOR:
            assert admin(w, "owner", "<item nick='alice' role='moderator'/>") is None
    w.join("bob")
    for name in ("owner", "alice", "bob"):
        w.take(name)
    return w


def _present(w: World) -> bool:
    return any(
        o.bare == w.jid("alice").bare for r in w.muc.rooms.values() for o in r.occupants.values()
    )


def _receive_messages(w: World) -> bool:
    w.send("owner", f"<message to='{ROOM}' type='groupchat'><body>all</body></message>")
    return bool(messages(w.take("alice")))


def _receive_presence(w: World) -> bool:
    w.join("carol")
    return any(p.get("from") == f"{ROOM}/carol" for p in presences(w.take("alice")))


def _broadcast_presence(w: World) -> bool:
    w.send("alice", f"<presence to='{ROOM}/alice'><show>away</show></presence>")
    return any(p.get("from") == f"{ROOM}/alice" for p in presences(w.take("bob")))


def _change_availability(w: World) -> bool:
    w.send("alice", f"<presence to='{ROOM}/alice'><show>dnd</show></presence>")
    got = w.take("alice")
    return bool(got) and all(g.get("type") != "error" for g in got)


def _change_nick(w: World) -> bool:
    w.send("alice", f"<presence to='{ROOM}/ally'/>")
    return any(p.get("from") == f"{ROOM}/ally" for p in presences(w.take("bob")))


def _send_private(w: World) -> bool:
    w.send("alice", f"<message to='{ROOM}/bob' type='chat'><body>pm</body></message>")
    return bool(messages(w.take("bob")))


def _invite(w: World) -> bool:
    w.send("carol", "<presence/>")
    w.send(
        "alice",
        f"<message to='{ROOM}'><x xmlns='{MUC}#user'><invite to='carol@example.com/r'/></x></message>",
    )
    return bool(messages(w.take("carol")))


def _send_to_all(w: World) -> bool:
    w.send("alice", f"<message to='{ROOM}' type='groupchat'><body>hear me</body></message>")
    return bool(messages(w.take("bob")))


def _modify_subject(w: World) -> bool:
    w.send("alice", f"<message to='{ROOM}' type='groupchat'><subject>new</subject></message>")
    return any(m.findtext(C + "subject") == "new" for m in messages(w.take("bob")))


def _kick(w: World) -> bool:
    return admin(w, "alice", "<item nick='bob' role='none'/>") is None


def _grant_voice(w: World) -> bool:
    return admin(w, "alice", "<item nick='bob' role='participant'/>") is None


def _revoke_voice(w: World) -> bool:
    assert admin(w, "owner", "<item nick='bob' role='participant'/>") is None
    return admin(w, "alice", "<item nick='bob' role='visitor'/>") is None


ROLE_ACTIONS: dict[RolePrivilege, Callable[[World], bool]] = {
    R.PRESENT: _present,
    R.RECEIVE_MESSAGES: _receive_messages,
    R.RECEIVE_PRESENCE: _receive_presence,
    R.BROADCAST_PRESENCE: _broadcast_presence,
    R.CHANGE_AVAILABILITY: _change_availability,
    R.CHANGE_NICK: _change_nick,
    R.SEND_PRIVATE: _send_private,
    R.INVITE: _invite,
    R.SEND_TO_ALL: _send_to_all,
    R.MODIFY_SUBJECT: _modify_subject,
    R.KICK: _kick,
    R.GRANT_VOICE: _grant_voice,
    R.REVOKE_VOICE: _revoke_voice,
}


@pytest.mark.parametrize("role", ROLES, ids=str)
@pytest.mark.parametrize("privilege", list(RolePrivilege), ids=lambda p: p.name)
def test_every_role_privilege_on_the_wire(role: Role, privilege: RolePrivilege) -> None:
    expected = ROLE_TABLE[privilege][ROLES.index(role)]
    assert ROLE_ACTIONS[privilege](role_room(role)) is expected


@pytest.mark.parametrize(
    ("fields", "privilege"),
    [
        (field("muc#roomconfig_allowinvites", "0"), R.INVITE),
        (field("muc#roomconfig_changesubject", "0"), R.MODIFY_SUBJECT),
        (field("muc#roomconfig_allowpm", "moderators"), R.SEND_PRIVATE),
        (field("muc#roomconfig_presencebroadcast", "moderator"), R.BROADCAST_PRESENCE),
    ],
)
def test_the_starred_privileges_follow_the_configuration(
    fields: str, privilege: RolePrivilege
) -> None:
    """The "*" cells: configuration takes the privilege from participants."""
    w = role_room(Role.PARTICIPANT)
    w.send(
        "owner",
        f"<iq type='set' id='c' to='{ROOM}'><query xmlns='{MUC}#owner'><x xmlns='jabber:x:data' type='submit'>{fields}</x></query></iq>",
    )
    w.take("alice"), w.take("bob")
    assert ROLE_ACTIONS[privilege](w) is False


# -- affiliations on the wire ----------------------------------------------------------------------


def affiliation_room(affiliation: Affiliation, *, members_only: bool = False) -> World:
    """A non-anonymous room where alice has ``affiliation``, bob is in the
    room (a participant) and carol is a bystander."""
    config = replace(TABLE_DEFAULTS, members_only=members_only)
    w = World(config=config)
    w.create(fields=field("muc#roomconfig_membersonly", "1" if members_only else "0"))
    assert admin(w, "owner", "<item jid='bob@example.com' affiliation='member'/>") is None
    w.join("bob")
    if affiliation is not Affiliation.NONE:
        assert (
            admin(w, "owner", f"<item jid='alice@example.com' affiliation='{affiliation.value}'/>")
            is None
        )
    for name in ("owner", "alice", "bob"):
        w.take(name)
    return w


def _enters(w: World) -> bool:
    got = w.join("alice")
    return bool(got) and error_condition(got[0]) is None


def _enter_open(w: World) -> bool:
    return _enters(w)


def _register(w: World) -> bool:
    w.send("alice", f"<iq type='get' id='r' to='{ROOM}'><query xmlns='jabber:iq:register'/></iq>")
    (answer,) = w.take("alice")
    return (
        answer.get("type") == "result"
        and answer.find("{jabber:iq:register}query/{jabber:x:data}x") is not None
    )


def _retrieve_members(w: World) -> bool:
    w.send(
        "alice",
        f"<iq type='get' id='m' to='{ROOM}'><query xmlns='{MUC}#admin'><item affiliation='member'/></query></iq>",
    )
    return error_condition(w.take("alice")[0]) is None


def _ban(w: World) -> bool:
    return admin(w, "alice", "<item jid='carol@example.com' affiliation='outcast'/>") is None


def _edit_members(w: World) -> bool:
    return admin(w, "alice", "<item jid='carol@example.com' affiliation='member'/>") is None


def _assign_moderator(w: World) -> bool:
    _enters(w)
    w.take("alice")
    return admin(w, "alice", "<item nick='bob' role='moderator'/>") is None


def _edit_admins(w: World) -> bool:
    return admin(w, "alice", "<item jid='carol@example.com' affiliation='admin'/>") is None


def _edit_owners(w: World) -> bool:
    return admin(w, "alice", "<item jid='carol@example.com' affiliation='owner'/>") is None


def _change_config(w: World) -> bool:
    w.send("alice", f"<iq type='get' id='g' to='{ROOM}'><query xmlns='{MUC}#owner'/></iq>")
    return error_condition(w.take("alice")[0]) is None


def _destroy(w: World) -> bool:
    w.send(
        "alice",
        f"<iq type='set' id='d' to='{ROOM}'><query xmlns='{MUC}#owner'><destroy/></query></iq>",
    )
    return error_condition(w.take("alice")[0]) is None


AFFILIATION_ACTIONS: dict[AffiliationPrivilege, Callable[[World], bool]] = {
    A.ENTER_OPEN: _enter_open,
    A.REGISTER: _register,
    A.RETRIEVE_MEMBER_LIST: _retrieve_members,
    A.BAN: _ban,
    A.EDIT_MEMBER_LIST: _edit_members,
    A.ASSIGN_MODERATOR: _assign_moderator,
    A.EDIT_ADMIN_LIST: _edit_admins,
    A.EDIT_OWNER_LIST: _edit_owners,
    A.CHANGE_CONFIG: _change_config,
    A.DESTROY: _destroy,
}


@pytest.mark.parametrize("affiliation", AFFILIATIONS, ids=str)
@pytest.mark.parametrize("privilege", list(AffiliationPrivilege), ids=lambda p: p.name)
def test_every_affiliation_privilege_on_the_wire(
    affiliation: Affiliation, privilege: AffiliationPrivilege
) -> None:
    expected = AFFILIATION_TABLE[privilege][AFFILIATIONS.index(affiliation)]
    if privilege is A.ENTER_MEMBERS_ONLY:
        assert _enters(affiliation_room(affiliation, members_only=True)) is expected
    else:
        assert AFFILIATION_ACTIONS[privilege](affiliation_room(affiliation)) is expected


@pytest.mark.parametrize("affiliation", AFFILIATIONS[1:], ids=str)
@pytest.mark.parametrize("moderated", [False, True])
def test_the_initial_role_follows_section_5_1_2(affiliation: Affiliation, moderated: bool) -> None:
    expected = {
        Affiliation.NONE: "visitor" if moderated else "participant",
        Affiliation.MEMBER: "participant",
        Affiliation.ADMIN: "moderator",
        Affiliation.OWNER: "moderator",
    }[affiliation]
    w = affiliation_room(affiliation)
    if moderated:
        w.send(
            "owner",
            f"<iq type='set' id='c' to='{ROOM}'><query xmlns='{MUC}#owner'><x xmlns='jabber:x:data' type='submit'>{field('muc#roomconfig_moderatedroom', '1')}</x></query></iq>",
        )
    got = w.join("alice")
    own = [p for p in presences(got) if p.get("from") == f"{ROOM}/alice"][-1]
    assert item(own).get("role") == expected
