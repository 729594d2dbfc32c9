"""XEP-0045 rooms on the wire of the sans-IO router: creation, joining and
its errors, presence, messages, nick changes, history, kicks and bans,
configuration, destruction, invitations, multi-session nicks."""

from __future__ import annotations

import pytest
from muc_world import (
    ADMIN,
    MUC,
    OWNER,
    ROOM,
    SERVICE,
    USER,
    C,
    World,
    error_condition,
    field,
    item,
    messages,
    presences,
    status_codes,
)

from xmpp_sansio.server.muc import codes
from xmpp_sansio.server.muc.config import MucLimits

CONFIG = "muc#roomconfig_"


def assert_status(el: object, *expected: int) -> None:
    """``el`` carries each of the status codes ``expected`` (the status code
    coverage test reads the calls of this function)."""
    from xml.etree.ElementTree import Element

    assert isinstance(el, Element)
    got = status_codes(el)
    assert set(expected) <= got, (expected, got)


def self_presence(got: list[object]) -> object:
    from xml.etree.ElementTree import Element

    mine = [p for p in got if isinstance(p, Element) and codes.SELF in status_codes(p)]
    assert mine, got
    return mine[-1]


# -- creation (§10.1) -------------------------------------------------------------


def test_a_first_join_creates_a_locked_room_with_201_until_configured() -> None:
    w = World()
    got = w.join("owner", "boss")
    own = self_presence(got)
    assert_status(own, codes.SELF, codes.CREATED)
    assert item(own).get("affiliation") == "owner" and item(own).get("role") == "moderator"
    # Locked: others get item-not-found (§10.1.1) until the owner configures it.
    refused = w.join("alice")
    assert error_condition(refused[0]) == "item-not-found"
    w.send(
        "owner",
        f"<iq type='set' id='c' to='{ROOM}'><query xmlns='{MUC}#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>",
    )
    assert w.take("owner")[0].get("type") == "result"
    assert error_condition(w.join("alice")[0]) is None


def test_a_join_without_the_muc_payload_creates_an_instant_room() -> None:
    w = World()
    w.send("owner", f"<presence to='{ROOM}/boss'/>")
    assert_status(self_presence(w.take("owner")), codes.CREATED)
    assert error_condition(w.join("alice")[0]) is None


def test_cancelling_the_initial_configuration_destroys_the_room() -> None:
    w = World()
    w.join("owner", "boss")
    w.send(
        "owner",
        f"<iq type='set' id='c' to='{ROOM}'><query xmlns='{MUC}#owner'><x xmlns='jabber:x:data' type='cancel'/></query></iq>",
    )
    got = w.take("owner")
    assert got[0].get("type") == "result"
    assert presences(got)[0].get("type") == "unavailable"
    assert ROOM not in {str(j) for j in w.muc.rooms}


def test_room_creation_is_refused_to_remote_users_when_only_local_may_create() -> None:
    w = World(creators="admins")
    got = w.join("owner", "boss")
    assert error_condition(got[0]) == "not-allowed"


def test_rooms_per_user_limit_answers_resource_constraint() -> None:
    w = World(limits=MucLimits(max_rooms_per_user=1))
    w.create()
    got = w.join("owner", "boss", room=f"other@{SERVICE}")
    assert error_condition(got[0]) == "resource-constraint"


# -- joining (§7.2) --------------------------------------------------------------------


def test_a_join_gets_the_occupants_then_its_own_presence_with_110_then_the_subject() -> None:
    w = World()
    w.create()
    got = w.join("alice")
    assert [g.tag for g in got] == [C + "presence", C + "presence", C + "message"]
    assert got[0].get("from") == f"{ROOM}/boss"
    assert got[0].find("{urn:xmpp:occupant-id:0}occupant-id") is not None
    assert_status(got[1], codes.SELF)
    assert got[2].find(C + "subject") is not None and got[2].find(C + "body") is None
    # The owner (a moderator) sees alice's real JID in a semi-anonymous room...
    (seen,) = w.take("owner")
    assert item(seen).get("jid") == "alice@example.com/r"
    # ... and alice does not see the owner's.
    assert item(got[0]).get("jid") is None


def test_a_non_anonymous_room_says_100_and_shows_jids_to_everyone() -> None:
    w = World()
    w.create(fields=field(CONFIG + "whois", "anyone"))
    got = w.join("alice")
    assert item(got[0]).get("jid") == "owner@example.com/r"
    assert_status(self_presence(got), codes.SELF, codes.NON_ANONYMOUS)


def test_a_room_with_logging_says_170_on_join() -> None:
    w = World()
    w.create(fields=field(CONFIG + "enablelogging", "1"))
    assert_status(self_presence(w.join("alice")), codes.LOGGING_ENABLED)


@pytest.mark.parametrize(
    ("fields", "extra", "condition"),
    [
        (
            field(CONFIG + "passwordprotectedroom", "1") + field(CONFIG + "roomsecret", "pw"),
            "",
            "not-authorized",
        ),
        (
            field(CONFIG + "passwordprotectedroom", "1") + field(CONFIG + "roomsecret", "pw"),
            "<password>no</password>",
            "not-authorized",
        ),
        (field(CONFIG + "membersonly", "1"), "", "registration-required"),
        (field(CONFIG + "maxusers", "1"), "", "service-unavailable"),
    ],
)
def test_joins_are_refused_with_the_errors_of_section_7_2(
    fields: str, extra: str, condition: str
) -> None:
    w = World()
    w.create(fields=fields)
    got = w.join("alice", extra=extra)
    assert len(got) == 1 and got[0].get("type") == "error"
    assert error_condition(got[0]) == condition
    assert got[0].get("from") == f"{ROOM}/alice"


def test_the_right_password_enters() -> None:
    w = World()
    w.create(
        fields=field(CONFIG + "passwordprotectedroom", "1") + field(CONFIG + "roomsecret", "pw")
    )
    assert_status(self_presence(w.join("alice", extra="<password>pw</password>")), codes.SELF)


def test_a_taken_nick_is_a_conflict_and_a_long_one_not_acceptable() -> None:
    w = World(limits=MucLimits(max_nick_length=8))
    w.create()
    assert error_condition(w.join("alice", "boss")[0]) == "conflict"
    assert error_condition(w.join("alice", "x" * 9)[0]) == "not-acceptable"


def test_a_join_without_a_nick_is_jid_malformed() -> None:
    w = World()
    w.create()
    w.send("alice", f"<presence to='{ROOM}'><x xmlns='{MUC}'/></presence>")
    assert error_condition(w.take("alice")[0]) == "jid-malformed"


def test_messages_and_iqs_to_a_missing_room_get_item_not_found() -> None:
    w = World()
    w.send("alice", f"<message to='none@{SERVICE}' type='groupchat'><body>x</body></message>")
    assert error_condition(w.take("alice")[0]) == "item-not-found"
    w.send(
        "alice",
        f"<iq type='get' id='i' to='none@{SERVICE}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
    )
    assert error_condition(w.take("alice")[0]) == "item-not-found"


# -- presence, leaving, multi-session ------------------------------------------------------


def test_leaving_sends_unavailable_with_110_and_an_empty_temporary_room_ends() -> None:
    w = World()
    w.create()
    w.join("alice")
    w.take("owner")
    w.send("alice", f"<presence to='{ROOM}/alice' type='unavailable'/>")
    (own,) = w.take("alice")
    assert own.get("type") == "unavailable"
    assert_status(own, codes.SELF)
    (seen,) = w.take("owner")
    assert seen.get("type") == "unavailable" and item(seen).get("role") == "none"
    w.send("owner", f"<presence to='{ROOM}/boss' type='unavailable'/>")
    assert not w.muc.rooms


def test_a_disconnected_client_leaves_the_room() -> None:
    w = World()
    w.create()
    w.join("alice")
    w.take("owner")
    w.unbind(w.jid("alice"))
    (seen,) = w.take("owner")
    assert seen.get("type") == "unavailable" and seen.get("from") == f"{ROOM}/alice"


def test_two_resources_share_one_nick_and_leave_with_the_last() -> None:
    w = World()
    w.create()
    w.bind(100, w.jid("alice", "r2"))
    w.join("alice")
    w.take("owner")
    got = w.join("alice", resource="r2")
    assert_status(self_presence(got), codes.SELF)
    assert w.take("owner") == []  # the occupant was already there
    w.send("bob", "<presence/>")
    w.join("bob")
    w.take("alice"), w.take("alice", "r2")
    w.send("bob", f"<message to='{ROOM}' type='groupchat'><body>both</body></message>")
    assert messages(w.take("alice"))[0].findtext(C + "body") == "both"
    assert messages(w.take("alice", "r2"))[0].findtext(C + "body") == "both"
    w.take("bob")
    w.send("alice", f"<presence to='{ROOM}/alice' type='unavailable'/>", resource="r2")
    assert w.take("bob") == []  # alice is still there from /r
    w.unbind(w.jid("alice"))
    (gone,) = w.take("bob")
    assert gone.get("type") == "unavailable"


def test_a_status_change_is_broadcast() -> None:
    w = World()
    w.create()
    w.join("alice")
    w.take("owner")
    w.send("alice", f"<presence to='{ROOM}/alice'><show>away</show></presence>")
    (seen,) = w.take("owner")
    assert seen.findtext(C + "show") == "away"


def test_a_nick_change_is_303_then_the_new_nick() -> None:
    w = World()
    w.create()
    w.join("alice")
    w.take("owner")
    w.send("alice", f"<presence to='{ROOM}/ally'/>")
    old, new = w.take("owner")
    assert old.get("type") == "unavailable" and old.get("from") == f"{ROOM}/alice"
    assert_status(old, codes.NICK_CHANGED)
    assert item(old).get("nick") == "ally"
    assert new.get("from") == f"{ROOM}/ally" and new.get("type") is None
    own_old, own_new = w.take("alice")
    assert_status(own_old, codes.SELF, codes.NICK_CHANGED)
    assert_status(own_new, codes.SELF)
    w.send("alice", f"<presence to='{ROOM}/boss'/>")
    assert error_condition(w.take("alice")[0]) == "conflict"


# -- messages (§7.4, §7.5) ------------------------------------------------------------------


def test_groupchat_reaches_everyone_with_the_occupant_id_and_strips_a_forged_one() -> None:
    w = World()
    w.create()
    w.join("alice")
    w.take("owner")
    w.send(
        "alice",
        f"<message to='{ROOM}' type='groupchat'><body>hi</body><occupant-id xmlns='urn:xmpp:occupant-id:0' id='forged'/></message>",
    )
    (to_owner,) = w.take("owner")
    (echo,) = w.take("alice")
    assert to_owner.get("from") == f"{ROOM}/alice" and echo.findtext(C + "body") == "hi"
    ids = [e.get("id") for e in to_owner.iter("{urn:xmpp:occupant-id:0}occupant-id")]
    assert len(ids) == 1 and ids[0] != "forged"


def test_non_occupants_and_visitors_may_not_send_to_all() -> None:
    w = World()
    w.create(fields=field(CONFIG + "moderatedroom", "1"))
    w.send("bob", f"<message to='{ROOM}' type='groupchat'><body>x</body></message>")
    assert error_condition(w.take("bob")[0]) == "not-acceptable"
    w.join("alice")
    assert item(self_presence(w.join("bob"))).get("role") == "visitor"
    w.send("bob", f"<message to='{ROOM}' type='groupchat'><body>x</body></message>")
    assert error_condition(w.take("bob")[0]) == "forbidden"


def test_private_messages_go_through_the_room() -> None:
    w = World()
    w.create()
    w.join("alice")
    w.join("bob")
    w.take("alice")
    w.send("alice", f"<message to='{ROOM}/bob' type='chat'><body>psst</body></message>")
    (pm,) = w.take("bob")
    assert pm.get("from") == f"{ROOM}/alice" and pm.find(USER + "x") is not None
    w.send("alice", f"<message to='{ROOM}/nobody' type='chat'><body>x</body></message>")
    assert error_condition(w.take("alice")[0]) == "item-not-found"
    w.send("alice", f"<message to='{ROOM}/bob' type='groupchat'><body>x</body></message>")
    assert error_condition(w.take("alice")[0]) == "bad-request"


def test_private_messages_can_be_turned_off() -> None:
    w = World()
    w.create(fields=field(CONFIG + "allowpm", "none"))
    w.join("alice")
    w.join("bob")
    w.send("alice", f"<message to='{ROOM}/bob' type='chat'><body>psst</body></message>")
    assert error_condition(w.take("alice")[0]) == "forbidden"


def test_subject_is_set_by_moderators_and_sent_on_join() -> None:
    w = World()
    w.create()
    w.join("alice")
    w.send("alice", f"<message to='{ROOM}' type='groupchat'><subject>mine</subject></message>")
    assert error_condition(w.take("alice")[0]) == "forbidden"
    w.send("owner", f"<message to='{ROOM}' type='groupchat'><subject>Act I</subject></message>")
    (seen,) = w.take("alice")
    assert seen.findtext(C + "subject") == "Act I" and seen.get("from") == f"{ROOM}/boss"
    got = w.join("bob")
    assert got[-1].findtext(C + "subject") == "Act I"


def test_subject_length_is_limited() -> None:
    w = World(limits=MucLimits(max_subject_length=3))
    w.create()
    w.send("owner", f"<message to='{ROOM}' type='groupchat'><subject>long</subject></message>")
    assert error_condition(w.take("owner")[0]) == "not-acceptable"


# -- history (§7.2.14) ------------------------------------------------------------------------


def _chat(w: World, n: int) -> None:
    for i in range(n):
        w.now += 10
        w.send("owner", f"<message to='{ROOM}' type='groupchat'><body>m{i}</body></message>")
    w.take("owner")


@pytest.mark.parametrize(
    ("history", "expected"),
    [
        ("", ["m2", "m3", "m4"]),  # the room's history length (3)
        ("<history maxstanzas='2'/>", ["m3", "m4"]),
        ("<history maxstanzas='0'/>", []),
        ("<history seconds='15'/>", ["m3", "m4"]),
        ("<history since='1970-01-12T13:47:25Z'/>", ["m4"]),
        ("<history maxchars='0'/>", []),
    ],
)
def test_history_on_join_follows_the_request(history: str, expected: list[str]) -> None:
    w = World()
    w.create(fields=field("muc#maxhistoryfetch", "3"))
    _chat(w, 5)
    got = w.join("alice", extra=history)
    bodies = [m.findtext(C + "body") for m in messages(got) if m.find(C + "body") is not None]
    assert bodies == expected
    for m in messages(got):
        if m.find(C + "body") is not None:
            assert m.find("{urn:xmpp:delay}delay") is not None


def test_history_maxchars_counts_whole_stanzas() -> None:
    w = World()
    w.create()
    _chat(w, 2)
    stanzas = w.join("alice", extra="<history maxchars='400'/>")
    assert len([m for m in messages(stanzas) if m.find(C + "body") is not None]) == 1


# -- moderation (§8, §9) ------------------------------------------------------------------------


def admin_set(w: World, who: str, items: str) -> list[object]:
    w.send(
        who, f"<iq type='set' id='a' to='{ROOM}'><query xmlns='{MUC}#admin'>{items}</query></iq>"
    )
    return w.take(who)


def test_a_kick_is_307_with_actor_and_reason() -> None:
    w = World()
    w.create()
    w.join("alice")
    w.join("bob")
    w.take("owner"), w.take("alice")
    got = admin_set(w, "owner", "<item nick='bob' role='none'><reason>out</reason></item>")
    assert got[0].get("type") == "result"
    (kicked,) = w.take("bob")
    assert_status(kicked, codes.SELF, codes.KICKED)
    assert kicked.findtext(f"{USER}x/{USER}item/{USER}reason") == "out"
    assert kicked.find(f"{USER}x/{USER}item/{USER}actor").get("nick") == "boss"
    (seen,) = w.take("alice")
    assert_status(seen, codes.KICKED)
    assert codes.SELF not in status_codes(seen)


def test_a_participant_may_not_kick_and_nobody_kicks_an_owner() -> None:
    w = World()
    w.create()
    w.join("alice")
    w.join("bob")
    assert (
        error_condition(admin_set(w, "alice", "<item nick='bob' role='none'/>")[0]) == "forbidden"
    )
    admin_set(w, "owner", "<item nick='alice' role='moderator'/>")
    assert (
        error_condition(admin_set(w, "alice", "<item nick='boss' role='none'/>")[0])
        == "not-allowed"
    )


def test_a_ban_is_301_and_keeps_the_user_out() -> None:
    w = World()
    w.create()
    w.join("alice")
    got = admin_set(w, "owner", "<item jid='alice@example.com' affiliation='outcast'/>")
    assert got[0].get("type") == "result"
    (banned,) = w.take("alice")
    assert_status(banned, codes.SELF, codes.BANNED)
    assert item(banned).get("affiliation") == "outcast"
    assert error_condition(w.join("alice")[0]) == "forbidden"


def test_voice_is_granted_and_revoked_by_moderators() -> None:
    w = World()
    w.create(fields=field(CONFIG + "moderatedroom", "1"))
    w.join("alice")
    w.take("owner")
    got = admin_set(w, "owner", "<item nick='alice' role='participant'/>")
    assert item(got[-1]).get("role") == "participant"
    w.send("alice", f"<message to='{ROOM}' type='groupchat'><body>now I speak</body></message>")
    assert messages(w.take("owner"))[0].findtext(C + "body") == "now I speak"
    admin_set(w, "owner", "<item nick='alice' role='visitor'/>")
    assert item(w.take("alice")[-1]).get("role") == "visitor"


def test_affiliation_lists_are_read_and_an_absent_user_gets_101() -> None:
    w = World()
    w.create()
    w.send("carol", "<presence/>")
    admin_set(w, "owner", "<item jid='carol@example.com' affiliation='member'/>")
    (note,) = messages(w.take("carol"))
    assert_status(note, codes.AFFILIATION_CHANGED)
    w.send(
        "owner",
        f"<iq type='get' id='l' to='{ROOM}'><query xmlns='{MUC}#admin'><item affiliation='member'/></query></iq>",
    )
    (answer,) = w.take("owner")
    assert [i.get("jid") for i in answer.iter(ADMIN + "item")] == ["carol@example.com"]
    w.join("alice")
    w.send(
        "alice",
        f"<iq type='get' id='l' to='{ROOM}'><query xmlns='{MUC}#admin'><item affiliation='outcast'/></query></iq>",
    )
    assert error_condition(w.take("alice")[0]) == "forbidden"


def test_admin_changes_are_all_or_nothing() -> None:
    w = World()
    w.create()
    w.join("alice")
    got = admin_set(
        w,
        "owner",
        "<item jid='carol@example.com' affiliation='member'/><item nick='ghost' role='none'/>",
    )
    assert error_condition(got[0]) == "item-not-found"
    assert w.muc.rooms[next(iter(w.muc.rooms))].affiliations.get(w.jid("carol").bare) is None


def test_the_last_owner_cannot_step_down() -> None:
    w = World()
    w.create()
    got = admin_set(w, "owner", "<item jid='owner@example.com' affiliation='member'/>")
    assert error_condition(got[0]) == "conflict"


def test_removing_a_member_of_a_members_only_room_is_321() -> None:
    w = World()
    w.create(fields=field(CONFIG + "membersonly", "1"))
    admin_set(w, "owner", "<item jid='alice@example.com' affiliation='member'/>")
    w.take("alice")
    w.join("alice")
    admin_set(w, "owner", "<item jid='alice@example.com' affiliation='none'/>")
    assert_status(w.take("alice")[0], codes.SELF, codes.REMOVED_AFFILIATION)


# -- configuration (§10.2) and destruction (§10.9) -------------------------------------------------


def configure(w: World, fields: str) -> list[object]:
    w.send(
        "owner",
        f"<iq type='set' id='c2' to='{ROOM}'><query xmlns='{MUC}#owner'><x xmlns='jabber:x:data' type='submit'>{fields}</x></query></iq>",
    )
    return w.take("owner")


def test_the_owner_reads_the_full_configuration_form() -> None:
    w = World()
    w.create()
    w.send("owner", f"<iq type='get' id='g' to='{ROOM}'><query xmlns='{MUC}#owner'/></iq>")
    (answer,) = w.take("owner")
    vars_ = {f.get("var") for f in answer.iter("{jabber:x:data}field")}
    for name in (
        "roomname",
        "roomdesc",
        "persistentroom",
        "publicroom",
        "membersonly",
        "moderatedroom",
        "passwordprotectedroom",
        "roomsecret",
        "whois",
        "maxusers",
        "presencebroadcast",
        "changesubject",
        "allowinvites",
        "allowpm",
    ):
        assert CONFIG + name in vars_
    assert {"muc#maxhistoryfetch", "muc#register_allow"} <= vars_
    w.join("alice")
    w.send("alice", f"<iq type='get' id='g' to='{ROOM}'><query xmlns='{MUC}#owner'/></iq>")
    assert error_condition(w.take("alice")[0]) == "forbidden"


def test_configuration_changes_are_announced_with_104_and_privacy_codes() -> None:
    w = World()
    w.create()
    w.join("alice")
    configure(w, field(CONFIG + "roomname", "Verona"))
    assert_status(w.take("alice")[-1], codes.CONFIG_CHANGED)
    configure(w, field(CONFIG + "whois", "anyone"))
    assert_status(w.take("alice")[-1], codes.NOW_NON_ANONYMOUS)
    configure(w, field(CONFIG + "whois", "moderators"))
    assert_status(w.take("alice")[-1], codes.NOW_SEMI_ANONYMOUS)
    configure(w, field(CONFIG + "enablelogging", "1"))
    assert_status(w.take("alice")[-1], codes.LOGGING_ENABLED)
    configure(w, field(CONFIG + "enablelogging", "0"))
    assert_status(w.take("alice")[-1], codes.LOGGING_DISABLED)


def test_becoming_members_only_removes_non_members_with_322() -> None:
    w = World()
    w.create()
    w.join("alice")
    configure(w, field(CONFIG + "membersonly", "1"))
    assert_status(w.take("alice")[0], codes.SELF, codes.MEMBERS_ONLY_REMOVED)


def test_a_bad_configuration_value_is_not_acceptable() -> None:
    w = World(limits=MucLimits(max_occupants=50))
    w.create()
    got = configure(w, field(CONFIG + "maxusers", "5000"))
    assert error_condition(got[0]) == "not-acceptable"


def test_destruction_tells_occupants_the_reason_and_alternate_venue() -> None:
    w = World()
    w.create(fields=field(CONFIG + "persistentroom", "1"))
    w.join("alice")
    w.send(
        "owner",
        f"<iq type='set' id='d' to='{ROOM}'><query xmlns='{MUC}#owner'><destroy jid='new@{SERVICE}'><reason>moved</reason></destroy></query></iq>",
    )
    (gone,) = w.take("alice")[-1:]
    destroy = gone.find(f"{USER}x/{USER}destroy")
    assert gone.get("type") == "unavailable" and destroy.get("jid") == f"new@{SERVICE}"
    assert destroy.findtext(USER + "reason") == "moved"
    assert not w.muc.rooms and not w.storage.rooms()


def test_a_non_owner_may_not_destroy() -> None:
    w = World()
    w.create()
    w.join("alice")
    w.send(
        "alice",
        f"<iq type='set' id='d' to='{ROOM}'><query xmlns='{MUC}#owner'><destroy/></query></iq>",
    )
    assert error_condition(w.take("alice")[0]) == "forbidden"


# -- invitations (§7.8) -----------------------------------------------------------------------------


def test_a_mediated_invitation_reaches_the_invitee_and_a_decline_the_inviter() -> None:
    w = World()
    w.create(fields=field(CONFIG + "allowinvites", "1"))
    w.join("alice")
    w.send(
        "alice",
        f"<message to='{ROOM}'><x xmlns='{MUC}#user'><invite to='carol@example.com'><reason>come</reason></invite></x></message>",
    )
    w.send("carol", "<presence/>")
    w.take("carol")
    w.send(
        "alice",
        f"<message to='{ROOM}'><x xmlns='{MUC}#user'><invite to='carol@example.com/r'><reason>come</reason></invite></x></message>",
    )
    (invite,) = w.take("carol")
    inv = invite.find(f"{USER}x/{USER}invite")
    assert invite.get("from") == ROOM and inv.get("from") == "alice@example.com/r"
    assert inv.findtext(USER + "reason") == "come"
    w.send(
        "carol",
        f"<message to='{ROOM}'><x xmlns='{MUC}#user'><decline to='alice@example.com/r'><reason>busy</reason></decline></x></message>",
    )
    (decline,) = w.take("alice")
    assert decline.find(f"{USER}x/{USER}decline").get("from") == "carol@example.com"


def test_invitations_are_refused_when_the_room_does_not_allow_them() -> None:
    w = World()
    w.create()
    w.join("alice")
    w.send(
        "alice",
        f"<message to='{ROOM}'><x xmlns='{MUC}#user'><invite to='carol@example.com'/></x></message>",
    )
    assert error_condition(w.take("alice")[0]) == "forbidden"


# -- errors from occupants, shutdown, self-ping, registration ------------------------------------------


def test_an_error_from_an_occupant_removes_it_with_333() -> None:
    w = World()
    w.create()
    w.join("alice")
    w.take("owner")
    w.send(
        "alice",
        f"<message to='{ROOM}' type='error'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>",
    )
    (seen,) = w.take("owner")
    assert_status(seen, codes.KICKED_ON_ERROR)


def test_shutdown_removes_everyone_with_332() -> None:
    w = World()
    w.create()
    w.join("alice")
    w.take("alice")
    w.collect(w.router.drain(w.muc.shutdown()))
    assert_status(w.take("alice")[0], codes.SELF, codes.SHUTDOWN)


def test_self_ping_answers_joined_occupants_only() -> None:
    w = World()
    w.create()
    w.join("alice")
    w.send("alice", f"<iq type='get' id='p' to='{ROOM}/alice'><ping xmlns='urn:xmpp:ping'/></iq>")
    assert w.take("alice")[0].get("type") == "result"
    w.send("bob", f"<iq type='get' id='p' to='{ROOM}/alice'><ping xmlns='urn:xmpp:ping'/></iq>")
    assert error_condition(w.take("bob")[0]) == "not-acceptable"


def test_registration_reserves_a_nick_that_joins_replace_with_210() -> None:
    w = World()
    w.create()
    w.send(
        "alice",
        f"<iq type='set' id='r' to='{ROOM}'><query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#register</value></field><field var='muc#register_roomnick'><value>Al</value></field></x></query></iq>",
    )
    got = w.take("alice")
    assert got[0].get("type") == "result"
    own = self_presence(w.join("alice", "other"))
    assert_status(own, codes.SELF, codes.NICK_MODIFIED)
    assert own.get("from") == f"{ROOM}/Al"
    assert error_condition(w.join("bob", "Al")[0]) == "conflict"


# -- disco (§6) -------------------------------------------------------------------------------------


def test_the_service_lists_public_rooms_and_rooms_describe_themselves() -> None:
    w = World()
    w.create(fields=field(CONFIG + "roomname", "Verona"))
    w.create(room=f"hidden@{SERVICE}", fields=field(CONFIG + "publicroom", "0"))
    w.send(
        "alice",
        f"<iq type='get' id='i' to='{SERVICE}'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>",
    )
    (items,) = w.take("alice")
    listed = [
        (i.get("jid"), i.get("name"))
        for i in items.iter("{http://jabber.org/protocol/disco#items}item")
    ]
    assert listed == [(ROOM, "Verona")]
    w.send(
        "alice",
        f"<iq type='get' id='i' to='{SERVICE}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
    )
    (info,) = w.take("alice")
    assert any(
        f.get("var") == MUC for f in info.iter("{http://jabber.org/protocol/disco#info}feature")
    )
    w.send(
        "alice",
        f"<iq type='get' id='i' to='{ROOM}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
    )
    (room_info,) = w.take("alice")
    features = {
        f.get("var") for f in room_info.iter("{http://jabber.org/protocol/disco#info}feature")
    }
    assert {MUC, "muc_public", "muc_temporary", "muc_open", "urn:xmpp:occupant-id:0"} <= features
    assert (
        room_info.find(
            "{http://jabber.org/protocol/disco#info}query/{http://jabber.org/protocol/disco#info}identity"
        ).get("name")
        == "Verona"
    )
    _ = OWNER


# -- XEP-0425 moderation (and XEP-0359 ids) ------------------------------------------------------

SID = "{urn:xmpp:sid:0}"
RETRACT = "{urn:xmpp:message-retract:1}"


def test_a_moderator_retracts_a_message_by_the_rooms_stanza_id() -> None:
    w = World()
    w.create()
    w.join("alice")
    w.join("bob")
    forged = f"<stanza-id xmlns='urn:xmpp:sid:0' id='forged' by='{ROOM}'/>"
    w.send(
        "alice",
        f"<message to='{ROOM}' type='groupchat'><body>free potions</body>{forged}</message>",
    )
    (seen,) = messages(w.take("bob"))
    ids = [s.get("id") for s in seen.iter(SID + "stanza-id") if s.get("by") == ROOM]
    assert len(ids) == 1 and ids[0] != "forged"
    moderate = (
        f"<iq type='set' id='m' to='{ROOM}'><moderate id='{ids[0]}' xmlns='urn:xmpp:message-moderate:1'>"
        "<retract xmlns='urn:xmpp:message-retract:1'/><reason>spam</reason></moderate></iq>"
    )
    w.send("bob", moderate)
    assert error_condition(w.take("bob")[0]) == "forbidden"
    w.send("owner", moderate)
    got = w.take("owner")
    assert got[0].get("type") == "result"
    notice = messages(w.take("alice"))[-1]
    retract = notice.find(RETRACT + "retract")
    assert notice.get("from") == ROOM and retract is not None and retract.get("id") == ids[0]
    assert retract.find("{urn:xmpp:message-moderate:1}moderated").get("by") == f"{ROOM}/boss"
    assert retract.findtext(RETRACT + "reason") == "spam"
    # Gone from the history a new occupant gets, and cannot be retracted twice.
    assert not [m for m in messages(w.join("carol")) if m.find(C + "body") is not None]
    w.send("owner", moderate)
    assert error_condition(w.take("owner")[0]) == "item-not-found"


# -- voice requests (§8.6), reserved nick discovery (§7.12), unique names (§10.1.4) ----------------

REQUEST_FORM = (
    "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>"
    "http://jabber.org/protocol/muc#request</value></field>{fields}</x>"
)


def test_a_visitor_asks_for_voice_and_a_moderator_grants_it() -> None:
    w = World()
    w.create(fields=field(CONFIG + "moderatedroom", "1"))
    w.join("alice")
    w.take("owner")
    ask = REQUEST_FORM.format(fields=field("muc#role", "participant"))
    w.send("alice", f"<message to='{ROOM}'>{ask}</message>")
    (request,) = messages(w.take("owner"))
    values = {
        f.get("var"): f.findtext("{jabber:x:data}value")
        for f in request.iter("{jabber:x:data}field")
    }
    assert values["muc#roomnick"] == "alice" and values["muc#request_allow"] == "false"
    approve = REQUEST_FORM.format(
        fields=field("muc#role", "participant")
        + field("muc#roomnick", "alice")
        + field("muc#request_allow", "true")
    )
    w.send("owner", f"<message to='{ROOM}'>{approve}</message>")
    assert item(w.take("alice")[-1]).get("role") == "participant"


def test_the_reserved_nick_is_discovered_and_a_unique_room_name_is_offered() -> None:
    w = World()
    w.create()
    query = f"<iq type='get' id='n' to='{ROOM}'><query xmlns='http://jabber.org/protocol/disco#info' node='x-roomuser-item'/></iq>"
    w.send("alice", query)
    assert (
        w.take("alice")[0].find(
            "{http://jabber.org/protocol/disco#info}query/{http://jabber.org/protocol/disco#info}identity"
        )
        is None
    )
    w.send(
        "alice",
        f"<iq type='set' id='r' to='{ROOM}'><query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'><field var='muc#register_roomnick'><value>Al</value></field></x></query></iq>",
    )
    w.send("alice", query)
    identity = w.take("alice")[0].find(
        "{http://jabber.org/protocol/disco#info}query/{http://jabber.org/protocol/disco#info}identity"
    )
    assert identity is not None and identity.get("name") == "Al"
    w.send("alice", f"<iq type='get' id='u' to='{SERVICE}'><unique xmlns='{MUC}#unique'/></iq>")
    answers = {w.take("alice")[0].findtext(f"{{{MUC}#unique}}unique") for _ in range(1)}
    w.send("alice", f"<iq type='get' id='u' to='{SERVICE}'><unique xmlns='{MUC}#unique'/></iq>")
    answers.add(w.take("alice")[0].findtext(f"{{{MUC}#unique}}unique"))
    assert len(answers) == 2 and all(a and len(a) == 32 for a in answers)
