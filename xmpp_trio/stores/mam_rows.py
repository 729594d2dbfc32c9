"""The rows an archive batch writes (xmpp_trio/stores/mam.py): the flat
values of its ``INSERT`` statements (:class:`Rows`) and the statements'
shapes (multi-row ``VALUES``, padded to few shapes kept in the connection's
statement cache)."""

from __future__ import annotations

import functools
import sqlite3
from itertools import chain
from typing import Final

from xmpp_sansio.jid import JID
from xmpp_sansio.server.mam.store import ArchivePut

__all__ = [
    "COUNTED",
    "NO_PEER",
    "PAD",
    "ROWS",
    "Rows",
    "add_counts",
    "count_select",
    "count_update",
    "insert_rows",
    "inserts",
    "padded",
    "values",
]

#: Rows a multi-row ``INSERT`` writes at most (its ``VALUES`` bound in one
#: call: 1024 items are 5120 variables, under the 32766 SQLite allows since
#: 3.32; 128 are 640, under the 999 of older ones).
ROWS: Final = 1024 if sqlite3.sqlite_version_info >= (3, 32) else 128
#: A statement's rows are a multiple of this (its last row repeated, which
#: ``OR IGNORE`` skips): a batch is one statement a table, in few shapes.
PAD: Final = 32


def values(width: int, rows: int) -> str:
    """The rows of a multi-row ``VALUES``: ``(?, …), …``, ``rows`` rows of
    ``width`` parameters (for statements built once a shape, cached)."""
    return ", ".join(["(" + ", ".join("?" * width) + ")"] * rows)


@functools.lru_cache(maxsize=128)
def inserts(table: str, width: int, rows: int) -> str:
    """``INSERT OR IGNORE INTO table VALUES (?, …), …`` for ``rows`` rows."""
    return f"INSERT OR IGNORE INTO {table} VALUES " + values(width, rows)


#: Archives whose sizes one statement updates (:meth:`SqliteArchiveStorage._settle`).
COUNTED: Final = 256
NO_PEER: Final = (0, 0)


def padded(n: int) -> int:
    """``n`` rounded up to a power of two, at least 8 (few statement shapes)."""
    return max(8, 1 << (n - 1).bit_length())


@functools.lru_cache(maxsize=16)
def count_update(size: int) -> str:
    """Add ``(id, n)`` pairs (``size`` of them) to the archives' sizes."""
    return (
        f"UPDATE mam_archives SET n = n + c.column2 FROM (VALUES {values(2, size)}) AS c"
        " WHERE mam_archives.id = c.column1"
    )


@functools.lru_cache(maxsize=16)
def count_select(size: int) -> str:
    """Among ``size`` ``(id, entries in the log)`` pairs, ``(id, found, size)``
    of the archives holding more than ``?`` (their merged ``n`` plus their
    log's) and of those missing (``found`` ``NULL``)."""
    return (
        f"SELECT c.column1, a.id, a.n + c.column2 FROM (VALUES {values(2, size)}) AS c"
        " LEFT JOIN mam_archives a ON a.id = c.column1"
        " WHERE c.column1 != 0 AND (a.id IS NULL OR a.n + c.column2 > ?)"
    )


class Rows:
    """The flat rows of a list of :class:`ArchivePut` (``ops``), built by
    :meth:`SqliteArchiveStorage._rows`: ``items`` and ``entries`` as the
    ``INSERT`` statements bind them, ``missing`` the ids to make first
    (position in ``entries``, archive or peer), ``last``/``skew`` the
    store's before they were built (what a rollback goes back to)."""

    __slots__ = ("entries", "items", "last", "missing", "ops", "skew")

    def __init__(
        self,
        ops: list[ArchivePut],
        items: list[object],
        entries: list[object],
        missing: list[tuple[int, JID]],
        last: int,
        skew: int,
    ) -> None:
        self.ops, self.items, self.entries, self.missing = ops, items, entries, missing
        self.last, self.skew = last, skew

    def op_of(self, key: int) -> ArchivePut:
        """The op of the last entry of archive ``key`` (its quota applies)."""
        keys = self.entries[0::4]
        at = len(keys) - 1 - keys[::-1].index(key)
        return self.ops[self.items[0::5].index(self.entries[4 * at + 1])]


def insert_rows(conn: sqlite3.Connection, table: str, width: int, values: list[object]) -> bool:
    """``INSERT OR IGNORE`` the flat rows ``values`` (``width`` a row) into
    ``table``, one statement for up to :data:`ROWS` rows (a batch: one call
    into SQLite, so one hand-over of the GIL, per table), padded to a
    multiple of :data:`PAD` rows by repeating its last row (ignored: a few
    shapes, kept in the connection's statement cache); whether every row
    went in (the repeats are never counted)."""
    before = conn.total_changes
    rows = len(values) // width
    step = ROWS * width
    for at in range(0, len(values), step):
        chunk = values[at : at + step]
        n = len(chunk) // width
        padded = -(-n // PAD) * PAD
        if padded > n:
            chunk += chunk[-width:] * (padded - n)
        conn.execute(inserts(table, width, padded), chunk)
    return conn.total_changes - before == rows


def add_counts(conn: sqlite3.Connection, pairs: list[tuple[int, int]]) -> None:
    """Add ``(id, n)`` pairs to the archives' merged sizes (``mam_archives.n``),
    one statement per :data:`COUNTED` archives."""
    for at in range(0, len(pairs), COUNTED):
        chunk = pairs[at : at + COUNTED]
        size = padded(len(chunk))
        values = list(chain.from_iterable(chunk))
        values += (0, 0) * (size - len(chunk))
        conn.execute(count_update(size), values)
