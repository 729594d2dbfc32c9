"""Room archives (XEP-0313 §5.1.2): a room's groupchat messages kept in the
message archive store under the room's JID, history on join read from it
(across a restart of the service), MAM queries to the room answered (a
members-only room's by its members only)."""

from __future__ import annotations

from collections.abc import Sequence
from xml.etree.ElementTree import Element

from committing import CommittingRouter

from xmpp_sansio.jid import JID
from xmpp_sansio.server import Deliver, Effect
from xmpp_sansio.server.mam.service import SID, MamService
from xmpp_sansio.server.mam.store import MemoryArchive
from xmpp_sansio.server.muc.config import RoomConfig
from xmpp_sansio.server.muc.service import MucService, MucSettings
from xmpp_sansio.server.muc.store import MemoryMucStorage
from xmpp_sansio.testing import seeded_rng, x

MUC = "http://jabber.org/protocol/muc"
MAM = "{urn:xmpp:mam:2}"
FORWARD = "{urn:xmpp:forward:0}"
SERVICE = "conference.example.com"
ROOM = f"room@{SERVICE}"
USERS = ("owner", "alice", "bob")


class Stores:
    """The archive and the rooms' store, as the server's one transaction."""

    def __init__(self) -> None:
        self.archive = MemoryArchive()
        self.rooms = MemoryMucStorage()

    def apply(self, ops: Sequence[object]) -> None:
        for op in ops:
            try:
                self.archive.apply([op])
            except TypeError:
                self.rooms.apply([op])  # type: ignore[list-item]

    def load(self, query: object) -> object:
        return self.archive.load(query)


class World:
    def __init__(self, stores: Stores | None = None, config: RoomConfig | None = None):
        self.stores = stores or Stores()
        self.archive = self.stores.archive
        self.mam = MamService(self.archive, lambda owner, peer: False)
        self.muc = MucService(
            MucSettings(default_config=config or RoomConfig(persistent=True)),
            self.stores.rooms,
            archive=self.mam,
        )
        self.now = 1_000_000.0
        self.router = CommittingRouter(
            ["example.com"],
            rng=seeded_rng(2),
            account_exists=lambda local, domain: local in USERS,
            services=[self.mam],
            hosts={SERVICE: self.muc},
            clock=lambda: self.now,
        )
        self.router.store = self.stores
        for n, name in enumerate(USERS, start=1):
            self.router.bind(n, JID.parse(f"{name}@example.com/r"))

    def send(self, name: str, xml: str) -> list[Element]:
        session = USERS.index(name) + 1
        return to_session(self.router.route(session, x(xml)), session)

    def join(self, name: str, extra: str = "") -> list[Element]:
        return self.send(
            name, f"<presence to='{ROOM}/{name}'><x xmlns='{MUC}'>{extra}</x></presence>"
        )

    def create(self, fields: str = "") -> None:
        """The owner makes the room and unlocks it (an instant room, §10.1.2)."""
        self.join("owner")
        (done,) = self.send(
            "owner",
            f"<iq type='set' id='cfg' to='{ROOM}'><query xmlns='{MUC}#owner'>"
            f"<x xmlns='jabber:x:data' type='submit'>{fields}</x></query></iq>",
        )
        assert done.get("type") == "result"

    def say(self, name: str, body: str) -> list[Element]:
        self.now += 1
        return self.send(
            name, f"<message to='{ROOM}' type='groupchat'><body>{body}</body></message>"
        )

    def query(self, name: str, inner: str = "", to: str = ROOM) -> list[Element]:
        return self.send(
            name,
            f"<iq type='set' id='q' to='{to}'><query xmlns='urn:xmpp:mam:2' queryid='k'>"
            f"{inner}</query></iq>",
        )


def to_session(effects: Sequence[Effect], session: int) -> list[Element]:
    return [e.element for e in effects if isinstance(e, Deliver) and e.session == session]


def bodies(answers: list[Element]) -> list[str]:
    return [
        m.findtext(f"{MAM}result/{FORWARD}forwarded/{{jabber:client}}message/{{jabber:client}}body")
        or ""
        for m in answers
        if m.find(f"{MAM}result") is not None
    ]


def test_a_rooms_messages_are_archived_under_its_jid_with_the_ids_occupants_saw() -> None:
    world = World()
    world.create()
    world.join("alice")
    seen = world.say("alice", "hello")
    (echo,) = [m for m in seen if m.tag == "{jabber:client}message"]
    sid = echo.find(SID)
    assert sid is not None and sid.get("by") == ROOM
    answers = world.query("owner")
    assert bodies(answers) == ["hello"]
    (result,) = [m.find(f"{MAM}result") for m in answers if m.find(f"{MAM}result") is not None]
    assert result is not None and result.get("id") == sid.get("id")
    assert answers[0].get("from") == ROOM  # the room's archive answers
    archived = result.find(f"{FORWARD}forwarded/{{jabber:client}}message")
    assert archived is not None and archived.get("from") == f"{ROOM}/alice"
    assert answers[-1].get("type") == "result" and answers[-1].find(f"{MAM}fin") is not None
    # Not in the users' own archives: groupchat is the room's.
    assert bodies(world.query("alice", to="")) == []


def test_history_on_join_is_read_from_the_archive_after_a_restart() -> None:
    world = World()
    world.create()
    for i in range(3):
        world.say("owner", f"m{i}")
    again = World(world.stores)  # a new service over the same stores: a restart
    got = again.join("bob", extra="<history maxstanzas='2'/>")
    history = [
        m.findtext("{jabber:client}body")
        for m in got
        if m.find("{urn:xmpp:delay}delay") is not None
    ]
    assert history == ["m1", "m2"]


def test_a_members_only_rooms_archive_is_read_by_its_members_only() -> None:
    world = World(config=RoomConfig(persistent=True, members_only=True))
    world.create()
    world.say("owner", "secret")
    (refused,) = world.query("bob")
    assert refused.get("type") == "error" and refused.find("*/{*}forbidden") is not None
    world.send(
        "owner",
        f"<iq type='set' id='m' to='{ROOM}'><query xmlns='{MUC}#admin'>"
        "<item affiliation='member' jid='bob@example.com'/></query></iq>",
    )
    assert bodies(world.query("bob")) == ["secret"]


def test_an_open_rooms_archive_is_read_by_anyone_but_not_through_an_occupant_jid() -> None:
    world = World()
    world.create()
    world.say("owner", "public")
    assert bodies(world.query("bob")) == ["public"]  # not even an occupant
    (refused,) = world.query("bob", to=f"{ROOM}/owner")
    assert refused.get("type") == "error"


def test_a_room_advertises_its_archive_and_answers_the_form_and_bad_queries() -> None:
    world = World()
    world.create()
    (info,) = world.send(
        "alice",
        f"<iq type='get' id='d' to='{ROOM}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
    )
    features = {f.get("var") for f in info.iter("{http://jabber.org/protocol/disco#info}feature")}
    assert "urn:xmpp:mam:2" in features
    (form,) = world.send(
        "alice", f"<iq type='get' id='f' to='{ROOM}'><query xmlns='urn:xmpp:mam:2'/></iq>"
    )
    assert form.get("type") == "result"
    (bad,) = world.query(
        "alice",
        "<set xmlns='http://jabber.org/protocol/rsm'><after>nope</after></set>",
    )
    assert bad.get("type") == "error" and bad.find("*/{*}item-not-found") is not None


def test_a_destroyed_room_loses_its_archive() -> None:
    world = World()
    world.create()
    world.say("owner", "gone soon")
    world.send(
        "owner",
        f"<iq type='set' id='x' to='{ROOM}'><query xmlns='{MUC}#owner'><destroy/></query></iq>",
    )
    assert world.archive.count(JID.parse(ROOM)) == 0
