"""The archive's reads (XEP-0313 §4, XEP-0059) over both halves of the
SQLite store (xmpp_trio/stores/mam.py): every message is an item
(``mam_items``), and its entries (which archives hold it) are either merged
(``mam_entries``, clustered by archive and indexed by peer) or still in the
log (``mam_log_entries``, in ``seq`` order) that new entries are appended to
until they are merged (docs/mam.md "The log").

Every ``seq`` in the log follows every merged ``seq`` (the log is merged
whole, and a new message's ``seq`` follows the last one), so an archive in
order is its merged entries, then its log entries: a page read forward
reads the merged entries first and the log only for the rest of the page,
a page read backward the other way round, and a count or a position adds
the two. A query reads the merged entries by their indexes and the
log (about ``[mam] merge_every`` messages at most) by a scan in ``seq``
order, so a page's cost does not grow with the archive."""

from __future__ import annotations

import sqlite3
from typing import Final

from xmpp_sansio.jid import JID
from xmpp_sansio.server.mam.store import ArchivedMessage, ArchivePage, ArchiveQuery

__all__ = ["COUNT_CAP", "Item", "find", "meta", "page"]

_COLUMNS: Final = "i.sid, e.seq, p.jid, i.stamp, i.stanza"
#: Entries (``e``) joined to their items (``i``) and peers (``p``, ``p.jid``
#: the full JID): the merged entries, then the log.
_FROM: Final = (
    "mam_entries e CROSS JOIN mam_items i ON i.seq = e.seq CROSS JOIN mam_peers p ON p.id = e.peer"
)
_LOG_FROM: Final = (
    "mam_log_entries e CROSS JOIN mam_items i ON i.seq = e.seq"
    " CROSS JOIN mam_peers p ON p.id = e.peer"
)
#: ``(joined, entries alone)`` of each half, the merged one first.
_HALVES: Final = ((_FROM, "mam_entries e"), (_LOG_FROM, "mam_log_entries e"))
#: A filtered set larger than this gets no ``count`` (the unfiltered one always does).
COUNT_CAP: Final = 1000
_US: Final = 1_000_000
Item = tuple[ArchivedMessage | None, ArchivedMessage | None]
_Row = tuple[str, int, str, float, bytes]


def _row(row: _Row) -> ArchivedMessage:
    sid, seq, with_full, stamp, stanza = row
    return ArchivedMessage(sid, int(seq), JID.parse(with_full), float(stamp), bytes(stanza))


def find(conn: sqlite3.Connection, key: int, sid: str) -> int | None:
    """The ``seq`` of ``sid`` in archive ``key`` (``None``: not there)."""
    row = conn.execute(
        "SELECT i.seq FROM mam_items i WHERE i.sid = ? AND (EXISTS (SELECT 1 FROM mam_entries e"
        " WHERE e.archive = ? AND e.seq = i.seq) OR EXISTS (SELECT 1 FROM mam_log_entries e"
        " WHERE e.seq = i.seq AND e.archive = ?))",
        (sid, key, key),
    ).fetchone()
    return None if row is None else int(row[0])


def _rows(
    conn: sqlite3.Connection, where: str, args: list[object], order: str, limit: int
) -> list[_Row]:
    """At most ``limit`` rows of the set ``where``, ``order`` by ``seq``
    (``ASC``: the merged half first; ``DESC``: the log first)."""
    halves = (_FROM, _LOG_FROM) if order == "ASC" else (_LOG_FROM, _FROM)
    rows: list[_Row] = []
    for source in halves:
        rows += conn.execute(
            f"SELECT {_COLUMNS} FROM {source} WHERE {where} ORDER BY e.seq {order} LIMIT ?",
            (*args, limit - len(rows)),
        ).fetchall()
        if len(rows) >= limit:
            break
    return rows


def _count(
    conn: sqlite3.Connection, where: str, args: list[object], stamped: bool, cap: int
) -> int:
    """The size of the set ``where``, counted up to ``cap + 1`` (-1: exact);
    the items are read only when a stamp is checked (``stamped``)."""
    total = 0
    for joined, alone in _HALVES:
        source = joined if stamped else alone
        limit = -1 if cap < 0 else cap + 1 - total
        total += int(
            conn.execute(
                f"SELECT COUNT(*) FROM (SELECT 1 FROM {source} WHERE {where} LIMIT ?)",
                (*args, limit),
            ).fetchone()[0]
        )
        if 0 <= cap < total:
            break
    return total


def page(
    conn: sqlite3.Connection,
    query: ArchiveQuery,
    key: int,
    seqs: dict[str, int],
    peer: tuple[int, int] | None,
    skew: int,
    size: int,
) -> ArchivePage:
    """The page ``query`` asks for in archive ``key``: ``seqs`` the ``seq`` of
    each id it names, ``peer`` the ``(bare id, id)`` of its ``with``,
    ``skew`` the store's widest clock lead, ``size`` the archive's size.
    ``start``/``end`` are ``seq`` bounds (``seq >= stamp_us``, at most
    ``skew`` more) with the exact stamp checked on the rows."""
    where = ["e.archive = ?"]
    args: list[object] = [key]
    if query.with_ is not None:
        assert peer is not None
        where.append("e.bare = ?")
        args.append(peer[0])
        if query.with_.resource is not None:
            where.append("e.peer = ?")
            args.append(peer[1])
    if query.start is not None:
        where.append("e.seq >= ? AND i.stamp >= ?")
        args.extend((int(query.start * _US), query.start))
    if query.end is not None:
        where.append("e.seq <= ? AND i.stamp <= ?")
        args.extend((int(query.end * _US) + skew + 1, query.end))
    if query.after_id is not None:
        where.append("e.seq > ?")
        args.append(seqs[query.after_id])
    if query.before_id is not None:
        where.append("e.seq < ?")
        args.append(seqs[query.before_id])
    if query.ids is not None:
        where.append(f"e.seq IN ({','.join('?' * len(query.ids))})")
        args.extend(seqs[sid] for sid in query.ids)
    filtered = len(where) > 1
    stamped = query.start is not None or query.end is not None
    if query.index is not None:
        return _page_at(conn, query, " AND ".join(where), args, stamped, filtered, size)
    page_where, page_args = list(where), list(args)
    backward = query.before is not None
    if query.after is not None:
        page_where.append("e.seq > ?")
        page_args.append(seqs[query.after])
    if query.before:
        page_where.append("e.seq < ?")
        page_args.append(seqs[query.before])
    order = "DESC" if backward else "ASC"
    rows = _rows(conn, " AND ".join(page_where), page_args, order, query.max + 1)
    complete = len(rows) <= query.max
    items = [_row(r) for r in rows[: query.max]]
    if backward:
        items.reverse()
    count: int | None = size
    if filtered:
        # Counted up to COUNT_CAP rows, so a page's cost stays bounded; a
        # bigger filtered set gets no count (XEP-0059 §2.6: optional).
        counted = _count(conn, " AND ".join(where), args, stamped, COUNT_CAP)
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
    stamped: bool,
    filtered: bool,
    size: int,
) -> ArchivePage:
    """XEP-0059 §2.5: the page at ``query.index`` of the set ``cond``. Its
    first ``seq`` is found by ``OFFSET`` on the entries alone (the items are
    read only when a stamp is checked), in the merged half, else in the log
    past the merged half's count; then the page is read from there like any
    other; ``count`` is exact (a filtered set is counted whole: the index
    says where in it the page is)."""
    assert query.index is not None
    count = _count(conn, cond, args, stamped, -1) if filtered else size
    merged, log = (joined if stamped else alone for joined, alone in _HALVES)

    def seq_at(source: str, offset: int) -> tuple[int] | None:
        found: tuple[int] | None = conn.execute(
            f"SELECT e.seq FROM {source} WHERE {cond} ORDER BY e.seq LIMIT 1 OFFSET ?",
            (*args, offset),
        ).fetchone()
        return found

    row = seq_at(merged, query.index)
    if row is None:  # past the merged half: in the log, after the merged half's count
        (before,) = conn.execute(f"SELECT COUNT(*) FROM {merged} WHERE {cond}", args).fetchone()
        row = seq_at(log, query.index - int(before))
    if row is None or query.max == 0:
        return ArchivePage((), row is None, count, None)
    rows = _rows(conn, f"{cond} AND e.seq >= ?", [*args, int(row[0])], "ASC", query.max + 1)
    items = tuple(_row(r) for r in rows[: query.max])
    return ArchivePage(items, len(rows) <= query.max, count, query.index)


def meta(conn: sqlite3.Connection, key: int | None) -> Item:
    """XEP-0313 §6.2: the first and last message of archive ``key``."""
    out: list[ArchivedMessage | None] = []
    for order in ("ASC", "DESC"):
        rows = [] if key is None else _rows(conn, "e.archive = ?", [key], order, 1)
        out.append(_row(rows[0]) if rows else None)
    return (out[0], out[1])
