"""Archived copies of messages are written behind (docs/mam.md, "Cost"), on
real SQLite files: the message is delivered by the batch that routes it,
its archive row is committed by the next flush (one transaction, many
rows), and the server's other writes keep their own transaction and
``synchronous=FULL``."""

from __future__ import annotations

import dataclasses
import secrets
import sqlite3
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xmpp_sansio.jid import JID
from xmpp_sansio.server import Deliver, Router
from xmpp_sansio.server.effects import Outcome, Persist, StoreOp, VCardPut
from xmpp_sansio.server.mam.service import MamLimits
from xmpp_sansio.server.mam.store import ArchivePut, ArchiveQuery
from xmpp_sansio.server.service import Service
from xmpp_sansio.server.stages import Context, Event, MessageSent
from xmpp_sansio.xml.parser import parse_fragment
from xmpp_trio._edge import StorageEdge
from xmpp_trio.config import ServerConfig
from xmpp_trio.mam_config import ArchiveWriterLimits
from xmpp_trio.metrics import Metrics
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


def chat(router: Router, body: str) -> tuple[list[Deliver], list[StoreOp]]:
    """The message's deliveries and the ops written behind (``Router.behind``,
    which the I/O layer empties): no ``Persist`` effect for an archived copy."""
    msg = ET.Element(C + "message", {"to": str(JULIET), "type": "chat", "id": body})
    ET.SubElement(msg, C + "body").text = body
    effects = router.route(1, msg)
    assert not any(isinstance(e, Persist) for e in effects)
    behind, router.behind[:] = list(router.behind), []
    return [e for e in effects if isinstance(e, Deliver)], behind


def rows(config: ServerConfig) -> int:
    with sqlite3.connect(config.database_path) as other:  # another connection: committed rows
        return int(other.execute("SELECT COUNT(*) FROM mam_items").fetchone()[0])


def test_an_archived_message_is_delivered_before_its_row_is_committed(
    server_config: ServerConfig,
) -> None:
    svc, router, db = world(server_config)
    delivered, behind = chat(router, "hello")
    assert [d.session for d in delivered] == [2]
    assert [type(op) for op in behind] == [ArchivePut]
    # Nothing is held and nothing is left for the batch's transaction.
    svc.keep_behind(behind)
    assert behind == [] and not svc.behind_full()
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
    _, behind = chat(router, "one")
    svc.keep_behind(behind)
    vcard = Persist(VCardPut(ROMEO.bare, b"<vCard xmlns='vcard-temp'/>"))
    assert svc.write_behind([vcard]) == [vcard]
    svc.commit([vcard.op])  # the batch's transaction writes what is kept behind too
    assert rows(server_config) == 1 and svc.archive.behind == []
    db.close()


def test_a_full_write_behind_queue_is_committed_by_the_next_batch(
    server_config: ServerConfig,
) -> None:
    config = dataclasses.replace(server_config, mam_writer=ArchiveWriterLimits(loop_batch=3))
    svc, router, db = world(config)
    for i in range(3):
        _, behind = chat(router, f"m{i}")
        svc.keep_behind(behind)
    assert svc.behind_full()
    svc.commit([])  # what StorageEdge.settle does then
    assert rows(server_config) == 3 and not svc.behind_full()
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2
    db.close()


class _FailingRead(Service):
    """Raises ``sqlite3.Error`` (a store read that failed) for a message whose
    body starts with ``late``, after the archive wrote its copy behind."""

    observes: ClassVar[tuple[type[Event], ...]] = (MessageSent,)

    def observe(self, ctx: Context, event: Event) -> list[Outcome]:
        assert isinstance(event, MessageSent)
        if (event.element.findtext(C + "body") or "").startswith("late"):
            raise sqlite3.OperationalError("disk I/O error")
        return []


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=10),
    st.booleans(),
)
def test_a_routing_call_that_raised_archives_nothing_and_the_others_are_committed_in_order(
    calls: list[tuple[bool, bool]], writer: bool
) -> None:
    # What XMPPServer does: a call that raises sqlite3.Error is reported with
    # Router.abandoned (storage_failed); StorageEdge.settle ends each batch.
    with tempfile.TemporaryDirectory() as tmp:
        config = ServerConfig(domains=("localhost",), data_dir=Path(tmp), scram_iterations=4096)
        config = dataclasses.replace(config, mam=MamLimits(enabled=True))
        store = AccountStore.open(config.database_path)
        for user in ("romeo", "juliet"):
            store.create(user, "localhost", "pw-pw-pw", iterations=4096)
        db = open_database(config)
        svc = ServerServices(config, store, db, archive_writer=writer)
        router = Router(
            config.domains,
            rng=secrets.token_bytes,
            account_exists=lambda local, domain: store.exists(local, domain),
            services=[*svc.services, _FailingRead()],
            clock=svc.clock,
        )
        for session, jid in ((1, ROMEO), (2, JULIET)):
            router.bind(session, jid)
            router.route(session, ET.Element(C + "presence"))
        edge = StorageEdge(svc, router, Metrics())

        def apply(effects: Sequence[object]) -> None:
            edge.persists.extend(e for e in effects if isinstance(e, Persist))

        returned = []
        for i, (raises, batch_ends) in enumerate(calls):
            body = f"late {i}" if raises else f"ok {i}"
            msg = ET.Element(C + "message", {"to": str(JULIET), "type": "chat"})
            ET.SubElement(msg, C + "body").text = body
            try:
                apply(router.route(1, msg, owned=True))
            except sqlite3.Error:  # XMPPServer.storage_failed (the error logged)
                apply(router.abandoned([p.op for p in edge.persists]))
            else:
                returned.append(body)
            if batch_ends:
                edge.settle(apply)
        edge.settle(apply)
        svc.close()
        with sqlite3.connect(config.database_path) as other:
            stanzas = [r[0] for r in other.execute("SELECT stanza FROM mam_items ORDER BY seq")]
        db.close()
        store.close()
    bodies = [parse_fragment(bytes(s)).findtext(C + "body") for s in stanzas]
    assert bodies == returned
