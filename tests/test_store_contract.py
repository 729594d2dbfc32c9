"""The store contract: one suite, every backend.

Each service's storage Protocol (``RosterStorage``, ``OfflineStorage``,
``BlockStorage``, ``VCardStorage``, ``PrivateStorage``,
``LastActivityStorage``, ``AccountDirectory``) is the contract a backend
implements; docs/architecture.md ("The store contract") states it. This
suite runs the same assertions against the in-memory stores of
``xmpp_sansio.server`` and the SQLite stores of ``xmpp_trio.stores`` (real
files in ``tmp_path``); a new backend (PostgreSQL) adds one entry to
``BACKENDS``. ``reopen()`` gives a store of the same kind over the same data
as after a restart (a fresh connection to the file for SQLite, the same
object in memory): what a mutating method wrote must be there (it is durable
when the method returns), except last activity's logout times, which may be
written behind until ``flush()``. Every store's ``apply(ops)`` (the ``Persist``
ops its service returns: the only way the services write) is checked the
same way: in order, durable, all or nothing, another store's op refused.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import fromstring

import pytest

from xmpp_sansio.jid import JID
from xmpp_sansio.roster import RosterItem, Subscription
from xmpp_sansio.server.blocking import BlockStorage, MemoryBlockStorage
from xmpp_sansio.server.effects import (
    AccountDelete,
    BlockAdd,
    BlockClear,
    BlockRemove,
    LastForget,
    LastSet,
    OfflineDelete,
    OfflinePush,
    PrivateDelete,
    PrivatePut,
    RosterDelete,
    RosterPut,
    VCardDelete,
    VCardPut,
)
from xmpp_sansio.server.last import LastActivityStorage, LastLogout, MemoryLastActivityStorage
from xmpp_sansio.server.muc.store import (
    MemoryMucStorage,
    MucAffiliationPut,
    MucRoomDelete,
    MucRoomPut,
    MucStorage,
)
from xmpp_sansio.server.offline import MemoryOfflineStorage, OfflineStorage
from xmpp_sansio.server.private import MemoryPrivateStorage, PrivateStorage
from xmpp_sansio.server.pubsub.store import (
    MemoryPubSubStorage,
    PubSubAffiliationSave,
    PubSubItemDelete,
    PubSubItemSave,
    PubSubNodeDelete,
    PubSubNodeSave,
    PubSubPurge,
    PubSubServiceDelete,
    PubSubStorage,
    PubSubSubscriptionSave,
)
from xmpp_sansio.server.pubsub.store import StoredItem as PubSubItem
from xmpp_sansio.server.register import AccountDirectory, MemoryAccountDirectory
from xmpp_sansio.server.roster import MemoryRosterStorage, RosterStorage, StoredItem
from xmpp_sansio.server.vcard import MemoryVCardStorage, VCardStorage
from xmpp_sansio.xml.element import elements_equal
from xmpp_trio.storage import AccountStore
from xmpp_trio.stores.accounts import AccountDirectoryAdapter
from xmpp_trio.stores.blocking import SqliteBlockStorage
from xmpp_trio.stores.last import SqliteLastActivityStorage
from xmpp_trio.stores.muc import SqliteMucStorage
from xmpp_trio.stores.offline import SqliteOfflineStorage
from xmpp_trio.stores.private import SqlitePrivateStorage
from xmpp_trio.stores.pubsub import SqlitePubSubStorage
from xmpp_trio.stores.roster import SqliteRosterStorage
from xmpp_trio.stores.vcard import SqliteVCardStorage

ROMEO = JID.parse("romeo@example.com")
JULIET = JID.parse("juliet@example.com")
NURSE = JID.parse("nurse@example.com")
TYBALT = JID.parse("tybalt@example.net")


# -- backends ------------------------------------------------------------------------


@dataclass
class Backend:
    """Makes each kind of store; ``reopen`` makes it again over the same data."""

    make: Callable[[str], Any]
    reopen: Callable[[str], Any]
    add_account: Callable[[str, str, str], None]
    closers: list[Callable[[], None]] = field(default_factory=list)


def memory_backend(tmp_path: Path) -> Backend:
    stores: dict[str, Any] = {}
    factories: dict[str, Callable[[], Any]] = {
        "roster": MemoryRosterStorage,
        "offline": MemoryOfflineStorage,
        "block": MemoryBlockStorage,
        "vcard": MemoryVCardStorage,
        "private": MemoryPrivateStorage,
        "last": MemoryLastActivityStorage,
        "accounts": MemoryAccountDirectory,
        "pubsub": MemoryPubSubStorage,
        "muc": MemoryMucStorage,
    }

    def make(kind: str) -> Any:
        stores[kind] = factories[kind]()
        return stores[kind]

    def add_account(local: str, domain: str, password: str) -> None:
        directory = stores["accounts"]
        assert isinstance(directory, MemoryAccountDirectory)
        directory.create(local, domain, password)

    return Backend(make, lambda kind: stores[kind], add_account)


def sqlite_backend(tmp_path: Path) -> Backend:
    path = tmp_path / "services.db"
    backend: Backend

    def connect() -> sqlite3.Connection:
        # As xmpp_trio.services.open_database: autocommit, WAL, foreign keys.
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        backend.closers.append(conn.close)
        return conn

    accounts: list[AccountStore] = []
    factories: dict[str, Callable[[], Any]] = {
        "roster": lambda: SqliteRosterStorage(connect()),
        "offline": lambda: SqliteOfflineStorage(connect()),
        "block": lambda: SqliteBlockStorage(connect()),
        "vcard": lambda: SqliteVCardStorage(connect()),
        "private": lambda: SqlitePrivateStorage(connect()),
        "last": lambda: SqliteLastActivityStorage(connect()),
        "accounts": lambda: open_accounts(),
        "pubsub": lambda: SqlitePubSubStorage(connect()),
        "muc": lambda: SqliteMucStorage(connect()),
    }

    def open_accounts() -> AccountDirectoryAdapter:
        store = AccountStore.open(tmp_path / "accounts.db")
        backend.closers.append(store.close)
        accounts.append(store)
        return AccountDirectoryAdapter(store, iterations=1)

    def add_account(local: str, domain: str, password: str) -> None:
        accounts[-1].create(local, domain, password, iterations=1)

    backend = Backend(lambda kind: factories[kind](), lambda kind: factories[kind](), add_account)
    return backend


BACKENDS = {"memory": memory_backend, "sqlite": sqlite_backend}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    made = BACKENDS[request.param](tmp_path)
    yield made
    for close in reversed(made.closers):
        close()


# -- RosterStorage (RFC 6121 §2) ---------------------------------------------------------


def item(contact: JID, sub: Subscription = Subscription.NONE, **kw: Any) -> StoredItem:
    return StoredItem(RosterItem(contact, subscription=sub, **{"groups": frozenset(), **kw}))


def test_roster_starts_empty_with_a_version(backend: Backend) -> None:
    store: RosterStorage = backend.make("roster")
    version, records = store.get(ROMEO)
    assert records == [] and isinstance(version, str)
    assert store.version(ROMEO) == version
    assert store.item(ROMEO, JULIET) is None
    assert store.count(ROMEO) == 0 and store.holders(JULIET) == []


def test_roster_records_round_trip_in_first_stored_order(backend: Backend) -> None:
    store: RosterStorage = backend.make("roster")
    request = fromstring(
        "<presence xmlns='jabber:client' type='subscribe'><status>hi</status></presence>"
    )
    nurse = StoredItem(RosterItem(NURSE), in_roster=False, pending_in=True, pending_request=request)
    juliet = item(JULIET, Subscription.BOTH, name="Juliet", groups=frozenset({"Capulet", "Love"}))
    store.put(ROMEO, juliet)
    store.put(ROMEO, nurse)
    store.put(ROMEO, item(JULIET, Subscription.TO, approved=True))  # replaces, keeps the place
    for reopened in (store, backend.reopen("roster")):
        _, records = reopened.get(ROMEO)
        assert [r.jid for r in records] == [JULIET, NURSE]
        assert records[0] == item(JULIET, Subscription.TO, approved=True)
        assert records[1] == nurse
        assert records[1].pending_request is not None
        assert elements_equal(records[1].pending_request, request)
        assert reopened.count(ROMEO) == 2
        assert reopened.item(ROMEO, NURSE) == nurse


def test_roster_version_changes_with_every_change_and_is_never_reused(backend: Backend) -> None:
    store: RosterStorage = backend.make("roster")
    seen = [store.version(ROMEO)]
    seen.append(store.put(ROMEO, item(JULIET)))
    seen.append(store.put(ROMEO, item(JULIET, Subscription.BOTH)))
    seen.append(store.delete(ROMEO, JULIET))
    assert store.delete(ROMEO, JULIET) == seen[-1]  # nothing deleted: unchanged
    seen.append(store.put(ROMEO, item(JULIET)))
    assert len(set(seen)) == len(seen)
    assert store.version(ROMEO) == seen[-1] == store.get(ROMEO)[0]
    assert backend.reopen("roster").version(ROMEO) == seen[-1]
    assert store.version(JULIET) not in seen[1:]  # versions are per user


def test_roster_holders_are_the_users_with_a_record_for_the_contact(backend: Backend) -> None:
    store: RosterStorage = backend.make("roster")
    store.put(ROMEO, item(TYBALT))
    store.put(JULIET, item(TYBALT))
    store.put(JULIET, item(NURSE))
    assert sorted(map(str, store.holders(TYBALT))) == [str(JULIET), str(ROMEO)]
    store.delete(ROMEO, TYBALT)
    assert backend.reopen("roster").holders(TYBALT) == [JULIET]


def test_roster_persist_ops_write_records_and_the_versions_they_name(backend: Backend) -> None:
    store: RosterStorage = backend.make("roster")
    nurse = StoredItem(RosterItem(NURSE, "Nurse", Subscription.BOTH, groups=frozenset({"A"})))
    store.apply(
        [
            RosterPut(ROMEO, StoredItem(RosterItem(JULIET, "J")), "1"),
            RosterPut(ROMEO, nurse, "2"),
            RosterPut(ROMEO, StoredItem(RosterItem(JULIET, "Juliet")), "3"),  # keeps its place
        ]
    )
    store.apply([RosterDelete(ROMEO, NURSE, "4"), RosterPut(JULIET, nurse, "7")])
    reopened = backend.reopen("roster")
    version, records = reopened.get(ROMEO)
    assert version == "4"
    assert [(r.jid, r.item.name) for r in records] == [(JULIET, "Juliet")]
    assert reopened.version(JULIET) == "7"
    assert reopened.holders(NURSE) == [JULIET]


def test_roster_persist_ops_are_all_or_nothing(backend: Backend) -> None:
    store: RosterStorage = backend.make("roster")
    with pytest.raises(TypeError):
        store.apply([RosterPut(ROMEO, StoredItem(RosterItem(JULIET)), "1"), VCardDelete(ROMEO)])
    reopened = backend.reopen("roster")
    assert reopened.get(ROMEO) == ("0", [])


# -- OfflineStorage (XEP-0160) ---------------------------------------------------------


def test_offline_messages_come_back_oldest_first_with_increasing_ids(backend: Backend) -> None:
    store: OfflineStorage = backend.make("offline")
    assert store.peek(JULIET) == [] and store.count(JULIET) == 0
    for i in range(3):
        assert store.push(JULIET, f"<m{i}/>".encode(), 100.0 + i, 10)
    store.push(ROMEO, b"<other/>", 5.0, 10)
    for reopened in (store, backend.reopen("offline")):
        stored = reopened.peek(JULIET)
        assert [m.stanza for m in stored] == [b"<m0/>", b"<m1/>", b"<m2/>"]
        assert [m.stamp for m in stored] == [100.0, 101.0, 102.0]
        assert [m.id for m in stored] == sorted({m.id for m in stored})
        assert [m.stanza for m in reopened.peek(JULIET, 2)] == [b"<m0/>", b"<m1/>"]
        assert reopened.count(JULIET) == 3 and reopened.count(ROMEO) == 1


def test_offline_push_refuses_beyond_the_limit(backend: Backend) -> None:
    store: OfflineStorage = backend.make("offline")
    assert store.push(JULIET, b"<a/>", 1.0, 2)
    assert store.push(JULIET, b"<b/>", 1.0, 2)
    assert not store.push(JULIET, b"<c/>", 1.0, 2)
    assert store.count(JULIET) == 2
    assert not store.push(ROMEO, b"<a/>", 1.0, 0)


def test_offline_delete_removes_up_to_an_id_of_that_user_only(backend: Backend) -> None:
    store: OfflineStorage = backend.make("offline")
    for i in range(4):
        store.push(JULIET, f"<m{i}/>".encode(), 1.0, 10)
    store.push(ROMEO, b"<r/>", 1.0, 10)
    upto = store.peek(JULIET)[1].id
    store.delete(JULIET, upto)
    store.delete(JULIET, upto)  # again: nothing more goes
    reopened = backend.reopen("offline")
    assert [m.stanza for m in reopened.peek(JULIET)] == [b"<m2/>", b"<m3/>"]
    assert reopened.count(ROMEO) == 1
    last = store.peek(JULIET)[-1].id
    store.delete(JULIET, last)  # the queue is empty now
    reopened = backend.reopen("offline")
    assert reopened.push(JULIET, b"<m4/>", 1.0, 10)
    (stored,) = reopened.peek(JULIET)
    assert stored.id > last  # ids are never reused, not even by an empty queue


def test_offline_persist_ops_are_applied_in_order_and_durable(backend: Backend) -> None:
    store: OfflineStorage = backend.make("offline")
    assert store.last_id() == 0
    first = store.last_id() + 1
    store.apply(
        [
            OfflinePush(JULIET, first, b"<m0/>", 1.0),
            OfflinePush(ROMEO, first + 1, b"<r/>", 2.0),
            OfflinePush(JULIET, first + 2, b"<m1/>", 3.0),
            OfflineDelete(JULIET, first),  # the same batch deletes its first write
        ]
    )
    reopened = backend.reopen("offline")
    assert [(m.id, m.stanza, m.stamp) for m in reopened.peek(JULIET)] == [
        (first + 2, b"<m1/>", 3.0)
    ]
    assert reopened.count(ROMEO) == 1
    assert reopened.last_id() == first + 2


def test_offline_last_id_never_goes_back_and_peek_reads_after_an_id(backend: Backend) -> None:
    store: OfflineStorage = backend.make("offline")
    store.push(JULIET, b"<a/>", 1.0, 10)
    store.push(JULIET, b"<b/>", 1.0, 10)
    store.push(JULIET, b"<c/>", 1.0, 10)
    ids = [m.id for m in store.peek(JULIET)]
    assert [m.stanza for m in store.peek(JULIET, 1, after_id=ids[0])] == [b"<b/>"]
    store.apply([OfflineDelete(JULIET, ids[-1])])
    reopened = backend.reopen("offline")
    assert reopened.last_id() == ids[-1]  # an empty queue keeps its highest id
    assert reopened.peek(JULIET, after_id=0) == []


def test_offline_persist_ops_are_all_or_nothing(backend: Backend) -> None:
    store: OfflineStorage = backend.make("offline")
    store.apply([OfflinePush(JULIET, 1, b"<a/>", 1.0)])
    with pytest.raises((ValueError, sqlite3.Error)):  # the id is taken
        store.apply([OfflinePush(ROMEO, 2, b"<b/>", 1.0), OfflinePush(JULIET, 1, b"<c/>", 1.0)])
    reopened = backend.reopen("offline")
    assert [m.stanza for m in reopened.peek(JULIET)] == [b"<a/>"]
    assert reopened.count(ROMEO) == 0


# -- PubSubStorage (XEP-0060, XEP-0163) -------------------------------------------------


def _item(item_id: str, seq: int, payload: bytes = b"<a xmlns='urn:x'/>") -> PubSubItem:
    return PubSubItem(item_id, payload, "romeo@example.com", 1.5, seq)


def test_pubsub_nodes_round_trip_with_items_affiliations_and_subscriptions(
    backend: Backend,
) -> None:
    store: PubSubStorage = backend.make("pubsub")
    svc = "romeo@example.com"
    store.apply(
        [
            PubSubNodeSave(svc, "b", (("max_items", "max"), ("roster_groups_allowed", "x"))),
            PubSubNodeSave(svc, "a", (("access_model", "open"),)),
            PubSubItemSave(svc, "b", _item("one", 1)),
            PubSubItemSave(svc, "b", _item("two", 2, b"\xc3\xa9<b xmlns='u'>&amp;</b>")),
            PubSubItemSave(svc, "b", _item("one", 3)),  # replaced: now the newest
            PubSubAffiliationSave(svc, "b", "nurse@example.com", "publisher"),
            PubSubAffiliationSave(svc, "b", "tybalt@example.com", "outcast"),
            PubSubSubscriptionSave(svc, "b", "juliet@example.com", "s1", "pending"),
            PubSubSubscriptionSave(svc, "b", "juliet@example.com", "s1", "subscribed"),
            PubSubItemSave(svc, "gone", _item("x", 1)),  # no such node: ignored
        ]
    )
    for reader in (store, backend.reopen("pubsub")):
        nodes = reader.load(svc)
        assert [n.name for n in nodes] == ["b", "a"]
        b = nodes[0]
        assert b.config == (("max_items", "max"), ("roster_groups_allowed", "x"))
        assert [(i.id, i.seq) for i in b.items] == [("two", 2), ("one", 3)]
        assert b.items[0].payload == b"\xc3\xa9<b xmlns='u'>&amp;</b>"
        assert b.affiliations == (
            ("nurse@example.com", "publisher"),
            ("tybalt@example.com", "outcast"),
        )
        assert b.subscriptions == (("juliet@example.com", "s1", "subscribed"),)
        assert reader.load("juliet@example.com") == []


def test_pubsub_deletes_purges_and_forgets_a_service(backend: Backend) -> None:
    store: PubSubStorage = backend.make("pubsub")
    store.apply(
        [
            PubSubNodeSave("s", "n", ()),
            PubSubNodeSave("s", "m", ()),
            PubSubNodeSave("t", "n", ()),
            PubSubItemSave("s", "n", _item("1", 1)),
            PubSubItemSave("s", "n", _item("2", 2)),
            PubSubItemSave("s", "m", _item("1", 1)),
            PubSubAffiliationSave("s", "n", "a@b", "member"),
            PubSubSubscriptionSave("s", "n", "a@b", "x", "subscribed"),
        ]
    )
    store.apply(
        [
            PubSubItemDelete("s", "n", "1"),
            PubSubAffiliationSave("s", "n", "a@b", "none"),
            PubSubSubscriptionSave("s", "n", "a@b", "x", "none"),
            PubSubPurge("s", "m"),
        ]
    )
    reopened = backend.reopen("pubsub")
    n, m = reopened.load("s")
    assert [i.id for i in n.items] == ["2"] and m.items == ()
    assert n.affiliations == () and n.subscriptions == ()
    store.apply([PubSubNodeDelete("s", "n")])
    assert [node.name for node in backend.reopen("pubsub").load("s")] == ["m"]
    store.apply([PubSubServiceDelete("s")])
    reopened = backend.reopen("pubsub")
    assert reopened.load("s") == []
    assert [node.name for node in reopened.load("t")] == ["n"]


# -- MucStorage (XEP-0045 persistent rooms) ----------------------------------------------

ROOM = JID.parse("verona@conference.example.com")


def test_muc_rooms_round_trip_with_config_subject_and_affiliations(backend: Backend) -> None:
    store: MucStorage = backend.make("muc")
    assert store.rooms() == []
    config = {
        "name": "Verona",
        "members_only": True,
        "presence_broadcast": ["moderator"],
        "max_users": 30,
    }
    store.apply(
        [
            MucRoomPut(ROOM, config, "Act I", "nurse"),
            MucAffiliationPut(ROOM, ROMEO, "owner"),
            MucAffiliationPut(ROOM, JULIET, "member", "Jules"),
            MucAffiliationPut(ROOM, TYBALT, "outcast"),
        ]
    )
    store.apply([MucAffiliationPut(ROOM, TYBALT, "none"), MucRoomPut(ROOM, config, "Act II", "")])
    (stored,) = backend.reopen("muc").rooms()
    assert (stored.room, stored.config, stored.subject, stored.subject_by) == (
        ROOM,
        config,
        "Act II",
        "",
    )
    assert stored.affiliations == {ROMEO: ("owner", ""), JULIET: ("member", "Jules")}


def test_muc_room_delete_forgets_the_room_and_its_affiliations(backend: Backend) -> None:
    store: MucStorage = backend.make("muc")
    other = JID.parse("mantua@conference.example.com")
    store.apply([MucRoomPut(ROOM, {}, "", ""), MucAffiliationPut(ROOM, ROMEO, "owner")])
    store.apply([MucRoomPut(other, {}, "", ""), MucRoomDelete(ROOM)])
    assert [r.room for r in backend.reopen("muc").rooms()] == [other]
    assert backend.reopen("muc").rooms()[0].affiliations == {}


def test_muc_ops_are_all_or_nothing(backend: Backend) -> None:
    store: MucStorage = backend.make("muc")
    with pytest.raises((KeyError, sqlite3.Error)):  # an affiliation of a room not stored
        store.apply(
            [
                MucRoomPut(ROOM, {}, "", ""),
                MucAffiliationPut(JID.parse("no@conference.example.com"), ROMEO, "owner"),
            ]
        )
    assert backend.reopen("muc").rooms() == []


# -- BlockStorage (XEP-0191) ------------------------------------------------------------


def test_blocklist_adds_removes_and_ignores_repeats(backend: Backend) -> None:
    store: BlockStorage = backend.make("block")
    assert store.blocklist(ROMEO) == set()
    store.block(ROMEO, [TYBALT, NURSE])
    store.block(ROMEO, [TYBALT, JID.parse("example.net")])
    store.unblock(ROMEO, [NURSE, JULIET])  # juliet was not blocked: ignored
    expected = {TYBALT, JID.parse("example.net")}
    assert backend.reopen("block").blocklist(ROMEO) == expected
    mine = store.blocklist(ROMEO)
    mine.add(JULIET)  # the caller's copy
    assert store.blocklist(ROMEO) == expected
    assert store.blocklist(JULIET) == set()
    store.unblock_all(ROMEO)
    store.unblock_all(JULIET)
    assert backend.reopen("block").blocklist(ROMEO) == set()


def test_blocklist_keeps_full_jids_and_domains_apart(backend: Backend) -> None:
    store: BlockStorage = backend.make("block")
    full = JID.parse("tybalt@example.net/sword")
    store.block(ROMEO, [full])
    assert store.blocklist(ROMEO) == {full}


def test_blocklist_persist_ops_are_applied_in_order_and_durable(backend: Backend) -> None:
    store: BlockStorage = backend.make("block")
    store.apply([BlockAdd(ROMEO, (TYBALT, NURSE)), BlockAdd(JULIET, (TYBALT,))])
    store.apply(
        [BlockRemove(ROMEO, (NURSE, JULIET)), BlockClear(JULIET), BlockAdd(ROMEO, (TYBALT,))]
    )
    reopened = backend.reopen("block")
    assert reopened.blocklist(ROMEO) == {TYBALT}
    assert reopened.blocklist(JULIET) == set()


def test_blocklist_persist_ops_are_all_or_nothing(backend: Backend) -> None:
    store: BlockStorage = backend.make("block")
    with pytest.raises(TypeError):
        store.apply([BlockAdd(ROMEO, (TYBALT,)), VCardDelete(ROMEO)])
    assert backend.reopen("block").blocklist(ROMEO) == set()


def test_blocking_users_are_the_users_with_a_list(backend: Backend) -> None:
    """The optional ``blocking_users`` (the service is idle while it is empty,
    XEP-0191): every user with a non-empty list, bare, after a reopen too."""
    store: BlockStorage = backend.make("block")
    if not hasattr(store, "blocking_users"):
        pytest.skip("this backend cannot tell (the filters always run)")
    assert store.blocking_users() == set()  # type: ignore[attr-defined]
    store.apply([BlockAdd(ROMEO, (TYBALT, NURSE)), BlockAdd(JULIET, (TYBALT,))])
    store.apply([BlockRemove(ROMEO, (TYBALT, NURSE))])
    assert store.blocking_users() == {JULIET}  # type: ignore[attr-defined]
    assert backend.reopen("block").blocking_users() == {JULIET}
    store.apply([BlockClear(JULIET)])
    assert store.blocking_users() == set()  # type: ignore[attr-defined]


# -- VCardStorage (XEP-0054) -------------------------------------------------------------


def test_vcard_put_replaces_and_delete_forgets(backend: Backend) -> None:
    store: VCardStorage = backend.make("vcard")
    assert store.get(ROMEO) is None
    store.put(ROMEO, b"<vCard xmlns='vcard-temp'><FN>R</FN></vCard>")
    store.put(ROMEO, b"<vCard xmlns='vcard-temp'><FN>Romeo</FN></vCard>")
    store.put(JULIET, b"<vCard xmlns='vcard-temp'/>")
    assert backend.reopen("vcard").get(ROMEO) == b"<vCard xmlns='vcard-temp'><FN>Romeo</FN></vCard>"
    store.delete(ROMEO)
    store.delete(NURSE)  # none: no-op
    reopened = backend.reopen("vcard")
    assert reopened.get(ROMEO) is None
    assert reopened.get(JULIET) == b"<vCard xmlns='vcard-temp'/>"


def test_vcard_persist_ops_are_applied_in_order_and_durable(backend: Backend) -> None:
    store: VCardStorage = backend.make("vcard")
    store.apply([VCardPut(ROMEO, b"<vCard xmlns='vcard-temp'/>"), VCardPut(JULIET, b"<j/>")])
    store.apply([VCardPut(ROMEO, b"<r2/>"), VCardDelete(JULIET), VCardPut(NURSE, b"<n/>")])
    reopened = backend.reopen("vcard")
    assert reopened.get(ROMEO) == b"<r2/>"
    assert reopened.get(JULIET) is None
    assert reopened.get(NURSE) == b"<n/>"


def test_vcard_persist_ops_refuse_another_stores_op_and_write_nothing(backend: Backend) -> None:
    store: VCardStorage = backend.make("vcard")
    with pytest.raises(TypeError):
        store.apply([VCardPut(ROMEO, b"<r/>"), OfflineDelete(ROMEO, 1)])
    assert backend.reopen("vcard").get(ROMEO) is None


# -- PrivateStorage (XEP-0049) -----------------------------------------------------------


def test_private_elements_are_keyed_by_user_namespace_and_name(backend: Backend) -> None:
    store: PrivateStorage = backend.make("private")
    assert store.get(ROMEO, "urn:a", "x") is None and store.sizes(ROMEO) == {}
    store.put(ROMEO, "urn:a", "x", b"<x xmlns='urn:a'/>")
    store.put(ROMEO, "urn:a", "y", b"<y xmlns='urn:a'>1</y>")
    store.put(ROMEO, "urn:b", "x", b"<x xmlns='urn:b'>22</x>")
    store.put(ROMEO, "urn:a", "x", b"<x xmlns='urn:a'>333</x>")  # replaces
    store.put(JULIET, "urn:a", "x", b"<x xmlns='urn:a'/>")
    reopened = backend.reopen("private")
    assert reopened.get(ROMEO, "urn:a", "x") == b"<x xmlns='urn:a'>333</x>"
    assert reopened.sizes(ROMEO) == {
        ("urn:a", "x"): len(b"<x xmlns='urn:a'>333</x>"),
        ("urn:a", "y"): len(b"<y xmlns='urn:a'>1</y>"),
        ("urn:b", "x"): len(b"<x xmlns='urn:b'>22</x>"),
    }
    store.delete(ROMEO)
    reopened = backend.reopen("private")
    assert reopened.sizes(ROMEO) == {} and reopened.get(ROMEO, "urn:a", "y") is None
    assert reopened.get(JULIET, "urn:a", "x") == b"<x xmlns='urn:a'/>"


def test_private_put_many_stores_all_at_once(backend: Backend) -> None:
    store: PrivateStorage = backend.make("private")
    store.put(ROMEO, "urn:a", "x", b"<old/>")
    store.put_many(ROMEO, [("urn:a", "x", b"<new/>"), ("urn:c", "z", b"<z/>")])
    store.put_many(ROMEO, [])
    reopened = backend.reopen("private")
    assert reopened.get(ROMEO, "urn:a", "x") == b"<new/>"
    assert reopened.get(ROMEO, "urn:c", "z") == b"<z/>"


def test_private_persist_ops_are_applied_in_order_and_durable(backend: Backend) -> None:
    store: PrivateStorage = backend.make("private")
    store.apply([PrivatePut(ROMEO, (("urn:a", "a", b"<a/>"), ("urn:b", "b", b"<b/>")))])
    store.apply(
        [
            PrivateDelete(ROMEO),
            PrivatePut(ROMEO, (("urn:c", "c", b"<c/>"),)),
            PrivatePut(JULIET, (("urn:a", "a", b"<ja/>"),)),
        ]
    )
    reopened = backend.reopen("private")
    assert reopened.sizes(ROMEO) == {("urn:c", "c"): 4}
    assert reopened.get(ROMEO, "urn:a", "a") is None
    assert reopened.get(JULIET, "urn:a", "a") == b"<ja/>"


def test_private_persist_ops_are_all_or_nothing(backend: Backend) -> None:
    store: PrivateStorage = backend.make("private")
    with pytest.raises(TypeError):
        store.apply([PrivatePut(ROMEO, (("urn:a", "a", b"<a/>"),)), VCardDelete(ROMEO)])
    assert backend.reopen("private").sizes(ROMEO) == {}


# -- LastActivityStorage (XEP-0012) ------------------------------------------------------


def flush(store: LastActivityStorage) -> None:
    """Logout times may be written behind (see the module docstring)."""
    flusher = getattr(store, "flush", None)
    if flusher is not None:
        flusher()


def test_last_logout_is_replaced_and_seen_at_once(backend: Backend) -> None:
    store: LastActivityStorage = backend.make("last")
    assert store.get(ROMEO) is None
    store.set(ROMEO, 10.5, "gone")
    assert store.get(ROMEO) == LastLogout(10.5, "gone")
    store.set(ROMEO, 20.25, None)
    assert store.get(ROMEO) == LastLogout(20.25, None)
    flush(store)
    assert backend.reopen("last").get(ROMEO) == LastLogout(20.25, None)


def test_last_forget_is_durable_at_once_even_over_a_pending_write(backend: Backend) -> None:
    store: LastActivityStorage = backend.make("last")
    store.set(ROMEO, 1.0, "a")
    store.set(JULIET, 2.0, "b")
    flush(store)
    store.set(ROMEO, 3.0, "c")  # not flushed
    store.forget(ROMEO)
    assert store.get(ROMEO) is None
    flush(store)
    reopened = backend.reopen("last")
    assert reopened.get(ROMEO) is None
    assert reopened.get(JULIET) == LastLogout(2.0, "b")


def test_last_persist_ops_set_and_forget_in_order(backend: Backend) -> None:
    store: LastActivityStorage = backend.make("last")
    store.apply([LastSet(ROMEO, 10.0, "gone"), LastSet(JULIET, 11.0, None)])
    assert store.get(ROMEO) == LastLogout(10.0, "gone")  # seen at once
    store.apply([LastSet(ROMEO, 12.0, None), LastForget(JULIET)])
    flush(store)
    reopened = backend.reopen("last")
    assert reopened.get(ROMEO) == LastLogout(12.0, None)
    assert reopened.get(JULIET) is None


# -- AccountDirectory (XEP-0077) ----------------------------------------------------------


def test_account_directory_changes_passwords_and_deletes(backend: Backend) -> None:
    directory: AccountDirectory = backend.make("accounts")
    backend.add_account("romeo", "example.com", "s3cret")
    directory.change_password("romeo", "example.com", "n3w")
    with pytest.raises(ValueError):
        directory.change_password("romeo", "example.com", "")
    with pytest.raises(LookupError):
        directory.change_password("juliet", "example.com", "x")
    directory.delete("romeo", "example.com")
    with pytest.raises(LookupError):
        directory.delete("romeo", "example.com")
    with pytest.raises(LookupError):
        backend.reopen("accounts").change_password("romeo", "example.com", "again")


def test_account_persist_ops_delete_accounts_durably(backend: Backend) -> None:
    directory: AccountDirectory = backend.make("accounts")
    backend.add_account("romeo", "example.com", "s3cret")
    backend.add_account("juliet", "example.com", "s3cret")
    directory.apply([AccountDelete(ROMEO), AccountDelete(ROMEO)])  # gone already: no error
    with pytest.raises(LookupError):
        backend.reopen("accounts").change_password("romeo", "example.com", "again")
    backend.reopen("accounts").change_password("juliet", "example.com", "still")
    with pytest.raises(TypeError):
        directory.apply([AccountDelete(JULIET), VCardDelete(JULIET)])
    backend.reopen("accounts").change_password("juliet", "example.com", "still here")
