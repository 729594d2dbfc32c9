"""Contract tests of the vCard and private XML storages (memory and SQLite),
and of the AccountDirectory adapter over the SQLite AccountStore."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from xml.etree.ElementTree import fromstring

import pytest

from xmpp_sansio.jid import JID
from xmpp_sansio.server import Deliver, Router
from xmpp_sansio.server.effects import Persist
from xmpp_sansio.server.private import MemoryPrivateStorage, PrivateStorage
from xmpp_sansio.server.vcard import MemoryVCardStorage, VCardService, VCardStorage
from xmpp_sansio.testing import seeded_rng
from xmpp_trio.storage import AccountStore
from xmpp_trio.stores.accounts import AccountDirectoryAdapter
from xmpp_trio.stores.private import SqlitePrivateStorage
from xmpp_trio.stores.vcard import SqliteVCardStorage

JULIET = JID.parse("juliet@example.com")
ROMEO = JID.parse("romeo@example.com")
VCARD = b'<vCard xmlns="vcard-temp"><FN>Juliet</FN></vCard>'


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "stores.sqlite3"


@pytest.fixture
def conn(db_path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(db_path)
    yield conn
    conn.close()


def reopen(db_path: Path) -> sqlite3.Connection:
    """A second connection: sees only what was committed."""
    return sqlite3.connect(db_path)


# ---------------------------------------------------------------------------
# vCards


@pytest.fixture(params=["memory", "sqlite"])
def vcards(request: pytest.FixtureRequest, conn: sqlite3.Connection) -> VCardStorage:
    if request.param == "memory":
        return MemoryVCardStorage()
    return SqliteVCardStorage(conn)


def test_vcard_get_of_unknown_user_is_none(vcards: VCardStorage) -> None:
    assert vcards.get(JULIET) is None


def test_vcard_put_then_get(vcards: VCardStorage) -> None:
    vcards.put(JULIET, VCARD)
    assert vcards.get(JULIET) == VCARD
    assert vcards.get(ROMEO) is None


def test_vcard_put_replaces(vcards: VCardStorage) -> None:
    vcards.put(JULIET, VCARD)
    vcards.put(JULIET, b'<vCard xmlns="vcard-temp"/>')
    assert vcards.get(JULIET) == b'<vCard xmlns="vcard-temp"/>'


def test_vcard_delete_forgets_only_that_user(vcards: VCardStorage) -> None:
    vcards.put(JULIET, VCARD)
    vcards.put(ROMEO, VCARD)
    vcards.delete(JULIET)
    vcards.delete(JULIET)  # no-op the second time
    assert vcards.get(JULIET) is None
    assert vcards.get(ROMEO) == VCARD


def test_vcard_is_keyed_by_bare_jid(vcards: VCardStorage) -> None:
    vcards.put(JULIET.with_resource("balcony"), VCARD)
    assert vcards.get(JULIET) == VCARD


def test_sqlite_vcard_is_committed_and_survives_reopening(
    db_path: Path, conn: sqlite3.Connection
) -> None:
    SqliteVCardStorage(conn).put(JULIET, VCARD)
    other = reopen(db_path)
    try:
        assert SqliteVCardStorage(other).get(JULIET) == VCARD
    finally:
        other.close()
    SqliteVCardStorage(conn).delete(JULIET)
    other = reopen(db_path)
    try:
        assert SqliteVCardStorage(other).get(JULIET) is None
    finally:
        other.close()


def test_sqlite_vcard_table_creation_is_idempotent(conn: sqlite3.Connection) -> None:
    SqliteVCardStorage(conn).put(JULIET, VCARD)
    assert SqliteVCardStorage(conn).get(JULIET) == VCARD


def test_vcard_service_over_sqlite_round_trips(conn: sqlite3.Connection) -> None:
    storage = SqliteVCardStorage(conn)
    router = Router(
        ["example.com"],
        rng=seeded_rng(0),
        account_exists=lambda *_: True,
        services=[VCardService(storage)],
    )
    router.bind(1, JULIET.with_resource("balcony"))
    (persist,) = router.route(
        1,
        fromstring(
            "<iq xmlns='jabber:client' type='set' id='s'>"
            "<vCard xmlns='vcard-temp'><FN>J &amp; R</FN></vCard></iq>"
        ),
    )
    assert isinstance(persist, Persist)
    storage.apply([persist.op])
    (result,) = router.persisted([persist])
    assert isinstance(result, Deliver) and result.element.get("type") == "result"
    (effect,) = router.route(
        1,
        fromstring("<iq xmlns='jabber:client' type='get' id='g'><vCard xmlns='vcard-temp'/></iq>"),
    )
    assert isinstance(effect, Deliver)
    assert effect.element[0].findtext("{vcard-temp}FN") == "J & R"


# ---------------------------------------------------------------------------
# private XML


@pytest.fixture(params=["memory", "sqlite"])
def private(request: pytest.FixtureRequest, conn: sqlite3.Connection) -> PrivateStorage:
    if request.param == "memory":
        return MemoryPrivateStorage()
    return SqlitePrivateStorage(conn)


PREFS = b'<exodus xmlns="exodus:prefs"><defaultnick>Hamlet</defaultnick></exodus>'


def test_private_get_of_nothing_is_none(private: PrivateStorage) -> None:
    assert private.get(JULIET, "exodus:prefs", "exodus") is None


def test_private_put_then_get_is_keyed_by_user_namespace_and_name(
    private: PrivateStorage,
) -> None:
    private.put(JULIET, "exodus:prefs", "exodus", PREFS)
    assert private.get(JULIET, "exodus:prefs", "exodus") == PREFS
    assert private.get(ROMEO, "exodus:prefs", "exodus") is None
    assert private.get(JULIET, "exodus:prefs", "other") is None
    assert private.get(JULIET, "other:ns", "exodus") is None


def test_private_put_replaces(private: PrivateStorage) -> None:
    private.put(
        JULIET, "storage:bookmarks", "storage", b'<storage xmlns="storage:bookmarks">1</storage>'
    )
    private.put(JULIET, "storage:bookmarks", "storage", b'<storage xmlns="storage:bookmarks"/>')
    assert (
        private.get(JULIET, "storage:bookmarks", "storage")
        == b'<storage xmlns="storage:bookmarks"/>'
    )


def test_private_delete_forgets_everything_of_that_user_only(private: PrivateStorage) -> None:
    private.put(JULIET, "exodus:prefs", "exodus", PREFS)
    private.put(JULIET, "storage:bookmarks", "storage", b'<storage xmlns="storage:bookmarks"/>')
    private.put(ROMEO, "exodus:prefs", "exodus", PREFS)
    private.delete(JULIET)
    assert private.get(JULIET, "exodus:prefs", "exodus") is None
    assert private.get(JULIET, "storage:bookmarks", "storage") is None
    assert private.get(ROMEO, "exodus:prefs", "exodus") == PREFS


def test_private_is_keyed_by_bare_jid(private: PrivateStorage) -> None:
    private.put(JULIET.with_resource("balcony"), "exodus:prefs", "exodus", PREFS)
    assert private.get(JULIET, "exodus:prefs", "exodus") == PREFS


def test_sqlite_private_is_committed(db_path: Path, conn: sqlite3.Connection) -> None:
    SqlitePrivateStorage(conn).put(JULIET, "exodus:prefs", "exodus", PREFS)
    other = reopen(db_path)
    try:
        assert SqlitePrivateStorage(other).get(JULIET, "exodus:prefs", "exodus") == PREFS
    finally:
        other.close()


def test_vcard_and_private_tables_share_one_connection(conn: sqlite3.Connection) -> None:
    vcards = SqliteVCardStorage(conn)
    private = SqlitePrivateStorage(conn)
    vcards.put(JULIET, VCARD)
    private.put(JULIET, "exodus:prefs", "exodus", PREFS)
    assert vcards.get(JULIET) == VCARD
    assert private.get(JULIET, "exodus:prefs", "exodus") == PREFS


# ---------------------------------------------------------------------------
# accounts


@pytest.fixture
def accounts(tmp_path: Path) -> Iterator[AccountStore]:
    store = AccountStore.open(tmp_path / "data" / "xmpp.sqlite3")
    store.create("juliet", "example.com", "old password", iterations=16)
    yield store
    store.close()


def test_account_directory_changes_password(accounts: AccountStore) -> None:
    before = accounts.credentials("juliet", "example.com", "sha256")
    AccountDirectoryAdapter(accounts, iterations=32).change_password(
        "juliet", "example.com", "new password"
    )
    after = accounts.credentials("juliet", "example.com", "sha256")
    assert before is not None and after is not None
    assert after.iterations == 32 and after.salt != before.salt


def test_account_directory_deletes(accounts: AccountStore) -> None:
    AccountDirectoryAdapter(accounts, iterations=16).delete("juliet", "example.com")
    assert not accounts.exists("juliet", "example.com")


def test_account_directory_maps_missing_account_to_lookup_error(accounts: AccountStore) -> None:
    directory = AccountDirectoryAdapter(accounts, iterations=16)
    with pytest.raises(LookupError):
        directory.change_password("romeo", "example.com", "pw")
    with pytest.raises(LookupError):
        directory.delete("romeo", "example.com")


def test_account_directory_rejects_invalid_password(accounts: AccountStore) -> None:
    with pytest.raises(ValueError):
        AccountDirectoryAdapter(accounts, iterations=16).change_password(
            "juliet", "example.com", "a\u200b"
        )


def test_stores_work_on_an_autocommit_connection(db_path: Path) -> None:
    # AccountStore's style of connection (isolation_level=None).
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        SqliteVCardStorage(conn).put(JULIET, VCARD)
        SqlitePrivateStorage(conn).put(JULIET, "exodus:prefs", "exodus", PREFS)
        other = reopen(db_path)
        try:
            assert SqliteVCardStorage(other).get(JULIET) == VCARD
            assert SqlitePrivateStorage(other).get(JULIET, "exodus:prefs", "exodus") == PREFS
        finally:
            other.close()
    finally:
        conn.close()
