"""Contract tests for the IM storage Protocols (offline messages, block lists,
last activity): every test runs on the in-memory implementation and on the
SQLite one over a real database file."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from xmpp_sansio.jid import JID
from xmpp_sansio.server.blocking import BlockStorage, MemoryBlockStorage
from xmpp_sansio.server.last import LastActivityStorage, LastLogout, MemoryLastActivityStorage
from xmpp_sansio.server.offline import MemoryOfflineStorage, OfflineStorage
from xmpp_trio.stores.blocking import SqliteBlockStorage
from xmpp_trio.stores.last import SqliteLastActivityStorage
from xmpp_trio.stores.offline import SqliteOfflineStorage

JULIET = JID.parse("juliet@example.com")
ROMEO = JID.parse("romeo@example.com")

ConnFactory = Callable[[], sqlite3.Connection]


@pytest.fixture(params=["legacy", "autocommit"])
def connect(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ConnFactory]:
    """Opens connections to one database file, in Python's default (implicit
    transactions) or autocommit mode (as ``xmpp_trio.storage`` opens it)."""
    path = tmp_path / "im.sqlite3"
    opened: list[sqlite3.Connection] = []

    def factory() -> sqlite3.Connection:
        if request.param == "autocommit":
            conn = sqlite3.connect(path, isolation_level=None)
        else:
            conn = sqlite3.connect(path)
        opened.append(conn)
        return conn

    yield factory
    for conn in opened:
        conn.close()


@pytest.fixture(params=["memory", "sqlite"])
def offline(request: pytest.FixtureRequest, connect: ConnFactory) -> OfflineStorage:
    if request.param == "memory":
        return MemoryOfflineStorage()
    return SqliteOfflineStorage(connect())


@pytest.fixture(params=["memory", "sqlite"])
def blocks(request: pytest.FixtureRequest, connect: ConnFactory) -> BlockStorage:
    if request.param == "memory":
        return MemoryBlockStorage()
    return SqliteBlockStorage(connect())


@pytest.fixture(params=["memory", "sqlite"])
def last(request: pytest.FixtureRequest, connect: ConnFactory) -> LastActivityStorage:
    if request.param == "memory":
        return MemoryLastActivityStorage()
    return SqliteLastActivityStorage(connect())


# ---------------------------------------------------------------------------
# offline messages (XEP-0160)


def test_offline_push_peek_keeps_order_and_stamps(offline: OfflineStorage) -> None:
    assert offline.peek(JULIET) == [] and offline.count(JULIET) == 0
    for i in range(3):
        assert offline.push(JULIET, f"<message>{i}</message>".encode(), 100.5 + i, 10)
    stored = offline.peek(JULIET)
    assert [m.stanza for m in stored] == [
        b"<message>0</message>",
        b"<message>1</message>",
        b"<message>2</message>",
    ]
    assert [m.stamp for m in stored] == [100.5, 101.5, 102.5]
    assert [m.id for m in stored] == sorted(m.id for m in stored)
    assert len({m.id for m in stored}) == 3
    assert offline.count(JULIET) == 3
    # peek does not consume
    assert offline.peek(JULIET) == stored


def test_offline_users_are_separate_and_keyed_by_bare_jid(offline: OfflineStorage) -> None:
    offline.push(JULIET, b"<a/>", 1.0, 10)
    offline.push(JID.parse("juliet@example.com/balcony"), b"<b/>", 2.0, 10)
    offline.push(ROMEO, b"<c/>", 3.0, 10)
    assert [m.stanza for m in offline.peek(JULIET)] == [b"<a/>", b"<b/>"]
    assert offline.count(ROMEO) == 1


def test_offline_quota_is_per_user(offline: OfflineStorage) -> None:
    assert offline.push(JULIET, b"<a/>", 1.0, 2)
    assert offline.push(JULIET, b"<b/>", 1.0, 2)
    assert not offline.push(JULIET, b"<c/>", 1.0, 2)
    assert offline.count(JULIET) == 2
    assert offline.push(ROMEO, b"<d/>", 1.0, 2)
    assert not offline.push(ROMEO, b"<e/>", 1.0, 0)


def test_offline_delete_removes_only_up_to_the_id(offline: OfflineStorage) -> None:
    offline.push(JULIET, b"<a/>", 1.0, 10)
    offline.push(JULIET, b"<b/>", 2.0, 10)
    offline.push(ROMEO, b"<r/>", 2.5, 10)
    seen = offline.peek(JULIET)
    offline.push(JULIET, b"<c/>", 3.0, 10)  # arrives while the others are delivered
    offline.delete(JULIET, seen[-1].id)
    assert [m.stanza for m in offline.peek(JULIET)] == [b"<c/>"]
    assert offline.count(ROMEO) == 1
    # ids are never reused after deletion
    offline.delete(JULIET, offline.peek(JULIET)[-1].id)
    offline.push(JULIET, b"<d/>", 4.0, 10)
    assert offline.peek(JULIET)[0].id > seen[-1].id
    offline.delete(JID.parse("nobody@example.com"), 10**9)


def test_sqlite_offline_messages_are_committed_and_survive_reopening(connect: ConnFactory) -> None:
    writer = SqliteOfflineStorage(connect())
    writer.push(JULIET, b"<message/>", 5.0, 10)
    other = SqliteOfflineStorage(connect())  # a second connection sees committed data
    assert [m.stanza for m in other.peek(JULIET)] == [b"<message/>"]
    writer.delete(JULIET, other.peek(JULIET)[0].id)
    assert other.count(JULIET) == 0


# ---------------------------------------------------------------------------
# block lists (XEP-0191)


def test_block_and_unblock(blocks: BlockStorage) -> None:
    assert blocks.blocklist(JULIET) == set()
    blocks.block(JULIET, [ROMEO, JID.parse("example.net"), JID.parse("a@b/c")])
    blocks.block(JULIET, [ROMEO])  # already blocked: ignored
    assert blocks.blocklist(JULIET) == {ROMEO, JID.parse("example.net"), JID.parse("a@b/c")}
    blocks.unblock(JULIET, [ROMEO, JID.parse("not@blocked")])
    assert blocks.blocklist(JULIET) == {JID.parse("example.net"), JID.parse("a@b/c")}
    assert blocks.blocklist(ROMEO) == set()


def test_block_lists_are_per_user_and_unblock_all(blocks: BlockStorage) -> None:
    blocks.block(JULIET, [ROMEO])
    blocks.block(ROMEO, [JULIET])
    blocks.block(JID.parse("juliet@example.com/balcony"), [JID.parse("x@y")])
    blocks.unblock_all(JULIET)
    assert blocks.blocklist(JULIET) == set()
    assert blocks.blocklist(ROMEO) == {JULIET}
    blocks.block(JULIET, [])
    blocks.unblock(JULIET, [])
    blocks.unblock_all(JULIET)
    assert blocks.blocklist(JULIET) == set()


def test_blocklist_returns_a_copy(blocks: BlockStorage) -> None:
    blocks.block(JULIET, [ROMEO])
    blocks.blocklist(JULIET).clear()
    assert blocks.blocklist(JULIET) == {ROMEO}


def test_sqlite_block_lists_are_committed(connect: ConnFactory) -> None:
    writer = SqliteBlockStorage(connect())
    writer.block(JULIET, [ROMEO, JID.parse("ünïcode.example")])
    reader = SqliteBlockStorage(connect())
    assert reader.blocklist(JULIET) == {ROMEO, JID.parse("ünïcode.example")}
    writer.unblock_all(JULIET)
    assert reader.blocklist(JULIET) == set()


# ---------------------------------------------------------------------------
# last activity (XEP-0012)


def test_last_logout_set_and_replace(last: LastActivityStorage) -> None:
    assert last.get(JULIET) is None
    last.set(JULIET, 10.5, "Heading Home")
    assert last.get(JID.parse("juliet@example.com/balcony")) == LastLogout(10.5, "Heading Home")
    last.set(JULIET, 20.0, None)
    assert last.get(JULIET) == LastLogout(20.0, None)
    assert last.get(ROMEO) is None


def test_sqlite_last_activity_is_written_behind_and_committed_by_flush(
    connect: ConnFactory,
) -> None:
    writer = SqliteLastActivityStorage(connect())
    writer.set(ROMEO, 3.0, "bye")
    writer.set(JULIET, 4.0, None)
    assert writer.get(ROMEO) == LastLogout(3.0, "bye")  # seen at once by its writer
    assert SqliteLastActivityStorage(connect()).get(ROMEO) is None  # not written yet
    writer.flush()
    other = SqliteLastActivityStorage(connect())
    assert other.get(ROMEO) == LastLogout(3.0, "bye")
    assert other.get(JULIET) == LastLogout(4.0, None)


def test_sqlite_last_activity_forget_is_immediate_and_drops_what_waits(
    connect: ConnFactory,
) -> None:
    writer = SqliteLastActivityStorage(connect())
    writer.set(ROMEO, 3.0, "bye")
    writer.flush()
    writer.set(ROMEO, 5.0, "again")  # kept behind
    writer.forget(ROMEO)
    writer.flush()
    assert writer.get(ROMEO) is None
    assert SqliteLastActivityStorage(connect()).get(ROMEO) is None


def test_stores_share_one_connection(connect: ConnFactory) -> None:
    conn = connect()
    offline = SqliteOfflineStorage(conn)
    blocks = SqliteBlockStorage(conn)
    last = SqliteLastActivityStorage(conn)
    offline.push(JULIET, b"<m/>", 1.0, 1)
    blocks.block(JULIET, [ROMEO])
    last.set(JULIET, 1.0, None)
    last.flush()
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"offline_messages", "blocklist", "last_activity"} <= tables
    assert not conn.in_transaction
