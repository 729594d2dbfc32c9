"""The archive's reads (XEP-0313 §4, XEP-0059) over both halves of the
SQLite store (xmpp_trio/stores/mam.py): every message is an item
(``mam_items``), and its entries (which archives hold it) are either merged
(``mam_entries``, clustered by archive and indexed by peer) or still in the
log (``mam_log_entries``, in ``seq`` order) that new entries are appended to
until they are merged (docs/mam.md "The log"), whose entries are also kept
in memory per archive (xmpp_trio/stores/mam_log.py).

Every ``seq`` in the log follows every merged ``seq`` (the log is merged
whole, and a new message's ``seq`` follows the last one), so an archive in
order is its merged entries, then its log entries: a page read forward
reads the merged entries first and the log only for the rest of the page,
a page read backward the other way round, and a count or a position adds
the two. A query reads the merged entries by their indexes and the
log's from memory (session 11: the archive's log entries, found by ``seq``
with a bisection, filtered in Python, then their items read by ``seq``), so
a page's cost grows neither with the archive nor with the log."""

from __future__ import annotations

import functools
import sqlite3
from bisect import bisect_left
from collections.abc import Callable
from typing import Final

from xmpp_sansio.jid import JID
from xmpp_sansio.server.mam.store import ArchivedMessage, ArchivePage, ArchiveQuery

from .mam_log import Entry, LogIndex
from .mam_rows import values

__all__ = ["COUNT_CAP", "Item", "find", "meta", "page"]

_COLUMNS: Final = "i.sid, e.seq, p.jid, i.stamp, i.stanza"
#: Entries (``e``) joined to their items (``i``) and peers (``p``, ``p.jid``
#: the full JID): the merged entries, then the log.
_FROM: Final = (
    "mam_entries e CROSS JOIN mam_items i ON i.seq = e.seq CROSS JOIN mam_peers p ON p.id = e.peer"
)
#: A filtered set larger than this gets no ``count`` (the unfiltered one always does).
COUNT_CAP: Final = 1000
_US: Final = 1_000_000
Item = tuple[ArchivedMessage | None, ArchivedMessage | None]
_Row = tuple[str, int, str, float, bytes]


def _row(row: _Row) -> ArchivedMessage:
    sid, seq, with_full, stamp, stanza = row
    return ArchivedMessage(sid, int(seq), JID.parse(with_full), float(stamp), bytes(stanza))


def find(conn: sqlite3.Connection, key: int, sid: str, log: LogIndex) -> int | None:
    """The ``seq`` of ``sid`` in archive ``key`` (``None``: not there)."""
    row = conn.execute(
        "SELECT i.seq, EXISTS (SELECT 1 FROM mam_entries e WHERE e.archive = ? AND e.seq = i.seq)"
        " FROM mam_items i WHERE i.sid = ?",
        (key, sid),
    ).fetchone()
    if row is None:
        return None
    seq = int(row[0])
    return seq if row[1] or log.has(key, seq) else None


class _Filter:
    """A query's set in the log (what its ``WHERE`` says of the merged
    half): ``seq`` in ``lo..hi``, then the peers, stamps and ids checked."""

    __slots__ = ("bare", "hi", "ids", "lo", "peer", "stamp_hi", "stamp_lo")

    def __init__(self) -> None:
        self.lo, self.hi = 0, 1 << 63
        self.bare: int | None = None
        self.peer: int | None = None
        self.stamp_lo: float | None = None
        self.stamp_hi: float | None = None
        self.ids: frozenset[int] | None = None

    def after(self, seq: int) -> _Filter:
        """This set from ``seq`` on (inclusive)."""
        out = _Filter()
        out.lo, out.hi = max(self.lo, seq), self.hi
        out.bare, out.peer, out.ids = self.bare, self.peer, self.ids
        out.stamp_lo, out.stamp_hi = self.stamp_lo, self.stamp_hi
        return out

    def before(self, seq: int) -> _Filter:
        """This set up to ``seq`` (inclusive)."""
        out = self.after(self.lo)
        out.hi = min(self.hi, seq)
        return out

    def pick(self, entries: list[Entry]) -> list[Entry]:
        """The entries of ``entries`` (one archive's log, by ``seq``) in the set."""
        if not entries:
            return entries
        got = entries[bisect_left(entries, (self.lo,)) : bisect_left(entries, (self.hi + 1,))]
        if self.bare is not None:
            bare = self.bare
            got = [e for e in got if e[1] == bare]
        if self.peer is not None:
            peer = self.peer
            got = [e for e in got if e[2] == peer]
        if self.stamp_lo is not None:
            low = self.stamp_lo
            got = [e for e in got if e[3] >= low]
        if self.stamp_hi is not None:
            high = self.stamp_hi
            got = [e for e in got if e[3] <= high]
        if self.ids is not None:
            ids = self.ids
            got = [e for e in got if e[0] in ids]
        return got


@functools.lru_cache(maxsize=16)
def _by_seq(size: int) -> str:
    """The rows of ``size`` ``(position, seq, peer)`` triples, in position order."""
    return (
        f"SELECT i.sid, i.seq, p.jid, i.stamp, i.stanza FROM (VALUES {values(3, size)}) AS e"
        " CROSS JOIN mam_items i"
        " ON i.seq = e.column2 CROSS JOIN mam_peers p ON p.id = e.column3 ORDER BY e.column1"
    )


def _log_rows(conn: sqlite3.Connection, picked: list[Entry]) -> list[_Row]:
    """The rows of the log entries ``picked``, in that order (one statement)."""
    if not picked:
        return []
    size = max(8, 1 << (len(picked) - 1).bit_length())
    values: list[int] = []
    for at, entry in enumerate(picked):
        values += (at, entry[0], entry[2])
    values += values[-3:] * (size - len(picked))
    rows: list[_Row] = conn.execute(_by_seq(size), values).fetchall()
    return rows[: len(picked)]


def _rows(
    conn: sqlite3.Connection,
    where: str,
    args: list[object],
    pick: Callable[[], list[Entry]],
    order: str,
    limit: int,
) -> list[_Row]:
    """At most ``limit`` rows of the set (``where`` in the merged half,
    ``pick()`` its entries in the log, called only if the page reaches the
    log), ``order`` by ``seq`` (``ASC``: the merged half first; ``DESC``:
    the log first)."""
    rows: list[_Row] = []
    if order == "DESC":
        rows += _log_rows(conn, pick()[: -limit - 1 : -1])
        if len(rows) >= limit:
            return rows
    rows += conn.execute(
        f"SELECT {_COLUMNS} FROM {_FROM} WHERE {where} ORDER BY e.seq {order} LIMIT ?",
        (*args, limit - len(rows)),
    ).fetchall()
    if order == "ASC" and len(rows) < limit:
        rows += _log_rows(conn, pick()[: limit - len(rows)])
    return rows


def _count(
    conn: sqlite3.Connection,
    where: str,
    args: list[object],
    pick: Callable[[], list[Entry]],
    stamped: bool,
    cap: int,
) -> int:
    """The size of the set (``where`` merged, ``pick()`` in the log), counted
    up to ``cap + 1`` (-1: exact); the items are read only when a stamp is
    checked (``stamped``), the log only if the merged half is within ``cap``."""
    source = _FROM if stamped else "mam_entries e"
    merged = int(
        conn.execute(
            f"SELECT COUNT(*) FROM (SELECT 1 FROM {source} WHERE {where} LIMIT ?)",
            (*args, -1 if cap < 0 else cap + 1),
        ).fetchone()[0]
    )
    return merged if 0 <= cap < merged else merged + len(pick())


def page(
    conn: sqlite3.Connection,
    query: ArchiveQuery,
    key: int,
    log: list[Entry],
    seqs: dict[str, int],
    peer: tuple[int, int] | None,
    skew: int,
    size: int,
) -> ArchivePage:
    """The page ``query`` asks for in archive ``key``: ``log`` its entries in
    the log, ``seqs`` the ``seq`` of each id it names, ``peer`` the ``(bare
    id, id)`` of its ``with``, ``skew`` the store's widest clock lead,
    ``size`` the archive's size. ``start``/``end`` are ``seq`` bounds
    (``seq >= stamp_us``, at most ``skew`` more) with the exact stamp
    checked on the rows."""
    where = ["e.archive = ?"]
    args: list[object] = [key]
    flt = _Filter()
    if query.with_ is not None:
        assert peer is not None
        where.append("e.bare = ?")
        args.append(peer[0])
        flt.bare = peer[0]
        if query.with_.resource is not None:
            where.append("e.peer = ?")
            args.append(peer[1])
            flt.peer = peer[1]
    if query.start is not None:
        where.append("e.seq >= ? AND i.stamp >= ?")
        args.extend((int(query.start * _US), query.start))
        flt = flt.after(int(query.start * _US))
        flt.stamp_lo = query.start
    if query.end is not None:
        where.append("e.seq <= ? AND i.stamp <= ?")
        args.extend((int(query.end * _US) + skew + 1, query.end))
        flt = flt.before(int(query.end * _US) + skew + 1)
        flt.stamp_hi = query.end
    if query.after_id is not None:
        where.append("e.seq > ?")
        args.append(seqs[query.after_id])
        flt = flt.after(seqs[query.after_id] + 1)
    if query.before_id is not None:
        where.append("e.seq < ?")
        args.append(seqs[query.before_id])
        flt = flt.before(seqs[query.before_id] - 1)
    if query.ids is not None:
        where.append(f"e.seq IN ({','.join('?' * len(query.ids))})")
        args.extend(seqs[sid] for sid in query.ids)
        flt.ids = frozenset(seqs[sid] for sid in query.ids)
    filtered = len(where) > 1
    stamped = query.start is not None or query.end is not None

    @functools.cache
    def in_log() -> list[Entry]:
        return flt.pick(log)

    if query.index is not None:
        return _page_at(conn, query, " AND ".join(where), args, flt, log, stamped, filtered, size)
    page_where, page_args, page_log = list(where), list(args), flt
    backward = query.before is not None
    if query.after is not None:
        page_where.append("e.seq > ?")
        page_args.append(seqs[query.after])
        page_log = page_log.after(seqs[query.after] + 1)
    if query.before:
        page_where.append("e.seq < ?")
        page_args.append(seqs[query.before])
        page_log = page_log.before(seqs[query.before] - 1)
    order = "DESC" if backward else "ASC"
    picked = in_log if page_log is flt else functools.partial(page_log.pick, log)
    rows = _rows(conn, " AND ".join(page_where), page_args, picked, order, query.max + 1)
    complete = len(rows) <= query.max
    items = [_row(r) for r in rows[: query.max]]
    if backward:
        items.reverse()
    count: int | None = size
    if filtered:
        # Counted up to COUNT_CAP rows, so a page's cost stays bounded; a
        # bigger filtered set gets no count (XEP-0059 §2.6: optional).
        counted = _count(conn, " AND ".join(where), args, in_log, stamped, COUNT_CAP)
        count = counted if counted <= COUNT_CAP else None
    first_index: int | None = None
    if items and count is not None:
        if query.after is None and not backward:
            first_index = 0
        elif query.before == "":
            first_index = count - len(items)
    return ArchivePage(tuple(items), complete, count, first_index)


def _page_at(
    conn: sqlite3.Connection,
    query: ArchiveQuery,
    cond: str,
    args: list[object],
    flt: _Filter,
    log: list[Entry],
    stamped: bool,
    filtered: bool,
    size: int,
) -> ArchivePage:
    """XEP-0059 §2.5: the page at ``query.index`` of the set (``cond`` in the
    merged half, ``flt`` in the log ``log``). Its first ``seq`` is found by
    ``OFFSET`` on the merged entries alone (the items are read only when a
    stamp is checked), else in the log past the merged half's count; then
    the page is read from there like any other; ``count`` is exact (a
    filtered set is counted whole: the index says where in it the page
    is)."""
    assert query.index is not None
    in_log = flt.pick(log)
    count = _count(conn, cond, args, lambda: in_log, stamped, -1) if filtered else size
    merged = _FROM if stamped else "mam_entries e"
    row = conn.execute(
        f"SELECT e.seq FROM {merged} WHERE {cond} ORDER BY e.seq LIMIT 1 OFFSET ?",
        (*args, query.index),
    ).fetchone()
    if row is None:  # past the merged half: in the log, after the merged half's count
        (before,) = conn.execute(f"SELECT COUNT(*) FROM {merged} WHERE {cond}", args).fetchone()
        at = query.index - int(before)
        row = (in_log[at][0],) if 0 <= at < len(in_log) else None
    if row is None or query.max == 0:
        return ArchivePage((), row is None, count, None)
    first = int(row[0])
    picked = functools.partial(flt.after(first).pick, log)
    rows = _rows(conn, f"{cond} AND e.seq >= ?", [*args, first], picked, "ASC", query.max + 1)
    items = tuple(_row(r) for r in rows[: query.max])
    return ArchivePage(items, len(rows) <= query.max, count, query.index)


def meta(conn: sqlite3.Connection, key: int | None, log: list[Entry]) -> Item:
    """XEP-0313 §6.2: the first and last message of archive ``key``."""
    out: list[ArchivedMessage | None] = []
    for order in ("ASC", "DESC"):
        rows = [] if key is None else _rows(conn, "e.archive = ?", [key], lambda: log, order, 1)
        out.append(_row(rows[0]) if rows else None)
    return (out[0], out[1])
