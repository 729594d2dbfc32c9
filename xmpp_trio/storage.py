"""Account storage in an SQLite database (``<data_dir>/xmpp.sqlite3``).

Passwords are never stored. For each SCRAM hash in
:data:`xmpp_sansio.sasl.credentials.HASHES` an account keeps a random 16-byte salt,
the iteration count, ``StoredKey`` and ``ServerKey`` (RFC 5802 §3); that is enough
to verify SCRAM and PLAIN logins and useless for logging in elsewhere.

The database runs in WAL mode, so the server can keep it open while the
``xmpp-trio adduser`` command writes to it. The ``schema_version`` table records
how many of :data:`MIGRATIONS` have been applied; opening a database applies
the missing ones.

Local parts and domains are stored exactly as given: callers pass them already
normalised (PRECIS UsernameCaseMapped / IDNA), e.g. from a parsed JID.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from xmpp_sansio.sasl.credentials import HASHES, ScramCredentials, derive_scram_credentials

__all__ = [
    "MIGRATIONS",
    "SALT_BYTES",
    "AccountExists",
    "AccountNotFound",
    "AccountStore",
    "StorageError",
    "delete_account",
]

SALT_BYTES: Final = 16

MIGRATIONS: Final[tuple[str, ...]] = (
    # Version 1: accounts and their per-hash SCRAM credentials.
    """
    CREATE TABLE accounts (
        domain TEXT NOT NULL,
        local TEXT NOT NULL,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
        PRIMARY KEY (domain, local)
    ) WITHOUT ROWID;
    CREATE TABLE scram_credentials (
        domain TEXT NOT NULL,
        local TEXT NOT NULL,
        hash_name TEXT NOT NULL,
        salt BLOB NOT NULL,
        iterations INTEGER NOT NULL CHECK (iterations > 0),
        stored_key BLOB NOT NULL,
        server_key BLOB NOT NULL,
        PRIMARY KEY (domain, local, hash_name),
        FOREIGN KEY (domain, local) REFERENCES accounts (domain, local) ON DELETE CASCADE
    ) WITHOUT ROWID;
    """,
)
"""Schema migrations; entry ``n`` brings the schema from version ``n`` to ``n + 1``."""

_BUSY_TIMEOUT_MS: Final = 5000


class StorageError(Exception):
    """Base class of the account store's errors."""


class AccountExists(StorageError):
    """The account to create already exists."""


class AccountNotFound(StorageError):
    """The account does not exist."""


def _jid(local: str, domain: str) -> str:
    return f"{local}@{domain}"


class AccountStore:
    """Accounts and their SCRAM credentials in one SQLite file.

    Use :meth:`open`; every method is synchronous and short. The object may be
    used from several threads (calls are serialised with a lock).
    """

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        """Wrap an already migrated connection; use :meth:`open` instead."""
        self._db = connection
        self._lock = threading.Lock()
        self.path = path

    # --- lifecycle -------------------------------------------------------------

    @classmethod
    def open(cls, path: Path) -> AccountStore:
        """Open (creating it and its directory if needed) the database at ``path``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.exists():
            # Create the file private to its owner; SQLite gives the -wal and -shm
            # files the same permissions as the database.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
            os.close(fd)
        db = sqlite3.connect(
            path,
            isolation_level=None,  # autocommit; transactions are explicit
            check_same_thread=False,
            timeout=_BUSY_TIMEOUT_MS / 1000,
        )
        try:
            db.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            (mode,) = db.execute("PRAGMA journal_mode = WAL").fetchone()
            if str(mode).lower() != "wal":
                raise StorageError(f"{path}: cannot switch the database to WAL mode ({mode})")
            db.execute("PRAGMA synchronous = NORMAL")
            db.execute("PRAGMA foreign_keys = ON")
            _migrate(db, path)
            db.execute(_DISABLED_SCHEMA)
        except sqlite3.DatabaseError as exc:
            db.close()
            raise StorageError(f"{path}: {exc}") from exc
        except BaseException:
            db.close()
            raise
        return cls(db, path)

    def check_integrity(self) -> None:
        """Run SQLite's ``quick_check`` over the whole database file (accounts
        and every service's tables): a corrupt file is found at start, not by
        the first unlucky query. Raises :class:`StorageError` naming the
        first problem."""
        try:
            rows = self._db.execute("PRAGMA quick_check").fetchall()
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"{self.path}: the database is corrupt: {exc}") from exc
        problems = [str(row[0]) for row in rows if row[0] != "ok"]
        if problems:
            raise StorageError(
                f"{self.path}: the database is corrupt ({len(problems)} problems, "
                f"first: {problems[0]}); restore it from a backup"
            )

    def close(self) -> None:
        """Close the database; the store must not be used afterwards."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        """The schema version of the open database."""
        with self._lock:
            return _schema_version(self._db)

    # --- accounts --------------------------------------------------------------

    def create(self, local: str, domain: str, password: str, *, iterations: int) -> None:
        """Create the account ``local@domain``; raise :class:`AccountExists` if it exists.

        Raise ValueError if the password is empty or not a valid PRECIS
        OpaqueString, or ``iterations`` is not positive.
        """
        self.create_with_credentials(local, domain, derive_credentials(password, iterations))

    def set_password(self, local: str, domain: str, password: str, *, iterations: int) -> None:
        """Replace the password of ``local@domain`` (fresh salts for every hash).

        Raise :class:`AccountNotFound` if there is no such account, ValueError for
        an invalid password.
        """
        credentials = derive_credentials(password, iterations)  # outside the lock
        with self._lock, _transaction(self._db):
            set_credentials(self._db, local, domain, password, iterations, credentials)

    def create_with_credentials(
        self, local: str, domain: str, credentials: Sequence[ScramCredentials]
    ) -> None:
        """Create ``local@domain`` with SCRAM credentials computed elsewhere (a
        XEP-0227 import); raise :class:`AccountExists` if it exists. Hashes
        without credentials are missing until the password is set again."""
        with self._lock, _transaction(self._db):
            create_account(self._db, local, domain, "", 0, credentials)

    def is_disabled(self, local: str, domain: str) -> bool:
        """Whether an administrator disabled ``local@domain`` (XEP-0133 §4.3)."""
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM disabled_accounts WHERE domain = ? AND local = ?", (domain, local)
            ).fetchone()
        return row is not None

    def add_credentials(self, local: str, domain: str, credentials: list[ScramCredentials]) -> None:
        """Add credentials for hashes ``local@domain`` lacks (the upgrade of an
        imported SHA-1-only account); hashes it already has are kept."""
        with self._lock, _transaction(self._db):
            if not _exists(self._db, local, domain):
                raise AccountNotFound(f"account {_jid(local, domain)} does not exist")
            self._db.executemany(
                "INSERT OR IGNORE INTO scram_credentials "
                "(domain, local, hash_name, salt, iterations, stored_key, server_key) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (domain, local, c.hash_name, c.salt, c.iterations, c.stored_key, c.server_key)
                    for c in credentials
                ],
            )

    def delete(self, local: str, domain: str) -> None:
        """Delete ``local@domain`` and its credentials; raise :class:`AccountNotFound`."""
        with self._lock, _transaction(self._db):
            if not delete_account(self._db, local, domain):
                raise AccountNotFound(f"account {_jid(local, domain)} does not exist")

    def delete_many(self, accounts: Sequence[tuple[str, str]]) -> None:
        """Delete each ``(local, domain)`` account that exists, in one transaction."""
        with self._lock, _transaction(self._db):
            for local, domain in accounts:
                delete_account(self._db, local, domain)

    def exists(self, local: str, domain: str) -> bool:
        """Whether the account ``local@domain`` exists."""
        with self._lock:
            return _exists(self._db, local, domain)

    def credentials(self, local: str, domain: str, hash_name: str) -> ScramCredentials | None:
        """The stored SCRAM credentials of ``local@domain`` for ``hash_name``.

        ``hash_name`` is a hashlib name from HASHES (``"sha1"``, ``"sha256"``, ...).
        None if the account does not exist or has no credentials for that hash.
        """
        with self._lock:
            row = self._db.execute(
                "SELECT salt, iterations, stored_key, server_key FROM scram_credentials "
                "WHERE domain = ? AND local = ? AND hash_name = ?",
                (domain, local, hash_name),
            ).fetchone()
        if row is None:
            return None
        salt, iterations, stored_key, server_key = row
        return ScramCredentials(
            hash_name=hash_name,
            salt=bytes(salt),
            iterations=int(iterations),
            stored_key=bytes(stored_key),
            server_key=bytes(server_key),
        )

    def list_accounts(self, domain: str | None = None) -> list[tuple[str, str]]:
        """All accounts as ``(local, domain)`` pairs, sorted by domain then local part."""
        with self._lock:
            if domain is None:
                rows = self._db.execute(
                    "SELECT local, domain FROM accounts ORDER BY domain, local"
                ).fetchall()
            else:
                rows = self._db.execute(
                    "SELECT local, domain FROM accounts WHERE domain = ? ORDER BY local",
                    (domain,),
                ).fetchall()
        return [(str(local), str(dom)) for local, dom in rows]


# --- helpers -------------------------------------------------------------------


class _transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error) on an autocommit connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self._db.execute("COMMIT")
        else:
            self._db.execute("ROLLBACK")


#: Accounts an administrator disabled (XEP-0133 §4.3): they cannot log in.
_DISABLED_SCHEMA = """
CREATE TABLE IF NOT EXISTS disabled_accounts (
    domain TEXT NOT NULL,
    local TEXT NOT NULL,
    PRIMARY KEY (domain, local),
    FOREIGN KEY (domain, local) REFERENCES accounts (domain, local) ON DELETE CASCADE
) WITHOUT ROWID
"""


def set_disabled(db: sqlite3.Connection, local: str, domain: str, disabled: bool) -> None:
    """Disable or re-enable ``local@domain`` in the caller's transaction."""
    if disabled:
        db.execute(
            "INSERT OR IGNORE INTO disabled_accounts (domain, local) VALUES (?, ?)",
            (domain, local),
        )
    else:
        db.execute("DELETE FROM disabled_accounts WHERE domain = ? AND local = ?", (domain, local))


_INSERT_CREDENTIALS: Final = (
    "INSERT INTO scram_credentials "
    "(domain, local, hash_name, salt, iterations, stored_key, server_key) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def set_credentials(
    db: sqlite3.Connection,
    local: str,
    domain: str,
    password: str,
    iterations: int,
    credentials: Sequence[ScramCredentials] | None = None,
) -> None:
    """Replace the password of ``local@domain`` in the caller's transaction
    (XEP-0133 "Change User Password") by ``credentials`` (derived here if
    ``None``); raise :class:`AccountNotFound`."""
    rows = _credential_rows(local, domain, password, iterations, credentials)
    if not _exists(db, local, domain):
        raise AccountNotFound(f"account {_jid(local, domain)} does not exist")
    db.execute("DELETE FROM scram_credentials WHERE domain = ? AND local = ?", (domain, local))
    db.executemany(_INSERT_CREDENTIALS, rows)


def create_account(
    db: sqlite3.Connection,
    local: str,
    domain: str,
    password: str,
    iterations: int,
    credentials: Sequence[ScramCredentials] | None = None,
) -> None:
    """Insert ``local@domain`` with ``password`` on ``db``, in the caller's
    transaction (XEP-0133 "Add User", committed with the batch's other ops),
    with ``credentials`` (derived here if ``None``); raise
    :class:`AccountExists` if it exists."""
    rows = _credential_rows(local, domain, password, iterations, credentials)
    try:
        db.execute("INSERT INTO accounts (domain, local) VALUES (?, ?)", (domain, local))
    except sqlite3.IntegrityError:
        raise AccountExists(f"account {_jid(local, domain)} already exists") from None
    db.executemany(_INSERT_CREDENTIALS, rows)


def delete_account(db: sqlite3.Connection, local: str, domain: str) -> bool:
    """Delete ``local@domain`` in the caller's transaction of ``db`` (a
    connection to the account database with ``foreign_keys`` on, so its
    credentials go too); whether it existed."""
    cursor = db.execute("DELETE FROM accounts WHERE domain = ? AND local = ?", (domain, local))
    return cursor.rowcount > 0


def _exists(db: sqlite3.Connection, local: str, domain: str) -> bool:
    row = db.execute(
        "SELECT 1 FROM accounts WHERE domain = ? AND local = ?", (domain, local)
    ).fetchone()
    return row is not None


def derive_credentials(password: str, iterations: int) -> tuple[ScramCredentials, ...]:
    """Derive the credentials of ``password`` for every hash of HASHES, each
    with a fresh salt (PBKDF2 is slow: call it outside any transaction, off
    the event loop). Raise ValueError for an empty or invalid password or a
    non-positive ``iterations``."""
    if not password:
        raise ValueError("the password must not be empty")
    if iterations < 1:
        raise ValueError("iterations must be positive")
    return tuple(
        derive_scram_credentials(
            password, hash_name, salt=secrets.token_bytes(SALT_BYTES), iterations=iterations
        )
        for hash_name in HASHES
    )


def _credential_rows(
    local: str,
    domain: str,
    password: str,
    iterations: int,
    credentials: Sequence[ScramCredentials] | None = None,
) -> list[tuple[str, str, str, bytes, int, bytes, bytes]]:
    """One credentials row per hash: ``credentials``, or derived now."""
    if credentials is None:
        credentials = derive_credentials(password, iterations)
    return [
        (domain, local, c.hash_name, c.salt, c.iterations, c.stored_key, c.server_key)
        for c in credentials
    ]


def _schema_version(db: sqlite3.Connection) -> int:
    row = db.execute("SELECT version FROM schema_version").fetchone()
    return 0 if row is None else int(row[0])


def _migrate(db: sqlite3.Connection, path: Path) -> None:
    """Create ``schema_version`` if needed and apply the missing migrations."""
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        version = _schema_version(db)
        if version > len(MIGRATIONS):
            raise StorageError(
                f"{path}: database schema version {version} is newer than this program "
                f"supports ({len(MIGRATIONS)}); upgrade xmpp-trio"
            )
        for script in MIGRATIONS[version:]:
            # executescript() would COMMIT first; run the statements one by one so
            # every migration happens inside this transaction.
            for statement in script.split(";"):
                if statement.strip():
                    db.execute(statement)
        if version == 0:
            db.execute("INSERT INTO schema_version (version) VALUES (?)", (len(MIGRATIONS),))
        else:
            db.execute("UPDATE schema_version SET version = ?", (len(MIGRATIONS),))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
