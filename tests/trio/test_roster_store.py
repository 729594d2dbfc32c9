"""The RosterStorage contract, run against MemoryRosterStorage and
SqliteRosterStorage (a real SQLite file), plus SQLite-only persistence tests."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from xml.etree.ElementTree import Element, SubElement, fromstring

import pytest

from xmpp_sansio.jid import JID
from xmpp_sansio.roster import QUERY_TAG, RosterItem, Subscription, parse_roster_query
from xmpp_sansio.server import Deliver, Router
from xmpp_sansio.server.roster import (
    MemoryRosterStorage,
    RosterService,
    RosterStorage,
    StoredItem,
)
from xmpp_sansio.stanza import PresenceType, make_presence
from xmpp_sansio.testing import seeded_rng
from xmpp_sansio.xml.element import elements_equal
from xmpp_trio.stores.roster import SqliteRosterStorage

JULIET = JID.parse("juliet@example.com")
ROMEO = JID.parse("romeo@example.net")
NURSE = JID.parse("nurse@example.com")


def connect(path: Path, autocommit: bool = True) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None if autocommit else "DEFERRED")


@pytest.fixture(params=["memory", "sqlite", "sqlite-legacy-transactions"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RosterStorage]:
    if request.param == "memory":
        yield MemoryRosterStorage()
        return
    conn = connect(tmp_path / "roster.sqlite3", autocommit=request.param == "sqlite")
    try:
        yield SqliteRosterStorage(conn)
    finally:
        conn.close()


def request_stanza() -> Element:
    el = make_presence(JULIET, PresenceType.SUBSCRIBE, from_=ROMEO, id="sub1")
    nick = SubElement(el, "{http://jabber.org/protocol/nick}nick")
    nick.text = "Romeo <Montague> & co"
    return el


def test_unknown_user_has_an_empty_roster_and_a_version(storage: RosterStorage) -> None:
    assert storage.get(JULIET) == ("0", [])
    assert storage.version(JULIET) == "0"
    assert storage.item(JULIET, ROMEO) is None
    assert storage.count(JULIET) == 0


def test_put_stores_every_field(storage: RosterStorage) -> None:
    item = RosterItem(
        ROMEO,
        "Roméo",
        Subscription.FROM,
        ask=True,
        groups=frozenset({"Montagues", "Vérone", "😀"}),
        approved=False,
    )
    stored = StoredItem(item)
    version = storage.put(JULIET, stored)
    assert version != "0"
    assert storage.version(JULIET) == version
    assert storage.get(JULIET) == (version, [stored])
    assert storage.item(JULIET, ROMEO) == stored
    assert storage.count(JULIET) == 1


def test_pending_request_and_hidden_records_round_trip(storage: RosterStorage) -> None:
    request = request_stanza()
    stored = StoredItem(RosterItem(ROMEO, approved=True), False, True, request)
    storage.put(JULIET, stored)
    got = storage.item(JULIET, ROMEO)
    assert got == stored
    assert got is not None and got.pending_request is not None
    assert elements_equal(got.pending_request, request)
    assert (got.in_roster, got.pending_in, got.item.approved) == (False, True, True)


def test_put_replaces_and_keeps_first_stored_order(storage: RosterStorage) -> None:
    storage.put(JULIET, StoredItem(RosterItem(ROMEO)))
    storage.put(JULIET, StoredItem(RosterItem(NURSE)))
    v = storage.put(JULIET, StoredItem(RosterItem(ROMEO, "R", Subscription.BOTH)))
    version, records = storage.get(JULIET)
    assert version == v
    assert [r.item for r in records] == [
        RosterItem(ROMEO, "R", Subscription.BOTH),
        RosterItem(NURSE),
    ]
    assert storage.count(JULIET) == 2


def test_every_write_gives_a_new_version_and_versions_are_never_reused(
    storage: RosterStorage,
) -> None:
    seen = [storage.version(JULIET)]
    seen.append(storage.put(JULIET, StoredItem(RosterItem(ROMEO))))
    seen.append(storage.put(JULIET, StoredItem(RosterItem(ROMEO))))  # same content
    seen.append(storage.delete(JULIET, ROMEO))
    seen.append(storage.put(JULIET, StoredItem(RosterItem(ROMEO))))
    assert len(set(seen)) == len(seen)


def test_deleting_a_missing_record_keeps_the_version(storage: RosterStorage) -> None:
    v = storage.put(JULIET, StoredItem(RosterItem(ROMEO)))
    assert storage.delete(JULIET, NURSE) == v
    assert storage.delete(JULIET, ROMEO) != v
    assert storage.get(JULIET)[1] == []
    assert storage.item(JULIET, ROMEO) is None


def test_users_are_separate_and_keyed_by_bare_jid(storage: RosterStorage) -> None:
    storage.put(JID.parse("juliet@example.com/balcony"), StoredItem(RosterItem(ROMEO)))
    assert storage.count(JULIET) == 1
    assert storage.get(NURSE) == ("0", [])
    assert storage.item(NURSE, ROMEO) is None
    assert storage.item(JULIET, ROMEO) == StoredItem(RosterItem(ROMEO))


# ---------------------------------------------------------------------------
# SQLite only


def test_sqlite_writes_are_committed_and_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "roster.sqlite3"
    conn = connect(path, autocommit=False)
    store = SqliteRosterStorage(conn)
    version = store.put(JULIET, StoredItem(RosterItem(ROMEO, "Romeo"), pending_request=None))
    # another connection sees the write at once: it was committed
    other = connect(path)
    assert SqliteRosterStorage(other).get(JULIET) == (
        version,
        [StoredItem(RosterItem(ROMEO, "Romeo"))],
    )
    other.close()
    conn.close()
    reopened = connect(path)
    assert SqliteRosterStorage(reopened).item(JULIET, ROMEO) == StoredItem(
        RosterItem(ROMEO, "Romeo")
    )
    reopened.close()


def test_sqlite_rejects_invalid_rows_and_rolls_back(tmp_path: Path) -> None:
    conn = connect(tmp_path / "roster.sqlite3")
    store = SqliteRosterStorage(conn)
    with pytest.raises(sqlite3.IntegrityError):
        store.put(JULIET, StoredItem(RosterItem(ROMEO, subscription=Subscription.REMOVE)))
    assert store.get(JULIET) == ("0", [])
    assert not conn.in_transaction
    conn.close()


def test_roster_service_works_over_sqlite(tmp_path: Path) -> None:
    conn = connect(tmp_path / "roster.sqlite3")
    router = Router(
        ["example.com"],
        rng=seeded_rng(0),
        account_exists=lambda local, domain: True,
        services=[RosterService(SqliteRosterStorage(conn))],
    )
    router.bind(1, JID.parse("juliet@example.com/balcony"))
    router.route(
        1,
        fromstring(
            "<iq xmlns='jabber:client' type='set' id='s'><query xmlns='jabber:iq:roster'>"
            "<item jid='romeo@example.net' name='Romeo'><group>Friends</group></item>"
            "</query></iq>"
        ),
    )
    (effect,) = router.route(
        1,
        fromstring(
            "<iq xmlns='jabber:client' type='get' id='g'><query xmlns='jabber:iq:roster'/></iq>"
        ),
    )
    assert isinstance(effect, Deliver)
    query = effect.element.find(QUERY_TAG)
    assert query is not None
    assert parse_roster_query(query) == (
        "1",
        [RosterItem(ROMEO, "Romeo", groups=frozenset({"Friends"}))],
    )
    conn.close()
