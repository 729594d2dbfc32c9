"""The ``ejabberd-sql`` benchmark target (benchmarks/load/ejabberd_sql.py, issue 24).

The helpers write ejabberd's own SQLite schema (Debian's ``lite.sql``); the last
test starts ejabberd 23.01 on it and checks on the wire that it archives. Both
need ejabberd (and its SQLite driver, ``erlang-p1-sqlite3``), which only the
benchmark installs (``benchmarks/compare.sh``), not ``.ci/run``: without them
these tests skip, with the reason, also under CI.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks" / "load"))

import ejabberd_sql  # noqa: E402
import targets  # noqa: E402
from generator import contacts_of  # noqa: E402

LIBS, _ = targets._ejabberd_libs()
try:
    ejabberd_sql.schema(LIBS)
except RuntimeError:
    pytest.skip("ejabberd's lite.sql is not installed (apt-get install ejabberd)",
                allow_module_level=True)  # fmt: skip
needs_driver = pytest.mark.skipif(
    not ejabberd_sql.driver_installed(), reason="no erlang-p1-sqlite3 (ejabberd's SQLite driver)"
)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "ejabberd.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(ejabberd_sql.schema(LIBS).read_text())
    conn.close()
    return path


def test_accounts_are_copies_of_u0s_scram_row(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO users (username, password, serverkey, salt, iterationcount)"
                     " VALUES ('u0', 'stored', 'server', 'c2FsdA==', 4096)")  # fmt: skip
    conn.close()
    assert ejabberd_sql.copy_accounts(db, 5) == ("sha", "c2FsdA==", 4096)
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT username, password, serverkey, salt, iterationcount"
                            " FROM users ORDER BY username").fetchall()  # fmt: skip
    conn.close()
    assert rows == [(f"u{i}", "stored", "server", "c2FsdA==", 4096) for i in range(5)]


def test_rosters_are_the_generators_ring_with_both_way_subscriptions(db: Path) -> None:
    ejabberd_sql.write_rosters(db, targets.roster_pairs(4, 10))
    ejabberd_sql.write_rosters(db, targets.roster_pairs(2, 10))  # replaces, never adds
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT username, jid, subscription, ask, type FROM rosterusers"
                            " ORDER BY username, jid").fetchall()  # fmt: skip
    conn.close()
    expected = sorted((f"u{i}", f"u{j}@{targets.DOMAIN}", "B", "N", "item")
                      for i in range(10) for j in contacts_of(i, 10, 2))  # fmt: skip
    assert rows == expected and len(rows) == 20


def test_create_names_the_missing_driver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ejabberd_sql, "DRIVERS", (str(tmp_path / "nothing-*"),))
    with pytest.raises(RuntimeError, match="erlang-p1-sqlite3"):
        ejabberd_sql.create(tmp_path / "ejabberd.db", LIBS)


@needs_driver
def test_create_starts_a_fresh_wal_file_with_ejabberds_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ejabberd_sql, "JOURNAL", "wal")  # the default
    db = tmp_path / "ejabberd.db"
    db.write_bytes(b"stale")  # a previous run's file is replaced, not reused
    ejabberd_sql.create(db, LIBS)
    with sqlite3.connect(db) as conn:
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()
    assert mode == "wal"
    assert {"users", "rosterusers", "spool", "archive", "archive_prefs"} <= tables


@needs_driver
def test_ejabberd_on_sqlite_archives_what_it_is_sent(tmp_path: Path) -> None:
    target = targets.make("ejabberd-sql", tmp_path)
    try:
        note = target.prepare(3)  # u0 -> u1, then u0's XEP-0313 query must return it
        with sqlite3.connect(target.db) as conn:
            users = conn.execute("SELECT count(*) FROM users").fetchone()[0]
            archived = conn.execute("SELECT username FROM archive ORDER BY username").fetchall()
        conn.close()
    finally:
        target.close()
    assert "archiving checked" in note
    assert users == 3
    assert archived == [("u0",), ("u1",)]  # the sender's and the recipient's archive
