"""SQLite storage of message archives (XEP-0313), for
:class:`xmpp_sansio.server.mam.service.MamService` and room archives.

Tables: ``mam_items`` holds each archived message once (``seq`` its rowid,
its ``sid``, ``stamp``, the serialised ``stanza``, ``refs`` the number of
archives holding it); ``mam_entries`` (WITHOUT ROWID, clustered on
``(archive, seq)``) says which archives hold it and with whom, so a message
between two local accounts is one item and two entries, each four
integers (the archive, ``seq``, the peer's bare JID and full JID as ids in
``mam_peers``, cached in memory: half the write cost of the peers as text,
docs/benchmarks.md); ``mam_archives`` maps each archive JID to a small
integer and the size ``n`` of its merged entries (the quota and the
unfiltered ``count`` read one row and the log's count in memory). Every
index grows at its end or at
one point per archive: ``seq`` is the write order, made from the stamp in
microseconds (``max(last + 1, stamp_us)``), and the ids this server makes
(:func:`~xmpp_sansio.server.mam.service.new_stanza_id`) begin with the time,
so the unique ``sid`` index is appended to as well; writing a message costs
about the same at 1M archived as at 10k (docs/benchmarks.md).

The log (sessions 9 and 11, docs/mam.md "The log"): a new message's
entries are not written into ``mam_entries`` (whose two indexes would have
a leaf page or two rewritten per archive a commit touches) but appended to
``mam_log_entries`` (same columns, clustered on ``(seq, archive)``: it grows
at its end), and kept in memory per archive
(xmpp_trio/stores/mam_log.py: what reads find, and the log's share of each
archive's size); every ``merge_every`` messages (up to 16 times that over
many archives), and when the writer is idle, the log is moved into
``mam_entries`` in ``(archive, seq)`` order, archive by archive in steps
(:meth:`SqliteArchiveStorage.merge_step`), so each archive's pages are
rewritten once a merge. For every archive, every entry in the log follows
every merged one; reads (xmpp_trio/stores/mam_read.py) read the merged
entries then the log's. Quotas and retention count both halves; a restart
serves what the log holds and merges it later.

Pages are index range scans: ``mam_entries`` by ``(archive, seq)`` for the
archive in order, ``(archive, bare, seq)`` for a ``with`` filter (and the
archive's log entries from memory);
``start``/``end`` are ``seq`` bounds (``seq >= stamp_us`` always, and at most
``skew`` more, the largest lead a clock going back ever gave: kept in
``mam_state``) with the exact stamp checked on the rows. A page reads
``max + 1`` rows from where it starts, so its cost does not grow with the
archive (benchmarks/mam_bench.py); a filtered ``count`` counts at most
``COUNT_CAP`` rows. A database of the first layout (``mam_messages``) or
of the second (``mam_entries`` with ``with_bare``/``with_full`` text) is
moved to this one when opened."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Final

from xmpp_sansio.jid import JID
from xmpp_sansio.server.mam.store import (
    ArchiveMeta,
    ArchivePage,
    ArchivePrefsPut,
    ArchivePut,
    ArchiveQuery,
    ArchiveRemove,
    ArchiveReplace,
    Prefs,
    UnknownId,
)

from ._sql import transaction
from .mam_log import Foreign, LogIndex, move_step
from .mam_quota import Quotas
from .mam_read import Item, find, meta, page
from .mam_rows import NO_PEER as _NO_PEER
from .mam_rows import Rows as _Rows
from .mam_rows import insert_rows
from .mam_schema import (
    SCHEMA,
    count_merged_only,
    drop_first_layout,
    first_layout,
    forget_merged_steps,
    migrate_text_entries,
    rename_text_entries,
)

if TYPE_CHECKING:
    from ..archive_writer import ArchiveWriter

__all__ = ["MERGE_CHUNK", "MERGE_EVERY", "MERGE_SPREAD", "MERGE_STRETCH", "SqliteArchiveStorage"]

log = logging.getLogger("xmpp_trio.archive")

_US: Final = 1_000_000
#: Messages whose entries in the log call for a merge (``[mam] merge_every``):
#: the log a query scans stays about this long (docs/mam.md "The log").
MERGE_EVERY: Final = 5000
#: A merge rewrites a leaf page or two of both ``mam_entries`` B-trees per
#: archive the log holds: while the log spreads over more than this many
#: archives, it waits for proportionally more messages (``merge_every``
#: times the archives over this, at most :data:`MERGE_STRETCH` times), so a
#: merge's pages a message stay about those of this many archives (session
#: 10, docs/mam.md "The log").
MERGE_SPREAD: Final = 50
#: The longest the log grows before a merge, in ``merge_every``\ s.
MERGE_STRETCH: Final = 16
#: Log entries a merge moves in one transaction at most (about: whole
#: archives, in id order): a long log is merged in steps, one after each of
#: the writer's batches, so the writer is never held long (session 11).
MERGE_CHUNK: Final = 40_000


class SqliteArchiveStorage(Quotas):
    """:class:`~xmpp_sansio.server.mam.store.ArchiveStorage` in the tables
    ``mam_*`` of ``conn`` (created if missing). A ``sid`` names one message
    in the store: a put under a ``sid`` the store holds adds its archives to
    that message (once each)."""

    def __init__(self, conn: sqlite3.Connection, *, merge_every: int = MERGE_EVERY) -> None:
        #: The caller's (the event loop's) connection; the writer's is passed
        #: to :meth:`write_batch` and on, never stored.
        self._conn = conn
        #: Held by whoever runs archive SQL and uses the caches (``_ids``,
        #: ``_peers``, ``_unsure``, ``_last``/``_skew``): one thread at a time.
        self._lock = threading.RLock()
        self._writer: ArchiveWriter[ArchivePut] | None = None
        #: ``ArchivePut`` ops kept to be written behind (:meth:`write_behind`).
        self.behind: list[ArchivePut] = []
        self._ids: dict[JID, int] = {}
        self._ids_suspect = False
        #: A peer's ``(bare id, id)`` in ``mam_peers``; ``_unsure``: the
        #: peers made since the last commit this store saw (a rolled-back
        #: transaction takes them away: :meth:`_check_peers`).
        self._peers: dict[JID, tuple[int, int]] = {}
        self._unsure: list[JID] = []
        self._unsure_top = 0
        #: Messages whose entries went into the log since the last merge
        #: (about: a rolled-back transaction's count stays), and how many
        #: call for one.
        self._logged = 0
        #: The log's entries per archive, in memory (xmpp_trio/stores/mam_log.py):
        #: what reads find and what an archive's size adds to ``mam_archives.n``
        #: (the merged entries); ``_foreign``: the caller's transactions that
        #: changed it, their outcome not yet known.
        self._log = LogIndex()
        self.merge_every = merge_every
        #: Merges done (tests, benchmarks).
        self.merges = 0
        #: The merge in progress, in steps (:meth:`merge_step`): ``(top,
        #: chunks)``, the log's entries up to ``seq`` ``top`` move, the
        #: archives' id ranges ``chunks`` still to go (the log's index knows
        #: which archives are done: ``LogIndex.done_to``).
        self._round: tuple[int, list[tuple[int, int]]] | None = None
        with transaction(conn):
            old_entries = rename_text_entries(conn)
            for statement in SCHEMA:
                conn.execute(statement)
            self._last = int(
                conn.execute("SELECT COALESCE(MAX(seq), 0) FROM mam_items").fetchone()[0]
            )
            forget_merged_steps(conn)
            (self._logged,) = conn.execute(
                "SELECT COUNT(DISTINCT seq) FROM mam_log_entries"
            ).fetchone()
            self._log.load(conn)
            row = conn.execute("SELECT value FROM mam_state WHERE key = 'skew'").fetchone()
            self._skew = 0 if row is None else int(row[0])
            count_merged_only(conn)
            if old_entries:
                migrate_text_entries(conn)
            self._load_bounds(conn)
            self._migrate()
        self._foreign = Foreign(conn)

    def _migrate(self) -> None:
        """Move the archives of the first layout (``mam_messages``) here, in order."""
        ops = first_layout(self._conn)
        if ops is not None:
            self._put(self._conn, ops)
            drop_first_layout(self._conn)

    # -- writes -------------------------------------------------------------------

    def write(self, op: object) -> None:
        """Carry out ``op`` in the caller's transaction (``ServerServices.commit``,
        which first waits for the writer's batch in flight: :meth:`wait_writer`)."""
        with self._lock:
            if type(op) is ArchivePrefsPut:
                self._write_op(op)
            else:
                self._in_caller(self._write_op, op)

    @contextmanager
    def _journal(self) -> Iterator[None]:
        """A transaction of the store's own: what it changes in the log's
        index is undone if it raises (its transaction then rolls back)."""
        log = self._log
        undo: list[Callable[[], None]] = []
        outer, log.journal = log.journal, undo
        try:
            yield
        except BaseException:
            for step in reversed(undo):
                step()
            raise
        finally:
            log.journal = outer

    def _in_caller(self, write: Callable[..., None], *args: object) -> None:
        """``write(*args)`` in the caller's transaction (whose outcome the
        store learns later: :class:`~xmpp_trio.stores.mam_log.Foreign`), or
        in one of the store's own (journaled already)."""
        log = self._log
        if log.journal is not None:
            write(*args)
            return
        log.journal = self._foreign.begin()
        try:
            write(*args)
        finally:
            log.journal = None

    def _resolve(self) -> None:
        """Learn the outcome of the caller's transactions that changed the
        log, if none is open (the loop's thread, under the lock)."""
        if self._foreign:
            self._foreign.resolve()

    def _write_op(self, op: object) -> None:
        conn = self._conn
        match op:
            case ArchivePut():
                self._put(conn, (op,))
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
                found = self._id(op.archive, create=False)
                if found is not None:
                    for entries in ("mam_entries", "mam_log_entries"):
                        self._unref(
                            conn,
                            conn.execute(
                                f"DELETE FROM {entries} WHERE archive = ? AND seq > ?"
                                " RETURNING seq",
                                (found, 0 if entries == "mam_entries" else self._moved(found)),
                            ).fetchall(),
                        )
                    self._log.drop_archive(found)
                    conn.execute("DELETE FROM mam_archives WHERE id = ?", (found,))
                    self._ids.pop(op.archive, None)
                conn.execute("DELETE FROM mam_prefs WHERE archive = ?", (key,))
            case ArchiveReplace():
                self._replace(op)
            case _:
                raise TypeError(f"not an archive op: {op!r}")

    def _replace(self, op: ArchiveReplace) -> None:
        """A tombstone (XEP-0425 §5) for ``op.sid`` of ``op.archive``: the
        kept puts are written first (the message may still be among them)."""
        self.write_pending()
        key = self._id(op.archive, create=False)
        seq = None if key is None else find(self._conn, key, op.sid, self._log)
        if seq is not None:
            self._conn.execute("UPDATE mam_items SET stanza = ? WHERE seq = ?", (op.stanza, seq))

    def _id(
        self, archive: JID, *, create: bool, conn: sqlite3.Connection | None = None
    ) -> int | None:
        """The small integer of ``archive`` (made if ``create``) through
        ``conn`` (the loop's connection if ``None``)."""
        found = self._ids.get(archive)
        if found is not None:
            return found
        conn = conn or self._conn
        row = conn.execute("SELECT id FROM mam_archives WHERE jid = ?", (str(archive),)).fetchone()
        if row is None:
            if not create:
                return None
            row = conn.execute(
                "INSERT INTO mam_archives (jid) VALUES (?) RETURNING id", (str(archive),)
            ).fetchone()
            if self._log.journal is not None:  # not committed: the cache is suspect
                self._log.journal.append(self._suspect_ids)
        if len(self._ids) > 100_000:
            self._forget_ids()
        self._ids[archive] = found = int(row[0])
        return found

    def _peer(self, conn: sqlite3.Connection, jid: JID) -> tuple[int, int]:
        """``jid``'s ``(bare id, id)`` in ``mam_peers`` (made if missing)."""
        found = self._peers.get(jid)
        if found is not None:
            return found
        bare = jid.bare
        ids = [self._peer_id(conn, j) for j in ((bare, jid) if bare is not jid else (bare,))]
        if len(self._peers) > 100_000:
            self._peers.clear()
        self._peers[jid] = found = (ids[0], ids[-1])
        return found

    def _known_peer(self, jid: JID) -> tuple[int, int]:
        """``jid``'s ``(bare id, id)`` for a read, without making one (0: none)."""
        found = self._peers.get(jid)
        if found is not None:
            return found
        ids = [
            self._conn.execute("SELECT id FROM mam_peers WHERE jid = ?", (str(j),)).fetchone()
            for j in (jid.bare, jid)
        ]
        bare, peer = (0 if row is None else int(row[0]) for row in ids)
        return bare, peer

    def _peer_id(self, conn: sqlite3.Connection, jid: JID) -> int:
        text = str(jid)
        row = conn.execute("SELECT id FROM mam_peers WHERE jid = ?", (text,)).fetchone()
        if row is None:
            row = conn.execute(
                "INSERT INTO mam_peers (jid) VALUES (?) RETURNING id", (text,)
            ).fetchone()
            self._unsure.append(jid)  # until a commit is seen
            self._unsure_top = max(self._unsure_top, int(row[0]))
        return int(row[0])

    def _check_peers(self, conn: sqlite3.Connection) -> None:
        """Forget the peers made by a transaction that did not commit (only
        this store adds peers, and ids grow: the highest one tells)."""
        if self._unsure:
            (top,) = conn.execute("SELECT COALESCE(MAX(id), 0) FROM mam_peers").fetchone()
            if top < self._unsure_top:
                self._forget_unsure()

    def _forget_unsure(self) -> None:
        """A transaction that made peers failed: forget every cached id (rare)."""
        self._peers.clear()
        self._unsure.clear()
        self._unsure_top = 0

    def _key(self, conn: sqlite3.Connection, archive: JID) -> int:
        """:meth:`_id`, made if missing."""
        found = self._id(archive, create=True, conn=conn)
        assert found is not None
        return found

    def _seq(self, conn: sqlite3.Connection, stamp: float) -> int:
        """The next ``seq``: the stamp in microseconds, after the last one."""
        us = int(stamp * _US)
        seq = self._last = max(self._last + 1, us)
        if seq - us > self._skew:
            self._skew = seq - us
            self._save_skew(conn)
        return seq

    def _save_skew(self, conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO mam_state VALUES ('skew', ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (self._skew,),
        )

    def _put(self, conn: sqlite3.Connection, ops: Iterable[ArchivePut]) -> None:
        """Write ``ops`` in the caller's transaction on ``conn``."""
        rows = self._rows(conn, list(ops))
        if rows is not None:
            self._write_rows(conn, rows)

    def _rows(self, conn: sqlite3.Connection, ops: list[ArchivePut]) -> _Rows | None:
        """The flat rows of ``ops`` as the statements bind them (5 values an
        item, 4 an entry): each ``seq`` made, the archives' and peers' ids
        taken from the caches; those not cached are left to
        :meth:`_write_rows` (``missing``: where, and whose), which makes them
        first. ``None``: no op."""
        if not ops:
            return None
        self._check_peers(conn)
        ids, peers = self._ids, self._peers
        missing: list[tuple[int, JID]] = []

        def no_key(at: int, archive: JID) -> int:
            missing.append((at, archive))
            return 0

        def no_peer(at: int, jid: JID) -> tuple[int, int]:
            missing.append((at, jid))
            return _NO_PEER

        items: list[object] = []
        entries: list[object] = []
        seq = last = self._last
        lead = skew = self._skew
        for op in ops:
            stamp = op.stamp
            us = int(stamp * _US)
            if seq >= us:
                seq += 1
                if seq - us > lead:
                    lead = seq - us
            else:
                seq = us
            also = op.also
            items += (seq, op.sid, stamp, 1 + len(also), op.stanza)
            # one tuple an entry, unpacked peers (no list for a starred one)
            archive = op.archive
            key = ids.get(archive) or no_key(len(entries), archive)
            with_ = op.with_
            bare, peer = peers.get(with_) or no_peer(len(entries) + 2, with_)
            entries += (key, seq, bare, peer)
            for archive, with_ in also:
                key = ids.get(archive) or no_key(len(entries), archive)
                bare, peer = peers.get(with_) or no_peer(len(entries) + 2, with_)
                entries += (key, seq, bare, peer)
        self._last, self._skew = seq, lead
        return _Rows(ops, items, entries, missing, last, skew)

    def _write_rows(self, conn: sqlite3.Connection, rows: _Rows) -> None:
        """Write ``rows`` (:meth:`_rows`) in the caller's transaction on
        ``conn``: the ids left missing first, then the rows of each table in
        statements of :data:`_ROWS` rows (multi-row ``VALUES``: a fifth less
        than one ``executemany`` row by row, docs/benchmarks.md "Seventh
        pass") when no ``sid`` is known yet (the rule), else one by one;
        then the counters (:meth:`_settle`)."""
        entries = rows.entries
        for at, jid in rows.missing:  # rare: a new archive or peer
            if at % 4 == 0:
                entries[at] = self._key(conn, jid)
            else:
                entries[at : at + 2] = self._peer(conn, jid)
        conn.execute("SAVEPOINT mam_put")
        if self._skew > rows.skew:  # a clock went back: the widest lead is kept
            self._save_skew(conn)
        if insert_rows(conn, "mam_items", 5, rows.items) and insert_rows(
            conn, "mam_log_entries", 4, entries
        ):
            conn.execute("RELEASE mam_put")
            self._logged += len(rows.ops)
            self._log.append_rows(entries, rows.items, rows.last)
            self._settle(conn, set(entries[0::4]), {}, rows.ops, rows.op_of)
        else:  # a sid the store holds, or an archive named twice (rare): one by one
            conn.execute("ROLLBACK TO mam_put")
            conn.execute("RELEASE mam_put")
            self._last, self._skew = rows.last, rows.skew
            self._forget_ids()  # the ids made since the savepoint are gone with it
            self._forget_unsure()
            added, merged = self._put_each(conn, rows.ops)
            self._settle(conn, set(added), merged, rows.ops, lambda key: added[key][1])

    def _put_each(
        self, conn: sqlite3.Connection, ops: list[ArchivePut]
    ) -> tuple[dict[int, tuple[int, ArchivePut]], dict[int, int]]:
        """Write ``ops`` one by one: a ``sid`` the store holds gets the
        archives it lacks, in the log if its entries are there (every entry
        in the log follows every merged one), else merged. Returns each
        archive's new entries and last op, and the merged ones' count."""
        added: dict[int, tuple[int, ArchivePut]] = {}
        merged: dict[int, int] = {}
        for op in ops:
            row = conn.execute(
                "SELECT seq, stamp FROM mam_items WHERE sid = ?", (op.sid,)
            ).fetchone()
            entries = "mam_log_entries"
            stamp = op.stamp
            if row is None:
                seq = self._seq(conn, op.stamp)
                conn.execute(
                    "INSERT INTO mam_items VALUES (?, ?, ?, 0, ?)",
                    (seq, op.sid, op.stamp, op.stanza),
                )
                self._logged += 1
            else:
                seq, stamp = int(row[0]), float(row[1])
                if (
                    conn.execute("SELECT 1 FROM mam_log_entries WHERE seq = ?", (seq,)).fetchone()
                    is None
                ):
                    entries = "mam_entries"
            refs = 0
            for archive, with_ in op.owners():
                key = self._key(conn, archive)
                bare, peer = self._peer(conn, with_)
                half = "mam_entries" if seq <= self._moved(key) else entries
                if conn.execute(
                    f"INSERT OR IGNORE INTO {half} VALUES (?, ?, ?, ?)", (key, seq, bare, peer)
                ).rowcount:
                    refs += 1
                    if half == "mam_entries":
                        merged[key] = merged.get(key, 0) + 1
                    else:
                        self._log.add(key, (seq, bare, peer, stamp))
                    added[key] = (added.get(key, (0, op))[0] + 1, op)
            conn.execute("UPDATE mam_items SET refs = refs + ? WHERE seq = ?", (refs, seq))
        return added, merged

    def write_behind(self, op: ArchivePut) -> None:
        """Keep ``op`` to be written by the next transaction of the server
        (:meth:`write_pending`), the writer (:meth:`hand_off`) or
        :meth:`flush`: a message delivered live costs no commit of its own
        (see docs/mam.md)."""
        self.behind.append(op)

    # -- the writer (xmpp_trio/archive_writer.py) ----------------------------------

    def attach(self, writer: ArchiveWriter[ArchivePut]) -> None:
        """Let ``writer`` (a worker thread, its own connection to this
        database, writing through :meth:`write_batch`) commit what is kept
        behind and checkpoint the WAL: this connection checkpoints no more."""
        self._writer = writer
        writer.on_idle = self.merge_idle
        self._conn.execute("PRAGMA wal_autocheckpoint=0")

    @property
    def writer(self) -> ArchiveWriter[ArchivePut] | None:
        return self._writer

    def wait_writer(self) -> None:
        """Wait for the writer's batch in flight; the ops of its failed
        batches go back before those kept behind (archive order)."""
        writer = self._writer
        if writer is not None:
            failed = writer.wait()
            if failed:
                self.behind[:0] = failed
        if self._foreign:
            with self._lock:
                self._resolve()

    def hand_off(self, *, block: bool = False) -> bool:
        """Hand what is kept behind to the writer, if it is idle (or after
        waiting for it, if ``block``); with nothing kept, it checkpoints the
        WAL. Without a writer, :meth:`flush`. Whether it was handed over."""
        writer = self._writer
        if writer is None:
            self.flush()
            return True
        if writer.busy and not block:
            return False
        self.wait_writer()
        if self._foreign:  # in a transaction of the loop's: its outcome is not known yet
            return False
        batch, self.behind = self.behind, []
        writer.hand(batch)
        return True

    def write_batch(self, conn: sqlite3.Connection, batch: list[ArchivePut]) -> None:
        """The writer's thread: commit ``batch`` through ``conn`` (its own
        connection), the store's caches under the lock as on the loop. Its
        rows are built here, not on the loop before the hand-over: tried in
        session 8, that moved about 1 µs a message onto the loop and saved
        the worker nothing measurable (docs/benchmarks.md "Session 8")."""
        with self._lock:
            try:
                with self._journal(), transaction(conn):
                    self._put(conn, batch)
                    hook = None if self._writer is None else self._writer.in_batch
                    if hook is not None:
                        hook()
            except sqlite3.Error:
                self._forget_ids()  # ids made in the failed transaction do not exist
                self._forget_unsure()
                raise
            else:
                self._unsure.clear()
                self._unsure_top = 0
            if self._round is not None or self.merge_due():
                self._merge_quietly(conn, step=True)

    def write_pending(self) -> None:
        """Write the kept ops in the caller's transaction: one ``executemany``
        per table, then one count update (and quota, retention) per archive.
        The writer's batch in flight is waited for first (it is older)."""
        self.wait_writer()
        with self._lock:
            pending, self.behind = self.behind, []
            if pending:
                self._in_caller(self._put, self._conn, pending)

    def flush(self) -> None:
        """Commit the kept ops (one transaction, on the caller's connection,
        after the writer's batch in flight) with ``synchronous=NORMAL``: in
        WAL mode that commit waits for no fsync (the next ``FULL`` commit
        or checkpoint syncs it); a power cut may lose it, a crash of the
        server not (docs/mam.md, "Cost"). The connection's level is restored."""
        self.wait_writer()
        if self.behind:
            with self._lock:
                conn = self._conn
                (level,) = conn.execute("PRAGMA synchronous").fetchone()
                conn.execute("PRAGMA synchronous=NORMAL")
                try:
                    with self._journal(), transaction(conn):
                        self.write_pending()
                except sqlite3.Error:
                    self._forget_ids()  # ids made in the failed transaction do not exist
                    self._forget_unsure()
                    raise
                else:  # committed (those of earlier transactions were checked)
                    self._unsure.clear()
                    self._unsure_top = 0
                    if self._writer is None and self.merge_due():
                        self._merge_quietly(conn)
                finally:
                    conn.execute(f"PRAGMA synchronous={int(level)}")

    # -- the log's merge ----------------------------------------------------------

    def merge_due(self) -> bool:
        """Whether the log calls for a merge: ``merge_every`` messages, times
        the archives it holds over :data:`MERGE_SPREAD` (at most
        :data:`MERGE_STRETCH` times): each archive's pages are rewritten once
        a merge, so a log spread over many archives waits for more entries
        an archive (docs/mam.md "The log")."""
        logged, every = self._logged, self.merge_every
        if logged < every:
            return False
        spread = len(self._log.sizes)
        if spread <= MERGE_SPREAD:
            return True
        return logged * MERGE_SPREAD >= every * min(spread, MERGE_STRETCH * MERGE_SPREAD)

    def _moved(self, key: int) -> int:
        """The ``seq`` up to which archive ``key``'s rows in the log table were
        moved by the merge in progress (0: none): they stay in the table
        until the merge ends, read by nothing."""
        log = self._log
        return log.top if log.top is not None and key <= log.done_to else 0

    def merge(self, conn: sqlite3.Connection | None = None) -> int:
        """Move the log's entries into ``mam_entries`` in ``(archive, seq)``
        order through ``conn`` (the loop's connection if ``None``), in steps
        of about :data:`MERGE_CHUNK` entries (:meth:`merge_step`), each its
        own transaction: each archive's pages of the table and of its peer
        index are rewritten once a merge rather than once a commit
        (docs/mam.md "The log"). Returns the entries moved."""
        moved = 0
        while True:
            step, done = self.merge_step(conn)
            moved += step
            if done:
                return moved

    def merge_step(self, conn: sqlite3.Connection | None = None) -> tuple[int, bool]:
        """One step of a merge (one begins if none is in progress): the log's
        entries up to the merge's ``top`` of the next archives (a range of
        ids, whole archives), in one transaction, their sizes added to the
        merged ones. The log's rows stay in its table (read by nothing)
        until the last step deletes every row up to ``top``; a restart in
        between deletes those of the archives done (``mam_state``
        ``merge_top``/``merge_done``). Returns the entries moved and whether
        the merge is over."""
        conn = conn or self._conn
        with self._lock:
            if conn is self._conn:
                self._resolve()
            log = self._log
            if self._round is None:
                top = self._last
                chunks: list[tuple[int, int]] = []
                total = 0
                for key in log.begin_round(top):
                    if not chunks or total >= MERGE_CHUNK:
                        chunks.append((key, key))
                        total = 0
                    chunks[-1] = (chunks[-1][0], key)
                    total += log.start[key]
                self._round = (top, chunks or [(0, 0)])
                self._logged = 0
            top, chunks = self._round
            low, high = chunks[0]
            last = len(chunks) == 1
            counts = log.step_counts(low, high)
            expected = sum(n for _key, n in counts)
            with transaction(conn):
                self._add_counts(conn, counts)
                moved = move_step(conn, top, low, high, expected, last=last)
            log.step_done(high, counts)
            chunks.pop(0)
            if last:
                log.end_round()
                self._round = None
                self.merges += 1
        return moved, last

    def merge_idle(self, conn: sqlite3.Connection | None = None) -> None:
        """Nothing was archived lately (the writer got an empty batch, or the
        server's flush found nothing kept): merge what the log holds."""
        if self._logged or self._round is not None:
            self._merge_quietly(conn or self._conn)

    def flush_or_merge(self) -> None:
        """Without a writer, the server's once-a-second flush: :meth:`flush`,
        or with nothing kept behind (nothing archived lately), merge the log."""
        if self.behind:
            self.flush()
        else:
            self.merge_idle()

    def _merge_quietly(self, conn: sqlite3.Connection, *, step: bool = False) -> None:
        """:meth:`merge` (or one step of it); a failure is logged: the log
        stays, read as it is, and the next merge moves it."""
        try:
            if step:
                self.merge_step(conn)
            else:
                self.merge(conn)
        except sqlite3.Error:
            log.exception("archive: merging the log failed (it is kept and read)")

    def apply(self, ops: Sequence[object]) -> None:
        """Carry out ``ops`` in order in one transaction, all or nothing."""
        self.wait_writer()
        with self._lock, self._journal(), transaction(self._conn):
            for op in ops:
                self._write_op(op)

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
        """The messages ``archive`` holds: merged (``mam_archives.n``) and in the log."""
        with self._lock:
            self._resolve()
            found = self._conn.execute(
                "SELECT id, n FROM mam_archives WHERE jid = ?", (str(archive),)
            ).fetchone()
            return 0 if found is None else int(found[1]) + self._log.size(int(found[0]))

    def load(self, query: object) -> ArchivePage | UnknownId | Item:
        """Answer a ``Load`` effect (:class:`ArchiveQuery`, :class:`ArchiveMeta`)."""
        self.flush()  # a read sees every archived message
        with self._lock:
            return self._load(query)

    def _load(self, query: object) -> ArchivePage | UnknownId | Item:
        self._resolve()
        if isinstance(query, ArchiveMeta):
            key = self._id(query.archive, create=False)
            return meta(self._conn, key, self._log.entries(key))
        if not isinstance(query, ArchiveQuery):
            raise TypeError(f"not an archive query: {query!r}")
        key = self._id(query.archive, create=False)
        seqs: dict[str, int] = {}
        named = (query.after_id, query.before_id, query.after, query.before or None)
        for sid in (*named, *(query.ids or ())):
            if sid is not None and sid not in seqs:
                seq = None if key is None else find(self._conn, key, sid, self._log)
                if seq is None:
                    return UnknownId(sid)
                seqs[sid] = seq
        if key is None:
            return ArchivePage((), True, 0, None)
        peer = None if query.with_ is None else self._known_peer(query.with_)
        return page(
            self._conn,
            query,
            key,
            self._log.entries(key),
            seqs,
            peer,
            self._skew,
            self.count(query.archive),
        )
