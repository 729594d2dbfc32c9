"""Tests for xmpp_trio.storage.AccountStore over real SQLite files."""

from __future__ import annotations

import sqlite3
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from xmpp_sansio.sasl.credentials import HASHES, ScramCredentials, derive_scram_credentials
from xmpp_trio.storage import (
    MIGRATIONS,
    SALT_BYTES,
    AccountExists,
    AccountNotFound,
    AccountStore,
    StorageError,
)

ITERATIONS = 4096
PASSWORD = "correct horse battery staple ✓ 7f3a9c"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "xmpp.sqlite3"


@pytest.fixture
def store(db_path: Path) -> Iterator[AccountStore]:
    store = AccountStore.open(db_path)
    yield store
    store.close()


def verifies(creds: ScramCredentials | None, password: str) -> bool:
    """Whether ``creds`` are what ``password`` derives to with the stored salt."""
    assert creds is not None
    expected = derive_scram_credentials(
        password, creds.hash_name, salt=creds.salt, iterations=creds.iterations
    )
    return expected == creds


def database_files(db_path: Path) -> list[Path]:
    """The database file and its WAL and shared-memory files, those that exist."""
    names = (db_path.name, db_path.name + "-wal", db_path.name + "-shm")
    return [db_path.with_name(name) for name in names if db_path.with_name(name).exists()]


def test_create_and_verify_credentials(store: AccountStore) -> None:
    store.create("alice", "example.org", PASSWORD, iterations=ITERATIONS)
    assert store.exists("alice", "example.org")
    salts = set()
    for hash_name in HASHES:
        creds = store.credentials("alice", "example.org", hash_name)
        assert creds is not None
        assert creds.hash_name == hash_name
        assert creds.iterations == ITERATIONS
        assert len(creds.salt) == SALT_BYTES
        assert verifies(creds, PASSWORD)
        assert not verifies(creds, PASSWORD + "x")
        salts.add(creds.salt)
    assert len(salts) == len(HASHES)  # a fresh salt per hash


def test_unknown_account_or_hash(store: AccountStore) -> None:
    store.create("alice", "example.org", PASSWORD, iterations=ITERATIONS)
    assert store.credentials("bob", "example.org", "sha256") is None
    assert store.credentials("alice", "example.net", "sha256") is None
    assert store.credentials("alice", "example.org", "md5") is None
    assert not store.exists("bob", "example.org")
    assert not store.exists("alice", "example.net")


def test_same_password_gets_different_salts(store: AccountStore) -> None:
    store.create("alice", "example.org", PASSWORD, iterations=ITERATIONS)
    store.create("bob", "example.org", PASSWORD, iterations=ITERATIONS)
    a = store.credentials("alice", "example.org", "sha256")
    b = store.credentials("bob", "example.org", "sha256")
    assert a is not None and b is not None
    assert a.salt != b.salt
    assert a.stored_key != b.stored_key


def test_plaintext_password_never_written(store: AccountStore, db_path: Path) -> None:
    store.create("alice", "example.org", PASSWORD, iterations=ITERATIONS)
    store.set_password("alice", "example.org", PASSWORD + "-2", iterations=ITERATIONS)
    encoded = [PASSWORD.encode("utf-8"), PASSWORD.encode("utf-16-le"), b"battery staple"]

    def check() -> None:
        files = database_files(db_path)
        assert db_path in files
        for path in files:
            data = path.read_bytes()
            for needle in encoded:
                assert needle not in data, f"password bytes found in {path.name}"

    check()  # while open: the main file and the WAL
    store.close()
    check()  # after the final checkpoint
    # Sanity check that the search itself works: the account name is in the file.
    assert b"alice" in db_path.read_bytes()


def test_create_duplicate_raises(store: AccountStore) -> None:
    store.create("alice", "example.org", PASSWORD, iterations=ITERATIONS)
    before = store.credentials("alice", "example.org", "sha256")
    with pytest.raises(AccountExists, match=r"alice@example\.org"):
        store.create("alice", "example.org", "other", iterations=ITERATIONS)
    # The failed create changed nothing.
    assert store.credentials("alice", "example.org", "sha256") == before
    # The same local part on another domain is another account.
    store.create("alice", "example.net", PASSWORD, iterations=ITERATIONS)


def test_set_password(store: AccountStore) -> None:
    store.create("alice", "example.org", PASSWORD, iterations=ITERATIONS)
    old = {h: store.credentials("alice", "example.org", h) for h in HASHES}
    store.set_password("alice", "example.org", "new password", iterations=ITERATIONS + 1)
    for hash_name in HASHES:
        creds = store.credentials("alice", "example.org", hash_name)
        assert creds is not None
        assert creds.iterations == ITERATIONS + 1
        assert verifies(creds, "new password")
        assert not verifies(creds, PASSWORD)
        old_creds = old[hash_name]
        assert old_creds is not None
        assert creds.salt != old_creds.salt


def test_set_password_unknown_account(store: AccountStore) -> None:
    with pytest.raises(AccountNotFound, match=r"bob@example\.org"):
        store.set_password("bob", "example.org", PASSWORD, iterations=ITERATIONS)
    assert not store.exists("bob", "example.org")


def test_delete(store: AccountStore, db_path: Path) -> None:
    store.create("alice", "example.org", PASSWORD, iterations=ITERATIONS)
    store.create("bob", "example.org", PASSWORD, iterations=ITERATIONS)
    store.delete("alice", "example.org")
    assert not store.exists("alice", "example.org")
    assert store.exists("bob", "example.org")
    for hash_name in HASHES:
        assert store.credentials("alice", "example.org", hash_name) is None
    with pytest.raises(AccountNotFound):
        store.delete("alice", "example.org")
    # The credentials rows went with the account (foreign key cascade).
    with sqlite3.connect(db_path) as db:
        count = db.execute(
            "SELECT count(*) FROM scram_credentials WHERE local = 'alice'"
        ).fetchone()[0]
    assert count == 0
    # The account can be created again.
    store.create("alice", "example.org", "again", iterations=ITERATIONS)
    assert verifies(store.credentials("alice", "example.org", "sha1"), "again")


def test_list_accounts(store: AccountStore) -> None:
    assert store.list_accounts() == []
    for local, domain in [("zed", "b.example"), ("bob", "a.example"), ("amy", "b.example")]:
        store.create(local, domain, PASSWORD, iterations=ITERATIONS)
    assert store.list_accounts() == [
        ("bob", "a.example"),
        ("amy", "b.example"),
        ("zed", "b.example"),
    ]
    assert store.list_accounts("b.example") == [("amy", "b.example"), ("zed", "b.example")]
    assert store.list_accounts("c.example") == []


def test_invalid_passwords_create_nothing(store: AccountStore) -> None:
    with pytest.raises(ValueError, match="empty"):
        store.create("alice", "example.org", "", iterations=ITERATIONS)
    with pytest.raises(ValueError):
        store.create("alice", "example.org", "bad\x00password", iterations=ITERATIONS)
    with pytest.raises(ValueError):
        store.create("alice", "example.org", PASSWORD, iterations=0)
    assert not store.exists("alice", "example.org")


def test_persists_across_reopen(db_path: Path) -> None:
    with AccountStore.open(db_path) as store:
        store.create("alice", "example.org", PASSWORD, iterations=ITERATIONS)
        creds = store.credentials("alice", "example.org", "sha512")
    with AccountStore.open(db_path) as store:
        assert store.exists("alice", "example.org")
        assert store.credentials("alice", "example.org", "sha512") == creds
        assert store.schema_version == len(MIGRATIONS)


def test_schema_and_wal_mode(store: AccountStore, db_path: Path) -> None:
    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(len(MIGRATIONS),)]
        tables = {
            row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
    assert {"schema_version", "accounts", "scram_credentials"} <= tables


def test_database_file_is_private(store: AccountStore, db_path: Path) -> None:
    store.create("alice", "example.org", PASSWORD, iterations=ITERATIONS)
    for path in database_files(db_path):
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path


def test_two_stores_share_the_file(db_path: Path) -> None:
    # The server keeps the database open while the CLI writes to it.
    with AccountStore.open(db_path) as server, AccountStore.open(db_path) as cli:
        assert not server.exists("alice", "example.org")
        cli.create("alice", "example.org", PASSWORD, iterations=ITERATIONS)
        assert server.exists("alice", "example.org")
        assert verifies(server.credentials("alice", "example.org", "sha256"), PASSWORD)
        cli.delete("alice", "example.org")
        assert not server.exists("alice", "example.org")


def test_usable_from_another_thread(store: AccountStore) -> None:
    errors: list[BaseException] = []

    def work() -> None:
        try:
            store.create("alice", "example.org", PASSWORD, iterations=ITERATIONS)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert errors == []
    assert store.exists("alice", "example.org")


def test_newer_schema_is_refused(db_path: Path) -> None:
    AccountStore.open(db_path).close()
    with sqlite3.connect(db_path) as db:
        db.execute("UPDATE schema_version SET version = 999")
    with pytest.raises(StorageError, match="schema version 999 is newer"):
        AccountStore.open(db_path)


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "junk.sqlite3"
    path.write_bytes(b"this is not an SQLite database" * 100)
    with pytest.raises(StorageError, match=r"junk\.sqlite3"):
        AccountStore.open(path)
