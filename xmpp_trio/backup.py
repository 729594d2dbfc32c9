"""Backup and restore of the server's database (issue 23).

Everything the server keeps (accounts with their SCRAM credentials, rosters,
offline messages, vCards, private XML, block lists, last activity) is in one
SQLite file, ``<data_dir>/xmpp.sqlite3``. A backup is a copy made with
SQLite's online backup API, which is consistent while the server runs and
writes (WAL readers never block the writer). A restore checks the backup
(``quick_check``) and copies it over the database, only while no server holds
the data directory (its lock, ``xmpp-trio.lock``): a running server would keep
writing the old state.
"""

from __future__ import annotations

import fcntl
import sqlite3
from pathlib import Path

from .storage import StorageError

__all__ = ["backup", "restore"]


def _check(db: sqlite3.Connection, path: Path) -> None:
    rows = db.execute("PRAGMA quick_check").fetchall()
    problems = [str(row[0]) for row in rows if row[0] != "ok"]
    if problems:
        raise StorageError(f"{path}: the database is corrupt ({problems[0]})")


def backup(database: Path, target: Path) -> None:
    """Copy ``database`` to ``target`` (a new file), consistently, even while
    a server uses it."""
    if target.exists():
        raise StorageError(f"{target} exists already; choose a new file")
    if not database.is_file():
        raise StorageError(f"{database}: no database to back up")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with sqlite3.connect(database) as source, sqlite3.connect(target) as copy:
            source.backup(copy)
            _check(copy, target)
            copy.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
    except sqlite3.Error as exc:
        target.unlink(missing_ok=True)
        raise StorageError(f"cannot back up {database} to {target}: {exc}") from exc
    except BaseException:
        target.unlink(missing_ok=True)
        raise


def restore(source: Path, database: Path, lock: Path) -> None:
    """Replace ``database`` with the backup ``source``, unless a server holds
    ``lock`` (the data directory's lock file)."""
    if not source.is_file():
        raise StorageError(f"{source}: no such backup")
    database.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with lock.open("a+b") as held:
        try:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise StorageError(
                f"a server is running on {database.parent}: stop it before restoring"
            ) from None
        try:
            with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as backup_db:
                _check(backup_db, source)
                with sqlite3.connect(database) as live:
                    backup_db.backup(live)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot restore {source} to {database}: {exc}") from exc
