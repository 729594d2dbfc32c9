"""SQLite storage of offline messages (XEP-0160), for
:class:`xmpp_sansio.server.offline.OfflineService`."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Final

from xmpp_sansio.jid import JID
from xmpp_sansio.server.effects import (
    LoadQuery,
    OfflineDelete,
    OfflinePage,
    OfflinePush,
    OfflineRemove,
    StoreOp,
)
from xmpp_sansio.server.offline import StoredMessage

from ._sql import apply_ops

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
    commits before it returns; :meth:`apply` commits a batch of operations in
    one transaction (the server calls it once per batch of input)."""

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

    def peek(
        self, user: JID, limit: int | None = None, *, after_id: int = 0
    ) -> list[StoredMessage]:
        rows = self._conn.execute(
            "SELECT id, stanza, stamp FROM offline_messages"
            " WHERE user = ? AND id > ? ORDER BY id LIMIT ?",
            (str(user.bare), after_id, -1 if limit is None else limit),
        ).fetchall()
        return [StoredMessage(int(id_), bytes(stanza), float(stamp)) for id_, stanza, stamp in rows]

    def load(self, query: LoadQuery) -> list[StoredMessage]:
        """Answer a ``Load`` effect (:class:`OfflinePage`)."""
        if not isinstance(query, OfflinePage):
            raise TypeError(f"not an offline read: {query!r}")
        return self.peek(query.user, query.limit, after_id=query.after_id)

    def write(self, op: StoreOp) -> None:
        """Carry out ``op`` in the caller's transaction (``ServerServices.commit``)."""
        match op:
            case OfflinePush():
                self._conn.execute(
                    "INSERT INTO offline_messages (id, user, stanza, stamp) VALUES (?, ?, ?, ?)",
                    (op.id, str(op.user.bare), op.stanza, op.stamp),
                )
            case OfflineDelete():
                self._conn.execute(
                    "DELETE FROM offline_messages WHERE user = ? AND id <= ?",
                    (str(op.user.bare), op.upto),
                )
            case OfflineRemove():
                self._conn.execute(
                    "DELETE FROM offline_messages WHERE user = ? AND id = ?",
                    (str(op.user.bare), op.id),
                )
            case _:
                raise TypeError(f"not an offline op: {op!r}")

    def apply(self, ops: Sequence[StoreOp]) -> None:
        # One transaction (BEGIN IMMEDIATE on the autocommit connection): one
        # commit, one fsync, for the whole batch.
        apply_ops(self._conn, self.write, ops)

    def last_id(self) -> int:
        # AUTOINCREMENT keeps the highest id ever used in sqlite_sequence,
        # even once its row is deleted.
        row = self._conn.execute(
            "SELECT seq FROM sqlite_sequence WHERE name = 'offline_messages'"
        ).fetchone()
        return 0 if row is None else int(row[0])

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
