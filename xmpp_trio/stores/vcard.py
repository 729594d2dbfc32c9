"""SQLite :class:`~xmpp_sansio.server.vcard.VCardStorage` (XEP-0054 vCards)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from xmpp_sansio.jid import JID
from xmpp_sansio.server.effects import StoreOp, VCardDelete, VCardPut

from ._sql import apply_ops

__all__ = ["SqliteVCardStorage"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS vcards (
    domain TEXT NOT NULL,
    local TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (domain, local)
) WITHOUT ROWID
"""


def _key(user: JID) -> tuple[str, str]:
    # The server itself (no localpart) is stored with an empty one.
    return user.domain, user.local or ""


class SqliteVCardStorage:
    """vCards in the ``vcards`` table, one row per account (by bare JID).

    The table is created if missing. :meth:`put` and :meth:`delete` have
    committed when they return. The methods are synchronous and unlocked: use
    the store from one thread at a time.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._db = conn
        with conn:
            conn.execute(_SCHEMA)

    def get(self, user: JID) -> bytes | None:
        row = self._db.execute(
            "SELECT data FROM vcards WHERE domain = ? AND local = ?", _key(user)
        ).fetchone()
        return None if row is None else bytes(row[0])

    def put(self, user: JID, data: bytes) -> None:
        with self._db:
            self._db.execute(
                "INSERT INTO vcards (domain, local, data) VALUES (?, ?, ?) "
                "ON CONFLICT (domain, local) DO UPDATE SET data = excluded.data",
                (*_key(user), bytes(data)),
            )

    def delete(self, user: JID) -> None:
        with self._db:
            self._db.execute("DELETE FROM vcards WHERE domain = ? AND local = ?", _key(user))

    def write(self, op: StoreOp) -> None:
        """Carry out ``op`` in the caller's transaction (``ServerServices.commit``)."""
        match op:
            case VCardPut():
                self._db.execute(
                    "INSERT INTO vcards (domain, local, data) VALUES (?, ?, ?) "
                    "ON CONFLICT (domain, local) DO UPDATE SET data = excluded.data",
                    (*_key(op.user), bytes(op.data)),
                )
            case VCardDelete():
                self._db.execute("DELETE FROM vcards WHERE domain = ? AND local = ?", _key(op.user))
            case _:
                raise TypeError(f"not a vCard op: {op!r}")

    def apply(self, ops: Sequence[StoreOp]) -> None:
        apply_ops(self._db, self.write, ops)
