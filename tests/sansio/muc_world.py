"""A router with the MUC service at ``conference.example.com`` and a few
bound users, for the MUC tests: ``send`` a stanza from a user, read what
each session got."""

from __future__ import annotations

from collections import defaultdict
from xml.etree.ElementTree import Element

from xmpp_sansio.jid import JID
from xmpp_sansio.server import Deliver, Effect, Router
from xmpp_sansio.server.blocking import BlockingService, MemoryBlockStorage
from xmpp_sansio.server.effects import BlockAdd, BlockClear, BlockRemove, Persist
from xmpp_sansio.server.muc.config import MucLimits, RoomConfig
from xmpp_sansio.server.muc.service import MucService, MucSettings
from xmpp_sansio.server.muc.store import MemoryMucStorage
from xmpp_sansio.server.presence import PresenceService
from xmpp_sansio.server.roster import MemoryRosterStorage, RosterService
from xmpp_sansio.testing import seeded_rng, x

C = "{jabber:client}"
MUC = "http://jabber.org/protocol/muc"
USER = "{http://jabber.org/protocol/muc#user}"
ADMIN = "{http://jabber.org/protocol/muc#admin}"
OWNER = "{http://jabber.org/protocol/muc#owner}"
SERVICE = "conference.example.com"
ROOM = f"room@{SERVICE}"
USERS = ("owner", "alice", "bob", "carol", "dave", "eve")


class World:
    """Users ``owner``, ``alice``, ``bob``... each bound as ``<name>@example.com/r``
    (session ids 1, 2, 3...), plus a second resource ``/r2`` per user on demand."""

    def __init__(
        self,
        *,
        limits: MucLimits | None = None,
        config: RoomConfig | None = None,
        storage: MemoryMucStorage | None = None,
        creators: str = "local",
        blocking: bool = False,
    ) -> None:
        self.storage = storage if storage is not None else MemoryMucStorage()
        settings = MucSettings(
            limits=limits or MucLimits(),
            default_config=config or RoomConfig(),
            creators=creators,  # type: ignore[arg-type]
        )
        #: With ``blocking``: XEP-0191 in front, its lists applied to room traffic.
        self.blocks = MemoryBlockStorage()
        blocker = BlockingService(self.blocks, lambda contact, user: False)
        self.muc = MucService(settings, self.storage, blocks=blocker if blocking else None)
        self.now = 1_000_000.0
        roster = RosterService(MemoryRosterStorage())
        self.router = Router(
            ["example.com"],
            rng=seeded_rng(1),
            account_exists=lambda local, domain: local in USERS,
            services=[*([blocker] if blocking else []), roster, PresenceService(roster)],
            hosts={SERVICE: self.muc},
            clock=lambda: self.now,
        )
        self.sessions: dict[int, JID] = {}
        self.inbox: dict[JID, list[Element]] = defaultdict(list)
        self.persisted: list[object] = []
        for n, name in enumerate(USERS, start=1):
            self.bind(n, JID.parse(f"{name}@example.com/r"))

    def bind(self, session: int, jid: JID) -> None:
        self.sessions[session] = jid
        self.collect(self.router.bind(session, jid))

    def unbind(self, jid: JID) -> None:
        session = next(s for s, j in self.sessions.items() if j == jid)
        del self.sessions[session]
        self.collect(self.router.unbind(session))

    def jid(self, name: str, resource: str = "r") -> JID:
        return JID.parse(f"{name}@example.com/{resource}")

    def collect(self, effects: list[Effect]) -> None:
        ops = [e for e in effects if isinstance(e, Persist)]
        if ops:
            blocks = [p.op for p in ops if isinstance(p.op, BlockAdd | BlockRemove | BlockClear)]
            self.blocks.apply(blocks)
            self.storage.apply([p.op for p in ops if p.op not in blocks])
            self.persisted.extend(p.op for p in ops)
            self.collect(self.router.persisted(ops, None))
        for effect in effects:
            if isinstance(effect, Deliver):
                self.inbox[self.sessions[effect.session]].append(effect.element)

    def send(self, name: str, stanza: str, resource: str = "r") -> None:
        """Route ``stanza`` from the user's session; what the session had
        not taken yet is dropped first, so :meth:`take` then returns what
        this stanza caused."""
        jid = self.jid(name, resource)
        self.inbox.pop(jid, None)
        session = next(s for s, j in self.sessions.items() if j == jid)
        self.collect(self.router.route(session, x(stanza)))

    def route(self, name: str, element: Element, resource: str = "r") -> None:
        """:meth:`send` for a built element."""
        jid = self.jid(name, resource)
        self.inbox.pop(jid, None)
        session = next(s for s, j in self.sessions.items() if j == jid)
        self.collect(self.router.route(session, element))

    def take(self, name: str, resource: str = "r") -> list[Element]:
        """What the session got since the last take."""
        got = self.inbox.pop(self.jid(name, resource), [])
        return got

    def join(
        self,
        name: str,
        nick: str | None = None,
        room: str = ROOM,
        extra: str = "",
        resource: str = "r",
    ) -> list[Element]:
        self.send(
            name,
            f"<presence to='{room}/{nick or name}'><x xmlns='{MUC}'>{extra}</x></presence>",
            resource,
        )
        return self.take(name, resource)

    def create(
        self, room: str = ROOM, fields: str = "", *, name: str = "owner", nick: str = "boss"
    ) -> list[Element]:
        """``name`` creates ``room`` and submits the configuration ``fields``
        (an instant room without them)."""
        got = self.join(name, nick, room)
        self.send(
            name,
            f"<iq type='set' id='cfg' to='{room}'><query xmlns='{MUC}#owner'>"
            f"<x xmlns='jabber:x:data' type='submit'>{fields}</x></query></iq>",
        )
        result = self.take(name)
        assert result[0].get("type") == "result", result
        return got


def field(var: str, *values: str) -> str:
    return f"<field var='{var}'>" + "".join(f"<value>{v}</value>" for v in values) + "</field>"


def status_codes(el: Element) -> set[int]:
    xel = el.find(USER + "x")
    return set() if xel is None else {int(s.get("code", "0")) for s in xel.findall(USER + "status")}


def item(el: Element) -> Element:
    found = el.find(f"{USER}x/{USER}item")
    assert found is not None, el
    return found


def error_condition(el: Element) -> str | None:
    err = el.find(C + "error")
    if err is None:
        return None
    return next(iter(err)).tag.split("}")[1]


def presences(got: list[Element]) -> list[Element]:
    return [g for g in got if g.tag == C + "presence"]


def messages(got: list[Element]) -> list[Element]:
    return [g for g in got if g.tag == C + "message"]
