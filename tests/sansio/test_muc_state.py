"""A hypothesis state machine over one room: joins (from one or two
resources), leaves, disconnects, nick changes, kicks, affiliation changes
and messages, with the invariants of XEP-0045 checked against what each
client saw on the wire."""

from __future__ import annotations

from xml.etree.ElementTree import Element

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from muc_world import MUC, ROOM, USER, C, World, field, status_codes

from xmpp_sansio.jid import JID
from xmpp_sansio.server.muc.permissions import Affiliation, Role

NAMES = ("alice", "bob", "carol", "dave")
NICKS = ("a", "b", "c", "x")
RESOURCES = ("r", "r2")


class RoomMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.w = World()
        for n, name in enumerate(NAMES):
            self.w.bind(200 + n, self.w.jid(name, "r2"))
        # Each session's view, built only from the presence it received:
        # the occupants it believes present (nick -> role), and its own nick.
        self.views: dict[JID, dict[str, str]] = {}
        self.own: dict[JID, str | None] = {}
        for el in self.w.create(fields=field("muc#roomconfig_persistentroom", "1")):
            self.see(self.w.jid("owner"), el)
        self.room = next(iter(self.w.muc.rooms.values()))
        self.drain()

    def drain(self) -> None:
        for jid, got in list(self.w.inbox.items()):
            for el in got:
                self.see(jid, el)
        self.w.inbox.clear()

    def see(self, jid: JID, el: Element) -> None:
        if el.tag != C + "presence" or not (el.get("from") or "").startswith(ROOM + "/"):
            return
        if el.get("type") == "error":
            return
        nick = (el.get("from") or "").split("/", 1)[1]
        view = self.views.setdefault(jid, {})
        item = el.find(f"{USER}x/{USER}item")
        assert item is not None
        mine = 110 in status_codes(el)
        if el.get("type") == "unavailable":
            view.pop(nick, None)
            if mine:
                if 303 in status_codes(el):
                    self.own[jid] = None
                else:
                    self.views[jid] = {}
                    self.own[jid] = None
        else:
            view[nick] = item.get("role", "")
            if mine:
                self.own[jid] = nick

    def send(self, name: str, stanza: str, resource: str = "r") -> None:
        self.drain()
        self.w.send(name, stanza, resource)
        self.drain()

    @rule(
        name=st.sampled_from(NAMES),
        nick=st.sampled_from(NICKS),
        resource=st.sampled_from(RESOURCES),
    )
    def join(self, name: str, nick: str, resource: str) -> None:
        self.send(name, f"<presence to='{ROOM}/{nick}'><x xmlns='{MUC}'/></presence>", resource)

    @rule(name=st.sampled_from(NAMES), resource=st.sampled_from(RESOURCES))
    def leave(self, name: str, resource: str) -> None:
        occupant = self.room.by_jid.get(self.w.jid(name, resource))
        nick = occupant.nick if occupant else "a"
        self.send(name, f"<presence to='{ROOM}/{nick}' type='unavailable'/>", resource)

    @rule(name=st.sampled_from(NAMES), resource=st.sampled_from(RESOURCES))
    def disconnect_and_return(self, name: str, resource: str) -> None:
        jid = self.w.jid(name, resource)
        session = next(s for s, j in self.w.sessions.items() if j == jid)
        self.drain()
        self.w.unbind(jid)
        self.views.pop(jid, None)
        self.own.pop(jid, None)
        self.w.bind(session, jid)
        self.drain()

    @rule(
        name=st.sampled_from(NAMES),
        nick=st.sampled_from(NICKS),
        resource=st.sampled_from(RESOURCES),
    )
    def change_nick(self, name: str, nick: str, resource: str) -> None:
        if self.w.jid(name, resource) in self.room.by_jid:
            self.send(name, f"<presence to='{ROOM}/{nick}'/>", resource)

    @rule(nick=st.sampled_from(NICKS))
    def kick(self, nick: str) -> None:
        self.send(
            "owner",
            f"<iq type='set' id='k' to='{ROOM}'><query xmlns='{MUC}#admin'><item nick='{nick}' role='none'/></query></iq>",
        )

    @rule(
        name=st.sampled_from(NAMES),
        affiliation=st.sampled_from(["outcast", "none", "member", "admin"]),
    )
    def affiliate(self, name: str, affiliation: str) -> None:
        self.send(
            "owner",
            f"<iq type='set' id='f' to='{ROOM}'><query xmlns='{MUC}#admin'><item jid='{name}@example.com' affiliation='{affiliation}'/></query></iq>",
        )

    @rule(members_only=st.booleans())
    def configure(self, members_only: bool) -> None:
        value = "1" if members_only else "0"
        self.send(
            "owner",
            f"<iq type='set' id='c' to='{ROOM}'><query xmlns='{MUC}#owner'><x xmlns='jabber:x:data' type='submit'>{field('muc#roomconfig_membersonly', value)}</x></query></iq>",
        )

    @rule(name=st.sampled_from(NAMES))
    def say(self, name: str) -> None:
        self.send(name, f"<message to='{ROOM}' type='groupchat'><body>hi</body></message>")

    @invariant()
    def one_occupant_per_nick_and_per_session(self) -> None:
        for nick, occupant in self.room.occupants.items():
            assert occupant.nick == nick and occupant.sessions
            for full in occupant.sessions:
                assert self.room.by_jid[full] is occupant
        assert set(self.room.by_jid) == {
            f for o in self.room.occupants.values() for f in o.sessions
        }
        bares = [o.bare for o in self.room.occupants.values()]
        assert all(
            self.room.occupants[n].bare == b
            for n, b in zip(self.room.occupants, bares, strict=True)
        )

    @invariant()
    def every_session_saw_its_own_join_with_110_and_sees_the_room(self) -> None:
        for full, occupant in self.room.by_jid.items():
            assert self.own.get(full) == occupant.nick, (full, self.own.get(full), occupant.nick)
            view = self.views.get(full, {})
            expected = {n: o.role.value for n, o in self.room.occupants.items()}
            assert view == expected, (full, view, expected)

    @invariant()
    def roles_follow_affiliations(self) -> None:
        for occupant in self.room.occupants.values():
            affiliation = self.room.affiliation(occupant.bare)
            assert affiliation is not Affiliation.OUTCAST
            if affiliation in (Affiliation.OWNER, Affiliation.ADMIN):
                assert occupant.role is Role.MODERATOR
            if self.room.config.members_only:
                assert affiliation.rank >= Affiliation.MEMBER.rank
            assert occupant.role is not Role.NONE

    @invariant()
    def the_store_has_the_affiliations(self) -> None:
        (stored,) = self.w.storage.rooms()
        assert {u: a for u, (a, _) in stored.affiliations.items()} == {
            u: a.value for u, a in self.room.affiliations.items()
        }


RoomMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)
TestRoomMachine = RoomMachine.TestCase
