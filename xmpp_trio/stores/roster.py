"""Rosters in SQLite: :class:`SqliteRosterStorage` implements
:class:`xmpp_sansio.server.roster.RosterStorage`.

Two tables, created if missing:

* ``roster_items``: one row per (user, contact) record, both as bare/normal
  JID strings; the client-visible item (name, subscription, ask, approved,
  groups as a sorted JSON array), whether the record is in the roster, the
  "Pending In" flag and the pending ``subscribe`` stanza as XML (RFC 6121
  §3.1.3). The integer primary key keeps the order records were first
  stored (an upsert keeps the row). An index on ``contact`` finds the
  rosters that hold an account being deleted.
* ``roster_versions``: the per-user version counter (RFC 6121 §2.6), bumped
  by every write, never reset, so a version is never reused.

Every mutating method runs in one transaction and commits before it returns.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from typing import Final
from xml.etree.ElementTree import Element

from defusedxml.ElementTree import fromstring

from xmpp_sansio.jid import JID
from xmpp_sansio.roster import RosterItem, Subscription
from xmpp_sansio.server.effects import RosterDelete, RosterPut, StoreOp
from xmpp_sansio.server.roster import StoredItem
from xmpp_sansio.xml.writer import serialize

from ._sql import apply_ops
from ._sql import transaction as _transaction

__all__ = ["SCHEMA", "SqliteRosterStorage"]

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS roster_items (
    id INTEGER PRIMARY KEY,
    user TEXT NOT NULL,
    contact TEXT NOT NULL,
    name TEXT,
    subscription TEXT NOT NULL CHECK (subscription IN ('none', 'to', 'from', 'both')),
    ask INTEGER NOT NULL CHECK (ask IN (0, 1)),
    approved INTEGER NOT NULL CHECK (approved IN (0, 1)),
    groups TEXT NOT NULL,
    in_roster INTEGER NOT NULL CHECK (in_roster IN (0, 1)),
    pending_in INTEGER NOT NULL CHECK (pending_in IN (0, 1)),
    pending_request TEXT,
    UNIQUE (user, contact)
);
CREATE INDEX IF NOT EXISTS roster_items_contact ON roster_items (contact);
CREATE TABLE IF NOT EXISTS roster_versions (
    user TEXT PRIMARY KEY,
    version INTEGER NOT NULL
) WITHOUT ROWID;
"""

_COLUMNS: Final = (
    "contact, name, subscription, ask, approved, groups, in_roster, pending_in, pending_request"
)

_Row = tuple[str, str | None, str, int, int, str, int, int, str | None]


def _to_row(stored: StoredItem) -> tuple[object, ...]:
    item = stored.item
    request = stored.pending_request
    return (
        str(item.jid),
        item.name,
        item.subscription.value,
        int(item.ask),
        int(item.approved),
        json.dumps(sorted(item.groups), ensure_ascii=False),
        int(stored.in_roster),
        int(stored.pending_in),
        None if request is None else serialize(request, default_ns="").decode("utf-8"),
    )


def _from_row(row: _Row) -> StoredItem:
    contact, name, subscription, ask, approved, groups, in_roster, pending_in, request = row
    pending_request: Element | None = None if request is None else fromstring(request)
    item = RosterItem(
        JID.parse(contact),
        name,
        Subscription(subscription),
        bool(ask),
        frozenset(json.loads(groups)),
        bool(approved),
    )
    return StoredItem(item, bool(in_roster), bool(pending_in), pending_request)


class SqliteRosterStorage:
    """Roster records and versions in an open SQLite connection.

    The connection may be shared with other stores, in autocommit mode
    (``isolation_level=None``, as the account store opens it) or not; each
    mutating method is one transaction, committed before it returns. Calls
    are serialised with a lock, so the object may be used from several
    threads if the connection allows it.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._db = conn
        self._lock = threading.Lock()
        with self._lock:
            self._db.executescript(SCHEMA)

    @staticmethod
    def _user(user: JID) -> str:
        return str(user.bare)

    def _version(self, user: str) -> str:
        row = self._db.execute(
            "SELECT version FROM roster_versions WHERE user = ?", (user,)
        ).fetchone()
        return "0" if row is None else str(row[0])

    def _bump(self, user: str) -> str:
        self._db.execute(
            "INSERT INTO roster_versions (user, version) VALUES (?, 1) "
            "ON CONFLICT (user) DO UPDATE SET version = version + 1",
            (user,),
        )
        return self._version(user)

    def get(self, user: JID) -> tuple[str, list[StoredItem]]:
        key = self._user(user)
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM roster_items WHERE user = ? ORDER BY id", (key,)
            ).fetchall()
            return self._version(key), [_from_row(row) for row in rows]

    def version(self, user: JID) -> str:
        with self._lock:
            return self._version(self._user(user))

    def item(self, user: JID, contact: JID) -> StoredItem | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM roster_items WHERE user = ? AND contact = ?",
                (self._user(user), str(contact)),
            ).fetchone()
        return None if row is None else _from_row(row)

    def put(self, user: JID, stored: StoredItem) -> str:
        key = self._user(user)
        with self._lock, _transaction(self._db):
            self._upsert(key, stored)
            return self._bump(key)

    def _upsert(self, key: str, stored: StoredItem) -> None:
        self._db.execute(
            f"INSERT INTO roster_items (user, {_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (user, contact) DO UPDATE SET "
            "name = excluded.name, subscription = excluded.subscription, "
            "ask = excluded.ask, approved = excluded.approved, groups = excluded.groups, "
            "in_roster = excluded.in_roster, pending_in = excluded.pending_in, "
            "pending_request = excluded.pending_request",
            (key, *_to_row(stored)),
        )

    def delete(self, user: JID, contact: JID) -> str:
        key = self._user(user)
        with self._lock, _transaction(self._db):
            cursor = self._db.execute(
                "DELETE FROM roster_items WHERE user = ? AND contact = ?", (key, str(contact))
            )
            if cursor.rowcount == 0:
                return self._version(key)
            return self._bump(key)

    def count(self, user: JID) -> int:
        with self._lock:
            (n,) = self._db.execute(
                "SELECT count(*) FROM roster_items WHERE user = ?", (self._user(user),)
            ).fetchone()
        return int(n)

    def holders(self, contact: JID) -> list[JID]:
        with self._lock:
            rows = self._db.execute(
                "SELECT user FROM roster_items WHERE contact = ? ORDER BY id", (str(contact),)
            ).fetchall()
        return [JID.parse(user) for (user,) in rows]

    def write(self, op: StoreOp) -> None:
        """Carry out ``op`` in the caller's transaction (``ServerServices.commit``)."""
        with self._lock:
            match op:
                case RosterPut():
                    key = self._user(op.user)
                    self._upsert(key, op.item)
                case RosterDelete():
                    key = self._user(op.user)
                    self._db.execute(
                        "DELETE FROM roster_items WHERE user = ? AND contact = ?",
                        (key, str(op.contact)),
                    )
                case _:
                    raise TypeError(f"not a roster op: {op!r}")
            self._db.execute(
                "INSERT INTO roster_versions (user, version) VALUES (?, ?) "
                "ON CONFLICT (user) DO UPDATE SET version = excluded.version",
                (key, int(op.version)),
            )

    def apply(self, ops: Sequence[StoreOp]) -> None:
        apply_ops(self._db, self.write, ops)
