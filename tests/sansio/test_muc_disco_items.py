"""A room's disco#items (XEP-0045 §6.5): the occupants' room JIDs when the
room shows who is in it (``whois`` anyone), to anyone not banned, and in a
members-only room to its members and occupants only; an empty list in
semi-anonymous rooms (the occupants are private)."""

from __future__ import annotations

from muc_world import ROOM, World, field

from xmpp_sansio.server.muc.config import RoomConfig

ITEMS = "http://jabber.org/protocol/disco#items"


def items(w: World, who: str) -> list[tuple[str | None, str | None]]:
    w.send(who, f"<iq type='get' id='i' to='{ROOM}'><query xmlns='{ITEMS}'/></iq>")
    (answer,) = w.take(who)
    assert answer.get("type") == "result"
    return [(i.get("jid"), i.get("name")) for i in answer.iter(f"{{{ITEMS}}}item")]


def test_a_non_anonymous_room_lists_its_occupants() -> None:
    w = World(config=RoomConfig(whois="anyone"))
    w.create()
    w.join("alice", nick="Al")
    assert items(w, "bob") == [(f"{ROOM}/Al", "Al"), (f"{ROOM}/boss", "boss")]


def test_a_semi_anonymous_room_keeps_its_occupants_private() -> None:
    w = World()
    w.create()
    w.join("alice")
    assert items(w, "bob") == []


def test_a_members_only_room_lists_them_to_members_only_and_never_to_the_banned() -> None:
    w = World(config=RoomConfig(whois="anyone", members_only=True))
    w.create()
    assert items(w, "bob") == []
    assert items(w, "owner") == [(f"{ROOM}/boss", "boss")]
    w.send(
        "owner",
        f"<iq type='set' id='m' to='{ROOM}'><query xmlns='http://jabber.org/protocol/muc#admin'>"
        "<item affiliation='member' jid='bob@example.com'/>"
        "<item affiliation='outcast' jid='carol@example.com'/></query></iq>",
    )
    assert items(w, "bob") == [(f"{ROOM}/boss", "boss")]
    assert items(w, "carol") == []
    open_room = World(config=RoomConfig(whois="anyone"))
    open_room.create(fields=field("muc#roomconfig_whois", "anyone"))
    open_room.send(
        "owner",
        f"<iq type='set' id='m' to='{ROOM}'><query xmlns='http://jabber.org/protocol/muc#admin'>"
        "<item affiliation='outcast' jid='carol@example.com'/></query></iq>",
    )
    assert items(open_room, "carol") == []
    assert items(open_room, "dave") == [(f"{ROOM}/boss", "boss")]
