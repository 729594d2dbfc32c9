"""The archives' sizes, quotas and retention (XEP-0313 leaves both to the
server; docs/mam.md "Storage"), a part of
:class:`~xmpp_trio.stores.mam.SqliteArchiveStorage` (a mixin): what a
batch's write does after its rows are in (:meth:`Quotas._settle`), and the
bound that lets most batches skip the size check (session 13).

An archive's size is its merged entries (``mam_archives.n``) and its log's
(counted in memory, :class:`~xmpp_trio.stores.mam_log.LogIndex`).
:attr:`Quotas._merged` holds an upper bound of each archive's ``n``: read
when the store opens, raised by every count it adds (a merge's, a known
id's), never lowered (a trim, a removal, a transaction that did not commit
leave it above ``n``: still a bound). While the largest bound plus the
largest log count is within the smallest quota of a batch without
retention, no archive can be over its quota: the batch reads no size."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from itertools import chain
from operator import attrgetter
from typing import Final

from xmpp_sansio.jid import JID
from xmpp_sansio.server.mam.store import ArchivePut

from .mam_log import LogIndex
from .mam_rows import COUNTED, add_counts, count_select, padded

__all__ = ["Quotas"]

_US: Final = 1_000_000
_keep = attrgetter("keep")
_retention = attrgetter("retention")


class Quotas:
    """The quota and retention part of the archive store (a mixin)."""

    _log: LogIndex
    _ids: dict[JID, int]
    _skew: int
    #: An upper bound of each archive's merged size (``mam_archives.n``) and
    #: the largest of them (:meth:`_load_bounds`, :meth:`_add_counts`).
    _merged: dict[int, int]
    _merged_top: int
    #: An archive id made by a transaction that did not commit may be in
    #: ``_ids`` (its undo says so): the next batch checks its ids (the size
    #: ``SELECT`` finds a missing one) until ``_ids`` is emptied.
    _ids_suspect: bool

    def _moved(self, key: int) -> int:
        raise NotImplementedError

    def _load_bounds(self, conn: sqlite3.Connection) -> None:
        """Every archive's merged size, as the bound (the store opens)."""
        self._merged = {int(k): int(n) for k, n in conn.execute("SELECT id, n FROM mam_archives")}
        self._merged_top = max(self._merged.values(), default=0)

    def _forget_ids(self) -> None:
        """Empty the archive ids' cache (read again from the table)."""
        self._ids.clear()
        self._ids_suspect = False

    def _suspect_ids(self) -> None:
        """An undo: the transaction that made an archive id did not commit."""
        self._ids_suspect = True

    def _add_counts(self, conn: sqlite3.Connection, pairs: list[tuple[int, int]]) -> None:
        """Add ``(id, n)`` pairs to the archives' merged sizes, and to their bounds."""
        add_counts(conn, pairs)
        bounds = self._merged
        top = self._merged_top
        for key, n in pairs:
            bound = bounds[key] = bounds.get(key, 0) + n
            if bound > top:
                top = bound
        self._merged_top = top

    def _unref(self, conn: sqlite3.Connection, rows: Sequence[tuple[int]]) -> None:
        """The entries ``rows`` (their ``seq``) are gone: drop unheld items."""
        if rows:
            conn.executemany("UPDATE mam_items SET refs = refs - 1 WHERE seq = ?", rows)
            conn.executemany("DELETE FROM mam_items WHERE seq = ? AND refs <= 0", rows)

    def _settle(
        self,
        conn: sqlite3.Connection,
        keys: set[object],
        merged: dict[int, int],
        ops: list[ArchivePut],
        op_of: Callable[[int], ArchivePut],
    ) -> None:
        """Add ``merged`` (new merged entries per archive, rare) to the
        archives' merged sizes (``mam_archives.n``; the log's are counted in
        memory, :class:`~xmpp_trio.stores.mam_log.LogIndex`); then apply the
        quota and retention of the last op of each archive of ``keys``
        (``op_of``) to those whose size (one ``SELECT`` per :data:`COUNTED`
        archives, given their log's size, padded to a power of two with
        archive 0, which is none) is over the smallest quota of ``ops`` (all,
        if one has a retention). Without retention, while no archive's size
        can be over that quota (the bounds: module docstring) and every
        archive id is known to exist, nothing is read."""
        keep = min(map(_keep, ops))
        retention = any(map(_retention, ops))
        if merged:
            self._add_counts(conn, list(merged.items()))
        size_of = self._log.size
        if not retention and not self._ids_suspect:
            sizes = self._log.sizes
            if self._merged_top + (max(sizes.values()) if sizes else 0) <= keep:
                return
        pairs = [(key, size_of(key)) for key in keys]  # type: ignore[arg-type]
        over: list[tuple[int, int | None, int]] = []
        for at in range(0, len(pairs), COUNTED):
            chunk = pairs[at : at + COUNTED]
            size = padded(len(chunk))
            values = list(chain.from_iterable(chunk))
            values += (0, 0) * (size - len(chunk))
            over += conn.execute(
                count_select(size), (*values, -1 if retention else keep)
            ).fetchall()
        if any(found is None for _key, found, _count in over):
            # an id made by a transaction that did not commit (e.g. a full disk)
            self._forget_ids()
            raise sqlite3.DatabaseError("an archive's id was not committed; write again")
        for key, _found, count in over:
            op = op_of(key)
            if count > op.keep or op.retention > 0:
                self._trim(conn, key, count, op)

    def _trim(self, conn: sqlite3.Connection, key: int, count: int, op: ArchivePut) -> None:
        """Drop the entries of ``key`` (``count`` of them) that ``op``'s quota and
        retention no longer keep: the oldest, merged ones first, then the log's
        (``mam_archives.n`` counts the merged ones; the index the log's)."""
        dropped = merged = 0
        halves = ("mam_entries", "mam_log_entries")
        for entries in halves:
            if count - dropped <= op.keep:
                break
            moved = 0 if entries == "mam_entries" else self._moved(key)
            gone = conn.execute(
                f"DELETE FROM {entries} WHERE archive = ? AND seq IN (SELECT seq FROM"
                f" {entries} WHERE archive = ? AND seq > ? ORDER BY seq LIMIT ?) RETURNING seq",
                (key, key, moved, count - dropped - op.keep),
            ).fetchall()
            self._unref(conn, gone)
            dropped += len(gone)
            if entries == "mam_entries":
                merged += len(gone)
            else:
                self._log.remove(key, (seq for (seq,) in gone))
        if op.retention > 0:
            cutoff = op.stamp - op.retention
            for entries in halves:
                gone = conn.execute(
                    f"DELETE FROM {entries} WHERE archive = ? AND seq > ? AND seq < ? AND"
                    f" (SELECT stamp FROM mam_items i WHERE i.seq = {entries}.seq) < ?"
                    " RETURNING seq",
                    (
                        key,
                        0 if entries == "mam_entries" else self._moved(key),
                        int(cutoff * _US) + self._skew + 1,
                        cutoff,
                    ),
                ).fetchall()
                self._unref(conn, gone)
                if entries == "mam_entries":
                    merged += len(gone)
                else:
                    self._log.remove(key, (seq for (seq,) in gone))
        if merged:
            conn.execute("UPDATE mam_archives SET n = n - ? WHERE id = ?", (merged, key))
