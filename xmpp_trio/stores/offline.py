"""SQLite storage of offline messages (XEP-0160), for
:class:`xmpp_sansio.server.offline.OfflineService`."""

from __future__ import annotations

import sqlite3
from typing import Final

from xmpp_sansio.jid import JID
from xmpp_sansio.server.offline import StoredMessage

__all__ = ["SqliteOfflineStorage"]

_SCHEMA: Final = (
    # AUTOINCREMENT: ids are never reused, so delete(user, upto_id) can never
    # remove a message stored after the ones that were read.
    """
    CREATE TABLE IF NOT EXISTS offline_messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        user TEXT NOT NULL,
        stanza BLOB NOT NULL,
        stamp REAL NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS offline_messages_user ON offline_messages (user, id)",
)


class SqliteOfflineStorage:
    """:class:`~xmpp_sansio.server.offline.OfflineStorage` in the table
    ``offline_messages`` of ``conn`` (created if missing). Each mutating method
    is one statement, committed before it returns."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        with conn:
            for statement in _SCHEMA:
                conn.execute(statement)

    def push(self, user: JID, stanza: bytes, stamp: float, limit: int) -> bool:
        # The quota check and the insert are one statement, so they are atomic.
        key = str(user.bare)
        with self._conn:
            cursor = self._conn.execute(
                """
                INSERT INTO offline_messages (user, stanza, stamp)
                SELECT ?, ?, ?
                WHERE (SELECT COUNT(*) FROM offline_messages WHERE user = ?) < ?
                """,
                (key, stanza, stamp, key, limit),
            )
        return cursor.rowcount == 1

    def peek(self, user: JID, limit: int | None = None) -> list[StoredMessage]:
        rows = self._conn.execute(
            "SELECT id, stanza, stamp FROM offline_messages WHERE user = ? ORDER BY id LIMIT ?",
            (str(user.bare), -1 if limit is None else limit),
        ).fetchall()
        return [StoredMessage(int(id_), bytes(stanza), float(stamp)) for id_, stanza, stamp in rows]

    def delete(self, user: JID, upto_id: int) -> None:
        with self._conn:
            self._conn.execute(
                "DELETE FROM offline_messages WHERE user = ? AND id <= ?",
                (str(user.bare), upto_id),
            )

    def count(self, user: JID) -> int:
        (count,) = self._conn.execute(
            "SELECT COUNT(*) FROM offline_messages WHERE user = ?", (str(user.bare),)
        ).fetchone()
        return int(count)
