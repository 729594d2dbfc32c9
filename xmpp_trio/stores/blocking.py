"""SQLite storage of block lists (XEP-0191), for
:class:`xmpp_sansio.server.blocking.BlockingService`."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Final

from xmpp_sansio.jid import JID
from xmpp_sansio.server.effects import BlockAdd, BlockClear, BlockRemove, StoreOp

from ._sql import apply_ops

__all__ = ["SqliteBlockStorage"]

_SCHEMA: Final = """
    CREATE TABLE IF NOT EXISTS blocklist (
        user TEXT NOT NULL,
        jid TEXT NOT NULL,
        PRIMARY KEY (user, jid)
    ) WITHOUT ROWID
"""


def _json_list(jids: Iterable[JID]) -> str:
    return json.dumps([str(jid) for jid in jids])


class SqliteBlockStorage:
    """:class:`~xmpp_sansio.server.blocking.BlockStorage` in the table
    ``blocklist`` of ``conn`` (created if missing). Each mutating method is
    one statement (the JIDs travel as one JSON array), committed before it
    returns."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        with conn:
            conn.execute(_SCHEMA)

    def blocklist(self, user: JID) -> set[JID]:
        rows = self._conn.execute(
            "SELECT jid FROM blocklist WHERE user = ?", (str(user.bare),)
        ).fetchall()
        return {JID.parse(jid) for (jid,) in rows}

    def blocking_users(self) -> set[JID]:
        """Every user with a list (:class:`BlockStorage`'s optional method:
        while it is empty the router skips blocking's filters)."""
        rows = self._conn.execute("SELECT DISTINCT user FROM blocklist").fetchall()
        return {JID.parse(user) for (user,) in rows}

    def block(self, user: JID, jids: Iterable[JID]) -> None:
        with self._conn:
            self._conn.execute(
                "INSERT OR IGNORE INTO blocklist (user, jid) SELECT ?, value FROM json_each(?)",
                (str(user.bare), _json_list(jids)),
            )

    def unblock(self, user: JID, jids: Iterable[JID]) -> None:
        with self._conn:
            self._conn.execute(
                "DELETE FROM blocklist WHERE user = ? AND jid IN (SELECT value FROM json_each(?))",
                (str(user.bare), _json_list(jids)),
            )

    def unblock_all(self, user: JID) -> None:
        with self._conn:
            self._conn.execute("DELETE FROM blocklist WHERE user = ?", (str(user.bare),))

    def write(self, op: StoreOp) -> None:
        """Carry out ``op`` in the caller's transaction (``ServerServices.commit``)."""
        match op:
            case BlockAdd():
                self._conn.execute(
                    "INSERT OR IGNORE INTO blocklist (user, jid) SELECT ?, value FROM json_each(?)",
                    (str(op.user.bare), _json_list(op.jids)),
                )
            case BlockRemove():
                self._conn.execute(
                    "DELETE FROM blocklist WHERE user = ?"
                    " AND jid IN (SELECT value FROM json_each(?))",
                    (str(op.user.bare), _json_list(op.jids)),
                )
            case BlockClear():
                self._conn.execute("DELETE FROM blocklist WHERE user = ?", (str(op.user.bare),))
            case _:
                raise TypeError(f"not a block list op: {op!r}")

    def apply(self, ops: Sequence[StoreOp]) -> None:
        apply_ops(self._conn, self.write, ops)
