"""Issue 24: ``ejabberd-sql``, ejabberd 23.01 storing everything in SQLite.

ejabberd's default store is Mnesia, whose disc tables are written synchronously
(``ejabberd-full``: 12-24x slower than ours per CPU-second on messages); its own
docs and mod_mam's start-up warning recommend an SQL backend for archives ("for
small servers SQLite is a preferred choice"). This target is that configuration:
``sql_type: sqlite``, ``default_db: sql`` and ``auth_method: sql``, so accounts,
rosters, offline storage (``spool``), archives (``archive``) and the rest live in
one SQLite file made from the schema Debian's package ships (``lite.sql``, the
default "old" schema of 23.01, which has no schema creation of its own). It
needs the SQLite driver, Debian package ``erlang-p1-sqlite3``.

Speed settings, documented options only: ejabberd 23.01 has no option that
batches archive writes. mod_mam's options (``use_cache``, ``cache_size``,
``cache_life_time``, ``cache_missed``) cache reads (preferences), not writes;
``compress_xml`` trades CPU for smaller rows (left off: the default). Every
archived message is one INSERT per archive (sender's and recipient's), each its
own SQLite transaction, sent by the session's process to the SQL pool and waited
for. The pool is one connection for SQLite (``sql_pool_size`` 1, whose docs warn
against more "due to potential race conditions"); its request queue in RAM
(``sql_queue_type: ram``) and prepared statements on (the defaults, written out
below so the choice is visible). ejabberd sets only ``pragma foreign_keys = on``
on its connection, so ``synchronous=FULL`` holds (one fsync per commit; no
ejabberd option changes it, and it does not persist in the file). The journal
mode does persist in the file: :data:`JOURNAL`, WAL unless
``BENCH_EJABBERD_SQLITE_JOURNAL=delete`` (SQLite's default rollback journal:
several fsyncs and a journal file created and deleted per commit; measured
6-10x slower here, see docs/benchmarks.md "Session 7").

Accounts: u0 registered through ``ejabberd_auth`` (SCRAM-SHA-1 record, random
salt), the others copies of its ``users`` row; rosters written as
``rosterusers`` rows, both done here with Python's sqlite3 while ejabberd is
stopped (its caches live in memory and start empty).
"""

from __future__ import annotations

import glob
import os
import sqlite3
from pathlib import Path

SCHEMAS = ("/usr/share/ejabberd/sql/lite.sql",)  # and {ERL_LIBS}/ejabberd-*/priv/sql/lite.sql
DRIVERS = ("/usr/lib/erlang/lib/p1_sqlite3-*", "/usr/lib/*/erlang/lib/p1_sqlite3-*")
# The file's journal mode (persistent in the file, SQLite's documented way to
# switch an application to WAL without changing it): "wal" as a user who wants
# speed sets it (and as ours runs), "delete" for SQLite's (and ejabberd's) default.
JOURNAL = os.environ.get("BENCH_EJABBERD_SQLITE_JOURNAL", "wal").lower()

# Top-level options replacing ``auth_method: internal`` in targets.EJABBERD_CONFIG.
CONFIG = """\
auth_method: sql
default_db: sql
sql_type: sqlite
sql_database: "{db}"
sql_pool_size: 1
sql_queue_type: ram
sql_prepared_statements: true"""

# Runs once after ejabberd started on the empty schema: registers u0 (its users
# row is copied by :func:`copy_accounts`), then a clean stop.
PREPARE = """\
P = list_to_binary(os:getenv("BENCH_PASSWORD")), H = list_to_binary(os:getenv("BENCH_DOMAIN")),
ok = ejabberd_auth:try_register(<<"u0">>, H, P),
ok = file:write_file(os:getenv("BENCH_OUT"), <<"ok">>),
init:stop().
"""


def schema(libs: str) -> Path:
    """The SQLite schema ejabberd ships (``lite.sql``)."""
    found = [*SCHEMAS, *sorted(glob.glob(f"{libs}/ejabberd-*/priv/sql/lite.sql"))]
    for path in found:
        if Path(path).exists():
            return Path(path)
    raise RuntimeError("ejabberd's SQLite schema (lite.sql) not found")


def driver_installed() -> bool:
    """Whether the SQLite driver ejabberd needs is there (``erlang-p1-sqlite3``)."""
    return any(glob.glob(pattern) for pattern in DRIVERS)


def create(db: Path, libs: str) -> None:
    """A fresh database file with ejabberd's schema."""
    if not driver_installed():
        raise RuntimeError(
            "ejabberd-sql needs the SQLite driver: apt-get install erlang-p1-sqlite3"
        )
    for stale in (db, *(db.with_name(db.name + end) for end in ("-journal", "-wal", "-shm"))):
        stale.unlink(missing_ok=True)
    conn = sqlite3.connect(db)
    (mode,) = conn.execute(f"PRAGMA journal_mode = {JOURNAL}").fetchone()
    if mode != JOURNAL:
        raise RuntimeError(f"SQLite refused journal_mode {JOURNAL} (got {mode})")
    with conn:
        conn.executescript(schema(libs).read_text())
    conn.close()


def copy_accounts(db: Path, accounts: int) -> tuple[str, str, int]:
    """u1..u(accounts-1) as copies of u0's ``users`` row (one salt for all, as the
    other targets do); (hash, base64 salt, iterations) of that row."""
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT password, serverkey, salt, iterationcount FROM users WHERE username = 'u0'"
        ).fetchone()
        if row is None:
            raise RuntimeError("u0 was not registered in ejabberd's users table")
        password, serverkey, salt, iterations = row
        conn.executemany(
            "INSERT OR REPLACE INTO users (username, password, serverkey, salt, iterationcount)"
            " VALUES (?, ?, ?, ?, ?)",
            ((f"u{i}", password, serverkey, salt, iterations) for i in range(1, accounts)),
        )
    conn.close()
    return "sha", salt, int(iterations)  # auth_scram_hash: sha (targets.EJABBERD_CONFIG)


def write_rosters(db: Path, pairs: list[tuple[str, str]]) -> None:
    """Roster items (user, contact bare JIDs), both-way subscriptions, replacing all."""
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM rosterusers")
        conn.execute("DELETE FROM rostergroups")
        conn.executemany(
            "INSERT INTO rosterusers (username, jid, nick, subscription, ask, askmessage,"
            " server, subscribe, type) VALUES (?, ?, '', 'B', 'N', '', 'N', '', 'item')",
            ((user.split("@", 1)[0], contact) for user, contact in pairs),
        )
    conn.close()
