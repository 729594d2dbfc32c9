"""SQLite records of HTTP upload slots (XEP-0363), for
:class:`xmpp_sansio.server.upload.UploadService` and the HTTP listener; the
files themselves live in ``<data_dir>/upload/<slot>``."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from xmpp_sansio.jid import JID
from xmpp_sansio.server.effects import StoreOp, UploadSlot

from ._sql import apply_ops

__all__ = ["SqliteUploadStorage", "StoredSlot"]

_SCHEMA: Final = (
    """
    CREATE TABLE IF NOT EXISTS upload_slots (
        slot TEXT PRIMARY KEY,
        user TEXT NOT NULL,
        filename TEXT NOT NULL,
        size INTEGER NOT NULL,
        content_type TEXT NOT NULL,
        expires REAL NOT NULL,
        file_expires REAL NOT NULL,
        uploaded INTEGER NOT NULL DEFAULT 0
    )
    """,
    "CREATE INDEX IF NOT EXISTS upload_slots_user ON upload_slots (user)",
)


@dataclass(frozen=True, slots=True)
class StoredSlot:
    slot: str
    filename: str
    size: int
    content_type: str
    expires: float
    file_expires: float
    uploaded: bool


class SqliteUploadStorage:
    """The table ``upload_slots`` of ``conn`` (created if missing). Slots are
    written through :meth:`apply` (``Persist`` effects, one transaction per
    batch); the HTTP listener marks uploads and deletes expired rows."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        with conn:
            for statement in _SCHEMA:
                conn.execute(statement)

    def used_bytes(self, user: JID, now: float) -> int:
        row = self._conn.execute(
            "SELECT COALESCE(SUM(size), 0) FROM upload_slots WHERE user = ?"
            " AND ((uploaded = 0 AND expires > ?) OR (uploaded = 1 AND file_expires > ?))",
            (str(user.bare), now, now),
        ).fetchone()
        return int(row[0])

    def write(self, op: StoreOp) -> None:
        """Record a slot in the caller's transaction (``ServerServices.commit``)."""
        if not isinstance(op, UploadSlot):
            raise TypeError(f"not an upload op: {op!r}")
        self._conn.execute(
            "INSERT INTO upload_slots (slot, user, filename, size, content_type, expires,"
            " file_expires) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                op.slot,
                str(op.user.bare),
                op.filename,
                op.size,
                op.content_type,
                op.expires,
                op.file_expires,
            ),
        )

    def apply(self, ops: Sequence[StoreOp]) -> None:
        """``write`` each of ``ops`` in one transaction of their own."""
        apply_ops(self._conn, self.write, ops)

    def get(self, slot: str) -> StoredSlot | None:
        row = self._conn.execute(
            "SELECT slot, filename, size, content_type, expires, file_expires, uploaded"
            " FROM upload_slots WHERE slot = ?",
            (slot,),
        ).fetchone()
        if row is None:
            return None
        return StoredSlot(row[0], row[1], row[2], row[3], row[4], row[5], bool(row[6]))

    def mark_uploaded(self, slot: str) -> bool:
        """Record the file of ``slot`` as uploaded; False if it already was."""
        with self._conn:
            cursor = self._conn.execute(
                "UPDATE upload_slots SET uploaded = 1 WHERE slot = ? AND uploaded = 0", (slot,)
            )
        return cursor.rowcount == 1

    def expire(self, now: float) -> list[str]:
        """Forget slots never used and files past their lifetime; return the
        slots whose files are to be deleted."""
        with self._conn:
            rows = self._conn.execute(
                "SELECT slot FROM upload_slots WHERE file_expires <= ?"
                " OR (uploaded = 0 AND expires <= ?)",
                (now, now),
            ).fetchall()
            self._conn.execute(
                "DELETE FROM upload_slots WHERE file_expires <= ? OR (uploaded = 0 AND expires <= ?)",
                (now, now),
            )
        return [row[0] for row in rows]
