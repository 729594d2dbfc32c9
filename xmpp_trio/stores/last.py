"""SQLite storage of last logouts (XEP-0012), for
:class:`xmpp_sansio.server.last.LastActivityService`."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Final

from xmpp_sansio.jid import JID
from xmpp_sansio.server.effects import LastForget, LastSet, StoreOp
from xmpp_sansio.server.last import LastLogout

from ._sql import apply_ops

__all__ = ["SqliteLastActivityStorage"]

_SCHEMA: Final = """
    CREATE TABLE IF NOT EXISTS last_activity (
        user TEXT PRIMARY KEY,
        stamp REAL NOT NULL,
        status TEXT
    ) WITHOUT ROWID
"""


class SqliteLastActivityStorage:
    """:class:`~xmpp_sansio.server.last.LastActivityService`'s storage in the
    table ``last_activity`` of ``conn`` (created if missing).

    Logout times are written behind: :meth:`set` keeps them in memory (where
    :meth:`get` sees them at once) and :meth:`flush` writes all of them in one
    transaction. The server flushes about once a second and when it stops, so
    a burst of logouts costs one commit, not one ``fsync`` each on the event
    loop; a crash loses at most the last second of logout times, which XEP-0012
    only reports. :meth:`forget` (account removal) is written at once.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._pending: dict[str, LastLogout] = {}
        with conn:
            conn.execute(_SCHEMA)

    def set(self, user: JID, stamp: float, status: str | None) -> None:
        self._pending[str(user.bare)] = LastLogout(stamp, status)

    def flush(self) -> None:
        """Write the logout times kept since the last flush."""
        if not self._pending:
            return
        rows = [(user, last.stamp, last.status) for user, last in self._pending.items()]
        with self._conn:
            self._conn.executemany(
                "INSERT OR REPLACE INTO last_activity (user, stamp, status) VALUES (?, ?, ?)",
                rows,
            )
        self._pending.clear()

    def forget(self, user: JID) -> None:
        key = str(user.bare)
        self._pending.pop(key, None)
        with self._conn:
            self._conn.execute("DELETE FROM last_activity WHERE user = ?", (key,))

    def write(self, op: StoreOp) -> None:
        """Carry out ``op`` in the caller's transaction (``ServerServices.commit``):
        a :class:`LastSet` is kept to be written behind, as :meth:`set`."""
        match op:
            case LastSet():
                self._pending[str(op.user.bare)] = LastLogout(op.stamp, op.status)
            case LastForget():
                key = str(op.user.bare)
                self._pending.pop(key, None)
                self._conn.execute("DELETE FROM last_activity WHERE user = ?", (key,))
            case _:
                raise TypeError(f"not a last activity op: {op!r}")

    def apply(self, ops: Sequence[StoreOp]) -> None:
        apply_ops(self._conn, self.write, ops)

    def get(self, user: JID) -> LastLogout | None:
        key = str(user.bare)
        pending = self._pending.get(key)
        if pending is not None:
            return pending
        row = self._conn.execute(
            "SELECT stamp, status FROM last_activity WHERE user = ?", (key,)
        ).fetchone()
        if row is None:
            return None
        stamp, status = row
        return LastLogout(float(stamp), None if status is None else str(status))
