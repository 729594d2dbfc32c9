"""SQLite store of the user directory (XEP-0055): each user's listing choice,
and the vCards it indexes at start (:mod:`xmpp_sansio.server.search`)."""

from __future__ import annotations

import sqlite3

from xmpp_sansio.jid import JID
from xmpp_sansio.server.effects import DirectoryListing, StoreOp

__all__ = ["SqliteDirectoryStorage"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS directory_listing (
    domain TEXT NOT NULL,
    local TEXT NOT NULL,
    listed INTEGER NOT NULL,
    PRIMARY KEY (domain, local)
) WITHOUT ROWID
"""


class SqliteDirectoryStorage:
    """The ``directory_listing`` table (created if missing); reads the
    ``vcards`` table of :class:`~xmpp_trio.stores.vcard.SqliteVCardStorage`."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._db = conn
        with conn:
            conn.execute(_SCHEMA)

    def choices(self) -> dict[JID, bool]:
        """Every stored choice, by bare JID."""
        rows = self._db.execute("SELECT domain, local, listed FROM directory_listing")
        return {JID(local, domain, None): bool(listed) for domain, local, listed in rows}

    def vcards(self) -> list[tuple[JID, bytes]]:
        """Every account's stored vCard."""
        try:
            rows = self._db.execute("SELECT domain, local, data FROM vcards WHERE local != ''")
        except sqlite3.OperationalError:  # no vCard table yet
            return []
        return [(JID(local, domain, None), bytes(data)) for domain, local, data in rows]

    def write(self, op: StoreOp) -> None:
        """Carry out ``op`` in the caller's transaction (``ServerServices.commit``)."""
        if not isinstance(op, DirectoryListing) or op.account.local is None:
            raise TypeError(f"not a directory op: {op!r}")
        if op.listed is None:
            self._db.execute(
                "DELETE FROM directory_listing WHERE domain = ? AND local = ?",
                (op.account.domain, op.account.local),
            )
            return
        self._db.execute(
            "INSERT INTO directory_listing (domain, local, listed) VALUES (?, ?, ?) "
            "ON CONFLICT (domain, local) DO UPDATE SET listed = excluded.listed",
            (op.account.domain, op.account.local, int(op.listed)),
        )
