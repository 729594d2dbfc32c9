"""Persistent rooms through the bundled services over a real SQLite file:
the room's configuration, subject and affiliations are written by
``ServerServices.commit`` from the service's ``Persist`` effects and loaded
again by a new server over the same file; temporary rooms are not."""

from __future__ import annotations

from pathlib import Path

from xmpp_sansio.jid import JID
from xmpp_sansio.server import Router
from xmpp_sansio.server.effects import Deliver, Effect, Persist
from xmpp_sansio.server.muc.permissions import Affiliation
from xmpp_sansio.testing import seeded_rng, x
from xmpp_trio.config import ServerConfig
from xmpp_trio.services import ServerServices, open_database
from xmpp_trio.storage import AccountStore

MUC = "http://jabber.org/protocol/muc"
ROOM = "verona@conference.localhost"
OWNER = JID.parse("romeo@localhost/orchard")


class Server:
    """The bundled services over ``data_dir``, one bound session (romeo)."""

    def __init__(self, data_dir: Path) -> None:
        self.config = ServerConfig(data_dir=data_dir)
        self.accounts = AccountStore.open(data_dir / "accounts.db")
        self.db = open_database(self.config)
        self.services = ServerServices(self.config, self.accounts, self.db)
        self.router = Router(
            self.config.domains,
            rng=seeded_rng(3),
            account_exists=lambda local, domain: True,
            services=self.services.services,
            hosts=self.services.hosts,
            clock=lambda: 1000.0,
        )
        self.got: list[object] = []
        self.apply(self.router.bind(1, OWNER))

    def apply(self, effects: list[Effect]) -> None:
        persists = [e for e in effects if isinstance(e, Persist)]
        if persists:
            self.services.commit([p.op for p in persists])
            self.apply(self.router.persisted(persists, None))
        self.got.extend(e.element for e in effects if isinstance(e, Deliver))

    def send(self, stanza: str) -> None:
        self.apply(self.router.route(1, x(stanza)))

    def close(self) -> None:
        self.db.close()
        self.accounts.close()


def configure(server: Server, room: str, fields: str) -> None:
    server.send(
        f"<iq type='set' id='c' to='{room}'><query xmlns='{MUC}#owner'>"
        f"<x xmlns='jabber:x:data' type='submit'>{fields}</x></query></iq>"
    )


def test_a_persistent_room_survives_a_restart_with_its_affiliations_and_subject(
    tmp_path: Path,
) -> None:
    server = Server(tmp_path)
    server.send(f"<presence to='{ROOM}/romeo'><x xmlns='{MUC}'/></presence>")
    configure(
        server,
        ROOM,
        "<field var='muc#roomconfig_persistentroom'><value>1</value></field>"
        "<field var='muc#roomconfig_membersonly'><value>1</value></field>"
        "<field var='muc#roomconfig_roomname'><value>Verona</value></field>",
    )
    server.send(
        f"<iq type='set' id='a' to='{ROOM}'><query xmlns='{MUC}#admin'>"
        "<item jid='juliet@localhost' affiliation='member'/><item jid='tybalt@localhost' affiliation='outcast'/>"
        "</query></iq>"
    )
    server.send(f"<message to='{ROOM}' type='groupchat'><subject>Act I</subject></message>")
    # A temporary room next to it is not kept.
    server.send("<presence to='temp@conference.localhost/romeo'/>")
    server.close()

    again = Server(tmp_path)
    assert again.services.muc is not None
    rooms = again.services.muc.rooms
    assert set(rooms) == {JID.parse(ROOM)}
    room = rooms[JID.parse(ROOM)]
    assert room.config.members_only and room.config.name == "Verona" and room.subject == "Act I"
    assert room.affiliations == {
        OWNER.bare: Affiliation.OWNER,
        JID.parse("juliet@localhost"): Affiliation.MEMBER,
        JID.parse("tybalt@localhost"): Affiliation.OUTCAST,
    }
    # The reloaded room answers: its owner enters it and reads the member list.
    again.send(f"<presence to='{ROOM}/romeo'><x xmlns='{MUC}'/></presence>")
    again.send(
        f"<iq type='get' id='m' to='{ROOM}'><query xmlns='{MUC}#admin'><item affiliation='member'/></query></iq>"
    )
    answer = again.got[-1]
    assert [i.get("jid") for i in answer.iter(f"{{{MUC}#admin}}item")] == ["juliet@localhost"]
    again.close()


def test_destroying_a_persistent_room_removes_it_from_the_store(tmp_path: Path) -> None:
    server = Server(tmp_path)
    server.send(f"<presence to='{ROOM}/romeo'><x xmlns='{MUC}'/></presence>")
    configure(server, ROOM, "<field var='muc#roomconfig_persistentroom'><value>1</value></field>")
    server.send(
        f"<iq type='set' id='d' to='{ROOM}'><query xmlns='{MUC}#owner'><destroy/></query></iq>"
    )
    server.close()
    again = Server(tmp_path)
    assert again.services.muc is not None and again.services.muc.rooms == {}
    again.close()
