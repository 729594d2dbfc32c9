"""SQLite :class:`~xmpp_sansio.server.private.PrivateStorage` (XEP-0049)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from xmpp_sansio.jid import JID
from xmpp_sansio.server.effects import PrivateDelete, PrivatePut, StoreOp

from ._sql import apply_ops
from ._sql import transaction as _transaction

__all__ = ["SqlitePrivateStorage"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS private_xml (
    domain TEXT NOT NULL,
    local TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (domain, local, namespace, name)
) WITHOUT ROWID
"""


def _key(user: JID) -> tuple[str, str]:
    return user.domain, user.local or ""


class SqlitePrivateStorage:
    """Private XML in the ``private_xml`` table, one row per (account,
    namespace, local name).

    The table is created if missing. :meth:`put`, :meth:`put_many` (one
    transaction) and :meth:`delete` have committed when they return. The
    methods are synchronous and unlocked: use the store from one thread at a
    time.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._db = conn
        with conn:
            conn.execute(_SCHEMA)

    def get(self, user: JID, namespace: str, local: str) -> bytes | None:
        row = self._db.execute(
            "SELECT data FROM private_xml "
            "WHERE domain = ? AND local = ? AND namespace = ? AND name = ?",
            (*_key(user), namespace, local),
        ).fetchone()
        return None if row is None else bytes(row[0])

    def put(self, user: JID, namespace: str, local: str, data: bytes) -> None:
        self.put_many(user, [(namespace, local, data)])

    def put_many(self, user: JID, items: Sequence[tuple[str, str, bytes]]) -> None:
        key = _key(user)
        with _transaction(self._db):
            self._db.executemany(
                "INSERT INTO private_xml (domain, local, namespace, name, data) "
                "VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (domain, local, namespace, name) DO UPDATE SET data = excluded.data",
                [(*key, namespace, local, bytes(data)) for namespace, local, data in items],
            )

    def sizes(self, user: JID) -> dict[tuple[str, str], int]:
        rows = self._db.execute(
            "SELECT namespace, name, length(data) FROM private_xml WHERE domain = ? AND local = ?",
            _key(user),
        ).fetchall()
        return {(namespace, name): int(size) for namespace, name, size in rows}

    def delete(self, user: JID) -> None:
        with self._db:
            self._db.execute("DELETE FROM private_xml WHERE domain = ? AND local = ?", _key(user))

    def write(self, op: StoreOp) -> None:
        """Carry out ``op`` in the caller's transaction (``ServerServices.commit``)."""
        match op:
            case PrivatePut():
                key = _key(op.user)
                self._db.executemany(
                    "INSERT INTO private_xml (domain, local, namespace, name, data) "
                    "VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (domain, local, namespace, name) DO UPDATE SET data = excluded.data",
                    [(*key, namespace, local, bytes(data)) for namespace, local, data in op.items],
                )
            case PrivateDelete():
                self._db.execute(
                    "DELETE FROM private_xml WHERE domain = ? AND local = ?", _key(op.user)
                )
            case _:
                raise TypeError(f"not a private XML op: {op!r}")

    def apply(self, ops: Sequence[StoreOp]) -> None:
        apply_ops(self._db, self.write, ops)
