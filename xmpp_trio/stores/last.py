"""SQLite storage of last logouts (XEP-0012), for
:class:`xmpp_sansio.server.last.LastActivityService`."""

from __future__ import annotations

import sqlite3
from typing import Final

from xmpp_sansio.jid import JID
from xmpp_sansio.server.last import LastLogout

__all__ = ["SqliteLastActivityStorage"]

_SCHEMA: Final = """
    CREATE TABLE IF NOT EXISTS last_activity (
        user TEXT PRIMARY KEY,
        stamp REAL NOT NULL,
        status TEXT
    ) WITHOUT ROWID
"""


class SqliteLastActivityStorage:
    """:class:`~xmpp_sansio.server.last.LastActivityStorage` in the table
    ``last_activity`` of ``conn`` (created if missing); :meth:`set` is
    committed before it returns."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        with conn:
            conn.execute(_SCHEMA)

    def set(self, user: JID, stamp: float, status: str | None) -> None:
        with self._conn:
            self._conn.execute(
                "INSERT OR REPLACE INTO last_activity (user, stamp, status) VALUES (?, ?, ?)",
                (str(user.bare), stamp, status),
            )

    def forget(self, user: JID) -> None:
        with self._conn:
            self._conn.execute("DELETE FROM last_activity WHERE user = ?", (str(user.bare),))

    def get(self, user: JID) -> LastLogout | None:
        row = self._conn.execute(
            "SELECT stamp, status FROM last_activity WHERE user = ?", (str(user.bare),)
        ).fetchone()
        if row is None:
            return None
        stamp, status = row
        return LastLogout(float(stamp), None if status is None else str(status))
