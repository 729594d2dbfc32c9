"""The archive's log in memory (session 11, docs/mam.md "The log"): every
entry of ``mam_log_entries`` (the entries appended since the last merge) as
``(seq, bare, peer, stamp)``, per archive, in ``seq`` order. Reads find an
archive's log entries here instead of scanning the log
(xmpp_trio/stores/mam_read.py), and an archive's size is its merged count
(``mam_archives.n``) plus its entries here, so a commit updates no counter.

The table is the truth: the index is read back from it when the store opens.
What a transaction changes here is journaled (:attr:`LogIndex.journal`, one
undo a change) and undone if the transaction does not commit: the store's own
transactions know their outcome; a transaction of the caller's (the loop's
``ServerServices.commit``) is learned afterwards from a mark it wrote in a
temporary table (:class:`Foreign`)."""

from __future__ import annotations

import itertools
import sqlite3
from bisect import bisect_left, insort
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Final, cast

__all__ = ["Entry", "Foreign", "LogIndex", "move_step"]

#: ``(seq, bare peer id, peer id, stamp)``.
Entry = tuple[int, int, int, float]
Undo = Callable[[], None]
#: A batch's rows as written (:meth:`LogIndex.append_rows`): its serial, the
#: entries' archives, the entries (4 values each), the items' ``seq`` and stamps.
_Chunk = tuple[int, list[int], list[object], list[int], list[float]]
_NONE: Final[list[Entry]] = []
#: Entries of the oldest chunks a read sorts in whole (:meth:`LogIndex._fold_oldest`).
FOLD_STEP: Final = 4096


class LogIndex:
    """The log's entries per archive id, each list sorted by ``seq``, and
    their number per archive (``sizes``, kept at each commit); ``journal``:
    the undos of the transaction in progress (``None``: not journaled, e.g.
    while the store opens). A batch's flat rows are kept as they are
    (``_chunks``, each with a serial number) and sorted into an archive's
    list only when something reads that archive (``_folded``: per archive,
    the serial of its first chunk not yet sorted in): the writer's thread
    pays a ``Counter`` a batch, not a tuple an entry, and the loop's first
    read of an archive after many writes pays for that archive's entries
    (found in each chunk by ``list.index``, in C), not the whole log's.

    A merge in steps (:meth:`begin_round`, :meth:`step_done`,
    :meth:`end_round`) moves every entry up to ``seq`` ``top`` (all those
    the log held when it began), archive by archive in id order: the
    archives up to ``done_to`` are done, and their entries up to ``top``
    stay in the lists, not counted and not read, until it ends; ``start``
    counts those of the other archives (what their step will move)."""

    __slots__ = (
        "_by_archive",
        "_chunks",
        "_folded",
        "_serial",
        "_serials",
        "done_to",
        "journal",
        "sizes",
        "start",
        "top",
    )

    def __init__(self) -> None:
        self._by_archive: dict[int, list[Entry]] = {}
        self._chunks: list[_Chunk] = []
        self._serials: list[int] = []  # each chunk's, ascending
        self._serial = 0  # the next chunk's
        self._folded: dict[int, int] = {}
        self.sizes: Counter[int] = Counter()
        self.journal: list[Undo] | None = None
        self.top: int | None = None
        self.done_to = -1
        self.start: dict[int, int] = {}

    @property
    def by_archive(self) -> dict[int, list[Entry]]:
        """Each archive's log entries, those a merge in progress moved
        included (do not change the lists): every archive sorted in."""
        for key in set(self.sizes).union(*(c[1] for c in self._chunks)):
            self._list(key)
        return self._by_archive

    def _list(self, key: int) -> list[Entry] | None:
        """Archive ``key``'s list, the chunks' entries of ``key`` sorted in
        first (they follow every entry the list holds)."""
        if not self._chunks:
            return self._by_archive.get(key)
        self._fold_oldest()
        found = self._by_archive.get(key)
        serials = self._serials
        first = bisect_left(serials, self._folded.get(key, 0))
        if first == len(serials):
            return found
        self._folded[key] = self._serial
        for _serial, keys, entries, seqs, stamps in self._chunks[first:]:
            try:
                at = keys.index(key)
            except ValueError:
                continue
            if found is None:
                self._by_archive[key] = found = []
            append = found.append
            while True:
                seq = cast("int", entries[4 * at + 1])
                stamp = stamps[bisect_left(seqs, seq)]
                append((seq, entries[4 * at + 2], entries[4 * at + 3], stamp))  # type: ignore[arg-type]
                try:
                    at = keys.index(key, at + 1)
                except ValueError:
                    break
        return found

    def _fold_oldest(self) -> None:
        """Sort the oldest chunks' entries into every archive's list, about
        :data:`FOLD_STEP` entries a call (a bounded part of a read's time),
        skipping the archives that sorted them in already; each entry is
        sorted in once, so a busy log's reads pay it whole in a few calls."""
        by_archive, folded = self._by_archive, self._folded
        budget = FOLD_STEP
        while self._chunks and budget > 0:
            serial, keys, entries, seqs, stamps = self._chunks.pop(0)
            del self._serials[0]
            budget -= len(keys)
            stamp_of = dict(zip(seqs, stamps, strict=True))
            it = iter(entries)
            ahead = self._serial if folded else 0  # (no archive read since: none to skip)
            for key, seq, bare, peer in zip(it, it, it, it, strict=True):
                if ahead > serial and folded.get(key, 0) > serial:  # type: ignore[call-overload]
                    continue
                found = by_archive.get(key)  # type: ignore[call-overload]
                if found is None:
                    by_archive[key] = found = []  # type: ignore[index]
                found.append((seq, bare, peer, stamp_of[seq]))  # type: ignore[index]
        if not self._chunks:
            folded.clear()  # every chunk sorted in: the next ones are new to all

    def clear(self) -> None:
        """The log was merged whole."""
        self._by_archive.clear()
        self._chunks.clear()
        self._serials.clear()
        self._folded.clear()
        self.sizes.clear()
        self.top, self.done_to, self.start = None, -1, {}

    def load(self, conn: sqlite3.Connection) -> None:
        """Read the log back from its table (the store opens)."""
        self.clear()
        for key, seq, bare, peer, stamp in conn.execute(
            "SELECT e.archive, e.seq, e.bare, e.peer, i.stamp FROM mam_log_entries e"
            " JOIN mam_items i ON i.seq = e.seq ORDER BY e.seq"
        ):
            self._by_archive.setdefault(key, []).append((seq, bare, peer, stamp))
        self.sizes.update({key: len(found) for key, found in self._by_archive.items()})

    def _moved(self, key: int) -> int:
        """How many entries at the head of ``key``'s list a merge in progress moved."""
        if self.top is None or key > self.done_to:
            return 0
        return bisect_left(self._list(key) or _NONE, (self.top + 1,))

    def entries(self, key: int | None) -> list[Entry]:
        """Archive ``key``'s log entries (do not change the list)."""
        if key is None:
            return _NONE
        found = self._list(key) or _NONE
        moved = self._moved(key)
        return found[moved:] if moved else found

    def size(self, key: int) -> int:
        return self.sizes.get(key, 0)

    def _live(self, key: int) -> None:
        """Count ``key``'s entries again (after a change of its list)."""
        left = len(self._list(key) or _NONE) - self._moved(key)
        if left:
            self.sizes[key] = left
        else:
            self.sizes.pop(key, None)

    def _starting(self, key: int, entries: Iterable[Entry], sign: int) -> None:
        """A merge in progress will move ``entries`` of ``key`` (``sign`` 1),
        or no more (-1)."""
        if self.top is not None and key > self.done_to:
            top = self.top
            n = sum(1 for e in entries if e[0] <= top)
            if n:
                self.start[key] = self.start.get(key, 0) + sign * n

    def append_rows(self, entries: list[object], items: list[object], last: int) -> None:
        """Add the flat rows a batch wrote to the log (4 values an entry, 5 an
        item: :meth:`SqliteArchiveStorage._rows`), each ``seq`` after ``last``
        and after every ``seq`` the log holds (and after a merge's ``top``)."""
        keys = cast("list[int]", entries[0::4])
        chunk: _Chunk = (
            self._serial,
            keys,
            entries,
            cast("list[int]", items[0::5]),
            cast("list[float]", items[2::5]),
        )
        self._chunks.append(chunk)
        self._serials.append(self._serial)
        self._serial += 1
        self.sizes.update(keys)
        if self.journal is not None:
            self.journal.append(lambda: self._unappend(chunk, keys, last))

    def _unappend(self, chunk: _Chunk, keys: list[int], last: int) -> None:
        sizes = self.sizes
        sizes.subtract(keys)
        for key in set(keys):
            if sizes[key] <= 0:
                del sizes[key]
        if self._chunks and self._chunks[-1] is chunk:  # the rule: sorted in nowhere yet
            self._chunks.pop()
            self._serials.pop()
            for key in set(keys):  # (serials are not reused: others never see it)
                if self._folded.get(key, 0) > chunk[0]:
                    self._drop_after(key, last)
            return
        for key in set(keys):
            self._list(key)
            self._drop_after(key, last)
        for at, found in enumerate(self._chunks):  # (unless sorted in whole)
            if found is chunk:
                del self._chunks[at], self._serials[at]
                break

    def _drop_after(self, key: int, last: int) -> None:
        found = self._by_archive.get(key)
        while found and found[-1][0] > last:
            found.pop()
        if found is not None and not found:
            del self._by_archive[key]

    def add(self, key: int, entry: Entry) -> None:
        """One entry, in its place (a ``sid`` the store holds: its ``seq`` may
        precede the log's newest)."""
        found = self._list(key)
        if found is None:
            self._by_archive[key] = found = []
        insort(found, entry)
        self._starting(key, (entry,), 1)
        self._live(key)
        if self.journal is not None:
            self.journal.append(lambda: self._restore(key, [], drop=entry[0]))

    def remove(self, key: int, seqs: Iterable[int]) -> None:
        """Drop archive ``key``'s entries of ``seqs`` (a quota, retention;
        never one a merge in progress moved)."""
        gone = self._remove(key, set(seqs))
        if gone and self.journal is not None:
            self.journal.append(lambda: self._restore(key, gone))

    def _remove(self, key: int, seqs: set[int]) -> list[Entry]:
        found = self._list(key)
        if not found or not seqs:
            return []
        kept = [e for e in found if e[0] not in seqs]
        gone = [e for e in found if e[0] in seqs]
        if kept:
            self._by_archive[key] = kept
        else:
            del self._by_archive[key]
        self._starting(key, gone, -1)
        self._live(key)
        return gone

    def _restore(self, key: int, entries: list[Entry], drop: int | None = None) -> None:
        """Put ``entries`` back (an undo); ``drop``: take that ``seq`` away instead."""
        if drop is not None:
            self._remove(key, {drop})
            return
        found = self._list(key)
        if found is None:
            self._by_archive[key] = found = []
        for entry in entries:
            insort(found, entry)
        self._starting(key, entries, 1)
        self._live(key)

    def drop_archive(self, key: int) -> None:
        """Archive ``key`` is removed (its entries a merge in progress moved
        with it)."""
        self._list(key)  # its chunks' entries sorted in, then dropped with it
        moved = self._moved(key)
        gone = self._by_archive.pop(key, None)
        self.sizes.pop(key, None)
        if gone is None:
            return
        self._starting(key, gone, -1)
        if self.journal is not None:
            self.journal.append(lambda: self._restore(key, gone[moved:]))

    def has(self, key: int, seq: int) -> bool:
        found = self.entries(key)
        at = bisect_left(found, (seq,))
        return at < len(found) and found[at][0] == seq

    # -- a merge in steps (SqliteArchiveStorage.merge_step) ----------------------

    def begin_round(self, top: int) -> list[int]:
        """A merge of every entry up to ``top`` (all the log holds) begins:
        the archives holding some, in id order."""
        self.top, self.done_to = top, -1
        self.start = dict(self.sizes)
        return sorted(self.start)

    def step_counts(self, low: int, high: int) -> list[tuple[int, int]]:
        """What the step of archives ``low`` to ``high`` moves, per archive."""
        return [(key, n) for key, n in self.start.items() if low <= key <= high and n > 0]

    def step_done(self, high: int, counts: list[tuple[int, int]]) -> None:
        """The step of the archives up to ``high`` (``counts`` moved) committed."""
        for key, n in counts:
            self.start.pop(key, None)
            left = self.sizes.get(key, 0) - n
            if left > 0:
                self.sizes[key] = left
            else:
                self.sizes.pop(key, None)
        self.done_to = high

    def end_round(self) -> None:
        """The merge's last step committed: what it moved leaves memory."""
        top = self.top
        assert top is not None
        # A batch's chunk is wholly before ``top`` or wholly after (writes
        # during a merge follow it); the keys not sorted in lose theirs here.
        kept_chunks = [c for c in self._chunks if c[3] and c[3][-1] > top]
        self._chunks, self._serials = kept_chunks, [c[0] for c in kept_chunks]
        by_archive = self._by_archive
        for key in list(by_archive):
            found = by_archive[key]
            if found[0][0] <= top:
                kept = found[bisect_left(found, (top + 1,)) :]
                if kept:
                    by_archive[key] = kept
                else:
                    del by_archive[key]
        self.top, self.done_to, self.start = None, -1, {}


_marks = itertools.count(1)


class Foreign:
    """The caller's transactions that changed the log, their outcome not yet
    known: each call into the store inside one writes a mark (a row of a
    temporary table of the caller's connection, rolled back with it) and
    journals its changes; once the connection is outside any transaction
    (:meth:`resolve`), a missing mark undoes its changes."""

    __slots__ = ("_conn", "_pending")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._pending: list[tuple[int, list[Undo]]] = []
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS mam_marks (id INTEGER PRIMARY KEY)")

    def __bool__(self) -> bool:
        return bool(self._pending)

    def begin(self) -> list[Undo]:
        """A call in the caller's transaction: its mark, and its journal."""
        mark = next(_marks)
        self._conn.execute("INSERT INTO temp.mam_marks VALUES (?)", (mark,))
        undo: list[Undo] = []
        self._pending.append((mark, undo))
        return undo

    def resolve(self) -> bool:
        """Undo what the transactions that did not commit changed (newest
        first), if the connection is outside any; whether nothing is left
        pending."""
        if not self._pending:
            return True
        conn = self._conn
        if conn.in_transaction:
            return False
        for mark, undo in reversed(self._pending):
            if (
                undo
                and conn.execute("SELECT 1 FROM temp.mam_marks WHERE id = ?", (mark,)).fetchone()
                is None
            ):
                for step in reversed(undo):
                    step()
        self._pending.clear()
        conn.execute("DELETE FROM temp.mam_marks")
        return True


def move_step(
    conn: sqlite3.Connection, top: int, low: int, high: int, expected: int, *, last: bool
) -> int:
    """A merge's step in the caller's transaction: the log's rows up to
    ``top`` of archives ``low`` to ``high`` into ``mam_entries`` in ``(archive,
    seq)`` order (``expected`` of them, else it raises); the last step
    deletes every row up to ``top``, the others record how far the merge
    went (``mam_state``: a restart deletes the rows moved). Returns the
    rows moved."""
    moved = int(
        conn.execute(
            "INSERT INTO mam_entries SELECT * FROM mam_log_entries"
            " WHERE seq <= ? AND archive BETWEEN ? AND ? ORDER BY archive, seq",
            (top, low, high),
        ).rowcount
    )
    if moved != expected:
        raise sqlite3.DatabaseError(f"merge: {moved} entries moved, {expected} known")
    if last:
        # The rows up to ``top`` are most of the table: the few after it
        # (written during the merge) are set aside and the table emptied
        # whole (SQLite's truncation, not a delete a row).
        conn.execute("DROP TABLE IF EXISTS temp.mam_log_kept")
        conn.execute(
            "CREATE TEMP TABLE mam_log_kept AS SELECT * FROM mam_log_entries WHERE seq > ?",
            (top,),
        )
        conn.execute("DELETE FROM mam_log_entries")
        conn.execute("INSERT INTO mam_log_entries SELECT * FROM temp.mam_log_kept ORDER BY seq")
        conn.execute("DROP TABLE temp.mam_log_kept")
        conn.execute("DELETE FROM mam_state WHERE key IN ('merge_top', 'merge_done')")
    else:
        conn.execute(
            "INSERT OR REPLACE INTO mam_state VALUES ('merge_top', ?), ('merge_done', ?)",
            (top, high),
        )
    return moved
