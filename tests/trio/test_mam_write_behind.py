"""Archived copies of messages are written behind (docs/mam.md, "Cost"), on
real SQLite files: the message is delivered by the batch that routes it,
its archive row is committed by the next flush (one transaction, many
rows), and the server's other writes keep their own transaction and
``synchronous=FULL``."""

from __future__ import annotations

import dataclasses
import secrets
import sqlite3
import xml.etree.ElementTree as ET

from xmpp_sansio.jid import JID
from xmpp_sansio.server import Deliver, Router
from xmpp_sansio.server.effects import Persist, VCardPut
from xmpp_sansio.server.mam.service import MamLimits
from xmpp_sansio.server.mam.store import ArchivePut, ArchiveQuery
from xmpp_trio.config import ServerConfig
from xmpp_trio.mam_config import ArchiveWriterLimits
from xmpp_trio.services import ServerServices, open_database
from xmpp_trio.storage import AccountStore

C = "{jabber:client}"
ROMEO = JID.parse("romeo@localhost/orchard")
JULIET = JID.parse("juliet@localhost/balcony")


def world(config: ServerConfig) -> tuple[ServerServices, Router, sqlite3.Connection]:
    config = dataclasses.replace(config, mam=MamLimits(enabled=True))
    store = AccountStore.open(config.database_path)
    for user in ("romeo", "juliet"):
        if not store.exists(user, "localhost"):
            store.create(user, "localhost", "pw-pw-pw", iterations=4096)
    db = open_database(config)
    svc = ServerServices(config, store, db)
    router = Router(
        config.domains,
        rng=secrets.token_bytes,
        account_exists=lambda local, domain: store.exists(local, domain),
        services=svc.services,
        clock=svc.clock,
    )
    for session, jid in ((1, ROMEO), (2, JULIET)):
        router.bind(session, jid)
        router.route(session, ET.Element(C + "presence"))
    return svc, router, db


def chat(router: Router, body: str) -> tuple[list[Deliver], list[Persist]]:
    msg = ET.Element(C + "message", {"to": str(JULIET), "type": "chat", "id": body})
    ET.SubElement(msg, C + "body").text = body
    effects = router.route(1, msg)
    return (
        [e for e in effects if isinstance(e, Deliver)],
        [e for e in effects if isinstance(e, Persist)],
    )


def rows(config: ServerConfig) -> int:
    with sqlite3.connect(config.database_path) as other:  # another connection: committed rows
        return int(other.execute("SELECT COUNT(*) FROM mam_items").fetchone()[0])


def test_an_archived_message_is_delivered_before_its_row_is_committed(
    server_config: ServerConfig,
) -> None:
    svc, router, db = world(server_config)
    delivered, persists = chat(router, "hello")
    assert [d.session for d in delivered] == [2]
    assert [type(p.op) for p in persists] == [ArchivePut]
    # Nothing is held and nothing is left for the batch's transaction.
    assert svc.write_behind(persists) == [] and not svc.behind_full()
    assert rows(server_config) == 0
    svc.flush()
    assert rows(server_config) == 1
    # The flush committed with synchronous=NORMAL and put FULL back.
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2
    page = svc.archive.load(ArchiveQuery(JULIET.bare, 10))
    assert [b"<body>hello</body>" in m.stanza for m in page.items] == [True]
    db.close()


def test_other_writes_of_the_batch_keep_their_transaction(server_config: ServerConfig) -> None:
    svc, router, db = world(server_config)
    _, persists = chat(router, "one")
    vcard = Persist(VCardPut(ROMEO.bare, b"<vCard xmlns='vcard-temp'/>"))
    assert svc.write_behind([*persists, vcard]) == [vcard]
    svc.commit([vcard.op])  # the batch's transaction writes what is kept behind too
    assert rows(server_config) == 1 and svc.archive.behind == []
    db.close()


def test_a_full_write_behind_queue_is_committed_by_the_next_batch(
    server_config: ServerConfig,
) -> None:
    config = dataclasses.replace(server_config, mam_writer=ArchiveWriterLimits(loop_batch=3))
    svc, router, db = world(config)
    for i in range(3):
        _, persists = chat(router, f"m{i}")
        assert svc.write_behind(persists) == []
    assert svc.behind_full()
    svc.commit([])  # what StorageEdge.settle does then
    assert rows(server_config) == 3 and not svc.behind_full()
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2
    db.close()
