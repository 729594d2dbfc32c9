"""XEP-0425 moderation in the room archive (XEP-0313 §5.1.2): a moderator's
retraction leaves a tombstone (XEP-0425 §5) in the room's archive and in
the history on join, for messages still in the history and for older ones
only the archive holds; non-moderators and unknown ids get the XEP's errors."""

from __future__ import annotations

from xml.etree.ElementTree import Element

from test_mam_rooms import FORWARD, MAM, ROOM, World

from xmpp_sansio.server.mam.service import SID
from xmpp_sansio.server.muc.config import RoomConfig

C = "{jabber:client}"
RETRACT = "{urn:xmpp:message-retract:1}"
MODERATE = "{urn:xmpp:message-moderate:1}"
OCCUPANT_ID = "{urn:xmpp:occupant-id:0}occupant-id"


def moderate(world: World, who: str, sid: str, reason: str = "spam") -> Element:
    (answer,) = [
        e
        for e in world.send(
            who,
            f"<iq type='set' id='m' to='{ROOM}'><moderate id='{sid}' "
            "xmlns='urn:xmpp:message-moderate:1'><retract xmlns='urn:xmpp:message-retract:1'/>"
            f"<reason>{reason}</reason></moderate></iq>",
        )
        if e.tag == f"{C}iq"
    ]
    return answer


def said(world: World, who: str, body: str) -> str:
    (echo,) = [m for m in world.say(who, body) if m.tag == f"{C}message"]
    found = echo.find(SID)
    assert found is not None
    sid = found.get("id")
    assert sid is not None
    return sid


def archived(world: World, who: str = "owner") -> list[Element]:
    out = []
    for m in world.query(who):
        message = m.find(f"{MAM}result/{FORWARD}forwarded/{C}message")
        if message is not None:
            out.append(message)
    return out


def history(world: World, who: str) -> list[Element]:
    got = world.join(who)
    return [m for m in got if m.find("{urn:xmpp:delay}delay") is not None]


def assert_tombstone(message: Element, reason: str = "spam") -> None:
    assert message.find(f"{C}body") is None
    retracted = message.find(f"{RETRACT}retracted")
    assert retracted is not None and retracted.get("stamp")
    moderated = retracted.find(f"{MODERATE}moderated")
    assert moderated is not None and moderated.get("by") == f"{ROOM}/owner"
    assert moderated.find(OCCUPANT_ID) is not None
    assert retracted.findtext(f"{RETRACT}reason") == reason
    # The author's occupant id and the room's stanza id stay (XEP-0425 §5).
    assert message.find(OCCUPANT_ID) is not None
    assert message.get("from") == f"{ROOM}/alice"


def test_a_moderated_message_is_a_tombstone_in_the_archive_and_the_history() -> None:
    world = World()
    world.create()
    world.join("alice")
    bad = said(world, "alice", "buy potions")
    said(world, "alice", "fine")
    assert moderate(world, "owner", bad).get("type") == "result"
    first, second = archived(world)
    assert_tombstone(first)
    assert second.findtext(f"{C}body") == "fine"
    stored = first.find(SID)
    assert stored is not None and stored.get("id") == bad
    old, kept = history(world, "bob")
    assert_tombstone(old)
    assert kept.findtext(f"{C}body") == "fine"
    # After a restart, the history read from the archive has the tombstone too.
    again = World(world.stores)
    old, kept = history(again, "bob")
    assert_tombstone(old)


def test_a_message_older_than_the_history_is_moderated_in_the_archive() -> None:
    world = World(config=RoomConfig(persistent=True, history_length=1))
    world.create()
    world.join("alice")
    bad = said(world, "alice", "old spam")
    said(world, "alice", "newer")  # the history (1 message) no longer holds it
    assert moderate(world, "owner", bad, reason="old").get("type") == "result"
    assert_tombstone(archived(world)[0], reason="old")
    # Twice: the message is gone, only its tombstone is left.
    again = moderate(world, "owner", bad)
    assert again.get("type") == "error" and again.find("*/{*}item-not-found") is not None


def test_a_non_moderator_cannot_moderate_and_an_unknown_id_is_not_found() -> None:
    world = World()
    world.create()
    world.join("alice")
    bad = said(world, "alice", "mine")
    refused = moderate(world, "alice", bad)
    assert refused.get("type") == "error" and refused.find("*/{*}forbidden") is not None
    assert archived(world)[0].findtext(f"{C}body") == "mine"
    unknown = moderate(world, "owner", "0000000000000000000000000000")
    assert unknown.get("type") == "error" and unknown.find("*/{*}item-not-found") is not None
