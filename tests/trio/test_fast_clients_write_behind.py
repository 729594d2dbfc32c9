"""The SASL2 client list's logins are written behind (issue 24: no commit on
the event loop per SASL2 login), yet every reader sees them at once: the
store's own reads, revocation (also as a ``Persist`` op), and a flush for
another connection to the SQLite file."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from xmpp_sansio.jid import JID
from xmpp_sansio.server.effects import ClientRevoke
from xmpp_sansio.stream.events import UserAgent
from xmpp_trio.storage import AccountStore
from xmpp_trio.stores._sql import apply_ops
from xmpp_trio.stores.fast import FastTokenStore

JULIET = JID.parse("juliet@capulet.example")
PHONE = UserAgent("d4565fa7-4d72-4749-b3d3-740edbf87770", "Conversations", "Pixel")
LAPTOP = UserAgent("4c1e6a3a-1f1e-4b5c-9a53-2a7c0f0e8b11", "Dino", "laptop")


def open_store(tmp_path: Path) -> tuple[sqlite3.Connection, FastTokenStore, Path]:
    """The server's shared connection (services.open_database) to a real file."""
    path = tmp_path / "accounts.db"
    with AccountStore.open(path) as accounts:
        accounts.create("juliet", "capulet.example", "r0m30myr0m30", iterations=4096)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA foreign_keys=ON")
    return db, FastTokenStore(db, b"k" * 32), path


def rows_on_disk(path: Path) -> list[tuple[str, str | None, float]]:
    with closing(sqlite3.connect(path)) as other:  # another connection: what is committed
        return other.execute(
            "SELECT agent_id, software, last_login FROM sasl2_clients ORDER BY agent_id"
        ).fetchall()


def test_a_login_is_committed_by_the_flush_not_by_the_login(tmp_path: Path) -> None:
    db, store, path = open_store(tmp_path)
    with closing(db):
        store.seen(JULIET, PHONE, 100.0)
        store.seen(JULIET, PHONE, 200.0)  # the later login of the same client wins
        assert rows_on_disk(path) == []
        store.flush()
        assert rows_on_disk(path) == [(PHONE.id, "Conversations", 200.0)]
        store.flush()  # nothing kept: no write
        assert rows_on_disk(path) == [(PHONE.id, "Conversations", 200.0)]


def test_the_client_list_shows_a_login_not_yet_flushed(tmp_path: Path) -> None:
    db, store, _ = open_store(tmp_path)
    with closing(db):
        store.seen(JULIET, PHONE, 100.0)
        store.seen(JULIET, LAPTOP, 300.0)
        assert [c.agent_id for c in store.clients(JULIET)] == [LAPTOP.id, PHONE.id]
        assert [c.software for c in store.client_infos(JULIET)] == ["Dino", "Conversations"]


def test_revoking_a_client_logged_in_since_the_last_flush_forgets_it(tmp_path: Path) -> None:
    db, store, path = open_store(tmp_path)
    with closing(db):
        store.seen(JULIET, PHONE, 100.0)
        store.seen(JULIET, LAPTOP, 300.0)
        assert store.revoke(JULIET, PHONE.id) is True
        apply_ops(db, store.write, [ClientRevoke(JULIET, LAPTOP.id)])
        store.flush()
        assert rows_on_disk(path) == []
        assert store.clients(JULIET) == []


def test_a_login_without_an_account_is_dropped_at_the_flush(tmp_path: Path) -> None:
    """ANONYMOUS (RFC 4505) JIDs, or an account removed before the flush: the
    other logins are written all the same."""
    db, store, path = open_store(tmp_path)
    with closing(db):
        store.seen(JID.parse("a1b2c3@capulet.example"), PHONE, 100.0)
        store.seen(JULIET, LAPTOP, 300.0)
        store.flush()
        assert rows_on_disk(path) == [(LAPTOP.id, "Dino", 300.0)]


def test_revoking_a_client_known_only_from_a_login_not_yet_flushed_says_it_was_there(
    tmp_path: Path,
) -> None:
    db, store, path = open_store(tmp_path)
    with closing(db):
        store.seen(JULIET, PHONE, 100.0)
        assert store.revoke(JULIET, PHONE.id) is True
        assert store.revoke(JULIET, PHONE.id) is False
        store.flush()
        assert rows_on_disk(path) == []
