"""Blocking (XEP-0191) applied to room traffic: rooms deliver straight to
their occupants' sessions, so the room applies the block lists. An occupant
who blocks a sender's real JID (full, bare or its server) or its room JID
(``room@service/nick``, the room, the service) gets none of its groupchat
messages nor its history; a private message through the room to it is
refused with ``service-unavailable`` as between accounts; unblocking lets
them through again. Everyone else is unaffected."""

from __future__ import annotations

from muc_world import ROOM, C, World, error_condition, messages


def block(w: World, who: str, jid: str, verb: str = "block") -> None:
    w.send(
        who,
        f"<iq type='set' id='b'><{verb} xmlns='urn:xmpp:blocking'><item jid='{jid}'/></{verb}></iq>",
    )
    assert next(e for e in w.take(who) if e.tag == f"{C}iq").get("type") == "result"


def room(**kw: object) -> World:
    w = World(blocking=True, **kw)  # type: ignore[arg-type]
    w.create()
    for name in ("alice", "bob", "carol"):
        w.join(name)
        w.take(name)
    return w


def heard(w: World, who: str) -> list[str | None]:
    return [m.findtext(f"{C}body") for m in messages(w.take(who))]


def say(w: World, who: str, body: str) -> None:
    w.send(who, f"<message to='{ROOM}' type='groupchat'><body>{body}</body></message>")


def test_an_occupant_who_blocks_a_real_jid_gets_none_of_its_room_messages() -> None:
    w = room()
    block(w, "alice", "bob@example.com")
    say(w, "bob", "hi all")
    assert heard(w, "alice") == []
    assert heard(w, "carol") == ["hi all"]
    assert heard(w, "bob") == ["hi all"]  # the sender's echo (§7.4)
    say(w, "alice", "still here")
    assert heard(w, "bob") == ["still here"]  # blocking is one way
    block(w, "alice", "bob@example.com", verb="unblock")
    say(w, "bob", "again")
    assert heard(w, "alice") == ["again"]


def test_a_blocked_room_jid_or_server_stops_the_messages_too() -> None:
    w = room()
    block(w, "alice", f"{ROOM}/bob")
    say(w, "bob", "one")
    say(w, "carol", "two")
    assert heard(w, "alice") == ["two"]
    w2 = room()
    block(w2, "alice", "example.com")  # bob's server (and alice's: never her own JID)
    say(w2, "bob", "three")
    assert heard(w2, "alice") == []
    say(w2, "alice", "mine")
    assert heard(w2, "alice") == ["mine"]


def test_a_private_message_through_the_room_to_a_blocker_is_service_unavailable() -> None:
    w = room()
    block(w, "alice", "bob@example.com")
    w.send("bob", f"<message to='{ROOM}/alice' type='chat'><body>psst</body></message>")
    assert error_condition(w.take("bob")[0]) == "service-unavailable"
    assert heard(w, "alice") == []
    w.send("alice", f"<message to='{ROOM}/bob' type='chat'><body>hello</body></message>")
    assert heard(w, "bob") == ["hello"]


def test_the_history_on_join_leaves_out_blocked_occupants() -> None:
    w = room()
    say(w, "bob", "from bob")
    say(w, "carol", "from carol")
    w.send("alice", f"<presence to='{ROOM}/alice' type='unavailable'/>")
    block(w, "alice", f"{ROOM}/bob")
    got = w.join("alice")
    history = [m.findtext(f"{C}body") for m in messages(got) if m.find(f"{C}body") is not None]
    assert history == ["from carol"]


def test_without_block_lists_everyone_hears_everyone() -> None:
    w = room()
    say(w, "bob", "hi")
    assert heard(w, "alice") == ["hi"] and heard(w, "carol") == ["hi"]


def test_an_occupant_who_joins_with_a_block_list_is_spared_at_once() -> None:
    w = room()
    block(w, "dave", "bob@example.com")
    say(w, "bob", "before dave")
    assert heard(w, "alice") == ["before dave"]
    w.join("dave", extra="<history maxstanzas='0'/>")
    w.take("dave")
    say(w, "bob", "after dave")
    assert heard(w, "dave") == []
    assert heard(w, "alice") == ["after dave"]
    w.send("dave", f"<presence to='{ROOM}/dave' type='unavailable'/>")
    block(w, "alice", "bob@example.com")
    say(w, "bob", "alice left out")
    assert heard(w, "alice") == []
