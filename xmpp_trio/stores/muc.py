"""SQLite storage of persistent rooms (XEP-0045 §10.1.3), for
:class:`xmpp_sansio.server.muc.service.MucService`: written only through
:meth:`SqliteMucStorage.apply` (``Persist`` effects, committed once per
batch by ``ServerServices.commit``), read once at start."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any, Final

from xmpp_sansio.jid import JID
from xmpp_sansio.server.muc.store import MucAffiliationPut, MucRoomDelete, MucRoomPut, StoredRoom

from ._sql import transaction as _transaction

__all__ = ["SqliteMucStorage"]

_SCHEMA: Final = (
    """
    CREATE TABLE IF NOT EXISTS muc_rooms (
        room TEXT PRIMARY KEY,
        config TEXT NOT NULL,
        subject TEXT NOT NULL,
        subject_by TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS muc_affiliations (
        room TEXT NOT NULL REFERENCES muc_rooms (room) ON DELETE CASCADE,
        user TEXT NOT NULL,
        affiliation TEXT NOT NULL,
        nick TEXT NOT NULL,
        PRIMARY KEY (room, user)
    )
    """,
)


class SqliteMucStorage:
    """:class:`~xmpp_sansio.server.muc.store.MucStorage` in the tables
    ``muc_rooms`` and ``muc_affiliations`` of ``conn`` (created if missing)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        with conn:
            for statement in _SCHEMA:
                conn.execute(statement)

    def rooms(self) -> list[StoredRoom]:
        rooms: dict[str, StoredRoom] = {}
        for room, config, subject, subject_by in self._conn.execute(
            "SELECT room, config, subject, subject_by FROM muc_rooms"
        ):
            rooms[room] = StoredRoom(JID.parse(room), json.loads(config), subject, subject_by)
        for room, user, affiliation, nick in self._conn.execute(
            "SELECT room, user, affiliation, nick FROM muc_affiliations ORDER BY rowid"
        ):
            stored = rooms.get(room)
            if stored is not None:
                stored.affiliations[JID.parse(user)] = (affiliation, nick)
        return list(rooms.values())

    def apply(self, ops: Sequence[Any]) -> None:
        # Called inside the one transaction of ServerServices.commit when the
        # server commits; standalone (tests, tools) it opens its own.
        if self._conn.in_transaction:
            self._apply(ops)
            return
        with _transaction(self._conn):
            self._apply(ops)

    def write(self, op: object) -> None:
        """Carry out one room op in the caller's transaction (``ServerServices.commit``)."""
        self._apply([op])

    def _apply(self, ops: Sequence[Any]) -> None:
        execute = self._conn.execute
        for op in ops:
            if isinstance(op, MucRoomPut):
                execute(
                    "INSERT INTO muc_rooms (room, config, subject, subject_by) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (room) DO UPDATE SET config = excluded.config,"
                    " subject = excluded.subject, subject_by = excluded.subject_by",
                    (
                        str(op.room),
                        json.dumps(op.config, sort_keys=True),
                        op.subject,
                        op.subject_by,
                    ),
                )
            elif isinstance(op, MucRoomDelete):
                execute("DELETE FROM muc_affiliations WHERE room = ?", (str(op.room),))
                execute("DELETE FROM muc_rooms WHERE room = ?", (str(op.room),))
            elif isinstance(op, MucAffiliationPut):
                if op.affiliation == "none":
                    execute(
                        "DELETE FROM muc_affiliations WHERE room = ? AND user = ?",
                        (str(op.room), str(op.user.bare)),
                    )
                else:
                    execute(
                        "INSERT INTO muc_affiliations (room, user, affiliation, nick) VALUES (?, ?, ?, ?)"
                        " ON CONFLICT (room, user) DO UPDATE SET affiliation = excluded.affiliation,"
                        " nick = excluded.nick",
                        (str(op.room), str(op.user.bare), op.affiliation, op.nick),
                    )
