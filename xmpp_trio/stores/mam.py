"""SQLite storage of message archives (XEP-0313), for
:class:`xmpp_sansio.server.mam.service.MamService` and room archives.

Pages are index range scans: ``(archive, seq)`` for the archive in order,
``(archive, with_bare, seq)`` for a ``with`` filter, ``(archive, sid)`` to
find a named message, ``(archive, stamp)`` for ``start``/``end`` and
retention. A page reads ``max + 1`` rows from where it starts, so its cost
does not grow with the archive (benchmarks/mam_bench.py). The size of each
archive is kept in ``mam_counts``: the unfiltered ``count`` and the quota
read one row; a filtered ``count`` counts at most ``COUNT_CAP`` rows."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Final

from xmpp_sansio.jid import JID
from xmpp_sansio.server.mam.store import (
    ArchivedMessage,
    ArchiveMeta,
    ArchivePage,
    ArchivePrefsPut,
    ArchivePut,
    ArchiveQuery,
    ArchiveRemove,
    Prefs,
    UnknownId,
)

from ._sql import transaction

__all__ = ["SqliteArchiveStorage"]

_SCHEMA: Final = (
    # AUTOINCREMENT: a seq is never reused, so a page boundary never names
    # a later message.
    """
    CREATE TABLE IF NOT EXISTS mam_messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        archive TEXT NOT NULL,
        sid TEXT NOT NULL,
        with_bare TEXT NOT NULL,
        with_full TEXT NOT NULL,
        stamp REAL NOT NULL,
        stanza BLOB NOT NULL
    )
    """,
    "CREATE UNIQUE INDEX IF NOT EXISTS mam_messages_sid ON mam_messages (archive, sid)",
    "CREATE INDEX IF NOT EXISTS mam_messages_seq ON mam_messages (archive, seq)",
    "CREATE INDEX IF NOT EXISTS mam_messages_with ON mam_messages (archive, with_bare, seq)",
    "CREATE INDEX IF NOT EXISTS mam_messages_stamp ON mam_messages (archive, stamp)",
    "CREATE TABLE IF NOT EXISTS mam_counts (archive TEXT PRIMARY KEY, n INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS mam_prefs (archive TEXT PRIMARY KEY, prefs TEXT NOT NULL)",
)
_COLUMNS: Final = "sid, seq, with_full, stamp, stanza"
#: A filtered set larger than this gets no ``count`` (the unfiltered one always does).
COUNT_CAP: Final = 1000
_Item = tuple[ArchivedMessage | None, ArchivedMessage | None]


def _row(row: tuple[str, int, str, float, bytes]) -> ArchivedMessage:
    sid, seq, with_full, stamp, stanza = row
    return ArchivedMessage(sid, int(seq), JID.parse(with_full), float(stamp), bytes(stanza))


class SqliteArchiveStorage:
    """:class:`~xmpp_sansio.server.mam.store.ArchiveStorage` in the tables
    ``mam_*`` of ``conn`` (created if missing)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        #: ``ArchivePut`` ops kept to be written behind (:meth:`write_behind`).
        self.behind: list[ArchivePut] = []
        with transaction(conn):
            for statement in _SCHEMA:
                conn.execute(statement)

    # -- writes -------------------------------------------------------------------

    def write(self, op: object) -> None:
        """Carry out ``op`` in the caller's transaction (``ServerServices.commit``)."""
        conn = self._conn
        match op:
            case ArchivePut():
                key = str(op.archive)
                cursor = conn.execute(
                    "INSERT OR IGNORE INTO mam_messages"
                    " (archive, sid, with_bare, with_full, stamp, stanza)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (key, op.sid, str(op.with_.bare), str(op.with_), op.stamp, op.stanza),
                )
                if cursor.rowcount != 1:
                    return
                self._settle(key, 1, op)
            case ArchivePrefsPut():
                data = json.dumps(
                    [
                        op.prefs.default,
                        [str(j) for j in op.prefs.always],
                        [str(j) for j in op.prefs.never],
                    ]
                )
                conn.execute(
                    "INSERT INTO mam_prefs (archive, prefs) VALUES (?, ?)"
                    " ON CONFLICT (archive) DO UPDATE SET prefs = excluded.prefs",
                    (str(op.archive), data),
                )
            case ArchiveRemove():
                self.behind = [p for p in self.behind if p.archive != op.archive]
                key = str(op.archive)
                for table in ("mam_messages", "mam_counts", "mam_prefs"):
                    conn.execute(f"DELETE FROM {table} WHERE archive = ?", (key,))
            case _:
                raise TypeError(f"not an archive op: {op!r}")

    def _settle(self, key: str, added: int, op: ArchivePut) -> None:
        """Count ``added`` new rows of ``key``, then apply ``op``'s quota and retention."""
        conn = self._conn
        (count,) = conn.execute(
            "INSERT INTO mam_counts (archive, n) VALUES (?, ?)"
            " ON CONFLICT (archive) DO UPDATE SET n = n + excluded.n RETURNING n",
            (key, added),
        ).fetchone()
        dropped = 0
        if count > op.keep:
            dropped += conn.execute(
                "DELETE FROM mam_messages WHERE seq IN (SELECT seq FROM mam_messages"
                " WHERE archive = ? ORDER BY seq LIMIT ?)",
                (key, count - op.keep),
            ).rowcount
        if op.retention > 0:
            dropped += conn.execute(
                "DELETE FROM mam_messages WHERE archive = ? AND stamp < ?",
                (key, op.stamp - op.retention),
            ).rowcount
        if dropped:
            conn.execute("UPDATE mam_counts SET n = n - ? WHERE archive = ?", (dropped, key))

    def write_behind(self, op: ArchivePut) -> None:
        """Keep ``op`` to be written by the next transaction of the server
        (:meth:`write_pending`) or :meth:`flush`, about once a second: a
        message delivered live costs no commit of its own (see docs/mam.md)."""
        self.behind.append(op)

    def write_pending(self) -> None:
        """Write the kept ops in the caller's transaction: one ``executemany``
        for the rows, then one count update (and quota, retention) per archive."""
        pending, self.behind = self.behind, []
        if not pending:
            return
        conn = self._conn
        before = conn.total_changes
        conn.executemany(
            "INSERT OR IGNORE INTO mam_messages"
            " (archive, sid, with_bare, with_full, stamp, stanza) VALUES (?, ?, ?, ?, ?, ?)",
            [
                (str(op.archive), op.sid, str(op.with_.bare), str(op.with_), op.stamp, op.stanza)
                for op in pending
            ],
        )
        exact = conn.total_changes - before == len(pending)
        last: dict[JID, ArchivePut] = {}
        added: dict[JID, int] = {}
        for op in pending:
            last[op.archive] = op
            added[op.archive] = added.get(op.archive, 0) + 1
        for archive, op in last.items():
            key = str(archive)
            if not exact:  # an id put again was ignored (rare): count the archive anew
                conn.execute("DELETE FROM mam_counts WHERE archive = ?", (key,))
                (added[archive],) = conn.execute(
                    "SELECT COUNT(*) FROM mam_messages WHERE archive = ?", (key,)
                ).fetchone()
            self._settle(key, added[archive], op)

    def flush(self) -> None:
        """Commit the kept ops (one transaction)."""
        if self.behind:
            with transaction(self._conn):
                self.write_pending()

    def apply(self, ops: Sequence[object]) -> None:
        """Carry out ``ops`` in order in one transaction, all or nothing."""
        with transaction(self._conn):
            for op in ops:
                self.write(op)

    # -- reads ---------------------------------------------------------------------

    def prefs(self, archive: JID) -> Prefs | None:
        row = self._conn.execute(
            "SELECT prefs FROM mam_prefs WHERE archive = ?", (str(archive),)
        ).fetchone()
        if row is None:
            return None
        default, always, never = json.loads(row[0])
        return Prefs(
            default, tuple(JID.parse(j) for j in always), tuple(JID.parse(j) for j in never)
        )

    def count(self, archive: JID) -> int:
        row = self._conn.execute(
            "SELECT n FROM mam_counts WHERE archive = ?", (str(archive),)
        ).fetchone()
        return 0 if row is None else int(row[0])

    def _seq(self, archive: str, sid: str) -> int | None:
        row = self._conn.execute(
            "SELECT seq FROM mam_messages WHERE archive = ? AND sid = ?", (archive, sid)
        ).fetchone()
        return None if row is None else int(row[0])

    def load(self, query: object) -> ArchivePage | UnknownId | _Item:
        """Answer a ``Load`` effect (:class:`ArchiveQuery`, :class:`ArchiveMeta`)."""
        self.flush()  # a read sees every archived message
        if isinstance(query, ArchiveMeta):
            return self._meta(str(query.archive))
        if not isinstance(query, ArchiveQuery):
            raise TypeError(f"not an archive query: {query!r}")
        key = str(query.archive)
        seqs: dict[str, int] = {}
        for sid in (query.after_id, query.before_id, query.after, query.before or None):
            if sid is not None and sid not in seqs:
                seq = self._seq(key, sid)
                if seq is None:
                    return UnknownId(sid)
                seqs[sid] = seq
        where = ["archive = ?"]
        args: list[object] = [key]
        if query.with_ is not None:
            if query.with_.resource is None:
                where.append("with_bare = ?")
            else:
                where.append("with_full = ?")
            args.append(str(query.with_))
        if query.start is not None:
            where.append("stamp >= ?")
            args.append(query.start)
        if query.end is not None:
            where.append("stamp <= ?")
            args.append(query.end)
        if query.after_id is not None:
            where.append("seq > ?")
            args.append(seqs[query.after_id])
        if query.before_id is not None:
            where.append("seq < ?")
            args.append(seqs[query.before_id])
        if query.ids is not None:
            found = self._conn.execute(
                f"SELECT COUNT(*) FROM mam_messages WHERE archive = ? AND sid IN"
                f" ({','.join('?' * len(query.ids))})",
                (key, *query.ids),
            ).fetchone()[0]
            if found != len(query.ids):
                missing = [s for s in query.ids if self._seq(key, s) is None]
                return UnknownId(missing[0])
            where.append(f"sid IN ({','.join('?' * len(query.ids))})")
            args.extend(query.ids)
        filtered = len(where) > 1
        set_where = " AND ".join(where)
        page_where, page_args = list(where), list(args)
        backward = query.before is not None
        if query.after is not None:
            page_where.append("seq > ?")
            page_args.append(seqs[query.after])
        if query.before:
            page_where.append("seq < ?")
            page_args.append(seqs[query.before])
        order = "DESC" if backward else "ASC"
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM mam_messages WHERE {' AND '.join(page_where)}"
            f" ORDER BY seq {order} LIMIT ?",
            (*page_args, query.max + 1),
        ).fetchall()
        complete = len(rows) <= query.max
        items = [_row(r) for r in rows[: query.max]]
        if backward:
            items.reverse()
        count: int | None
        if filtered:
            # Counted up to COUNT_CAP rows, so a page's cost stays bounded;
            # a bigger filtered set gets no count (XEP-0059 §2.6: optional).
            counted = int(
                self._conn.execute(
                    f"SELECT COUNT(*) FROM (SELECT 1 FROM mam_messages WHERE {set_where} LIMIT ?)",
                    (*args, COUNT_CAP + 1),
                ).fetchone()[0]
            )
            count = counted if counted <= COUNT_CAP else None
        else:
            count = self.count(query.archive)
        first_index: int | None = None
        if items and count is not None:
            if query.after is None and not backward:
                first_index = 0
            elif query.before == "":
                first_index = count - len(items)
        return ArchivePage(tuple(items), complete, count, first_index)

    def _meta(self, key: str) -> _Item:
        out: list[ArchivedMessage | None] = []
        for order in ("ASC", "DESC"):
            row = self._conn.execute(
                f"SELECT {_COLUMNS} FROM mam_messages WHERE archive = ?"
                f" ORDER BY seq {order} LIMIT 1",
                (key,),
            ).fetchone()
            out.append(None if row is None else _row(row))
        return (out[0], out[1])
