"""The client side of XEP-0045 (xmpp_sansio.client.muc) against the sans-IO
service: the builders' stanzas do what they say, and a RoomView fed the
presence the service sends follows the room."""

from __future__ import annotations

from xml.etree.ElementTree import Element

from muc_world import ROOM, World, messages

from xmpp_sansio.client import muc as client
from xmpp_sansio.client.muc import RoomEventKind, RoomView
from xmpp_sansio.jid import JID
from xmpp_sansio.server.muc.permissions import Affiliation, Role

ROOM_JID = JID.parse(ROOM)


def send(w: World, who: str, element: Element) -> None:
    w.route(who, element)


def events(view: RoomView, w: World, who: str) -> list[tuple[RoomEventKind, str | None]]:
    out = []
    for stanza in w.take(who):
        if stanza.tag.endswith("presence"):
            event = view.handle_presence(stanza)
            if event is not None:
                out.append((event.kind, None if event.occupant is None else event.occupant.nick))
        else:
            view.handle_message(stanza)
    return out


def test_a_room_created_configured_and_used_through_the_builders() -> None:
    w = World()
    owner = RoomView(ROOM_JID)
    send(w, "owner", client.join_presence(ROOM_JID, "boss", maxstanzas=0))
    assert events(owner, w, "owner") == [(RoomEventKind.JOINED, "boss")]
    assert owner.me is not None and owner.me.affiliation is Affiliation.OWNER
    send(
        w,
        "owner",
        client.config_submit(
            ROOM_JID,
            "c1",
            {"muc#roomconfig_moderatedroom": True, "muc#roomconfig_roomname": "Verona"},
        ),
    )
    assert w.take("owner")[0].get("type") == "result"
    assert w.muc.rooms[ROOM_JID].config.moderated

    alice = RoomView(ROOM_JID)
    send(w, "alice", client.join_presence(ROOM_JID, "alice"))
    assert events(alice, w, "alice") == [
        (RoomEventKind.ENTERED, "boss"),
        (RoomEventKind.JOINED, "alice"),
    ]
    assert alice.me is not None and alice.me.role is Role.VISITOR and alice.subject == ""
    assert events(owner, w, "owner") == [(RoomEventKind.ENTERED, "alice")]
    assert owner.occupants["alice"].jid == JID.parse("alice@example.com/r")  # a moderator sees it

    send(w, "owner", client.role_request(ROOM_JID, "v", "alice", Role.PARTICIPANT))
    assert events(alice, w, "alice") == [(RoomEventKind.CHANGED, "alice")]
    assert alice.me is not None and alice.me.role is Role.PARTICIPANT
    assert events(owner, w, "owner") == [(RoomEventKind.CHANGED, "alice")]

    send(w, "alice", client.nick_presence(ROOM_JID, "ally"))
    assert events(alice, w, "alice") == [(RoomEventKind.NICK_CHANGED, "ally")]
    assert alice.nick == "ally" and set(alice.occupants) == {"boss", "ally"}
    assert events(owner, w, "owner") == [(RoomEventKind.NICK_CHANGED, "ally")]

    send(
        w,
        "owner",
        client.affiliation_request(
            ROOM_JID, "b", JID.parse("alice@example.com/r"), Affiliation.OUTCAST, "out"
        ),
    )
    assert events(alice, w, "alice") == [(RoomEventKind.REMOVED, "ally")]
    assert not alice.joined and alice.occupants == {}
    assert events(owner, w, "owner") == [(RoomEventKind.LEFT, "ally")]


def test_a_refused_join_is_join_failed_with_the_condition() -> None:
    w = World()
    w.create()
    view = RoomView(ROOM_JID)
    send(w, "alice", client.join_presence(ROOM_JID, "boss"))
    (presence,) = w.take("alice")
    event = view.handle_presence(presence)
    assert event is not None and (event.kind, event.condition) == (
        RoomEventKind.JOIN_FAILED,
        "conflict",
    )


def test_invitations_leave_and_destroy_builders() -> None:
    w = World()
    w.create(fields="<field var='muc#roomconfig_allowinvites'><value>1</value></field>")
    w.join("alice")
    w.send("carol", "<presence/>")
    send(w, "alice", client.mediated_invitation(ROOM_JID, JID.parse("carol@example.com/r"), "come"))
    assert (
        messages(w.take("carol"))[0].find(
            "{http://jabber.org/protocol/muc#user}x/{http://jabber.org/protocol/muc#user}invite"
        )
        is not None
    )
    direct = client.direct_invitation(JID.parse("carol@example.com"), ROOM_JID, reason="come")
    assert direct.find("{jabber:x:conference}x").get("jid") == ROOM  # type: ignore[union-attr]
    view = RoomView(ROOM_JID, nick="alice", joined=True)
    send(w, "alice", client.leave_presence(ROOM_JID, "alice"))
    assert events(view, w, "alice") == [(RoomEventKind.REMOVED, "alice")]
    send(w, "owner", client.destroy_request(ROOM_JID, "d", reason="done"))
    assert w.take("owner")[0].get("type") == "result" and not w.muc.rooms
