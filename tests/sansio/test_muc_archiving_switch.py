"""The per-room archiving switch (``muc#roomconfig_enablearchiving``, as
Prosody's mod_muc_mam names it): a room with archiving off archives nothing
new and does not advertise ``urn:xmpp:mam:2``, still answers MAM queries
from what its archive holds (as Prosody does), and still sends the history
it keeps on join."""

from __future__ import annotations

from test_mam_rooms import MUC, ROOM, World, bodies
from test_muc_room import World as PlainWorld  # a service with no archive

from xmpp_sansio.jid import JID
from xmpp_sansio.server.muc.config import RoomConfig

SWITCH = "muc#roomconfig_enablearchiving"
DISCO = "http://jabber.org/protocol/disco#info"


def configure(world: World, value: str) -> None:
    (done,) = [
        e
        for e in world.send(
            "owner",
            f"<iq type='set' id='c' to='{ROOM}'><query xmlns='{MUC}#owner'>"
            f"<x xmlns='jabber:x:data' type='submit'><field var='{SWITCH}'><value>{value}</value>"
            "</field></x></query></iq>",
        )
        if e.tag == "{jabber:client}iq"
    ]
    assert done.get("type") == "result"


def features(world: World) -> set[str | None]:
    (info,) = world.send(
        "alice", f"<iq type='get' id='d' to='{ROOM}'><query xmlns='{DISCO}'/></iq>"
    )
    return {f.get("var") for f in info.iter(f"{{{DISCO}}}feature")}


def form_value(world: World) -> str | None:
    (form,) = world.send(
        "owner", f"<iq type='get' id='g' to='{ROOM}'><query xmlns='{MUC}#owner'/></iq>"
    )
    for f in form.iter("{jabber:x:data}field"):
        if f.get("var") == SWITCH:
            return f.findtext("{jabber:x:data}value")
    return None


def history(world: World, who: str) -> list[str | None]:
    return [
        m.findtext("{jabber:client}body")
        for m in world.join(who)
        if m.find("{urn:xmpp:delay}delay") is not None
    ]


def test_a_room_with_archiving_off_archives_nothing_new_and_hides_its_archive() -> None:
    world = World()
    world.create()
    assert form_value(world) == "1"
    assert "urn:xmpp:mam:2" in features(world)
    world.say("owner", "kept")
    configure(world, "0")
    assert form_value(world) == "0"
    assert not {"urn:xmpp:mam:2", "urn:xmpp:mam:2#extended"} & features(world)
    world.say("owner", "not kept")
    assert world.archive.count(JID.parse(ROOM)) == 1
    # The archive it has is still read (as Prosody answers), the history is whole.
    assert bodies(world.query("bob")) == ["kept"]
    assert history(world, "alice") == ["kept", "not kept"]
    # After a restart the history is what the archive kept.
    again = World(world.stores)
    assert history(again, "bob") == ["kept"]
    again.join("owner")
    configure(again, "1")
    again.say("owner", "kept again")
    assert bodies(again.query("bob")) == ["kept", "kept again"]


def test_new_rooms_take_the_services_default() -> None:
    world = World(config=RoomConfig(persistent=True, archiving=False))
    world.create()
    assert form_value(world) == "0"
    world.say("owner", "off the record")
    assert world.archive.count(JID.parse(ROOM)) == 0
    assert "urn:xmpp:mam:2" not in features(world)


def test_without_archives_the_form_has_no_switch() -> None:
    plain = PlainWorld()
    plain.create()
    plain.send("owner", f"<iq type='get' id='g' to='{ROOM}'><query xmlns='{MUC}#owner'/></iq>")
    (answer,) = plain.take("owner")
    assert SWITCH not in {f.get("var") for f in answer.iter("{jabber:x:data}field")}
