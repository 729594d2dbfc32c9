"""Real JIDs in room archives (XEP-0313 §5.1.2): the archive notes each
sender's real full JID (``<x xmlns='…muc#user'><item jid/></x>``); MAM
results carry it in non-anonymous rooms and, in semi-anonymous ones, to
moderators, admins and owners only; the history on join never does."""

from __future__ import annotations

from xml.etree.ElementTree import Element

from test_mam_rooms import FORWARD, MAM, World

from xmpp_sansio.server.muc.config import RoomConfig

ITEM = "{http://jabber.org/protocol/muc#user}x/{http://jabber.org/protocol/muc#user}item"


def archived(world: World, who: str) -> list[Element]:
    out = []
    for m in world.query(who):
        message = m.find(f"{MAM}result/{FORWARD}forwarded/{{jabber:client}}message")
        if message is not None:
            out.append(message)
    return out


def real_jids(world: World, who: str) -> list[str | None]:
    return [
        None if (item := m.find(ITEM)) is None else item.get("jid") for m in archived(world, who)
    ]


def test_a_non_anonymous_rooms_archive_names_the_senders() -> None:
    world = World(config=RoomConfig(persistent=True, whois="anyone"))
    world.create()
    world.join("alice")
    world.say("alice", "hello")
    assert real_jids(world, "bob") == ["alice@example.com/r"]
    (message,) = archived(world, "bob")
    item = message.find(ITEM)
    assert item is not None and (item.get("affiliation"), item.get("role")) == (
        "none",
        "participant",
    )


def test_a_semi_anonymous_rooms_archive_names_them_to_moderators_only() -> None:
    world = World()
    world.create()
    world.join("alice")
    world.say("alice", "hello")
    assert real_jids(world, "bob") == [None]
    assert real_jids(world, "alice") == [None]
    assert real_jids(world, "owner") == ["alice@example.com/r"]
    # The history on join, also read back from the archive after a restart, never does.
    again = World(world.stores)
    history = [m for m in again.join("owner") if m.find("{urn:xmpp:delay}delay") is not None]
    assert [m.findtext("{jabber:client}body") for m in history] == ["hello"]
    assert all(m.find(ITEM) is None for m in history)
