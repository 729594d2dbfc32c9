"""Shared helpers of the publish-subscribe tests: a router with the pubsub
host at ``pubsub.example.com`` and PEP on ``example.com``, fake rosters and
caps, and shortcuts for requests and answers."""

from __future__ import annotations

from typing import get_args
from xml.etree.ElementTree import Element

from xmpp_sansio.jid import JID
from xmpp_sansio.server import Deliver, Effect, Router
from xmpp_sansio.server.effects import Persist, PrivateDelete, PrivatePut
from xmpp_sansio.server.private import MemoryPrivateStorage, PrivateService
from xmpp_sansio.server.pubsub.bookmarks import BookmarksCompat
from xmpp_sansio.server.pubsub.config import AccessModel, NodeConfig, SendLast
from xmpp_sansio.server.pubsub.engine import PubSubEngine, PubSubLimits
from xmpp_sansio.server.pubsub.host import PubSubHost
from xmpp_sansio.server.pubsub.pep import PEPService
from xmpp_sansio.server.pubsub.store import MemoryPubSubStorage, PubSubOp
from xmpp_sansio.server.service import Service
from xmpp_sansio.stanza import parse_error
from xmpp_sansio.testing import seeded_rng, x

PS = "http://jabber.org/protocol/pubsub"
OWNER = PS + "#owner"
EVENT = PS + "#event"
ERRORS = PS + "#errors"
C = "{jabber:client}"
SESSIONS = {
    "romeo@example.com/orchard": 1,
    "juliet@example.com/balcony": 2,
    "nurse@example.com/kitchen": 3,
    "tybalt@example.com/street": 4,
}
SESSION_OF = {JID.parse(k).local: v for k, v in SESSIONS.items()}
JID_OF = {v: k for k, v in SESSIONS.items()}

PEP_DEFAULTS = NodeConfig(
    access_model=AccessModel.PRESENCE,
    max_items=1,
    send_last_published_item=SendLast.ON_SUB_AND_PRESENCE,
)


class FakeContacts:
    """Rosters: who receives whose presence, and roster groups."""

    def __init__(self) -> None:
        self.subs: dict[JID, set[JID]] = {}
        self.groups_of: dict[tuple[JID, JID], frozenset[str]] = {}

    def add(self, owner: str, *contacts: str) -> None:
        self.subs.setdefault(JID.parse(owner), set()).update(JID.parse(c) for c in contacts)

    def subscribed(self, owner: JID, contact: JID) -> bool:
        return contact.bare in self.subs.get(owner.bare, set())

    def groups(self, owner: JID, contact: JID) -> frozenset[str]:
        return self.groups_of.get((owner.bare, contact.bare), frozenset())

    def presence_subscribers(self, owner: JID) -> list[JID]:
        return sorted(self.subs.get(owner.bare, set()), key=str)

    def presence_subscriptions(self, contact: JID) -> list[JID]:
        return sorted((o for o, cs in self.subs.items() if contact.bare in cs), key=str)


class World:
    """A router with the pubsub host and PEP over in-memory storage; every
    ``Persist`` it produces is committed to the storage at once."""

    def __init__(
        self, limits: PubSubLimits | None = None, *, compat: bool = False, federation: bool = False
    ) -> None:
        self.contacts = FakeContacts()
        self.caps: dict[JID, frozenset[str]] = {}
        #: remote full JID -> the local accounts it is available to
        self.remote: dict[JID, set[JID]] = {}
        self.storage = MemoryPubSubStorage()
        self.pep_storage = MemoryPubSubStorage()
        self.host_engine = PubSubEngine(self.storage, self.contacts, limits=limits)
        self.pep_engine = PubSubEngine(
            self.pep_storage, self.contacts, limits=limits, defaults=PEP_DEFAULTS, pep=True
        )
        self.pep = PEPService(
            self.pep_engine,
            self.contacts,
            lambda jid: self.caps.get(jid, frozenset()),
            remote_resources=lambda owner, contact: [
                j for j, owners in self.remote.items() if j.bare == contact and owner in owners
            ],
            remote_owners=lambda jid: self.remote.get(jid, set()),
            also_forget=(self.host_engine,),
        )
        self.host = PubSubHost(self.host_engine)
        self.private_storage = MemoryPrivateStorage()
        services: list[Service] = [self.pep]
        if compat:
            services = [
                BookmarksCompat(self.pep, self.private_storage),
                PrivateService(self.private_storage),
                self.pep,
            ]
        self.router = Router(
            ["example.com"],
            rng=seeded_rng(1),
            account_exists=lambda local, domain: local in SESSION_OF,
            services=services,
            hosts={"pubsub.example.com": self.host},
            federation=federation,
        )
        self.ops: list[object] = []
        for full, session in SESSIONS.items():
            self.router.bind(session, JID.parse(full))

    def commit(self, effects: list[Effect]) -> list[Deliver]:
        """Commit the ``Persist`` effects (each op to its store) and report
        them, as the I/O layer does; what a write held comes after."""
        delivered = [e for e in effects if isinstance(e, Deliver)]
        persists = [e for e in effects if isinstance(e, Persist)]
        if not persists:
            return delivered
        for op in (p.op for p in persists):
            if isinstance(op, PrivatePut | PrivateDelete):
                self.private_storage.apply([op])
                continue
            self.ops.append(op)
            assert isinstance(op, get_args(PubSubOp)), op
            (self.pep_storage if "@" in op.service else self.storage).apply([op])
        return delivered + self.commit(self.router.persisted(persists))

    def online(self, who: str, *notify: str) -> list[Deliver]:
        """``who`` sends available presence, with caps ``+notify`` for ``notify``."""
        session = SESSION_OF[who]
        self.caps[JID.parse(JID_OF[session])] = frozenset(n + "+notify" for n in notify)
        return self.commit(self.router.route(session, x("<presence/>")))

    def send(self, who: str, stanza: str) -> list[Deliver]:
        return self.commit(self.router.route(SESSION_OF[who], x(stanza)))

    def iq(self, who: str, stanza: str) -> Element:
        """Send an iq and return the one answer ``who`` gets (other
        deliveries are kept in :attr:`others`)."""
        delivered = self.send(who, stanza)
        mine = [d for d in delivered if d.session == SESSION_OF[who] and d.element.tag == C + "iq"]
        assert len(mine) == 1, [d.element.attrib for d in delivered]
        self.others = [d for d in delivered if d is not mine[0]]
        return mine[0].element


def ok(answer: Element) -> Element:
    assert answer.get("type") == "result", answer.attrib
    return answer


def error_of(answer: Element) -> tuple[str, str | None]:
    """``(condition, pubsub#errors condition)`` of an error answer."""
    assert answer.get("type") == "error"
    error = parse_error(answer)
    app = None
    error_el = answer.find(C + "error")
    assert error_el is not None
    for child in error_el:
        if child.tag.startswith("{" + ERRORS + "}"):
            app = child.tag.split("}")[1]
    return error.condition.value, app


def notifications(delivered: list[Deliver], session: int | None = None) -> list[Element]:
    return [
        d.element
        for d in delivered
        if d.element.tag == C + "message"
        and d.element.find(f"{{{EVENT}}}event") is not None
        and (session is None or d.session == session)
    ]


def publish(
    node: str, payload: str, item_id: str | None = None, to: str = "", options: str = ""
) -> str:
    to_attr = f" to='{to}'" if to else ""
    id_attr = f" id='{item_id}'" if item_id else ""
    return (
        f"<iq type='set' id='p'{to_attr}><pubsub xmlns='{PS}'><publish node='{node}'>"
        f"<item{id_attr}>{payload}</item></publish>{options}</pubsub></iq>"
    )


def form(form_type: str, tag: str = "publish-options", ns: str = PS, **fields: str) -> str:
    body = f"<field var='FORM_TYPE' type='hidden'><value>{form_type}</value></field>"
    for var, value in fields.items():
        body += f"<field var='pubsub#{var}'><value>{value}</value></field>"
    return f"<{tag} xmlns='{ns}'><x xmlns='jabber:x:data' type='submit'>{body}</x></{tag}>"
