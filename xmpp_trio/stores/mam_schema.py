"""The archive's tables (xmpp_trio/stores/mam.py, docs/mam.md "Storage")
and the moves from the layouts before them."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Final

from xmpp_sansio.jid import JID
from xmpp_sansio.server.mam.store import ArchivePut

__all__ = [
    "SCHEMA",
    "count_merged_only",
    "drop_first_layout",
    "first_layout",
    "forget_merged_steps",
    "migrate_text_entries",
    "rename_text_entries",
]

SCHEMA: Final = (
    """
    CREATE TABLE IF NOT EXISTS mam_archives (
        id INTEGER PRIMARY KEY,
        jid TEXT NOT NULL UNIQUE,
        n INTEGER NOT NULL DEFAULT 0
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS mam_items (
        seq INTEGER PRIMARY KEY,
        sid TEXT NOT NULL UNIQUE,
        stamp REAL NOT NULL,
        refs INTEGER NOT NULL,
        stanza BLOB NOT NULL
    )
    """,
    "CREATE TABLE IF NOT EXISTS mam_peers (id INTEGER PRIMARY KEY, jid TEXT NOT NULL UNIQUE)",
    """
    CREATE TABLE IF NOT EXISTS mam_entries (
        archive INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        bare INTEGER NOT NULL,
        peer INTEGER NOT NULL,
        PRIMARY KEY (archive, seq)
    ) WITHOUT ROWID
    """,
    "CREATE INDEX IF NOT EXISTS mam_entries_bare ON mam_entries (archive, bare, seq)",
    # The log (docs/mam.md "Cost"): the entries of new messages land here,
    # appended in ``seq`` order (no per-archive index), and are merged into
    # ``mam_entries`` in archive order (their items are in ``mam_items``).
    """
    CREATE TABLE IF NOT EXISTS mam_log_entries (
        archive INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        bare INTEGER NOT NULL,
        peer INTEGER NOT NULL,
        PRIMARY KEY (seq, archive)
    ) WITHOUT ROWID
    """,
    "CREATE TABLE IF NOT EXISTS mam_prefs (archive TEXT PRIMARY KEY, prefs TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS mam_state (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
)


def count_merged_only(conn: sqlite3.Connection) -> None:
    """``mam_archives.n`` counts the merged entries only (session 11: the
    log's are counted in memory); a database of before counted the log's
    too: take them off, once."""
    if conn.execute("SELECT 1 FROM mam_state WHERE key = 'n_merged'").fetchone() is None:
        conn.execute(
            "UPDATE mam_archives SET n = n - c.k FROM (SELECT archive, COUNT(*) AS k"
            " FROM mam_log_entries GROUP BY archive) AS c WHERE mam_archives.id = c.archive"
        )
        conn.execute("INSERT INTO mam_state VALUES ('n_merged', 1)")


def rename_text_entries(conn: sqlite3.Connection) -> bool:
    """A database of the second layout (``mam_entries`` with the peers as
    text, ``with_bare``/``with_full``): set its entries aside to be moved."""
    columns = {r[1] for r in conn.execute("PRAGMA table_info(mam_entries)")}
    if "with_bare" not in columns:
        return False
    conn.execute("DROP INDEX IF EXISTS mam_entries_with")
    conn.execute("ALTER TABLE mam_entries RENAME TO mam_entries_text")
    return True


def migrate_text_entries(conn: sqlite3.Connection) -> None:
    """Move the second layout's entries here, their peers as integers."""
    conn.execute(
        "INSERT OR IGNORE INTO mam_peers (jid) SELECT with_bare FROM mam_entries_text"
        " UNION SELECT with_full FROM mam_entries_text"
    )
    conn.execute(
        "INSERT INTO mam_entries SELECT e.archive, e.seq, b.id, f.id FROM mam_entries_text e"
        " JOIN mam_peers b ON b.jid = e.with_bare JOIN mam_peers f ON f.jid = e.with_full"
    )
    conn.execute("DROP TABLE mam_entries_text")


def first_layout(conn: sqlite3.Connection) -> Iterator[ArchivePut] | None:
    """The archives of the first layout (``mam_messages``), in order, as puts."""
    old = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'mam_messages'"
    ).fetchone()
    if old is None:
        return None
    rows = conn.execute(
        "SELECT archive, sid, with_full, stamp, stanza FROM mam_messages ORDER BY seq"
    )
    return (
        ArchivePut(JID.parse(a), sid, JID.parse(w), stamp, bytes(data), 1 << 62)
        for a, sid, w, stamp, data in rows
    )


def drop_first_layout(conn: sqlite3.Connection) -> None:
    conn.execute("DROP TABLE mam_messages")
    conn.execute("DROP TABLE IF EXISTS mam_counts")


def forget_merged_steps(conn: sqlite3.Connection) -> None:
    """A merge stopped between two steps (the server stopped): the log's
    rows it moved (up to ``seq`` ``merge_top``, of the archives up to id
    ``merge_done``) are deleted; the rest stays in the log."""
    state = dict(
        conn.execute(
            "SELECT key, value FROM mam_state WHERE key IN ('merge_top', 'merge_done')"
        ).fetchall()
    )
    if len(state) == 2:
        conn.execute(
            "DELETE FROM mam_log_entries WHERE seq <= ? AND archive <= ?",
            (state["merge_top"], state["merge_done"]),
        )
    conn.execute("DELETE FROM mam_state WHERE key IN ('merge_top', 'merge_done')")
