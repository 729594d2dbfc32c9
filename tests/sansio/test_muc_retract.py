"""An occupant's own retraction (XEP-0424) in a room: the room's archive
and its history on join keep a tombstone with the room's stanza id
and the author's occupant id; another occupant's retraction of it, or one
of an unknown id, changes nothing and is still sent to everyone."""

from __future__ import annotations

from xml.etree.ElementTree import Element

from test_mam_rooms import ROOM, World
from test_muc_archive_moderation import OCCUPANT_ID, RETRACT, C, archived, history, said

from xmpp_sansio.server.mam.service import SID
from xmpp_sansio.server.muc.config import RoomConfig


def retract(world: World, who: str, sid: str) -> list[Element]:
    world.now += 1
    return world.send(
        who,
        f"<message to='{ROOM}' type='groupchat' id='r-{sid}'>"
        f"<retract xmlns='urn:xmpp:message-retract:1' id='{sid}'/>"
        "<fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:message-retract:1'/>"
        "<body>retracted</body></message>",
    )


def assert_own_tombstone(message: Element, sid: str) -> None:
    assert message.find(f"{C}body") is None
    retracted = message.find(f"{RETRACT}retracted")
    assert retracted is not None and retracted.get("stamp")
    assert retracted.get("id") == f"r-{sid}"  # names the retraction
    assert retracted.find("*") is None  # no <moderated/>: the author's own
    stored = message.find(SID)
    assert stored is not None and stored.get("id") == sid
    assert message.find(OCCUPANT_ID) is not None
    assert message.get("from") == f"{ROOM}/alice"


def test_an_occupant_retracts_their_own_message_in_the_archive_and_the_history() -> None:
    world = World()
    world.create()
    world.join("alice")
    mine = said(world, "alice", "oops")
    echo = [m for m in retract(world, "alice", mine) if m.tag == f"{C}message"]
    assert echo and echo[0].find(f"{RETRACT}retract") is not None  # sent to the room
    first, second = archived(world)
    assert_own_tombstone(first, mine)
    assert second.find(f"{RETRACT}retract") is not None  # the retraction is kept
    old = history(world, "bob")[0]
    assert_own_tombstone(old, mine)
    # After a restart, the history read from the archive keeps the tombstone.
    assert_own_tombstone(history(World(world.stores), "bob")[0], mine)


def test_another_occupant_cannot_retract_it_and_the_retraction_is_still_sent() -> None:
    world = World()
    world.create()
    world.join("alice")
    mine = said(world, "alice", "mine")
    world.join("bob")
    echo = [m for m in retract(world, "bob", mine) if m.tag == f"{C}message"]
    assert echo and echo[0].find(f"{RETRACT}retract") is not None
    retract(world, "owner", "0000000000000000000000000000")  # unknown id
    assert archived(world)[0].findtext(f"{C}body") == "mine"
    assert history(World(world.stores), "bob")[0].findtext(f"{C}body") == "mine"


def test_a_message_older_than_the_history_is_retracted_in_the_archive() -> None:
    world = World(config=RoomConfig(persistent=True, history_length=1))
    world.create()
    world.join("alice")
    old = said(world, "alice", "old")
    said(world, "alice", "newer")
    retract(world, "alice", old)
    assert_own_tombstone(archived(world)[0], old)


def test_a_room_advertises_retraction_and_tombstones() -> None:
    """XEP-0424 §2 and "Tombstones" (MUST, for a service that keeps them)."""
    world = World()
    world.create()
    (info,) = world.send(
        "owner",
        f"<iq type='get' id='d' to='{ROOM}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
    )
    features = {f.get("var") for f in info.iter("{http://jabber.org/protocol/disco#info}feature")}
    assert {"urn:xmpp:message-retract:1", "urn:xmpp:message-retract:1#tombstone"} <= features
